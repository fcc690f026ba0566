//! Health, readiness, metrics, OpenAPI, request ids.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{body_json, eventually, sale_json, spawn_app, spawn_app_with, PrivateRedis};

#[tokio::test]
async fn healthz_and_readyz_answer_when_dependencies_are_up() {
    let app = spawn_app().await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    assert!(health.headers().contains_key("x-request-id"), "every response carries a request id");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body = body_json(ready).await;
    assert_eq!(body["postgres"], "ok");
    assert_eq!(body["redis"], "ok");
}

#[tokio::test]
async fn readiness_fails_fast_when_redis_stops_and_recovers_when_it_returns() {
    let mut redis = PrivateRedis::start();
    // The production-sized Redis time limit, not the generous test one.
    let app = spawn_app_with(|s| {
        redis.configure(s);
        s.redis.timeout_ms = 800;
    })
    .await;
    let sale = app.create_sale_ok(&sale_json(10, serde_json::json!({ "waiting_room": true }))).await;
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);

    redis.stop();
    let started = Instant::now();
    let ready = app.get("/readyz").await;
    assert!(started.elapsed() < Duration::from_secs(1), "readyz took {:?}", started.elapsed());
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.headers().contains_key("retry-after"));
    let body = body_json(ready).await;
    assert_eq!(body["redis"], "unavailable");
    assert_eq!(body["postgres"], "ok");
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK, "liveness does not depend on Redis");

    // A join needs Redis: it must answer 503 with Retry-After, quickly.
    let started = Instant::now();
    let join = app.join(&sale, None).await;
    assert!(started.elapsed() < Duration::from_secs(3), "join took {:?}", started.elapsed());
    assert_eq!(join.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(join.headers().contains_key("retry-after"));
    let body = body_json(join).await;
    assert_eq!(body["error"]["code"], "service_unavailable");

    redis.restart();
    let recovered = crate::helpers::eventually(Duration::from_secs(5), || async {
        (app.get("/readyz").await.status() == StatusCode::OK).then_some(())
    })
    .await;
    assert!(recovered.is_some(), "readyz recovers when Redis is back");
    let join = app.join(&sale, None).await;
    assert_eq!(join.status(), StatusCode::CREATED, "the waiting room recovers its sale from Postgres");
}

#[tokio::test]
async fn postgres_readiness_check_fails_fast_when_unreachable() {
    let port = crate::helpers::free_port();
    let app = spawn_app().await;
    // A second instance whose pool points at a closed port: start-up ran
    // migrations on the real database, then readiness is asked of a dead one.
    let mut settings = app.settings.clone();
    settings.database.url = format!("postgres://floodgate@127.0.0.1:{port}/nothing");
    settings.database.acquire_timeout_ms = 300;
    let pool = floodgate::store::pg_pool(
        &settings.database,
        floodgate::store::pg_connect_options(&settings.database).unwrap(),
    );
    let started = Instant::now();
    let result = floodgate::store::pg_ping(&pool, Duration::from_millis(400)).await;
    assert!(result.is_err());
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn metrics_render_a_request_histogram_by_route_template() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(5, serde_json::json!({}))).await;
    app.get_sale(&sale).await;
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("# TYPE floodgate_http_request_duration_seconds histogram"), "{text}");
    assert!(text.contains(r#"route="/api/v1/sales/{sale}""#), "labelled by template, not raw path: {text}");
    assert!(!text.contains(&sale), "no series names a raw path");

    // Every request counts, the repeated ones too (the instance keeps a
    // route's histogram once it has seen it), and paths no route takes are
    // one "unmatched" series. The recorder is the test process's, shared with
    // the tests running beside this one: compare before and after.
    let count = |text: &str, route: &str, status: &str| {
        let series = format!(
            r#"floodgate_http_request_duration_seconds_count{{route="{route}",method="GET",status="{status}"}}"#
        );
        sample(text, &series).unwrap_or(0.0)
    };
    let (sale_before, unmatched_before) =
        (count(&text, "/api/v1/sales/{sale}", "200"), count(&text, "unmatched", "404"));
    for _ in 0..5 {
        assert_eq!(app.get_sale(&sale).await.status(), StatusCode::OK);
    }
    for n in 0..3 {
        assert_eq!(app.get(&format!("/no/such/path/{n}")).await.status(), StatusCode::NOT_FOUND);
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(count(&text, "/api/v1/sales/{sale}", "200") >= sale_before + 5.0, "{text}");
    assert!(count(&text, "unmatched", "404") >= unmatched_before + 3.0, "{text}");
    assert!(!text.contains("/no/such/path"), "an unmatched path is not a label: {text}");
    assert!(text.contains("floodgate_pg_pool_connections"));
    // What promtool checks first: every family has HELP and TYPE.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split_whitespace().nth(2).unwrap();
        assert!(text.contains(&format!("# HELP {name} ")), "{name} has no help text");
    }
    assert!(text.contains("floodgate_redis_pool_connections"));
}

#[tokio::test]
async fn every_route_of_the_openapi_document_is_served() {
    let app = spawn_app().await;
    let doc = body_json(app.get("/api/openapi.json").await).await;
    let paths = doc["paths"].as_object().expect("paths");
    // The SPEC's routes are all documented...
    for path in [
        "/api/v1/sales",
        "/api/v1/sales/{sale}",
        "/api/v1/sales/{sale}/queue",
        "/api/v1/sales/{sale}/queue/status",
        "/api/v1/sales/{sale}/holds",
        "/api/v1/holds/{hold}",
        "/api/v1/payments/webhook",
        "/api/v1/orders/{order}",
        "/api/v1/orders/{order}/cancel",
        "/admin/v1/sales",
        "/admin/v1/sales/{sale}",
        "/admin/v1/sales/{sale}/admit",
        "/admin/v1/sales/{sale}/stages/next",
        "/admin/v1/sales/{sale}/lottery/draw",
        "/admin/v1/sales/{sale}/audit",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(path), "{path} missing from OpenAPI");
    }
    // ...and every documented route and method reaches a handler: a bodiless
    // request with made-up ids is refused by the handler (401, 404 of the
    // resource, 415, ...), never by the router's "no such resource" or 405.
    let mut checked = 0;
    for (template, item) in paths {
        let path =
            template.split('/').map(|s| if s.starts_with('{') { "x_1" } else { s }).collect::<Vec<_>>().join("/");
        for method in ["get", "post", "put", "patch", "delete"].into_iter().filter(|m| item.get(*m).is_some()) {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let response = app.client.request(method.clone(), app.url(&path)).send().await.expect("request");
            let status = response.status();
            let body = response.text().await.expect("body");
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is documented but not routed");
            assert!(!body.contains("no such resource"), "{method} {path} is documented but not routed: {body}");
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} routes documented");
}

#[tokio::test]
async fn a_port_in_use_is_named_and_the_backlog_is_the_configured_one() {
    let app = spawn_app().await;
    // The backlog of the listening socket (ss shows it as Send-Q), capped by
    // the kernel's somaxconn.
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(4096);
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let ss = std::process::Command::new("ss").args(["-ltnH", &format!("sport = :{port}")]).output();
    if let Some(out) = ss.ok().filter(|o| o.status.success()) {
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let backlog: u32 = text.split_whitespace().nth(2).and_then(|v| v.parse().ok()).expect("ss shows Send-Q");
        assert_eq!(backlog, app.settings.server.backlog.min(somaxconn), "{text}");
        assert!(backlog > 128, "not the standard library's 128: {text}");
    }

    let mut settings = app.settings.clone();
    settings.server.port = port.parse().unwrap();
    let error = floodgate::startup::Application::build(settings).await.err().expect("the port is taken");
    assert!(format!("{error:#}").contains(&format!("127.0.0.1:{port}")), "{error:#}");
}

#[tokio::test]
async fn the_api_docs_page_is_served_from_the_binary_and_reads_the_document() {
    let app = spawn_app().await;
    let bare = app.get("/api/docs").await;
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.headers()["location"], "/api/docs/");
    let page = app.get("/api/docs/").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-initializer.js"), "{html}");
    let init = app.get("/api/docs/swagger-initializer.js").await.text().await.unwrap();
    assert!(init.contains("\"/api/openapi.json\""), "the UI reads floodgate's own document: {init}");
    assert!(init.contains("\"validatorUrl\": \"none\""), "the document is not sent elsewhere: {init}");
    // Every script and style the page loads is served here (no CDN).
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"] {
        let response = app.get(&format!("/api/docs/{asset}")).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(html.contains(asset), "{asset} not used by the page");
    }
    assert!(!html.contains("https://"), "the page loads nothing from elsewhere: {html}");
}

/// The value of the series `name{labels}` (labels as written in the
/// exposition, in its order), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_are_exact_at_every_scrape_and_closed_sales_retire() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&sale_json(10, serde_json::json!({}))).await;
    app.hold_ok(&sale, "v:a", &serde_json::json!({ "quantity": 3 })).await;
    let scrape = || async { app.get("/metrics").await.text().await.expect("metrics text") };
    let units = |state: &str| format!(r#"floodgate_units{{sale="{sale}",state="{state}"}}"#);

    // Nobody reads the sale: the metrics job counts the units by itself.
    let text = eventually(Duration::from_secs(10), || async {
        let text = scrape().await;
        (sample(&text, &units("held")) == Some(3.0)).then_some(text)
    })
    .await
    .expect("floodgate_units shows the hold without anyone reading the sale");
    assert_eq!(sample(&text, &units("available")), Some(7.0), "{text}");
    assert_eq!(sample(&text, &units("sold")), Some(0.0));
    let sale_state = |state: &str| format!(r#"floodgate_sale_state{{sale="{sale}",state="{state}"}}"#);
    assert_eq!(sample(&text, &sale_state("on_sale")), Some(1.0), "{text}");
    assert_eq!(sample(&text, &sale_state("paused")), Some(0.0));
    assert!(sample(&text, &format!(r#"floodgate_sale_max_active{{sale="{sale}"}}"#)).is_some());

    // Every counter exists from the start: the sale's and the instance's.
    for series in [
        format!(r#"floodgate_holds_total{{sale="{sale}",outcome="created"}}"#),
        format!(r#"floodgate_holds_total{{sale="{sale}",outcome="insufficient_stock"}}"#),
        format!(r#"floodgate_orders_total{{sale="{sale}",outcome="confirmed"}}"#),
        format!(r#"floodgate_orders_total{{sale="{sale}",outcome="refund_required"}}"#),
        format!(r#"floodgate_hold_expiries_total{{sale="{sale}"}}"#),
        format!(r#"floodgate_queue_joins_total{{sale="{sale}",outcome="new"}}"#),
        r#"floodgate_requests_shed_total{why="ceiling"}"#.to_owned(),
        r#"floodgate_webhook_deliveries_total{type="order.confirmed",outcome="dead"}"#.to_owned(),
        r#"floodgate_reconcile_repairs_total{kind="admission_slots"}"#.to_owned(),
    ] {
        assert!(sample(&text, &series).is_some(), "{series} missing:\n{text}");
    }
    assert_eq!(sample(&text, &format!(r#"floodgate_holds_total{{sale="{sale}",outcome="created"}}"#)), Some(1.0));
    assert!(!text.to_lowercase().contains("nan"), "an unknown value is absent, not NaN:\n{text}");
    assert_eq!(
        sample(&text, &format!(r#"floodgate_build_info{{version="{}"}}"#, env!("CARGO_PKG_VERSION"))),
        Some(1.0)
    );
    for name in ["process_resident_memory_bytes", "process_cpu_seconds_total", "process_start_time_seconds"] {
        assert!(text.lines().any(|l| l.starts_with(name)), "{name} missing");
    }
    for series in [
        // This test's own holds ("best available") go through place_holds;
        // the recorder is the whole test process's, so place_hold (named
        // seats) is there only when another test ran one first.
        r#"floodgate_pg_query_seconds_count{op="place_holds"}"#,
        r#"floodgate_pg_query_seconds_count{op="count_units"}"#,
        "floodgate_pg_pool_acquire_seconds_count",
    ] {
        assert!(sample(&text, series).is_some_and(|n| n >= 1.0), "{series} missing:\n{text}");
    }
    assert!(text.contains("floodgate_redis_command_seconds_bucket{op="), "Redis latency by operation:\n{text}");

    // A closed sale's series retire once the idle timeout has passed.
    assert_eq!(app.patch_sale(&sale, &serde_json::json!({ "action": "close" })).await.status(), StatusCode::OK);
    let gone = eventually(floodgate::metrics::IDLE_TIMEOUT + Duration::from_secs(20), || async {
        let text = scrape().await;
        (!text.contains(&format!(r#"sale="{sale}""#))).then_some(())
    })
    .await;
    assert!(gone.is_some(), "series of the closed sale {sale} are still exported");
}

#[tokio::test]
async fn a_refused_configuration_is_reported_in_json_when_json_logs_are_on() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_floodgate"))
        .env("FLOODGATE_ENV", "production")
        .env("FLOODGATE__SERVER__PROT", "8080")
        .output()
        .expect("the server binary runs");
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    let line = text.lines().find(|l| !l.trim().is_empty()).expect("a log line");
    let event: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert_eq!(event["level"], "ERROR", "{event}");
    assert!(event["fields"]["error"].as_str().unwrap_or_default().contains("prot"), "names the key: {event}");
    assert_eq!(text.lines().filter(|l| !l.trim().is_empty()).count(), 1, "nothing but the JSON line: {text}");
}
