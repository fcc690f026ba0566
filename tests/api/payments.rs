//! Payment webhook: signatures, exactly-once confirmation (I5, I6), late
//! payments (I7), failures, orders and cancellation.

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, body_json, eventually, sale_json, spawn_app, TestApp};

fn event(id: &str, hold: &Value, reference: &str, status: &str) -> Value {
    json!({ "event_id": id, "hold_id": hold["id"], "payment_reference": reference, "status": status })
}

async fn order_count(app: &TestApp, sale: &str) -> i64 {
    sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM orders WHERE sale_id = $1")
        .bind(sale)
        .fetch_one(&app.db)
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn bad_missing_or_stale_signatures_are_401() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(5, json!({}))).await;
    let hold = app.hold_ok(&sale, "v:a", &json!({ "quantity": 1 })).await;
    let body = serde_json::to_vec(&event("e1", &hold, "pay_1", "succeeded")).unwrap();
    let now = chrono::Utc::now().timestamp();
    let secret =
        secrecy::ExposeSecret::expose_secret(app.settings.payments.webhook_secret.as_ref().unwrap()).to_owned();

    let cases = [
        floodgate::signature::sign("wrong-secret", now, &body),
        floodgate::signature::sign(&secret, now - 301, &body),
        floodgate::signature::sign(&secret, now + 301, &body),
        floodgate::signature::sign(&secret, now, b"{\"other\": 1}"),
        format!("t={now}"),
        "v1=abcdef".into(),
        "garbage".into(),
    ];
    for signature in cases {
        assert_error(app.webhook_raw(body.clone(), &signature).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let unsigned = app.client.post(app.url("/api/v1/payments/webhook")).body(body.clone()).send().await.unwrap();
    assert_error(unsigned, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(order_count(&app, &sale).await, 0);

    // Correctly signed but malformed or invalid bodies are 400 / 422.
    let signed = |raw: &[u8]| floodgate::signature::sign(&secret, now, raw);
    let raw = b"{\"event_id\": ".to_vec();
    assert_error(app.webhook_raw(raw.clone(), &signed(&raw)).await, StatusCode::BAD_REQUEST, "bad_request").await;
    let raw = serde_json::to_vec(
        &json!({ "event_id": "e", "hold_id": "nope", "payment_reference": "p", "status": "succeeded" }),
    )
    .unwrap();
    assert_error(
        app.webhook_raw(raw.clone(), &signed(&raw)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    let raw = serde_json::to_vec(&event("e2", &hold, "p", "refunded")).unwrap();
    assert_error(
        app.webhook_raw(raw.clone(), &signed(&raw)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    let unknown =
        json!({ "event_id": "e3", "hold_id": uuid::Uuid::new_v4(), "payment_reference": "p", "status": "succeeded" });
    assert_error(app.webhook(&unknown).await, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_replayed_webhook_confirms_one_order() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(10, json!({}))).await;
    let hold = app.hold_ok(&sale, "v:a", &json!({ "quantity": 3 })).await;
    let paid = event("evt_1", &hold, "pay_1", "succeeded");
    let responses = join_all((0..40).map(|_| app.webhook(&paid))).await;
    let mut bodies = Vec::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::OK);
        bodies.push(body_json(response).await);
    }
    assert!(bodies.iter().all(|b| b == &bodies[0]), "replays get the first answer");
    assert_eq!(bodies[0]["order"]["state"], "confirmed");
    assert_eq!(bodies[0]["order"]["units"].as_array().unwrap().len(), 3);
    // Same payment, new event id: the same order, nothing new.
    let again = body_json(app.webhook(&event("evt_2", &hold, "pay_1", "succeeded")).await).await;
    assert_eq!(again["order"]["id"], bodies[0]["order"]["id"]);
    assert_eq!(order_count(&app, &sale).await, 1);
    assert_eq!(app.unit_counts(&sale).await, (7, 0, 3));
    let confirmed = app.events(&sale, "order.confirmed").await;
    assert_eq!(confirmed.len(), 1);
    let order = &bodies[0]["order"];
    let unit_ids: Vec<i64> =
        order["units"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().parse().unwrap()).collect();
    assert_eq!(
        confirmed[0],
        json!({ "order_id": order["id"], "hold_id": hold["id"], "sale_id": sale, "visitor_id": confirmed[0]["visitor_id"],
                "payment_reference": "pay_1", "quantity": 3, "unit_ids": unit_ids, "amount": null, "currency": null }),
    );
    assert!(confirmed[0]["visitor_id"].as_str().is_some_and(|v| !v.is_empty()), "{confirmed:?}");

    // A second, different payment for the paid hold is refunded, not sold.
    assert_error(
        app.webhook(&event("evt_3", &hold, "pay_2", "succeeded")).await,
        StatusCode::CONFLICT,
        "refund_required",
    )
    .await;
    assert_eq!(app.events(&sale, "payment.refund_required").await.len(), 1);
    app.assert_audit_clean(&sale).await;
}

#[tokio::test]
async fn order_is_committed_before_the_2xx_and_visible_to_the_owner() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(10, json!({}))).await;
    let hold = app.hold_ok(&sale, "v:a", &json!({ "quantity": 2 })).await;
    let token = hold["hold_token"].as_str().unwrap();
    let response = app.webhook(&event("evt_1", &hold, "pay_1", "succeeded")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let answered = body_json(response).await;
    let order_id = answered["order"]["id"].as_str().unwrap().to_owned();
    // I6: straight from the rows, right after the answer.
    let state: (String,) = sqlx::query_as("SELECT state FROM orders WHERE id = $1::uuid")
        .bind(&order_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(state.0, "confirmed");
    let seen = body_json(app.get_order(&order_id, token).await).await;
    assert_eq!(seen["state"], "confirmed");
    assert_eq!(seen["units"], hold["units"]);
    assert_eq!(seen, answered["order"], "the webhook answers the order as the order's own view shows it");
    let hold_seen = body_json(app.get_hold(hold["id"].as_str().unwrap(), token).await).await;
    assert_eq!(hold_seen["state"], "confirmed");
    assert_eq!(hold_seen["order_id"], order_id.as_str());
    assert_error(app.release_hold(hold["id"].as_str().unwrap(), token).await, StatusCode::CONFLICT, "hold_confirmed")
        .await;

    let stranger = app.hold_ok(&sale, "v:b", &json!({ "quantity": 1 })).await;
    assert_error(
        app.get_order(&order_id, stranger["hold_token"].as_str().unwrap()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(app.get_order("not-an-id", token).await, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_failed_payment_releases_the_hold() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(4, json!({}))).await;
    let hold = app.hold_ok(&sale, "v:a", &json!({ "quantity": 4 })).await;
    let response = app.webhook(&event("evt_f", &hold, "pay_f", "failed")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response).await["hold"]["state"], "released");
    assert_eq!(app.unit_counts(&sale).await, (4, 0, 0));
    app.assert_audit_clean(&sale).await;
}

#[tokio::test]
async fn a_late_payment_reclaims_free_units_or_requires_a_refund() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(4, json!({ "hold_ttl_seconds": 1 }))).await;
    let early = app.hold_ok(&sale, "v:a", &json!({ "quantity": 2 })).await;
    let unlucky = app.hold_ok(&sale, "v:b", &json!({ "quantity": 2 })).await;
    let expired =
        eventually(Duration::from_secs(5), || async { (app.unit_counts(&sale).await.0 == 4).then_some(()) }).await;
    assert!(expired.is_some(), "holds expire");

    // Units still free: the late payment takes them back and sells them.
    let response = app.webhook(&event("evt_a", &early, "pay_a", "succeeded")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let order = body_json(response).await;
    assert_eq!(order["order"]["units"], early["units"]);
    // The general path writes the same order.confirmed payload as the one statement.
    let confirmed = app.events(&sale, "order.confirmed").await;
    assert_eq!(confirmed.len(), 1);
    assert_eq!((&confirmed[0]["order_id"], &confirmed[0]["hold_id"]), (&order["order"]["id"], &early["id"]));
    assert_eq!((&confirmed[0]["payment_reference"], &confirmed[0]["quantity"]), (&json!("pay_a"), &json!(2)));
    assert_eq!((&confirmed[0]["amount"], &confirmed[0]["currency"]), (&json!(null), &json!(null)));

    // The other hold's units go to someone else; its late payment must not
    // sell them twice (I7).
    let mut rival = None;
    for i in 0..3 {
        let hold = app.hold_ok(&sale, &format!("v:rival{i}"), &json!({ "quantity": 1 })).await;
        if hold["units"].as_array().unwrap().iter().any(|u| unlucky["units"].as_array().unwrap().contains(u)) {
            rival = Some(hold);
            break;
        }
    }
    assert!(rival.is_some(), "someone else holds one of the expired units");
    assert_error(
        app.webhook(&event("evt_b", &unlucky, "pay_b", "succeeded")).await,
        StatusCode::CONFLICT,
        "refund_required",
    )
    .await;
    let refunds = app.events(&sale, "payment.refund_required").await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["payment_reference"], "pay_b");
    // A replay of that event is answered the same and records nothing new.
    assert_error(
        app.webhook(&event("evt_b", &unlucky, "pay_b", "succeeded")).await,
        StatusCode::CONFLICT,
        "refund_required",
    )
    .await;
    assert_eq!(app.events(&sale, "payment.refund_required").await.len(), 1);
    app.assert_audit_clean(&sale).await;
}

#[tokio::test]
async fn payment_racing_the_expiry_sweeper_never_double_sells() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(50, json!({ "hold_ttl_seconds": 1, "per_user_limit": 50 }))).await;
    let mut holds = Vec::new();
    for i in 0..25 {
        holds.push(app.hold_ok(&sale, &format!("v:{i}"), &json!({ "quantity": 2 })).await);
    }
    tokio::time::sleep(Duration::from_millis(900)).await;
    // Pay all while the sweeper expires them and rivals grab freed units.
    let events: Vec<Value> =
        holds.iter().enumerate().map(|(i, h)| event(&format!("e{i}"), h, &format!("p{i}"), "succeeded")).collect();
    let payments = events.iter().map(|e| app.webhook(e));
    let rivals = (0..25).map(|i| {
        let app = &app;
        let sale = sale.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(100 + i * 20)).await;
            let token = app.admission_token(&sale, &format!("v:rival{i}"));
            app.hold(&sale, &token, &json!({ "quantity": 2 }), None).await.status()
        }
    });
    let (paid, _) = tokio::join!(join_all(payments), join_all(rivals));
    for response in paid {
        assert!(matches!(response.status(), StatusCode::OK | StatusCode::CONFLICT), "{}", response.status());
    }
    app.assert_audit_clean(&sale).await;
    let sold: (i64,) = sqlx::query_as(
        "SELECT count(*) FROM (SELECT unnest(unit_ids) FROM orders WHERE sale_id = $1 AND state = 'confirmed') x",
    )
    .bind(&sale)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(app.unit_counts(&sale).await.2, sold.0, "every sold unit is in exactly one order");
}

#[tokio::test]
async fn cancelling_an_order_puts_units_back_on_sale() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(2, json!({ "per_user_limit": 2 }))).await;
    let hold = app.hold_ok(&sale, "v:a", &json!({ "quantity": 2 })).await;
    let token = hold["hold_token"].as_str().unwrap();
    let order = body_json(app.dev_checkout(hold["id"].as_str().unwrap(), token).await).await;
    let order_id = order["order"]["id"].as_str().unwrap();
    // Sold out now: the clock marks it within a tick.
    let sold_out = eventually(Duration::from_secs(3), || async {
        (body_json(app.get_sale(&sale).await).await["state"] == "sold_out").then_some(())
    })
    .await;
    assert!(sold_out.is_some(), "sale turns sold_out by itself");

    let cancelled = app.cancel_order(order_id, token).await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    assert_eq!(body_json(cancelled).await["state"], "cancelled");
    assert_eq!(app.cancel_order(order_id, token).await.status(), StatusCode::OK, "cancelling twice is harmless");
    assert_eq!(app.unit_counts(&sale).await, (2, 0, 0));
    assert_eq!(app.events(&sale, "order.cancelled").await.len(), 1);
    let reopened = eventually(Duration::from_secs(3), || async {
        (body_json(app.get_sale(&sale).await).await["state"] == "on_sale").then_some(())
    })
    .await;
    assert!(reopened.is_some(), "units coming back reopen the sale");
    // The buyer's allowance came back too.
    app.hold_ok(&sale, "v:a", &json!({ "quantity": 2 })).await;
    app.assert_audit_clean(&sale).await;
}

#[tokio::test]
async fn dev_checkout_is_off_unless_configured() {
    let app = crate::helpers::spawn_app_with(|s| s.payments.dev_checkout = false).await;
    let sale = app.create_sale_ok(&sale_json(2, json!({}))).await;
    let hold = app.hold_ok(&sale, "v:a", &json!({ "quantity": 1 })).await;
    assert_error(
        app.dev_checkout(hold["id"].as_str().unwrap(), hold["hold_token"].as_str().unwrap()).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}
