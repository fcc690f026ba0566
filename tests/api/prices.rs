//! Prices (SPEC §3, issue 16): categories cover every unit once, a hold
//! quotes prices and a total, a payment confirms only with the exact total,
//! an order keeps what it was confirmed for.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, body_json, sale_json, spawn_app, TestApp};

/// Units 1–10 in category A at 50.00 EUR, 11–20 in B at 30.00 EUR.
fn priced_sale() -> Value {
    sale_json(
        20,
        json!({ "per_user_limit": 10, "prices": { "currency": "EUR", "categories": [
            { "name": "A", "amount": 5000, "units": [{ "from": 1, "to": 10 }] },
            { "name": "B", "amount": 3000, "units": [{ "from": 11, "to": 20 }] } ] } }),
    )
}

fn payment(event: &str, hold: &str, reference: &str, amount: Option<(i64, &str)>) -> Value {
    let mut body = json!({ "event_id": event, "hold_id": hold, "payment_reference": reference, "status": "succeeded" });
    if let Some((amount, currency)) = amount {
        body["amount"] = json!(amount);
        body["currency"] = json!(currency);
    }
    body
}

async fn category_counts(app: &TestApp, sale: &str) -> Vec<(String, i64, i64, i64)> {
    let view = body_json(app.get_sale(sale).await).await;
    assert_eq!(view["currency"], "EUR", "{view}");
    let categories = view["availability"]["categories"].as_array().expect("categories").clone();
    categories
        .iter()
        .map(|c| {
            let n = |k: &str| c[k].as_i64().expect("count");
            (c["name"].as_str().expect("name").to_owned(), n("available"), n("held"), n("sold"))
        })
        .collect()
}

#[tokio::test]
async fn a_sale_refuses_prices_that_leave_a_unit_without_one_or_give_it_two() {
    let app = spawn_app().await;
    for (prices, field) in [
        (
            json!({ "currency": "EUR", "categories": [{ "name": "A", "amount": 1, "units": [{ "from": 1, "to": 9 }] }] }),
            "units 10..10 have no price category",
        ),
        (
            json!({ "currency": "EUR", "categories": [
                { "name": "A", "amount": 1, "units": [{ "from": 1, "to": 6 }] },
                { "name": "B", "amount": 1, "units": [{ "from": 5, "to": 10 }] }] }),
            "unit 5 is in both A and B",
        ),
        (json!({ "currency": "euro", "categories": [{ "name": "A", "amount": 1 }] }), "prices.currency"),
        (json!({ "currency": "EUR", "categories": [{ "name": "A", "amount": -5 }] }), "prices.categories[0].amount"),
        (json!({ "currency": "EUR", "categories": [{ "name": "A", "amount": 1, "stages": [2] }] }), "no stage 2"),
    ] {
        let response = app.create_sale(&sale_json(10, json!({ "prices": prices }))).await;
        let body = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains(field), "{field} not in {message}");
    }
    // Early bird in stage 1 of a 30/70 split: each category gets its stage.
    let sale = app
        .create_sale_ok(&sale_json(
            10,
            json!({ "stages": [30, 70], "prices": { "currency": "JPY", "categories": [
                { "name": "Early bird", "amount": 6800, "stages": [1] },
                { "name": "Regular", "amount": 8800, "stages": [2] }] } }),
        ))
        .await;
    let view = body_json(app.get_sale(&sale).await).await;
    let categories = &view["availability"]["categories"];
    assert_eq!((&categories[0]["units"], &categories[0]["available"]), (&json!(3), &json!(3)), "{view}");
    assert_eq!((&categories[1]["units"], &categories[1]["unreleased"]), (&json!(7), &json!(7)), "{view}");
}

#[tokio::test]
async fn a_hold_quotes_each_units_price_and_the_total_and_can_name_a_category() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&priced_sale()).await;
    let best = app.hold_ok(&sale, "ann", &json!({ "quantity": 2 })).await;
    assert_eq!(best["units"][0], json!({ "id": "1", "label": "GA-1", "category": "A", "price": 5000 }));
    assert_eq!(best["total"], json!({ "amount": 10000, "currency": "EUR" }));
    let cheap = app.hold_ok(&sale, "bob", &json!({ "quantity": 3, "category": "B" })).await;
    let ids: Vec<&str> = cheap["units"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["11", "12", "13"]);
    assert_eq!(cheap["total"], json!({ "amount": 9000, "currency": "EUR" }));
    let seen =
        body_json(app.get_hold(cheap["id"].as_str().unwrap(), cheap["hold_token"].as_str().unwrap()).await).await;
    assert_eq!((&seen["total"], &seen["units"][2]["price"]), (&cheap["total"], &json!(3000)));

    let unknown =
        app.hold(&sale, &app.admission_token(&sale, "cy"), &json!({ "quantity": 1, "category": "Z" }), None).await;
    assert_error(unknown, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    let too_many =
        app.hold(&sale, &app.admission_token(&sale, "cy"), &json!({ "quantity": 9, "category": "A" }), None).await;
    let body = assert_error(too_many, StatusCode::CONFLICT, "insufficient_stock").await;
    assert!(body["error"]["message"].as_str().unwrap().contains('9'));
    assert_eq!(
        category_counts(&app, &sale).await,
        [("A".to_owned(), 8, 2, 0), ("B".to_owned(), 7, 3, 0)],
        "counted per category (the refused holds took nothing)"
    );
    // A sale without prices answers as before: no price, no total.
    let plain = app.create_sale_ok(&sale_json(5, json!({}))).await;
    let hold = app.hold_ok(&plain, "dee", &json!({ "quantity": 1 })).await;
    assert_eq!(hold["units"][0], json!({ "id": "1", "label": "GA-1" }));
    assert!(hold.get("total").is_none(), "{hold}");
    let view = body_json(app.get_sale(&plain).await).await;
    assert!(view["currency"].is_null() && view["availability"].get("categories").is_none(), "{view}");
}

/// 200 buyers ask for 3 units of category B (10 units) at once: exactly three
/// holds of three succeed, all or nothing, and no unit of A is touched.
#[tokio::test]
async fn concurrent_holds_in_a_category_never_take_more_than_it_has() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&priced_sale()).await;
    let tokens: Vec<String> = (0..200).map(|i| app.admission_token(&sale, &format!("buyer-{i}"))).collect();
    let body = json!({ "quantity": 3, "category": "B" });
    let answers = join_all(tokens.iter().map(|t| app.hold(&sale, t, &body, None))).await;
    let mut created = 0;
    for answer in answers {
        match answer.status() {
            StatusCode::CREATED => {
                let hold = body_json(answer).await;
                assert_eq!(hold["total"]["amount"], 9000);
                assert!(hold["units"].as_array().unwrap().iter().all(|u| u["category"] == "B"), "{hold}");
                created += 1;
            }
            status => {
                let body = body_json(answer).await;
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (StatusCode::CONFLICT, Some("insufficient_stock"))
                );
            }
        }
    }
    assert_eq!(created, 3);
    assert_eq!(category_counts(&app, &sale).await, [("A".to_owned(), 10, 0, 0), ("B".to_owned(), 1, 9, 0)]);
    app.assert_audit_clean(&sale).await;
}

#[tokio::test]
async fn only_the_exact_total_confirms_and_a_wrong_amount_asks_for_one_refund() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&priced_sale()).await;
    let hold = app.hold_ok(&sale, "ann", &json!({ "quantity": 2, "category": "B" })).await;
    let id = hold["id"].as_str().unwrap();
    let missing = app.webhook(&payment("evt_0", id, "pay_0", None)).await;
    assert_error(missing, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    for (event, amount) in [("evt_short", (5999, "EUR")), ("evt_long", (6001, "EUR")), ("evt_usd", (6000, "USD"))] {
        for _replay in 0..2 {
            let answer = app.webhook(&payment(event, id, &format!("pay_{event}"), Some(amount))).await;
            assert_error(answer, StatusCode::CONFLICT, "refund_required").await;
        }
    }
    let refunds = app.events(&sale, "payment.refund_required").await;
    assert_eq!(refunds.len(), 3, "one per payment, replays add none: {refunds:?}");
    assert!(refunds.iter().all(|r| r["reason"] == "amount_mismatch"), "{refunds:?}");
    assert_eq!(refunds[0]["amount"], 5999);
    // Nothing was confirmed or released: the hold still waits for the right payment.
    let seen = body_json(app.get_hold(id, hold["hold_token"].as_str().unwrap()).await).await;
    assert_eq!(seen["state"], "held", "{seen}");
    assert_eq!(category_counts(&app, &sale).await[1], ("B".to_owned(), 8, 2, 0));

    let paid = app.webhook(&payment("evt_ok", id, "pay_ok", Some((6000, "EUR")))).await;
    assert_eq!(paid.status(), StatusCode::OK);
    let order = body_json(paid).await["order"].clone();
    assert_eq!(order["total"], json!({ "amount": 6000, "currency": "EUR" }));
    let order_id = order["id"].as_str().unwrap();
    let seen = body_json(app.get_order(order_id, hold["hold_token"].as_str().unwrap()).await).await;
    assert_eq!(seen, order, "the webhook answers the order as the order's own view shows it");
    assert!(seen["units"].as_array().is_some_and(|u| u.iter().all(|u| u["price"].is_i64())), "{seen}");
    // The amount an order was confirmed for never changes.
    let changed = sqlx::query("UPDATE orders SET amount = 1 WHERE id = $1::uuid").bind(order_id).execute(&app.db).await;
    assert!(changed.is_err(), "an order's amount is final");

    // The dev checkout pays the exact total; cancelling says what to refund.
    let other = app.hold_ok(&sale, "bob", &json!({ "quantity": 1 })).await;
    let (other_id, token) = (other["id"].as_str().unwrap(), other["hold_token"].as_str().unwrap());
    let checkout = body_json(app.dev_checkout(other_id, token).await).await;
    assert_eq!(checkout["order"]["total"], json!({ "amount": 5000, "currency": "EUR" }), "{checkout}");
    let cancelled = app.cancel_order(checkout["order"]["id"].as_str().unwrap(), token).await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let due = app.events(&sale, "order.refund_due").await;
    assert_eq!((due.len(), &due[0]["amount"], &due[0]["currency"]), (1, &json!(5000), &json!("EUR")), "{due:?}");
    let audit = app.assert_audit_clean(&sale).await;
    let names: Vec<&str> = audit["checks"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(names.contains(&"orders_paid_their_price"), "{names:?}");
}
