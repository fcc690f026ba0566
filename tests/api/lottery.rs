//! Lottery mode: a verifiable draw (I8), winners, losers and the waitlist.

use std::collections::HashSet;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{assert_error, body_json, eventually, sale_json, spawn_app, ADMIN_KEY};
use floodgate::tokens::Purpose;

#[tokio::test]
async fn ten_thousand_entries_five_hundred_verifiable_winners() {
    let app = spawn_app().await;
    let sale = app
        .create_sale_ok(&sale_json(
            4000,
            json!({ "mode": "lottery", "waiting_room": true, "per_user_limit": 4,
                    "admission": { "admit_per_second": 20, "max_active": 100 } }),
        ))
        .await;
    let commitment = body_json(app.get_sale(&sale).await).await["seed_commitment"].as_str().unwrap().to_owned();

    // 10,000 entries, 200 at a time.
    let tokens: Vec<String> = stream::iter(0..10_000)
        .map(|_| {
            let app = &app;
            let sale = sale.clone();
            async move {
                let response = app.join(&sale, None).await;
                assert_eq!(response.status(), StatusCode::CREATED);
                body_json(response).await["queue_token"].as_str().unwrap().to_owned()
            }
        })
        .buffer_unordered(200)
        .collect()
        .await;
    let entry_of = |token: &str| app.state.tokens.verify(token, Purpose::Queue, Some(&sale)).unwrap().n.unwrap();
    let entries: HashSet<u64> = tokens.iter().map(|t| entry_of(t)).collect();
    assert_eq!(entries.len(), 10_000);

    let draw = |winners: i64| {
        app.client
            .post(app.url(&format!("/admin/v1/sales/{sale}/lottery/draw")))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({ "winners": winners, "purchase_window_seconds": 600 }))
            .send()
    };
    let result = body_json(draw(500).await.unwrap()).await;
    let drawn_at = std::time::Instant::now();
    assert_eq!(result["entries"], 10_000);
    assert_eq!(result["winners"], 500);
    let seed = result["seed"].as_str().unwrap();
    assert_eq!(hex::encode(Sha256::digest(seed.as_bytes())), commitment, "seed matches the published commitment");
    assert_error(draw(500).await.unwrap(), StatusCode::CONFLICT, "already_drawn").await;
    assert_error(app.join(&sale, None).await, StatusCode::GONE, "lottery_drawn").await;

    // Anyone can recompute the winners from the seed and the entry numbers.
    let order = floodgate::fairness::shuffled_order(seed, 10_000);
    let winners: HashSet<u64> = order[..500].iter().map(|&n| u64::from(n)).collect();
    let statuses: Vec<(u64, Value)> = stream::iter(tokens.iter())
        .map(|token| {
            let app = &app;
            let sale = sale.clone();
            async move { (entry_of(token), app.status_patiently(&sale, token).await) }
        })
        .buffered(200)
        .collect()
        .await;
    assert!(drawn_at.elapsed() < Duration::from_secs(600), "statuses were read within the purchase window");
    let mut won = HashSet::new();
    for (entry, status) in &statuses {
        match status["state"].as_str().unwrap() {
            "won" => {
                assert!(status["admission_token"].is_string());
                won.insert(*entry);
            }
            "lost" => {}
            other => panic!("unexpected state {other}: {status}"),
        }
    }
    assert_eq!(won, winners, "exactly the recomputed 500 win");
    assert_eq!(app.events(&sale, "lottery.won").await.len(), 500);
    assert_eq!(app.events(&sale, "lottery.lost").await.len(), 9_500);

    app.assert_audit_clean(&sale).await;
}

#[tokio::test]
async fn after_the_purchase_window_the_waitlist_is_admitted_in_draw_order() {
    let app = spawn_app().await;
    let sale = app
        .create_sale_ok(&sale_json(
            400,
            json!({ "mode": "lottery", "waiting_room": true, "per_user_limit": 4,
                    "admission": { "admit_per_second": 5, "max_active": 100, "admission_ttl_seconds": 60 } }),
        ))
        .await;
    let mut tokens = Vec::new();
    for _ in 0..60 {
        tokens.push(body_json(app.join(&sale, None).await).await["queue_token"].as_str().unwrap().to_owned());
    }
    let response = app
        .client
        .post(app.url(&format!("/admin/v1/sales/{sale}/lottery/draw")))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "winners": 5, "purchase_window_seconds": 1 }))
        .send()
        .await
        .unwrap();
    let seed = body_json(response).await["seed"].as_str().unwrap().to_owned();
    let order = floodgate::fairness::shuffled_order(&seed, 60);
    let entry_of = |token: &str| app.state.tokens.verify(token, Purpose::Queue, Some(&sale)).unwrap().n.unwrap();
    let token_at = |place: usize| tokens.iter().find(|t| entry_of(t) == u64::from(order[place - 1])).unwrap().clone();

    let first_loser = token_at(6);
    let admitted = eventually(Duration::from_secs(10), || async {
        (app.status_patiently(&sale, &first_loser).await["state"] == "admitted").then_some(())
    })
    .await;
    assert!(admitted.is_some(), "the first of the waitlist is admitted after the window");
    // Read from the back of the waitlist: the serving number only grows, so
    // once one place reads admitted every earlier place must too.
    let mut seen_admitted = false;
    let mut admitted_places = 0;
    for place in (6..=60).rev() {
        let state = app.status_patiently(&sale, &token_at(place)).await["state"].as_str().unwrap().to_owned();
        if state == "admitted" {
            seen_admitted = true;
            admitted_places += 1;
        } else {
            assert!(!seen_admitted, "place {place} is {state} though a later place was admitted");
            assert_eq!(state, "lost");
        }
    }
    assert!((1..55).contains(&admitted_places), "the waitlist moves gradually: {admitted_places}");
}

#[tokio::test]
async fn draw_is_only_for_lotteries() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(10, json!({}))).await;
    let response = app
        .client
        .post(app.url(&format!("/admin/v1/sales/{sale}/lottery/draw")))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::CONFLICT, "not_a_lottery").await;
    let lottery_without_room =
        app.create_sale(&sale_json(10, json!({ "mode": "lottery", "waiting_room": false }))).await;
    assert_error(lottery_without_room, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
}

#[tokio::test]
async fn concurrent_draws_draw_and_record_once_and_bad_input_changes_nothing() {
    let app = spawn_app().await;
    let sibling = crate::helpers::spawn_sibling(&app).await;
    let sale = app
        .create_sale_ok(&sale_json(
            100,
            json!({ "mode": "lottery", "waiting_room": true, "per_user_limit": 1,
                    "admission": { "admit_per_second": 0, "max_active": 100 } }),
        ))
        .await;
    for _ in 0..50 {
        assert_eq!(app.join(&sale, None).await.status(), StatusCode::CREATED);
    }
    let draw = |instance: &crate::helpers::TestApp, body: Value| {
        instance
            .client
            .post(instance.url(&format!("/admin/v1/sales/{sale}/lottery/draw")))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
    };
    // Invalid input is refused before anything changes: entries stay open.
    let refused = draw(&app, json!({ "winners": 0 })).await.unwrap();
    assert_error(refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    let refused = draw(&app, json!({ "winners": 5, "purchase_window_seconds": 0 })).await.unwrap();
    assert_error(refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    assert_eq!(app.join(&sale, None).await.status(), StatusCode::CREATED, "entries are still open");

    // Eight draws at once through two instances: one draws, the rest are told.
    let body = json!({ "winners": 10, "purchase_window_seconds": 600 });
    let draws = (0..8).map(|i| draw(if i % 2 == 0 { &app } else { &sibling }, body.clone()));
    let statuses: Vec<StatusCode> =
        futures::future::join_all(draws).await.into_iter().map(|r| r.unwrap().status()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count(), 7, "{statuses:?}");
    // One lottery event per entry, once.
    let won = app.events(&sale, "lottery.won").await.len();
    let lost = app.events(&sale, "lottery.lost").await.len();
    assert_eq!((won, lost), (10, 41));
}
