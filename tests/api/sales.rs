//! Sales: staged releases, lifecycle, availability.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, body_json, eventually, sale_json, spawn_app};

#[tokio::test]
async fn stages_release_exactly_300_then_700_then_1000() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(1000, json!({ "stages": [30, 40, 30], "per_user_limit": 1000 }))).await;
    let mut held = 0;
    for (stage, expected) in [(1, 300), (2, 700), (3, 1000)] {
        if stage > 1 {
            let response = app.next_stage(&sale).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(body_json(response).await["released_units"], expected);
        }
        let hold = app.hold_ok(&sale, &format!("v:{stage}"), &json!({ "quantity": expected - held })).await;
        assert_eq!(hold["units"].as_array().unwrap().len() as i64, expected - held);
        held = expected;
        let token = app.admission_token(&sale, "v:more");
        let beyond = app.hold(&sale, &token, &json!({ "quantity": 1 }), None).await;
        assert!(matches!(beyond.status(), StatusCode::CONFLICT | StatusCode::GONE), "nothing beyond stage {stage}");
        let view = body_json(app.get_sale(&sale).await).await;
        assert_eq!(view["availability"]["total"], 1000);
    }
    assert_error(app.next_stage(&sale).await, StatusCode::CONFLICT, "no_more_stages").await;
    app.assert_audit_clean(&sale).await;
}

#[tokio::test]
async fn scheduled_stage_opens_by_itself() {
    let app = spawn_app().await;
    let opens = chrono::Utc::now() + chrono::Duration::seconds(1);
    let sale = app
        .create_sale_ok(&sale_json(
            10,
            json!({ "stages": [50, 50], "stage_opens_at": [null, opens], "per_user_limit": 10 }),
        ))
        .await;
    app.hold_ok(&sale, "v:a", &json!({ "quantity": 5 })).await;
    let opened = eventually(Duration::from_secs(5), || async {
        let view = body_json(app.get_sale(&sale).await).await;
        (view["availability"]["stages"][1]["released"] == true).then_some(())
    })
    .await;
    assert!(opened.is_some());
    app.hold_ok(&sale, "v:a", &json!({ "quantity": 5 })).await;
}

#[tokio::test]
async fn pause_stops_holds_resume_restarts_them_close_ends_the_sale() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(10, json!({}))).await;
    let token = app.admission_token(&sale, "v:a");
    let paused = app.patch_sale(&sale, &json!({ "action": "pause" })).await;
    assert_eq!(body_json(paused).await["state"], "paused");
    assert_error(app.hold(&sale, &token, &json!({ "quantity": 1 }), None).await, StatusCode::CONFLICT, "sale_paused")
        .await;
    let resumed = app.patch_sale(&sale, &json!({ "action": "resume" })).await;
    assert_eq!(body_json(resumed).await["state"], "on_sale");
    assert_eq!(app.hold(&sale, &token, &json!({ "quantity": 1 }), None).await.status(), StatusCode::CREATED);
    let closed = app.patch_sale(&sale, &json!({ "action": "close" })).await;
    assert_eq!(body_json(closed).await["state"], "closed");
    assert_error(app.hold(&sale, &token, &json!({ "quantity": 1 }), None).await, StatusCode::GONE, "sale_closed").await;
    assert_error(app.join(&sale, None).await, StatusCode::GONE, "sale_closed").await;
    assert_error(
        app.patch_sale(&sale, &json!({ "action": "resume" })).await,
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    assert_error(
        app.patch_sale(&sale, &json!({ "action": "explode" })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn admission_settings_change_live() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(10, json!({ "waiting_room": true }))).await;
    let response = app.patch_sale(&sale, &json!({ "admission": { "admit_per_second": 7, "max_active": 3 } })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let view = body_json(response).await;
    assert_eq!(view["admission"]["admit_per_second"], 7);
    assert_eq!(view["admission"]["max_active"], 3);
    assert_eq!(view["admission"]["admission_ttl_seconds"], 300, "unchanged settings stay");
    let response = app.patch_sale(&sale, &json!({ "admission": { "max_active": 0 } })).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
}

#[tokio::test]
async fn reserved_seating_holds_named_seats_all_or_nothing() {
    let app = spawn_app().await;
    let sale = app
        .create_sale_ok(&sale_json(
            0,
            json!({ "units": { "sections": [
            { "name": "A", "rows": 3, "seats_per_row": 4 }, { "name": "B", "rows": 1, "seats_per_row": 2 } ] } }),
        ))
        .await;
    let view = body_json(app.get_sale(&sale).await).await;
    assert_eq!(view["availability"]["total"], 14);
    assert_eq!(view["seating"], "reserved");
    let hold = app.hold_ok(&sale, "v:a", &json!({ "seats": ["A/3/4", "B/1/2"] })).await;
    let labels: Vec<&str> = hold["units"].as_array().unwrap().iter().map(|u| u["label"].as_str().unwrap()).collect();
    assert_eq!(labels, vec!["A/3/4", "B/1/2"]);
    let token = app.admission_token(&sale, "v:b");
    assert_error(
        app.hold(&sale, &token, &json!({ "seats": ["A/1/1", "B/1/2"] }), None).await,
        StatusCode::CONFLICT,
        "seat_taken",
    )
    .await;
    assert_eq!(app.unit_counts(&sale).await.1, 2, "the free seat A/1/1 was not held either (I2)");
    assert_error(
        app.hold(&sale, &token, &json!({ "seats": ["Z/9/9"] }), None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    assert_error(
        app.hold(&sale, &token, &json!({ "seats": ["A/1/1", "A/1/1"] }), None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    // Best available skips held seats.
    let best = app.hold_ok(&sale, "v:b", &json!({ "quantity": 2 })).await;
    assert_eq!(best["units"][0]["label"], "A/1/1");
    app.assert_audit_clean(&sale).await;
}

#[tokio::test]
async fn sale_lists_and_seed_commitment() {
    let app = spawn_app().await;
    let sale =
        app.create_sale_ok(&sale_json(10, json!({ "starts_at": "2099-01-01T00:00:00Z", "waiting_room": true }))).await;
    let list = body_json(app.get("/api/v1/sales").await).await;
    assert!(list.as_array().unwrap().iter().any(|s| s["id"] == sale.as_str()));
    let view = body_json(app.get_sale(&sale).await).await;
    assert_eq!(view["state"], "scheduled");
    assert_eq!(view["seed_commitment"].as_str().unwrap().len(), 64);
    assert!(view["seed"].is_null(), "the seed stays secret before the start");
    let token = app.admission_token(&sale, "v:a");
    assert_error(
        app.hold(&sale, &token, &json!({ "quantity": 1 }), None).await,
        StatusCode::CONFLICT,
        "sale_not_started",
    )
    .await;
}

#[tokio::test]
async fn admins_list_every_sale_and_see_one_with_its_recent_activity() {
    let app = spawn_app().await;
    let open = app.create_sale_ok(&sale_json(10, json!({}))).await;
    let closed = app.create_sale_ok(&sale_json(10, json!({}))).await;
    assert_eq!(app.patch_sale(&closed, &json!({ "action": "close" })).await.status(), StatusCode::OK);

    let hold = app.hold_ok(&open, "v:a", &json!({ "quantity": 2 })).await;
    let paid = app.dev_checkout(hold["id"].as_str().unwrap(), hold["hold_token"].as_str().unwrap()).await;
    assert_eq!(paid.status(), StatusCode::OK);
    app.hold_ok(&open, "v:b", &json!({ "quantity": 1 })).await;

    assert_error(app.get("/admin/v1/sales").await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = app.client.get(app.url("/admin/v1/sales")).bearer_auth(crate::helpers::ADMIN_KEY).send().await;
    let list = body_json(response.expect("request")).await;
    let list = list.as_array().expect("an array");
    let ids: Vec<&str> = list.iter().filter_map(|s| s["id"].as_str()).collect();
    assert!(ids.contains(&open.as_str()) && ids.contains(&closed.as_str()), "closed sales are listed too: {ids:?}");
    let at = |id: &str| ids.iter().position(|x| *x == id).unwrap();
    assert!(at(&closed) < at(&open), "newest first: {ids:?}");

    let listed = list.iter().find(|s| s["id"] == open.as_str()).unwrap();
    assert_eq!(listed["availability"]["sold"], 2, "{listed}");
    assert!(listed["activity"].is_null(), "the list stays cheap to poll: {listed}");

    let view = app.admin_get_sale(&open).await;
    let activity = &view["activity"];
    assert_eq!(activity["window_seconds"], 60, "{view}");
    assert_eq!(activity["holds_created"], 2, "{activity}");
    assert_eq!(activity["orders_confirmed"], 1, "{activity}");
    assert_eq!(activity["holds_expired"], 0, "{activity}");
    assert_eq!(activity["refunds_required"], 0, "{activity}");
    assert_eq!(activity["dead_letters"], 0, "{activity}");
    assert_eq!(view["holds"]["active"], 1, "{view}");
    assert_eq!(view["orders"]["confirmed"], 1, "{view}");
    assert_eq!(view["availability"]["sold"], 2, "counts taken now: {view}");

    // The window is the last minute: a hold placed two minutes ago is not in it.
    sqlx::query(
        "UPDATE outbox_events SET created_at = now() - interval '2 minutes' \
         WHERE seq = (SELECT min(seq) FROM outbox_events WHERE sale_id = $1 AND event_type = 'hold.created')",
    )
    .bind(&open)
    .execute(&app.db)
    .await
    .expect("backdate an event");
    let view = app.admin_get_sale(&open).await;
    assert_eq!(view["activity"]["holds_created"], 1, "{view}");
    assert_eq!(view["activity"]["orders_confirmed"], 1, "{view}");
}
