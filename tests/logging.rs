//! What floodgate logs about requests: an expected failure (a 503 while a
//! dependency is down) is logged once, as a warning from the error type,
//! never again by the request logger (hardening item 12); every request has
//! one access-log line at INFO with the client's request id kept (issue 15).
//! This binary installs its own log collector, which needs a process of its
//! own.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// One event: level, target and fields (the message under "message").
#[derive(Debug, Clone)]
struct Logged {
    level: Level,
    target: String,
    fields: HashMap<String, String>,
    /// The `request_id` of the request span the event was logged in.
    request_id: Option<String>,
}

/// Every event of the process (one subscriber per process, shared by the
/// tests of this binary).
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<Logged>>>);

struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// A span's request id, kept in the span's extensions.
struct SpanRequestId(String);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Collected {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields(HashMap::new());
        attrs.record(&mut fields);
        if let (Some(request_id), Some(span)) = (fields.0.remove("request_id"), ctx.span(id)) {
            span.extensions_mut().insert(SpanRequestId(request_id));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields(HashMap::new());
        event.record(&mut fields);
        let request_id = ctx.event_scope(event).and_then(|scope| {
            scope.from_root().find_map(|span| span.extensions().get::<SpanRequestId>().map(|id| id.0.clone()))
        });
        let logged = Logged {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields: fields.0,
            request_id,
        };
        if let Ok(mut events) = self.0.lock() {
            events.push(logged);
        }
    }
}

fn collected() -> &'static Collected {
    static COLLECTED: OnceLock<Collected> = OnceLock::new();
    COLLECTED.get_or_init(|| {
        let collected = Collected::default();
        tracing_subscriber::registry().with(collected.clone()).init();
        collected
    })
}

fn since(from: usize) -> Vec<Logged> {
    collected().0.lock().unwrap()[from..].to_vec()
}

fn count() -> usize {
    collected().0.lock().unwrap().len()
}

#[tokio::test]
async fn a_503_is_logged_once_as_a_warning() {
    collected();
    let app = helpers::spawn_app().await;
    // Postgres out of reach for this instance: creating a sale needs it.
    app.state.db.close().await;
    let before = count();
    let response = app
        .client
        .post(app.url("/admin/v1/sales"))
        .bearer_auth(helpers::ADMIN_KEY)
        .header("X-Request-Id", "db-down-1")
        .json(&helpers::sale_json(5, json!({})))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let events = since(before);
    let about_it: Vec<&Logged> = events
        .iter()
        .filter(|e| e.level <= Level::WARN)
        .filter(|e| {
            let message = e.fields.get("message").map(String::as_str).unwrap_or_default();
            message.contains("dependency unavailable") || message.contains("processing the incoming HTTP request")
        })
        .collect();
    assert_eq!(about_it.len(), 1, "logged once: {events:?}");
    assert_eq!(about_it[0].level, Level::WARN, "{events:?}");
    assert_eq!(about_it[0].request_id.as_deref(), Some("db-down-1"), "logged in the request's span: {events:?}");
}

#[tokio::test]
async fn every_request_has_one_access_line_with_the_clients_request_id() {
    collected();
    let app = helpers::spawn_app().await;
    let access = |events: &[Logged], id: &str| -> Vec<Logged> {
        events
            .iter()
            .filter(|e| e.target == floodgate::telemetry::ACCESS_TARGET)
            .filter(|e| e.fields.get("request_id").map(String::as_str) == Some(id))
            .cloned()
            .collect()
    };

    // A client's id is kept and echoed; a 404 is an INFO line, not a warning.
    let before = count();
    let response = app.client.get(app.url("/api/v1/sales/s_nope")).header("X-Request-Id", "client-42.a:b").send().await;
    let response = response.expect("request");
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["x-request-id"], "client-42.a:b");
    let lines = access(&since(before), "client-42.a:b");
    assert_eq!(lines.len(), 1, "one access line per request: {lines:?}");
    let line = &lines[0];
    assert_eq!(line.level, Level::INFO, "an expected 4xx is not a warning: {line:?}");
    assert_eq!(line.fields["method"], "GET");
    assert_eq!(line.fields["route"], "/api/v1/sales/{sale}", "the route template, not the raw path");
    assert_eq!(line.fields["status"], "404");
    assert!(line.fields["duration_ms"].parse::<f64>().is_ok(), "{line:?}");

    // A W3C traceparent's trace id becomes the request id.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let before = count();
    let response = app.client.get(app.url("/healthz")).header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"));
    let response = response.send().await.expect("request");
    assert_eq!(response.headers()["x-request-id"], trace);
    assert_eq!(access(&since(before), trace).len(), 1);

    // An unusable id is replaced by one of ours, never echoed.
    let response = app.client.get(app.url("/healthz")).header("X-Request-Id", "has spaces and <b>").send().await;
    let echoed = response.expect("request").headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(echoed, "has spaces and <b>");
    assert_eq!(echoed.len(), 36, "a made-up uuid: {echoed}");
}
