//! Structured logs: JSON in production, readable text in dev, both carrying
//! the request id of the span they were written in.

use tracing_subscriber::{fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init(json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,actix_server=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry.with(fmt::layer().json().with_current_span(true).with_span_list(false)).try_init()
    } else {
        registry.with(fmt::layer().with_target(false)).try_init()
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
        use actix_web::HttpMessage;
        let request_id = request.extensions().get::<tracing_actix_web::RequestId>().copied();
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.path(),
            request_id = %request_id.map(|id| id.to_string()).unwrap_or_default(),
            status = tracing::field::Empty,
        )
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
