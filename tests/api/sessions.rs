//! Sessions (SPEC §3, issue 16): timed entry and event series behind one
//! waiting room; holds name a session; Postgres refuses a buyer two
//! overlapping sessions; the calendar; a session's life.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, body_json, eventually, sale_json, spawn_app, TestApp, ADMIN_KEY};

/// Explicit sessions at these hours (UTC, one day ahead), `capacity` units each.
fn sessions_sale(capacity: i64, slots: &[(&str, &str)], extra: Value) -> Value {
    let day = (Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let list: Vec<Value> = slots
        .iter()
        .map(|(from, to)| json!({ "starts_at": format!("{day}T{from}:00Z"), "ends_at": format!("{day}T{to}:00Z") }))
        .collect();
    let mut sessions = json!({ "time_zone": "UTC", "list": list });
    if let (Some(base), Some(extra)) = (sessions.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    sale_json(capacity, json!({ "per_user_limit": 1000, "sessions": sessions }))
}

async fn calendar(app: &TestApp, sale: &str, query: &str) -> Value {
    let response = app.get(&format!("/api/v1/sales/{sale}/sessions{query}")).await;
    let status = response.status();
    let body = body_json(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn hold_in(app: &TestApp, sale: &str, buyer: &str, session: &str, quantity: i64) -> reqwest::Response {
    let body = json!({ "quantity": quantity, "session": session });
    app.hold(sale, &app.admission_token(sale, buyer), &body, None).await
}

async fn session_action(app: &TestApp, sale: &str, session: &str, action: &str) -> reqwest::Response {
    app.client
        .patch(app.url(&format!("/admin/v1/sales/{sale}/sessions/{session}")))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "action": action }))
        .send()
        .await
        .expect("request")
}

/// A 90-day timed-entry sale, 10:00–18:00 every 30 minutes in Amsterdam, across
/// the change to summer time on 2027-03-28: 1,440 sessions and 144,000 units,
/// each session at 10:00 local whatever the offset.
#[tokio::test]
async fn a_ninety_day_recurrence_is_created_at_once_and_exact_across_daylight_saving() {
    let app = spawn_app().await;
    let body = sale_json(
        100,
        json!({ "sessions": { "time_zone": "Europe/Amsterdam", "recurrence": {
            "from": "2027-01-15", "to": "2027-04-14", "start": "10:00", "end": "18:00", "every_minutes": 30 } } }),
    );
    let started = Instant::now();
    let sale = app.create_sale_ok(&body).await;
    eprintln!("90 days of sessions created in {:?}", started.elapsed());
    let view = body_json(app.get_sale(&sale).await).await;
    assert_eq!(view["availability"]["total"], 144_000, "{}", view["availability"]);
    let before = calendar(&app, &sale, "?from=2027-03-27T00:00:00Z&to=2027-03-28T00:00:00Z&limit=500").await;
    let after = calendar(&app, &sale, "?from=2027-03-28T00:00:00Z&to=2027-03-29T00:00:00Z&limit=500").await;
    for (page, utc, local) in [
        (&before, "2027-03-27T09:00:00Z", "2027-03-27T10:00:00+01:00"),
        (&after, "2027-03-28T08:00:00Z", "2027-03-28T10:00:00+02:00"),
    ] {
        let sessions = page["sessions"].as_array().expect("sessions");
        assert_eq!(sessions.len(), 16, "{page}");
        assert_eq!(sessions[0]["starts_at_local"], local);
        let starts: DateTime<Utc> = sessions[0]["starts_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(starts, utc.parse::<DateTime<Utc>>().unwrap());
        assert_eq!((&sessions[0]["capacity"], &sessions[0]["available"]), (&json!(100), &json!(100)));
    }
    // Pages follow each other without gaps or repeats.
    let (mut seen, mut after) = (0, String::new());
    loop {
        let page = calendar(&app, &sale, &format!("?limit=500{after}")).await;
        seen += page["sessions"].as_array().unwrap().len();
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, 1440);
    let refused = app.get(&format!("/api/v1/sales/{sale}/sessions?limit=501")).await;
    assert_error(refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
}

/// 2,000 buyers at once, each holding one unit in one of 20 sessions of 50.
#[tokio::test]
async fn two_thousand_concurrent_holds_over_twenty_sessions_oversell_none() {
    let app = spawn_app().await;
    let slots: Vec<(String, String)> = (0..20).map(|i| (format!("{:02}:00", i), format!("{:02}:30", i))).collect();
    let slots: Vec<(&str, &str)> = slots.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let sale = app.create_sale_ok(&sessions_sale(50, &slots, json!({}))).await;
    let tokens: Vec<(String, String)> =
        (0..2000).map(|i| (app.admission_token(&sale, &format!("buyer-{i}")), ((i % 20) + 1).to_string())).collect();
    let bodies: Vec<Value> = tokens.iter().map(|(_, s)| json!({ "quantity": 1, "session": s })).collect();
    let answers = join_all(tokens.iter().zip(&bodies).map(|((t, _), b)| app.hold(&sale, t, b, None))).await;
    let mut per_session = std::collections::HashMap::<String, usize>::new();
    for answer in answers {
        let status = answer.status();
        let body = body_json(answer).await;
        match status {
            StatusCode::CREATED => *per_session.entry(body["session"].as_str().unwrap().to_owned()).or_default() += 1,
            _ => assert_eq!(body["error"]["code"], "insufficient_stock", "{status} {body}"),
        }
    }
    assert_eq!(per_session.len(), 20);
    assert!(per_session.values().all(|&n| n == 50), "every session sold exactly its 50: {per_session:?}");
    // The calendar counts from the availability snapshot (about a second old).
    let all_held =
        |page: &Value| page["sessions"].as_array().unwrap().iter().all(|s| s["held"] == 50 && s["available"] == 0);
    let page = eventually(Duration::from_secs(5), || async {
        let page = calendar(&app, &sale, "").await;
        all_held(&page).then_some(page)
    })
    .await;
    assert!(page.is_some(), "the calendar shows every session held: {}", calendar(&app, &sale, "").await);
    app.assert_audit_clean(&sale).await;
}

/// One buyer, 200 concurrent holds over four sessions where A overlaps B and
/// B overlaps C (C starts when A ends): Postgres lets no overlapping pair
/// through, however the requests interleave.
#[tokio::test]
async fn one_buyer_never_holds_two_overlapping_sessions_under_concurrency() {
    let app = spawn_app().await;
    let slots = [("10:00", "11:00"), ("10:30", "11:30"), ("11:00", "12:00"), ("12:00", "13:00")];
    let sale = app.create_sale_ok(&sessions_sale(100, &slots, json!({ "no_overlap": true }))).await;
    let token = app.admission_token(&sale, "eve");
    let bodies: Vec<Value> = (0..200).map(|i| json!({ "quantity": 1, "session": ((i % 4) + 1).to_string() })).collect();
    let answers = join_all(bodies.iter().map(|b| app.hold(&sale, &token, b, None))).await;
    let mut held = std::collections::BTreeSet::new();
    for answer in answers {
        let status = answer.status();
        let body = body_json(answer).await;
        match status {
            StatusCode::CREATED => {
                held.insert(body["session"].as_str().unwrap().to_owned());
            }
            _ => assert_eq!(
                (status, &body["error"]["code"]),
                (StatusCode::CONFLICT, &json!("session_overlap")),
                "{body}"
            ),
        }
    }
    let overlapping = [("1", "2"), ("2", "3")];
    assert!(
        overlapping.iter().all(|(a, b)| !(held.contains(*a) && held.contains(*b))),
        "overlapping sessions held together: {held:?}"
    );
    assert!(held.contains("4"), "session 4 overlaps nothing: {held:?}");
    app.assert_audit_clean(&sale).await;
    // Letting go of the overlapping hold makes room for the other session.
    let other = if held.contains("2") { "1" } else { "2" };
    assert_error(hold_in(&app, &sale, "eve", other, 1).await, StatusCode::CONFLICT, "session_overlap").await;
}

#[tokio::test]
async fn the_limit_counts_per_sale_or_per_session_as_the_sale_says() {
    let app = spawn_app().await;
    let slots = [("10:00", "11:00"), ("12:00", "13:00")];
    let mut per_sale = sessions_sale(10, &slots, json!({}));
    per_sale["per_user_limit"] = json!(2);
    let mut per_session = sessions_sale(10, &slots, json!({ "per_user_limit": "session" }));
    per_session["per_user_limit"] = json!(2);
    let (per_sale, per_session) = (app.create_sale_ok(&per_sale).await, app.create_sale_ok(&per_session).await);
    assert_eq!(hold_in(&app, &per_sale, "ann", "1", 2).await.status(), StatusCode::CREATED);
    assert_error(hold_in(&app, &per_sale, "ann", "2", 1).await, StatusCode::CONFLICT, "limit_exceeded").await;
    assert_eq!(hold_in(&app, &per_session, "ann", "1", 2).await.status(), StatusCode::CREATED);
    assert_eq!(hold_in(&app, &per_session, "ann", "2", 2).await.status(), StatusCode::CREATED);
    assert_error(hold_in(&app, &per_session, "ann", "1", 1).await, StatusCode::CONFLICT, "limit_exceeded").await;
    app.assert_audit_clean(&per_sale).await;
    app.assert_audit_clean(&per_session).await;
    // A hold names its session on a sale with sessions, and only there.
    let none = app.hold(&per_sale, &app.admission_token(&per_sale, "bob"), &json!({ "quantity": 1 }), None).await;
    assert_error(none, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    assert_error(hold_in(&app, &per_sale, "bob", "9", 1).await, StatusCode::NOT_FOUND, "not_found").await;
    let plain = app.create_sale_ok(&sale_json(5, json!({}))).await;
    assert_error(hold_in(&app, &plain, "bob", "1", 1).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
}

#[tokio::test]
async fn a_session_pauses_closes_and_cancels_and_ended_sessions_close_by_themselves() {
    let app = spawn_app().await;
    let now = Utc::now();
    let list = json!([
        { "starts_at": now - chrono::Duration::hours(3), "ends_at": now - chrono::Duration::hours(2) },
        { "starts_at": now + chrono::Duration::hours(2), "ends_at": now + chrono::Duration::hours(3) },
        { "starts_at": now + chrono::Duration::hours(4), "ends_at": now + chrono::Duration::hours(5) }]);
    let body = sale_json(10, json!({ "per_user_limit": 10, "sessions": { "time_zone": "Asia/Tokyo", "list": list } }));
    let sale = app.create_sale_ok(&body).await;
    // The session that is over closes by the clock; its units are withdrawn.
    let closed = eventually(Duration::from_secs(10), || async {
        let page = calendar(&app, &sale, "").await;
        // Counts come from a snapshot at most a second old.
        (page["sessions"][0]["state"] == "closed" && page["sessions"][0]["withdrawn"] == 10).then_some(page)
    })
    .await;
    assert!(closed.is_some(), "the ended session closes and its units are withdrawn");
    assert_error(hold_in(&app, &sale, "ann", "1", 1).await, StatusCode::GONE, "session_closed").await;

    assert_eq!(session_action(&app, &sale, "2", "pause").await.status(), StatusCode::OK);
    assert_error(hold_in(&app, &sale, "ann", "2", 1).await, StatusCode::CONFLICT, "session_paused").await;
    assert_eq!(session_action(&app, &sale, "2", "resume").await.status(), StatusCode::OK);

    // An order and a hold in session 2, then the session is cancelled.
    let paid = body_json(hold_in(&app, &sale, "ann", "2", 2).await).await;
    let session_two = &closed.as_ref().unwrap()["sessions"][1];
    assert_eq!(
        (&paid["session_starts_at"], &paid["session_ends_at"]),
        (&session_two["starts_at"], &session_two["ends_at"]),
        "{paid}"
    );
    let (hold, token) = (paid["id"].as_str().unwrap(), paid["hold_token"].as_str().unwrap());
    let order = body_json(app.dev_checkout(hold, token).await).await;
    assert_eq!(order["order"]["session"], "2", "{order}");
    assert_eq!(order["order"]["session_starts_at"], session_two["starts_at"], "{order}");
    assert_eq!(hold_in(&app, &sale, "bob", "2", 3).await.status(), StatusCode::CREATED);
    let cancelled = session_action(&app, &sale, "2", "cancel").await;
    let view = body_json(cancelled).await;
    assert_eq!(
        (&view["state"], &view["withdrawn"], &view["sold"], &view["held"]),
        (&json!("cancelled"), &json!(10), &json!(0), &json!(0)),
        "{view}"
    );
    let order = body_json(app.get_order(order["order"]["id"].as_str().unwrap(), token).await).await;
    assert_eq!(order["state"], "cancelled");
    let refunds = app.events(&sale, "order.refund_due").await;
    assert_eq!((refunds.len(), &refunds[0]["reason"]), (1, &json!("session_cancelled")), "{refunds:?}");
    assert_error(hold_in(&app, &sale, "cy", "2", 1).await, StatusCode::GONE, "session_closed").await;
    assert_error(session_action(&app, &sale, "2", "resume").await, StatusCode::CONFLICT, "invalid_transition").await;
    // Session 3 sells on; the audit balances with the withdrawn units.
    assert_eq!(hold_in(&app, &sale, "cy", "3", 1).await.status(), StatusCode::CREATED);
    let audit = app.assert_audit_clean(&sale).await;
    assert_eq!((&audit["units"]["withdrawn"], &audit["units"]["held"]), (&json!(20), &json!(1)), "{audit}");
}

/// A priced sale with sessions: each session's calendar entry counts its
/// units per price category (early bird in stage 1 of every session), and a
/// hold in a category and a session takes from that pair only.
#[tokio::test]
async fn the_calendar_counts_each_sessions_units_per_price_category() {
    let app = spawn_app().await;
    let slots = [("10:00", "11:00"), ("12:00", "13:00")];
    let mut body = sessions_sale(10, &slots, json!({}));
    body["stages"] = json!([40, 60]);
    body["prices"] = json!({ "currency": "EUR", "categories": [
        { "name": "Early", "amount": 1500, "stages": [1] }, { "name": "Regular", "amount": 2500, "stages": [2] }] });
    let sale = app.create_sale_ok(&body).await;
    let held = body_json(
        app.hold(
            &sale,
            &app.admission_token(&sale, "ann"),
            &json!({ "quantity": 3, "session": "2", "category": "Early" }),
            None,
        )
        .await,
    )
    .await;
    assert_eq!((&held["session"], &held["total"]["amount"]), (&json!("2"), &json!(4500)), "{held}");
    let counts = eventually(Duration::from_secs(5), || async {
        let page = calendar(&app, &sale, "").await;
        (page["sessions"][1]["held"] == 3).then_some(page)
    })
    .await
    .expect("the hold shows in the calendar");
    let category = |session: usize, i: usize| {
        let c = &counts["sessions"][session]["categories"][i];
        (
            c["name"].as_str().unwrap().to_owned(),
            c["units"].as_i64().unwrap(),
            c["available"].as_i64().unwrap(),
            c["held"].as_i64().unwrap(),
            c["unreleased"].as_i64().unwrap(),
        )
    };
    assert_eq!(category(0, 0), ("Early".to_owned(), 4, 4, 0, 0));
    assert_eq!(category(0, 1), ("Regular".to_owned(), 6, 0, 0, 6), "stage 2 is not released yet");
    assert_eq!(category(1, 0), ("Early".to_owned(), 4, 1, 3, 0));
    let early_only = app
        .hold(
            &sale,
            &app.admission_token(&sale, "bob"),
            &json!({ "quantity": 2, "session": "2", "category": "Early" }),
            None,
        )
        .await;
    assert_error(early_only, StatusCode::CONFLICT, "insufficient_stock").await;
    app.assert_audit_clean(&sale).await;
}
