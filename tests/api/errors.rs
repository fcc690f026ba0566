//! Bad input gets a clear 4xx with the error body, never a 500.

use reqwest::StatusCode;
use serde_json::json;

use chrono::Utc;

use crate::helpers::{assert_error, eventually, sale_json, spawn_app, spawn_app_with, TestApp, ADMIN_KEY};
use std::time::Duration;

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
    assert_eq!(join("null").await.unwrap().status(), StatusCode::CREATED, "JSON null is no body");
}

/// A POST with a raw JSON body and the admin key.
async fn admin_post(app: &TestApp, path: &str, body: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(ADMIN_KEY)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn bodies_must_be_json_objects_of_known_fields() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(5, json!({}))).await;
    let token = app.admission_token(&sale, "v:array");
    // serde reads a struct from an array too; floodgate must not.
    let hold = app
        .client
        .post(app.url(&format!("/api/v1/sales/{sale}/holds")))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body("[1, null]")
        .send()
        .await
        .unwrap();
    assert_error(hold, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    assert_eq!(app.unit_counts(&sale).await.1, 0, "nothing held");
    let admit = admin_post(&app, &format!("/admin/v1/sales/{sale}/admit"), "[3]").await;
    assert_error(admit, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;

    let lottery = app
        .create_sale_ok(&sale_json(
            5,
            json!({ "mode": "lottery", "waiting_room": true, "starts_at": (Utc::now() + chrono::Duration::hours(1)).to_rfc3339() }),
        ))
        .await;
    let draw = admin_post(&app, &format!("/admin/v1/sales/{lottery}/lottery/draw"), "[null, null]").await;
    assert_error(draw, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    assert!(app.admin_get_sale(&lottery).await["seed"].is_null(), "no draw, the seed stays secret");

    // A misspelled field is named, not ignored.
    let typo = app.create_sale(&sale_json(5, json!({ "per_user_limt": 1 }))).await;
    let body = assert_error(typo, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("per_user_limt"), "{body}");
    let patch = app.patch_sale(&sale, &json!({ "state": "closed" })).await;
    let body = assert_error(patch, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("state"), "{body}");
    assert_eq!(app.admin_get_sale(&sale).await["state"], "on_sale", "nothing changed");
    let hold = app.hold(&sale, &token, &json!({ "quantity": 1, "qty": 2 }), None).await;
    assert_error(hold, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;

    // Nested objects are objects too: an array of the fields is refused.
    for nested in [json!({ "challenge": [null, null] }), json!({ "admission": [1, 2] })] {
        let patch = app.patch_sale(&sale, &nested).await;
        assert_error(patch, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    }
    let units = app.create_sale(&json!({ "name": "x", "units": [5] })).await;
    assert_error(units, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    let sections = app.create_sale(&json!({ "name": "x", "units": { "sections": [["A", 2, 3]] } })).await;
    assert_error(sections, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
}

/// JSON has one number type: `3.0` is the integer 3 (as JSON Schema says),
/// `3.5` is not an integer.
#[tokio::test]
async fn integral_numbers_written_with_a_fraction_are_integers() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(5, json!({ "per_user_limit": 4.0, "hold_ttl_seconds": 60.0 }))).await;
    let view = app.admin_get_sale(&sale).await;
    assert_eq!((view["per_user_limit"].as_i64(), view["hold_ttl_seconds"].as_i64()), (Some(4), Some(60)), "{view}");
    let hold = app.hold(&sale, &app.admission_token(&sale, "v:f"), &json!({ "quantity": 2.0 }), None).await;
    assert_eq!(hold.status(), StatusCode::CREATED);
    let fraction = app.hold(&sale, &app.admission_token(&sale, "v:g"), &json!({ "quantity": 1.5 }), None).await;
    assert_error(fraction, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
}

#[tokio::test]
async fn a_nul_character_is_a_client_error_not_a_500() {
    let app = spawn_app().await;
    let named = app.create_sale(&sale_json(5, json!({ "name": "Spring\u{0}tour" }))).await;
    assert_error(named, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    let seated = app
        .create_sale(&sale_json(
            0,
            json!({ "units": { "sections": [ { "name": "A\u{0}", "rows": 1, "seats_per_row": 2 } ] } }),
        ))
        .await;
    assert_error(seated, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;

    let sale = app
        .create_sale_ok(&sale_json(
            0,
            json!({ "units": { "sections": [ { "name": "A", "rows": 1, "seats_per_row": 2 } ] } }),
        ))
        .await;
    let token = app.admission_token(&sale, "v:nul");
    let hold = app.hold(&sale, &token, &json!({ "seats": ["A/1/1\u{0}"] }), None).await;
    assert_error(hold, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    let hold = app.hold_ok(&sale, "v:payer", &json!({ "seats": ["A/1/2"] })).await;
    let event = json!({ "event_id": "evt\u{0}1", "hold_id": hold["id"], "payment_reference": "pay-1",
                        "status": "succeeded" });
    assert_error(app.webhook(&event).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    let event = json!({ "event_id": "evt-1", "hold_id": hold["id"], "payment_reference": "pay\u{0}1",
                        "status": "succeeded" });
    assert_error(app.webhook(&event).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    app.assert_audit_clean(&sale).await;
}

/// Past `max_in_flight` running requests the instance sheds load at once:
/// 429 `overloaded` with `Retry-After`, while its operations endpoints still
/// answer; the slot comes back when the running request ends.
#[tokio::test]
async fn past_the_in_flight_ceiling_requests_are_shed_with_429_and_retry_after() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(|s| {
        s.rate_limits.max_in_flight = 1;
        s.server.body_timeout_ms = 30_000;
    })
    .await;
    let sale = app.create_sale_ok(&sale_json(5, json!({ "waiting_room": true }))).await;
    // One request stays in flight: its body never finishes arriving. The
    // probe can reach the server before the stalled request does (and shed
    // it instead), so a stalled request is made again until the probe is
    // the one refused.
    let address = app.address.trim_start_matches("http://").to_owned();
    let head = format!(
        "POST /api/v1/sales/{sale}/queue HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"queu"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (stalled, shed) = loop {
        let mut stalled = tokio::net::TcpStream::connect(&address).await.expect("connect");
        stalled.write_all(head.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let response = app.get("/api/v1/sales").await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            break (stalled, response);
        }
        assert!(std::time::Instant::now() < deadline, "no request was ever shed: {}", response.status());
    };
    assert_eq!(shed.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert_error(shed, StatusCode::TOO_MANY_REQUESTS, "overloaded").await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK, "operations endpoints are never shed");
    drop(stalled);
    let back = eventually(Duration::from_secs(40), || async {
        (app.get("/api/v1/sales").await.status() == StatusCode::OK).then_some(())
    })
    .await;
    assert!(back.is_some(), "the slot came back once the stalled request ended");
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_in_the_error_shape() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|s| s.server.body_timeout_ms = 500).await;
    let sale = app.create_sale_ok(&sale_json(5, json!({ "waiting_room": true }))).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
    let head = format!(
        "POST /api/v1/sales/{sale}/queue HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"queu"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // Bounded by the test, not by the server: an answer must come well before.
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || String::from_utf8_lossy(&answer).contains("\"request_timeout\"") {
                break;
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&answer).to_string();
    assert!(read.is_ok(), "no answer to a stalled body: {text}");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("{\"error\":{\"code\":\"request_timeout\""), "{text}");
}

#[tokio::test]
async fn raw_body_errors_and_wrong_methods_keep_the_error_shape() {
    let app = spawn_app_with(|s| s.server.max_body_bytes = 1024).await;
    let sale = app.create_sale_ok(&sale_json(5, json!({ "waiting_room": true }))).await;
    // A chunked body (no Content-Length) over the limit, to an endpoint that
    // reads raw bytes.
    let chunk = format!("200\r\n{}\r\n", " ".repeat(512));
    let answer = raw_request(
        &app,
        &format!(
            "POST /api/v1/sales/{sale}/queue HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{}0\r\n\r\n",
            chunk.repeat(8)
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("{\"error\":{\"code\":\"payload_too_large\""), "{answer}");
    let gzip = app
        .client
        .post(app.url(&format!("/api/v1/sales/{sale}/queue")))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body("definitely not gzip")
        .send()
        .await
        .unwrap();
    assert_error(gzip, StatusCode::BAD_REQUEST, "bad_request").await;

    let wrong = app.client.delete(app.url(&format!("/api/v1/sales/{sale}/queue"))).send().await.unwrap();
    assert_eq!(wrong.headers().get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
    assert_error(wrong, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let wrong = app.client.put(app.url(&format!("/api/v1/sales/{sale}"))).send().await.unwrap();
    assert_error(wrong, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    assert_error(app.get("/api/v1/nothing/here").await, StatusCode::NOT_FOUND, "not_found").await;
}

/// Sends `request` as is and reads the answer until the server closes.
async fn raw_request(app: &TestApp, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).to_string()
}
