//! Holds under real concurrency: I1 (no unit twice), I2 (all or nothing),
//! I3 (per-user limit across devices), I4 (tokens), I5 (idempotency).

use std::collections::{HashMap, HashSet};

use floodgate::tokens::Purpose;
use futures::future::join_all;
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, body_json, sale_json, spawn_app};

#[tokio::test]
async fn two_thousand_concurrent_holds_on_300_units_never_oversell() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(300, json!({ "per_user_limit": 4 }))).await;
    let users: Vec<String> = (0..200).map(|i| format!("v:user{i}")).collect();
    let tokens: Vec<String> = users.iter().map(|u| app.admission_token(&sale, u)).collect();

    // 10 requests per user, fired at once: several "devices" per user.
    let requests = (0..2000).map(|i| {
        let quantity = rand::rng().random_range(1..=3);
        let token = tokens[i % tokens.len()].clone();
        let app = &app;
        let sale = sale.clone();
        async move {
            let response = app.hold(&sale, &token, &json!({ "quantity": quantity }), None).await;
            let status = response.status();
            (i % 200, quantity, status, body_json(response).await)
        }
    });
    let results = join_all(requests).await;

    let mut held_by_user: HashMap<usize, i64> = HashMap::new();
    let mut units_seen = HashSet::new();
    let mut codes: HashMap<String, usize> = HashMap::new();
    for (user, quantity, status, body) in &results {
        match *status {
            StatusCode::CREATED => {
                let units = body["units"].as_array().expect("units");
                assert_eq!(units.len() as i64, *quantity, "all or nothing (I2): {body}");
                for unit in units {
                    assert!(units_seen.insert(unit["id"].as_str().unwrap().to_owned()), "unit held twice (I1)");
                }
                *held_by_user.entry(*user).or_default() += quantity;
            }
            StatusCode::CONFLICT | StatusCode::GONE => {
                *codes.entry(body["error"]["code"].as_str().unwrap().to_owned()).or_default() += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(units_seen.len(), 300, "every unit sold once, demand exceeds supply: {codes:?}");
    assert!(held_by_user.values().all(|&n| n <= 4), "per-user limit (I3): {held_by_user:?}");
    assert!(codes.contains_key("limit_exceeded"), "{codes:?}");
    let (available, held, sold) = app.unit_counts(&sale).await;
    assert_eq!((available, held, sold), (0, 300, 0));
    app.assert_audit_clean(&sale).await;
}

#[tokio::test]
async fn named_seats_contended_by_many_buyers_are_held_once() {
    let app = spawn_app().await;
    let sale = app
        .create_sale_ok(&sale_json(
            0,
            json!({ "units": { "sections": [{ "name": "A", "rows": 2, "seats_per_row": 10 }] }, "per_user_limit": 4 }),
        ))
        .await;
    // 300 buyers each want two adjacent seats among 20: heavy overlap.
    let requests = (0..300).map(|i| {
        let app = &app;
        let sale = sale.clone();
        async move {
            let row = 1 + i % 2;
            let seat = 1 + (i * 7) % 9;
            let seats = vec![format!("A/{row}/{seat}"), format!("A/{row}/{}", seat + 1)];
            let token = app.admission_token(&sale, &format!("v:seat{i}"));
            let response = app.hold(&sale, &token, &json!({ "seats": seats }), None).await;
            let status = response.status();
            (seats, status, body_json(response).await)
        }
    });
    let results = join_all(requests).await;
    let mut taken = HashSet::new();
    let mut won = 0;
    for (seats, status, body) in results {
        match status {
            StatusCode::CREATED => {
                won += 1;
                let labels: Vec<String> =
                    body["units"].as_array().unwrap().iter().map(|u| u["label"].as_str().unwrap().to_owned()).collect();
                assert_eq!(labels.len(), 2);
                for label in &labels {
                    assert!(seats.contains(label), "got exactly the named seats");
                    assert!(taken.insert(label.clone()), "seat {label} held twice");
                }
            }
            StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "seat_taken", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!((1..=10).contains(&won), "at most 10 disjoint pairs in 20 seats, got {won}");
    let (_, held, _) = app.unit_counts(&sale).await;
    assert_eq!(held as usize, taken.len());
    app.assert_audit_clean(&sale).await;
}

#[tokio::test]
async fn one_user_on_many_devices_never_passes_the_limit() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(1000, json!({ "per_user_limit": 4 }))).await;
    // Separate admission tokens for one user, as from several devices.
    let requests = (0..100).map(|_| {
        let app = &app;
        let sale = sale.clone();
        async move {
            let token = app.admission_token(&sale, "u:alice");
            app.hold(&sale, &token, &json!({ "quantity": 1 }), None).await.status()
        }
    });
    let statuses = join_all(requests).await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 4);
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count(), 96);
    app.assert_audit_clean(&sale).await;
}

#[tokio::test]
async fn concurrent_retries_with_one_idempotency_key_create_one_hold() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(100, json!({}))).await;
    let token = app.admission_token(&sale, "v:retry");
    let body = json!({ "quantity": 2 });
    let requests = (0..50).map(|_| app.hold(&sale, &token, &body, Some("key-1")));
    let responses = join_all(requests).await;
    let mut bodies = Vec::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::CREATED);
        bodies.push(body_json(response).await);
    }
    let first = &bodies[0];
    assert!(bodies.iter().all(|b| b == first), "every retry gets the first answer");
    let holds: (i64,) =
        sqlx::query_as("SELECT count(*) FROM holds WHERE sale_id = $1").bind(&sale).fetch_one(&app.db).await.unwrap();
    assert_eq!(holds.0, 1);
    assert_eq!(app.unit_counts(&sale).await.1, 2);

    let reused = app.hold(&sale, &token, &json!({ "quantity": 3 }), Some("key-1")).await;
    assert_error(reused, StatusCode::CONFLICT, "idempotency_key_reused").await;
}

#[tokio::test]
async fn stock_errors_have_their_codes() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(5, json!({ "per_user_limit": 10 }))).await;
    let hold = app.hold_ok(&sale, "v:a", &json!({ "quantity": 3 })).await;
    let token = app.admission_token(&sale, "v:b");
    assert_error(
        app.hold(&sale, &token, &json!({ "quantity": 3 }), None).await,
        StatusCode::CONFLICT,
        "insufficient_stock",
    )
    .await;
    assert_eq!(app.unit_counts(&sale).await, (2, 3, 0), "a failed hold holds nothing (I2)");
    app.hold_ok(&sale, "v:b", &json!({ "quantity": 2 })).await;
    // None left but some held: not sold out yet, they may come back.
    assert_error(
        app.hold(&sale, &token, &json!({ "quantity": 1 }), None).await,
        StatusCode::CONFLICT,
        "insufficient_stock",
    )
    .await;
    let order = app.dev_checkout(hold["id"].as_str().unwrap(), hold["hold_token"].as_str().unwrap()).await;
    assert_eq!(order.status(), StatusCode::OK);
    let token_c = app.admission_token(&sale, "v:c");
    assert_error(
        app.hold(&sale, &token_c, &json!({ "quantity": 11 }), None).await,
        StatusCode::CONFLICT,
        "limit_exceeded",
    )
    .await;
    assert_error(
        app.hold(&sale, &token_c, &json!({ "quantity": 0 }), None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    assert_error(
        app.hold(&sale, &token_c, &json!({}), None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    assert_error(
        app.hold(&sale, &token_c, &json!({ "quantity": 1, "seats": ["A/1/1"] }), None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    app.assert_audit_clean(&sale).await;
}

#[tokio::test]
async fn sold_out_when_nothing_is_available_or_held() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(2, json!({}))).await;
    let hold = app.hold_ok(&sale, "v:a", &json!({ "quantity": 2 })).await;
    app.dev_checkout(hold["id"].as_str().unwrap(), hold["hold_token"].as_str().unwrap()).await;
    let token = app.admission_token(&sale, "v:b");
    assert_error(app.hold(&sale, &token, &json!({ "quantity": 1 }), None).await, StatusCode::GONE, "sold_out").await;
}

#[tokio::test]
async fn forged_tampered_expired_and_foreign_tokens_are_refused() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(10, json!({}))).await;
    let other = app.create_sale_ok(&sale_json(10, json!({}))).await;
    let body = json!({ "quantity": 1 });

    assert_error(app.hold(&sale, "not-a-token", &body, None).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = app.client.post(app.url(&format!("/api/v1/sales/{sale}/holds"))).json(&body).send().await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;

    let good = app.admission_token(&sale, "v:x");
    let mut tampered = good.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_error(app.hold(&sale, &tampered, &body, None).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // Signed with a key floodgate does not know, same kid.
    let forged = {
        let signer = floodgate::tokens::TokenSigner::new(&[floodgate::configuration::SigningKey {
            id: app.settings.tokens.keys[0].id.clone(),
            secret: "an-attackers-secret-0123456789".into(),
        }])
        .unwrap();
        signer
            .issue(
                floodgate::tokens::Purpose::Admission,
                &sale,
                "v:x",
                Some(0),
                None,
                chrono::Utc::now() + chrono::Duration::minutes(5),
            )
            .unwrap()
    };
    assert_error(app.hold(&sale, &forged, &body, None).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    let expired = app
        .state
        .tokens
        .issue(
            floodgate::tokens::Purpose::Admission,
            &sale,
            "v:x",
            Some(0),
            None,
            chrono::Utc::now() - chrono::Duration::seconds(5),
        )
        .unwrap();
    assert_error(app.hold(&sale, &expired, &body, None).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    let other_sale = app.admission_token(&other, "v:x");
    assert_error(app.hold(&sale, &other_sale, &body, None).await, StatusCode::FORBIDDEN, "forbidden").await;

    let queue_token = app
        .state
        .tokens
        .issue(
            floodgate::tokens::Purpose::Queue,
            &sale,
            "v:x",
            Some(1),
            None,
            chrono::Utc::now() + chrono::Duration::minutes(5),
        )
        .unwrap();
    assert_error(app.hold(&sale, &queue_token, &body, None).await, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.unit_counts(&sale).await, (10, 0, 0));
}

#[tokio::test]
async fn hold_owner_sees_and_releases_a_hold_and_units_return() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(10, json!({}))).await;
    let hold = app.hold_ok(&sale, "v:a", &json!({ "quantity": 4 })).await;
    let (id, token) = (hold["id"].as_str().unwrap(), hold["hold_token"].as_str().unwrap());
    let seen = body_json(app.get_hold(id, token).await).await;
    assert_eq!(seen["state"], "held");
    assert_eq!(seen["units"], hold["units"]);

    let other = app.hold_ok(&sale, "v:b", &json!({ "quantity": 1 })).await;
    assert_error(app.get_hold(id, other["hold_token"].as_str().unwrap()).await, StatusCode::FORBIDDEN, "forbidden")
        .await;

    let released = app.release_hold(id, token).await;
    assert_eq!(released.status(), StatusCode::OK);
    assert_eq!(body_json(released).await["state"], "released");
    assert_eq!(app.unit_counts(&sale).await, (9, 1, 0));
    assert_eq!(app.release_hold(id, token).await.status(), StatusCode::OK, "releasing twice is harmless");
    // The allowance came back: the buyer can hold 4 again.
    app.hold_ok(&sale, "v:a", &json!({ "quantity": 4 })).await;
    assert_eq!(app.events(&sale, "hold.created").await.len(), 3);
    assert_eq!(app.events(&sale, "hold.released").await.len(), 1);
    app.assert_audit_clean(&sale).await;
}

#[tokio::test]
async fn an_expired_hold_returns_its_units_within_a_second() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(3, json!({ "hold_ttl_seconds": 1 }))).await;
    let hold = app.hold_ok(&sale, "v:a", &json!({ "quantity": 3 })).await;
    let expires_at: chrono::DateTime<chrono::Utc> = hold["expires_at"].as_str().unwrap().parse().unwrap();
    let back = crate::helpers::eventually(std::time::Duration::from_secs(5), || async {
        (app.unit_counts(&sale).await.0 == 3).then(chrono::Utc::now)
    })
    .await
    .expect("units come back");
    assert!(back - expires_at < chrono::Duration::milliseconds(1000), "back {} after expiry", back - expires_at);
    let seen = body_json(app.get_hold(hold["id"].as_str().unwrap(), hold["hold_token"].as_str().unwrap()).await).await;
    assert_eq!(seen["state"], "expired");
    assert_error(
        app.release_hold(hold["id"].as_str().unwrap(), hold["hold_token"].as_str().unwrap()).await,
        StatusCode::GONE,
        "hold_expired",
    )
    .await;
    assert_eq!(app.events(&sale, "hold.expired").await.len(), 1);
    app.hold_ok(&sale, "v:a", &json!({ "quantity": 3 })).await;
    app.assert_audit_clean(&sale).await;
}

#[tokio::test]
async fn a_million_units_are_created_in_seconds() {
    let app = spawn_app().await;
    let started = std::time::Instant::now();
    let sale = app.create_sale_ok(&sale_json(1_000_000, json!({ "stages": [30, 40, 30] }))).await;
    let elapsed = started.elapsed();
    println!("created 1,000,000 units in {elapsed:?}");
    let sale_view: Value = body_json(app.get_sale(&sale).await).await;
    assert_eq!(sale_view["availability"]["total"], 1_000_000);
    let stages: Vec<i64> =
        sale_view["availability"]["stages"].as_array().unwrap().iter().map(|s| s["units"].as_i64().unwrap()).collect();
    assert_eq!(stages, vec![300_000, 400_000, 300_000]);
    app.hold_ok(&sale, "v:a", &json!({ "quantity": 2 })).await;
}

#[tokio::test]
async fn a_retry_gets_its_first_answer_even_when_the_sale_paused_or_ran_out_since() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(2, json!({}))).await;
    let token = app.admission_token(&sale, "v:first");
    let first = app.hold(&sale, &token, &json!({ "quantity": 2 }), Some("key-a")).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = body_json(first).await;

    // Nothing left: another buyer's claim finds no unit, and the next
    // refusals are answered without a transaction; the retry still replays.
    let other = app.admission_token(&sale, "v:other");
    assert_error(
        app.hold(&sale, &other, &json!({ "quantity": 1 }), None).await,
        StatusCode::CONFLICT,
        "insufficient_stock",
    )
    .await;
    let retry = app.hold(&sale, &token, &json!({ "quantity": 2 }), Some("key-a")).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(body_json(retry).await, first, "the first answer, not the refusal");
    let fresh_key = app.hold(&sale, &other, &json!({ "quantity": 1 }), Some("key-b")).await;
    assert_error(fresh_key, StatusCode::CONFLICT, "insufficient_stock").await;

    // Paused: a new request is refused, the retry still replays.
    let paused = app.patch_sale(&sale, &json!({ "action": "pause" })).await;
    assert_eq!(paused.status(), StatusCode::OK);
    let retry = app.hold(&sale, &token, &json!({ "quantity": 2 }), Some("key-a")).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(body_json(retry).await, first);
    let reused = app.hold(&sale, &token, &json!({ "quantity": 1 }), Some("key-a")).await;
    assert_error(reused, StatusCode::CONFLICT, "idempotency_key_reused").await;
    assert_error(
        app.hold(&sale, &other, &json!({ "quantity": 1 }), Some("key-c")).await,
        StatusCode::CONFLICT,
        "sale_paused",
    )
    .await;
    app.assert_audit_clean(&sale).await;
}

#[tokio::test]
async fn tokens_expire_at_the_millisecond_they_state() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(5, json!({ "waiting_room": true }))).await;
    // An expiry a few milliseconds ago but within the current second: a
    // whole-second comparison still takes it (hardening item 1).
    let now = chrono::Utc::now();
    if now.timestamp_subsec_millis() < 5 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let expired = chrono::Utc::now() - chrono::Duration::milliseconds(2);
    let tokens = &app.state.tokens;
    let admission = tokens.issue(Purpose::Admission, &sale, "v:late", Some(1), None, expired).unwrap();
    let hold = app.hold(&sale, &admission, &json!({ "quantity": 1 }), None).await;
    assert_error(hold, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(app.unit_counts(&sale).await.1, 0, "a late hold holds nothing");
    let queue = tokens.issue(Purpose::Queue, &sale, "v:late", Some(1), None, expired).unwrap();
    assert_error(app.status(&sale, &queue).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    let valid = tokens
        .issue(Purpose::Admission, &sale, "v:on-time", Some(2), None, chrono::Utc::now() + chrono::Duration::seconds(5))
        .unwrap();
    let hold = app.hold(&sale, &valid, &json!({ "quantity": 1 }), None).await;
    assert_eq!(hold.status(), StatusCode::CREATED);
}

/// Holds that arrive together are placed by one statement (`place_holds`,
/// inventory/batch.rs), each still all or nothing with its own answer: a
/// refusal in a batch undoes that hold alone.
#[tokio::test]
async fn holds_placed_together_keep_their_own_answers() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(1000, json!({ "per_user_limit": 2 }))).await;
    let buyers: Vec<String> = (0..100).map(|i| app.admission_token(&sale, &format!("v:batch{i}"))).collect();
    // Three holds of one unit per buyer, all at once: two fit the limit.
    let requests = (0..300).map(|i| {
        let app = &app;
        let (sale, token) = (sale.clone(), buyers[i % 100].clone());
        async move { (i % 100, app.hold(&sale, &token, &json!({ "quantity": 1 }), None).await.status()) }
    });
    let mut created: HashMap<usize, usize> = HashMap::new();
    for (buyer, status) in join_all(requests).await {
        match status {
            StatusCode::CREATED => *created.entry(buyer).or_default() += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(created.len() == 100 && created.values().all(|&n| n == 2), "two holds per buyer (I3): {created:?}");
    assert_eq!(app.unit_counts(&sale).await, (800, 200, 0));
    app.assert_audit_clean(&sale).await;

    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    };
    let (alone, calls) =
        (value("floodgate_hold_batch_size_bucket{le=\"1\"}"), value("floodgate_hold_batch_size_count"));
    assert!(alone < calls, "300 concurrent holds all went one per statement ({alone} of {calls} calls alone)");
}
