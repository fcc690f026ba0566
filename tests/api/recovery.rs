//! Redis losing its data in the middle of a sale: Postgres stays the truth,
//! the waiting room recovers, nothing is sold twice. Runs against whichever
//! Redis the test run is aimed at (one node, or a cluster's masters).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{body_json, eventually, lose_waiting_room_data, sale_json, spawn_app};
use floodgate::tokens::Purpose;

#[tokio::test]
async fn flushing_redis_mid_sale_loses_no_place_and_sells_nothing_twice() {
    let app = spawn_app().await;
    let sale = app
        .create_sale_ok(&sale_json(
            40,
            json!({ "waiting_room": true, "shuffle_prequeue": false, "per_user_limit": 2,
                    "admission": { "admit_per_second": 0, "max_active": 100, "abandon_after_seconds": 60 } }),
        ))
        .await;
    let mut tokens = Vec::new();
    for _ in 0..20 {
        let response = app.join(&sale, None).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        tokens.push(body_json(response).await["queue_token"].as_str().unwrap().to_owned());
    }
    // The clock freezes the (unshuffled) pre-queue at the start.
    let frozen = eventually(Duration::from_secs(3), || async {
        (app.status_patiently(&sale, &tokens[0]).await["prequeue"] == false).then_some(())
    })
    .await;
    assert!(frozen.is_some());
    assert_eq!(app.admit(&sale, 5).await.status(), StatusCode::OK);
    let mut admitted = Vec::new();
    for token in &tokens[..5] {
        let status = app.status_patiently(&sale, token).await;
        assert_eq!(status["state"], "admitted");
        admitted.push(status["admission_token"].as_str().unwrap().to_owned());
    }
    let first_hold = app.hold(&sale, &admitted[0], &json!({ "quantity": 2 }), None).await;
    assert_eq!(first_hold.status(), StatusCode::CREATED);
    // Let the clock save the counters.
    tokio::time::sleep(Duration::from_millis(600)).await;

    lose_waiting_room_data(&app.settings).await;

    // Admitted visitors still hold with their signed admission tokens.
    let second_hold = app.hold(&sale, &admitted[1], &json!({ "quantity": 2 }), None).await;
    assert_eq!(second_hold.status(), StatusCode::CREATED);

    // The waiting room is back: numbering continues above the old tokens,
    // waiting visitors keep their places.
    let joined = eventually(Duration::from_secs(5), || async {
        let response = app.join(&sale, None).await;
        (response.status() == StatusCode::CREATED).then_some(body_json(response).await)
    })
    .await
    .expect("joins work again");
    let n = app.state.tokens.verify(joined["queue_token"].as_str().unwrap(), Purpose::Queue, Some(&sale)).unwrap().n;
    assert!(n.unwrap() > 20, "no join number is handed out twice: got {n:?}");
    let waiting = app.status_patiently(&sale, &tokens[10]).await;
    assert_eq!(waiting["state"], "waiting");
    assert_eq!(waiting["position"], 6, "visitor 11 is 6th behind serving number 5");

    assert_eq!(app.admit(&sale, 3).await.status(), StatusCode::OK);
    let next = app.status_patiently(&sale, &tokens[5]).await;
    assert_eq!(next["state"], "admitted", "admission continues in order after recovery");
    let third = app.hold(&sale, next["admission_token"].as_str().unwrap(), &json!({ "quantity": 2 }), None).await;
    assert_eq!(third.status(), StatusCode::CREATED);

    let audit = app.assert_audit_clean(&sale).await;
    assert_eq!(audit["units"]["held"], 6);
    // The slots of holds made before the flush are counted again: the
    // audit's Redis comparison turns clean once the repair pass has run.
    let repaired = eventually(Duration::from_secs(8), || async {
        let audit = app.assert_audit_clean(&sale).await;
        (audit["waiting_room"]["ok"] == true).then_some(())
    })
    .await;
    assert!(repaired.is_some(), "active holds' admission slots are restored");
}
