//! Structured logs: JSON in production, readable text in dev, both carrying
//! the request id of the span they were written in.
//!
//! Every request gets one access-log line at INFO under the target
//! [`ACCESS_TARGET`] (method, route template, status, duration, request id),
//! written by [`observe`], which also records the request metrics. A
//! request id sent by the client (`X-Request-Id`, or the trace id of a W3C
//! `traceparent`) is kept and echoed; otherwise one is made up. Silence the
//! access log with `RUST_LOG=info,floodgate::access=off` (a site at line
//! rate may rather take it from its load balancer).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use tracing_subscriber::{fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

/// The target of the access-log lines.
pub const ACCESS_TARGET: &str = "floodgate::access";

/// The request id of a request: the client's, or one made up for it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    /// The client's `X-Request-Id` when it is a sane token (1 to 128 of
    /// `A-Z a-z 0-9 - _ . :`), else the trace id of a valid `traceparent`,
    /// else `made_up`.
    fn of(request: &ServiceRequest, made_up: impl FnOnce() -> String) -> Self {
        let headers = request.headers();
        let sent = headers.get("x-request-id").and_then(|v| v.to_str().ok()).filter(|id| sane_id(id));
        let traced = || headers.get("traceparent").and_then(|v| v.to_str().ok()).and_then(trace_id);
        RequestId(sent.map(str::to_owned).or_else(traced).unwrap_or_else(made_up))
    }
}

fn sane_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`);
/// an all-zero id is invalid by the standard.
fn trace_id(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = hex(version, 2) && version != "ff" && hex(trace, 32) && hex(parent, 16) && hex(flags, 2);
    (valid && trace.bytes().any(|b| b != b'0')).then(|| trace.to_ascii_lowercase())
}

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init(json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,actix_server=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry.with(fmt::layer().json().with_current_span(true).with_span_list(false)).try_init()
    } else {
        // Colours only for a terminal: a log file or a collector gets plain
        // text (and the server does not format escape codes into every
        // request span's fields for nobody).
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
        registry.with(fmt::layer().with_target(false).with_ansi(ansi)).try_init()
    };
    // A second init in the same process (tests) is expected and harmless.
    let _ = result;
}

/// The root span of every request: method, path, request id and status.
///
/// tracing-actix-web's default span carries a dozen OpenTelemetry fields,
/// and the fmt layer formats every field of every span when the span opens,
/// whether or not anything is logged in it; on a status poll that cost
/// about as much as the poll itself. This span keeps what a log line of a
/// request needs (its request id above all) and nothing else; the route
/// template is in the request metrics.
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        let made_up = || {
            let generated = request.extensions().get::<tracing_actix_web::RequestId>().copied();
            generated.map(|id| id.to_string()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
        };
        let request_id = RequestId::of(request, made_up);
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.path(),
            request_id = %request_id.0,
            status = tracing::field::Empty,
        );
        request.extensions_mut().insert(request_id);
        span
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        span.record("status", status.as_u16());
    }
}

/// Middleware: the request metrics, the access-log line and the
/// `X-Request-Id` echo, with the route template looked up once.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = crate::metrics::method_label(req.method());
    let mut response = next.call(req).await?;
    let took = started.elapsed();
    // Templates, not raw paths, keep label cardinality bounded.
    let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status();
    // The span has recorded the id already; the answer takes it over.
    let id = response.request().extensions_mut().remove::<RequestId>().map(|id| id.0).unwrap_or_default();
    // Expected refusals (4xx) are the product working; only a 5xx that is
    // not a 503 (those are logged where the dependency failed) is an error.
    if status.is_server_error() && status != actix_web::http::StatusCode::SERVICE_UNAVAILABLE {
        tracing::error!(target: ACCESS_TARGET, method, route = route.as_str(), status = status.as_u16(), duration_ms = took.as_secs_f64() * 1e3, request_id = %id, "request");
    } else {
        tracing::info!(target: ACCESS_TARGET, method, route = route.as_str(), status = status.as_u16(), duration_ms = took.as_secs_f64() * 1e3, request_id = %id, "request");
    }
    crate::metrics::record_request(route, method, status, took);
    if let Ok(value) = HeaderValue::try_from(id) {
        response.headers_mut().insert(header::HeaderName::from_static("x-request-id"), value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_request_ids_are_kept_when_sane() {
        assert!(sane_id("abc-123_x.y:z"));
        assert!(!sane_id(""));
        assert!(!sane_id("has space"));
        assert!(!sane_id(&"a".repeat(129)));
        assert!(!sane_id("new\nline"));
    }

    #[test]
    fn traceparent_gives_its_trace_id() {
        let tp = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01";
        assert_eq!(trace_id(tp).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), None, "all zero");
        assert_eq!(trace_id("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), None, "version ff");
        assert_eq!(trace_id("00-4bf92f35-00f067aa0ba902b7-01"), None, "short");
        assert_eq!(trace_id("garbage"), None);
    }
}
