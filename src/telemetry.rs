//! Structured logs: JSON in production, readable text in dev, both carrying
//! the request id of the span they were written in.
//!
//! Every request runs in a span that names its request id, and gets one
//! access-log line at INFO under the target [`ACCESS_TARGET`] (method,
//! path, route template, status, duration, request id), written by
//! [`observe`], which also records the request metrics. A
//! request id sent by the client (`X-Request-Id`, or the trace id of a W3C
//! `traceparent`) is kept and echoed; otherwise one is made up. Silence the
//! access log with `RUST_LOG=info,floodgate::access=off` (a site at line
//! rate may rather take it from its load balancer).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use tracing::field::{Field, Visit};
use tracing::Instrument;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::{format::Writer, FormatFields};
use tracing_subscriber::{fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer, Registry};

/// The target of the access-log lines.
pub const ACCESS_TARGET: &str = "floodgate::access";

// Names made once: looking a header up by a `&str` parses the name first.
const X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");
const TRACEPARENT: header::HeaderName = header::HeaderName::from_static("traceparent");

/// The request id of a request: the client's `X-Request-Id` when it is a
/// sane token (1 to 128 of `A-Z a-z 0-9 - _ . :`), else the trace id of a
/// valid `traceparent`, else a new UUID.
fn request_id(request: &ServiceRequest) -> String {
    let headers = request.headers();
    let sent = headers.get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()).filter(|id| sane_id(id));
    let traced = || headers.get(&TRACEPARENT).and_then(|v| v.to_str().ok()).and_then(trace_id);
    sent.map(str::to_owned).or_else(traced).unwrap_or_else(|| uuid::Uuid::new_v4().hyphenated().to_string())
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

/// The log filter when `RUST_LOG` names none.
const DEFAULT_FILTER: &str = "info,sqlx=warn,actix_server=warn";

/// The log filter for `RUST_LOG` (`None`: unset), else [`DEFAULT_FILTER`].
/// Levels by target (all an operator usually sets) go to [`Targets`], which
/// decides once per call site; only span and field directives need
/// [`EnvFilter`], which also tracks every span it might match, taking a
/// lock on each enter and exit of every request's span (1 % of a join's CPU
/// under `perf`).
enum LogFilter {
    Targets(Box<Targets>),
    Env(Box<EnvFilter>),
}

impl LogFilter {
    fn new(directives: Option<&str>) -> Self {
        let default = || {
            LogFilter::Targets(Box::new(
                DEFAULT_FILTER.parse().unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO)),
            ))
        };
        let env = |d: &str| EnvFilter::try_new(d).map_or_else(|_| default(), |f| LogFilter::Env(Box::new(f)));
        match directives.filter(|d| !d.trim().is_empty()) {
            None => default(),
            // Only plain `target=level` lists: `Targets` reads `[...]` and
            // spaces differently from `EnvFilter`, which keeps them.
            Some(d) if !d.contains(|c: char| c.is_whitespace() || c == '[') => {
                d.parse().map_or_else(|_| env(d), |t| LogFilter::Targets(Box::new(t)))
            }
            Some(d) => env(d),
        }
    }

    fn boxed(self) -> Box<dyn Layer<Registry> + Send + Sync> {
        match self {
            LogFilter::Targets(targets) => targets,
            LogFilter::Env(filter) => filter,
        }
    }
}

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init(json: bool) {
    let registry =
        tracing_subscriber::registry().with(LogFilter::new(std::env::var("RUST_LOG").ok().as_deref()).boxed());
    let result = if json {
        registry.with(fmt::layer().json().with_current_span(true).with_span_list(false)).try_init()
    } else {
        // Colours only for a terminal: a log file or a collector gets plain
        // text, through the cheaper field writer.
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            registry.with(fmt::layer().with_target(false)).try_init()
        } else {
            registry.with(fmt::layer().with_target(false).with_ansi(false).fmt_fields(PlainFields)).try_init()
        }
    };
    // A second init in the same process (tests) is expected and harmless.
    let _ = result;
}

/// Fields in plain text, exactly as [`fmt::format::DefaultFields`] writes
/// them with colours off, without its styling: it paints every field name
/// through `nu_ansi_term` even then, and the fmt layer formats the request
/// span's field when the span opens, so that cost ~1,000 instructions per
/// request whether anything was logged or not.
struct PlainFields;

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> std::fmt::Result {
        let mut visitor = PlainVisitor { writer, padded: false, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct PlainVisitor<'w> {
    writer: Writer<'w>,
    padded: bool,
    result: std::fmt::Result,
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"))
        } else {
            self.record_debug(field, &value)
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let name = field.name();
        // A `log` record's metadata, which the line prints already.
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let pad = if std::mem::replace(&mut self.padded, true) { " " } else { "" };
        self.result = match name {
            "message" => write!(self.writer, "{pad}{value:?}"),
            name => write!(self.writer, "{pad}{}={value:?}", name.strip_prefix("r#").unwrap_or(name)),
        };
    }
}

/// Middleware: every request's span, request metrics, access-log line and
/// `X-Request-Id` echo, in one layer.
///
/// The span carries the request id alone, so that every line logged while
/// the request runs names it; the access line carries the rest (method,
/// path, route template, status, duration). The fmt layer formats a span's
/// fields when the span opens, whether or not anything is logged in it,
/// so each field costs every request: with tracing-actix-web's span
/// (method, path, request id, status, in a middleware of its own) a status
/// poll spent about an eighth of its CPU on it (loadtest/RESULTS.md, "A lean
/// request path").
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = crate::metrics::method_label(req.method());
    let id = request_id(&req);
    let span = tracing::info_span!("request", request_id = %id);
    let call = span.in_scope(|| next.call(req));
    let mut response = call.instrument(span).await?;
    let took = started.elapsed();
    let status = response.status();
    let route = crate::metrics::record_request(response.request(), method, status, took);
    // Expected refusals (4xx) are the product working; only a 5xx that is
    // not a 503 (those are logged where the dependency failed) is an error.
    let path = response.request().path();
    let ms = took.as_secs_f64() * 1e3;
    if status.is_server_error() && status != actix_web::http::StatusCode::SERVICE_UNAVAILABLE {
        tracing::error!(target: ACCESS_TARGET, method, path, route = &*route, status = status.as_u16(), duration_ms = ms, request_id = %id, "request");
    } else {
        tracing::info!(target: ACCESS_TARGET, method, path, route = &*route, status = status.as_u16(), duration_ms = ms, request_id = %id, "request");
    }
    if let Ok(value) = HeaderValue::try_from(id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
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

    /// What a fmt subscriber writing fields with `fields` prints for two
    /// events with assorted fields in a span with one (no time stamp).
    fn written<N>(fields: N) -> String
    where
        N: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        use std::sync::{Arc, Mutex};
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let make_writer = move || SharedBuf(sink.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_writer(make_writer)
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .fmt_fields(fields)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = %"r-1");
            let _entered = span.enter();
            let r#type = "hold.created";
            tracing::warn!(sale = %"s_1", path = "/a b", n = 3, ok = true, r#type, why = ?Some(2), "went {}", "wrong");
            tracing::info!(ms = 1.5);
        });
        let bytes = out.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }

    struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for SharedBuf {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_fields_write_what_default_fields_write_without_colour() {
        let plain = written(PlainFields);
        assert_eq!(plain, written(fmt::format::DefaultFields::new()));
        assert!(plain.contains("request{request_id=r-1}: went wrong sale=s_1 path=\"/a b\" n=3 ok=true type=\"hold.created\" why=Some(2)"), "{plain}");
    }

    #[test]
    fn target_levels_need_no_span_tracking() {
        assert!(matches!(LogFilter::new(None), LogFilter::Targets(_)));
        assert!(matches!(LogFilter::new(Some("info,floodgate::access=off")), LogFilter::Targets(_)));
        assert!(matches!(LogFilter::new(Some("warn,floodgate=debug,sqlx=off")), LogFilter::Targets(_)));
        assert!(matches!(LogFilter::new(Some("info,floodgate[request{request_id=x}]=trace")), LogFilter::Env(_)));
        assert!(matches!(LogFilter::new(Some("info,floodgate[{request_id}]=debug")), LogFilter::Env(_)));
        assert!(matches!(LogFilter::new(Some("=[=")), LogFilter::Targets(_)), "unreadable: the default");
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
