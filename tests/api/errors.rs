//! Bad input gets a clear 4xx with the error body, never a 500.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, sale_json, spawn_app, ADMIN_KEY};

#[tokio::test]
async fn oversized_body_is_413_with_error_body() {
    let app = spawn_app().await;
    let big = vec![b'a'; 1024 * 1024];
    for path in ["/admin/v1/sales", "/api/v1/payments/webhook", "/api/v1/sales/s_x/queue"] {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(ADMIN_KEY)
            .header("Content-Type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    }
}

#[tokio::test]
async fn malformed_json_is_400_wrong_type_is_415_bad_values_are_422() {
    let app = spawn_app().await;
    let post = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/admin/v1/sales"))
            .bearer_auth(ADMIN_KEY)
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    assert_error(post("{\"name\": ", "application/json").await.unwrap(), StatusCode::BAD_REQUEST, "bad_request").await;
    assert_error(
        post("name=x", "text/plain").await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert_error(
        post("{\"name\": 5}", "application/json").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn invalid_sale_definitions_are_422() {
    let app = spawn_app().await;
    let cases = [
        sale_json(0, json!({})),
        sale_json(-5, json!({})),
        sale_json(10, json!({ "stages": [30, 40, 20] })),
        sale_json(10, json!({ "stages": [] })),
        sale_json(10, json!({ "stages": [0, 100] })),
        sale_json(10, json!({ "hold_ttl_seconds": -1 })),
        sale_json(10, json!({ "per_user_limit": 0 })),
        sale_json(10, json!({ "mode": "auction" })),
        sale_json(10, json!({ "name": "" })),
        sale_json(10, json!({ "starts_at": "2026-12-01T10:00:00Z", "ends_at": "2026-12-01T09:00:00Z" })),
        sale_json(10, json!({ "admission": { "admit_per_second": -1 } })),
        sale_json(10, json!({ "units": { "count": 5, "sections": [{ "name": "A", "rows": 1, "seats_per_row": 1 }] } })),
        sale_json(10, json!({ "units": { "sections": [{ "name": "A/B", "rows": 1, "seats_per_row": 1 }] } })),
        sale_json(10, json!({ "units": { "sections": [{ "name": "A", "rows": 0, "seats_per_row": 1 }] } })),
    ];
    for case in cases {
        let response = app.create_sale(&case).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{case}");
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    }
}

#[tokio::test]
async fn admin_endpoints_refuse_missing_or_wrong_keys() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(5, json!({}))).await;
    let requests = [
        ("POST", "/admin/v1/sales".to_owned()),
        ("GET", format!("/admin/v1/sales/{sale}")),
        ("PATCH", format!("/admin/v1/sales/{sale}")),
        ("POST", format!("/admin/v1/sales/{sale}/admit")),
        ("POST", format!("/admin/v1/sales/{sale}/stages/next")),
        ("GET", format!("/admin/v1/sales/{sale}/audit")),
    ];
    for (method, path) in requests {
        for key in [None, Some("wrong-key"), Some("")] {
            let mut request = app.client.request(method.parse().unwrap(), app.url(&path)).json(&json!({"count": 1}));
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            let response = request.send().await.unwrap();
            assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
        }
    }
}

#[tokio::test]
async fn unknown_routes_and_ids_are_404_json() {
    let app = spawn_app().await;
    assert_error(app.get("/nope").await, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(app.get("/api/v1/sales/s_doesnotexist").await, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(app.get("/api/v1/sales/%27%3B%20drop").await, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn optional_bodies_are_still_checked() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(5, json!({ "waiting_room": true }))).await;
    let join = |body: &'static str| {
        app.client
            .post(app.url(&format!("/api/v1/sales/{sale}/queue")))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    assert_error(join("{not json").await.unwrap(), StatusCode::BAD_REQUEST, "bad_request").await;
    assert_error(join("{\"queue_token\": 5}").await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request")
        .await;
    assert_eq!(join("").await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(join("{}").await.unwrap().status(), StatusCode::CREATED);
}
