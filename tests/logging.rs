//! What floodgate logs about a failed request (hardening item 12): an
//! expected failure (a 503 while a dependency is down) is logged once, as a
//! warning from the error type, and never again by the request logger. This
//! binary installs its own log collector, which needs a process of its own.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::sync::{Arc, Mutex};

use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Every WARN and ERROR event's level and message.
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<(Level, String)>>>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for Collected {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let level = *event.metadata().level();
        if level <= Level::WARN {
            let mut message = Message(String::new());
            event.record(&mut message);
            if let Ok(mut events) = self.0.lock() {
                events.push((level, message.0));
            }
        }
    }
}

#[tokio::test]
async fn a_503_is_logged_once_as_a_warning() {
    let collected = Collected::default();
    tracing_subscriber::registry().with(collected.clone()).init();
    let app = helpers::spawn_app().await;
    // Postgres out of reach for this instance: creating a sale needs it.
    app.state.db.close().await;
    let before = collected.0.lock().unwrap().len();
    let response = app.create_sale(&helpers::sale_json(5, json!({}))).await;
    assert_eq!(response.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let events: Vec<(Level, String)> = collected.0.lock().unwrap()[before..].to_vec();
    let about_it: Vec<&(Level, String)> = events
        .iter()
        .filter(|(_, m)| m.contains("dependency unavailable") || m.contains("processing the incoming HTTP request"))
        .collect();
    assert_eq!(about_it.len(), 1, "logged once: {events:?}");
    assert_eq!(about_it[0].0, Level::WARN, "{events:?}");
}
