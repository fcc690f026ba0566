//! One error type for the whole crate, mapped to an HTTP status and the JSON
//! body of SPEC §5: `{"error": {"code": "...", "message": "..."}}`.
//!
//! 5xx bodies never carry internals; the cause chain goes to the log instead.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// Seconds a client is told to wait when a dependency is down.
const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 2;

/// The cause of an expected failure (no backtrace).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request could not be parsed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: token or key missing, forged, tampered or expired.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the token is genuine but does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// 403 with a specific code (`access_denied`, `challenge_failed`, ...).
    #[error("{message}")]
    Denied {
        /// Machine-readable code.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// 404.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409 with a specific code (`insufficient_stock`, `seat_taken`, ...).
    #[error("{message}")]
    Conflict {
        /// Machine-readable code.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// 409 with a specific code and `Retry-After`: not possible yet, soon.
    #[error("{message}")]
    NotYet {
        /// Machine-readable code.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
        /// Seconds until a retry may succeed.
        retry_after_seconds: u64,
    },
    /// 410 with a specific code (`sold_out`, `sale_closed`, `hold_expired`).
    #[error("{message}")]
    Gone {
        /// Machine-readable code.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// 408: the client stopped sending its body.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// 413.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed but invalid values.
    #[error("{0}")]
    Invalid(String),
    /// 429.
    #[error("too many requests")]
    TooManyRequests {
        /// Seconds until a retry may succeed.
        retry_after_seconds: u64,
    },
    /// 503: Postgres or Redis is unreachable or saturated. The cause is a
    /// plain boxed error, not `anyhow`: an outage answers thousands of these
    /// a second, and anyhow captures a backtrace for each when
    /// `RUST_BACKTRACE` is set (milliseconds per 503).
    #[error("service temporarily unavailable")]
    Unavailable(#[source] Cause),
    /// 500: a bug. Logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    /// A 409 with `code`.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Conflict { code, message: message.into() }
    }

    /// A 403 with `code`.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Denied { code, message: message.into() }
    }

    /// A 410 with `code`.
    pub fn gone(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Gone { code, message: message.into() }
    }

    /// The snake_case code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict { code, .. }
            | AppError::Gone { code, .. }
            | AppError::NotYet { code, .. }
            | AppError::Denied { code, .. } => code,
            AppError::RequestTimeout => "request_timeout",
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::Invalid(_) => "invalid_request",
            AppError::TooManyRequests { .. } => "rate_limited",
            AppError::Unavailable(_) => "service_unavailable",
            AppError::Internal(_) => "internal_error",
        }
    }
}

/// The JSON error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Every `error.code` floodgate answers (a unit test finds each code the
/// source writes and checks it is listed), published as the enum of
/// [`ErrorDetail::code`] in the OpenAPI document.
pub const ERROR_CODES: &[&str] = &[
    // AppError's own codes
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "request_timeout",
    "payload_too_large",
    "unsupported_media_type",
    "invalid_request",
    "rate_limited",
    "service_unavailable",
    "internal_error",
    // middleware and the router
    "method_not_allowed",
    "overloaded",
    // conflicts (409)
    "already_drawn",
    "conflict",
    "hold_confirmed",
    "idempotency_key_reused",
    "insufficient_stock",
    "invalid_transition",
    "limit_exceeded",
    "no_more_stages",
    "no_waiting_room",
    "not_a_lottery",
    "payment_reference_reused",
    "prequeue_not_ready",
    "request_in_progress",
    "sale_not_started",
    "session_overlap",
    "session_paused",
    "sale_paused",
    "seat_not_released",
    "seat_taken",
    "challenge_reused",
    // refusals (403)
    "access_denied",
    "not_invited",
    "place_removed",
    "challenge_required",
    "challenge_failed",
    "challenge_expired",
    // gone (410)
    "hold_expired",
    "lottery_drawn",
    "sale_closed",
    "session_closed",
    "sold_out",
    // a payment that cannot be honoured (the webhook's answer)
    "refund_required",
];

fn error_code_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ERROR_CODES.iter().copied()))
        .description(Some("Stable snake_case code clients branch on."))
        .build()
}

/// Code and message of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code clients branch on.
    #[schema(schema_with = error_code_schema)]
    pub code: String,
    /// Plain-words explanation for people.
    pub message: String,
}

/// Builds an error response outside the `AppError` path (middleware).
pub fn error_response(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody { error: ErrorDetail { code: code.into(), message: message.into() } })
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::Denied { .. } => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict { .. } | AppError::NotYet { .. } => StatusCode::CONFLICT,
            AppError::Gone { .. } => StatusCode::GONE,
            AppError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            AppError::Internal(cause) => {
                tracing::error!(error.cause_chain = %format!("{cause:#}"), "internal error");
            }
            AppError::Unavailable(cause) => {
                tracing::warn!(error.cause = %cause, "dependency unavailable");
            }
            _ => {}
        }
        let mut response = error_response(status, self.code(), &self.to_string());
        let retry_after = match self {
            AppError::TooManyRequests { retry_after_seconds } | AppError::NotYet { retry_after_seconds, .. } => {
                Some(*retry_after_seconds)
            }
            AppError::Unavailable(_) => Some(UNAVAILABLE_RETRY_AFTER_SECONDS),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            if let Ok(value) = header::HeaderValue::from_str(&seconds.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => AppError::Unavailable(error.into()),
            sqlx::Error::RowNotFound => AppError::NotFound("resource"),
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned());
                AppError::from_sqlstate(code.as_deref(), error)
            }
            _ => AppError::Internal(error.into()),
        }
    }
}

impl AppError {
    /// The answer for an error Postgres raised with SQLSTATE `code`
    /// (`cause` is kept for the log).
    pub fn from_sqlstate(code: Option<&str>, cause: impl std::error::Error + Send + Sync + 'static) -> AppError {
        match code {
            // unique_violation, exclusion_violation: a conflicting write won.
            Some("23505") | Some("23P01") => {
                AppError::conflict("conflict", "the request conflicts with the current state")
            }
            // check_violation, foreign_key_violation, and class 22 (data
            // exception: a NUL in a string, a number out of range, bad
            // text for a type): values the store refuses are the
            // client's, never a 500.
            Some("23514") | Some("23503") => AppError::Invalid("the request has values the store refuses".into()),
            Some(code) if code.starts_with("22") => {
                AppError::Invalid("the request has values the store refuses".into())
            }
            // serialization_failure, deadlock: safe to retry.
            Some("40001") | Some("40P01") => AppError::Unavailable(Box::new(cause)),
            // admin_shutdown, crash_shutdown, cannot_connect_now, query_canceled
            Some("57P01") | Some("57P02") | Some("57P03") | Some("57014") => AppError::Unavailable(Box::new(cause)),
            _ => AppError::Internal(cause.into()),
        }
    }
}

impl From<redis::RedisError> for AppError {
    fn from(error: redis::RedisError) -> Self {
        if error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_timeout()
            || error.is_cluster_error()
        {
            AppError::Unavailable(error.into())
        } else {
            AppError::Internal(error.into())
        }
    }
}

/// Parses a JSON body: malformed is 400, well-formed with wrong values (or
/// fields the type does not have) is 422, and a body that is not a JSON
/// object is 422 too (serde would otherwise read `[1, null]` as a struct's
/// fields in order). An empty body is `None`, for endpoints whose body is
/// optional.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> AppResult<Option<T>> {
    let Some(first) = body.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Ok(None);
    };
    // JSON's `null` is no body (an optional body may be sent so).
    if body.trim_ascii() == b"null" {
        return Ok(None);
    }
    if *first != b'{' && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        return Err(AppError::Invalid("the body must be a JSON object".into()));
    }
    let invalid = |e: serde_json::Error| AppError::Invalid(format!("invalid body: {e}"));
    match serde_json::from_slice(body) {
        Ok(value) => Ok(Some(value)),
        // JSON (and JSON Schema) has one number type: `2.0` is the integer
        // 2. serde refuses it for an integer field, so on that refusal only
        // (never on the hot path) integral floats become integers and the
        // body is read again.
        Err(e) if e.is_data() && e.to_string().contains("floating point") => {
            let mut value: serde_json::Value = serde_json::from_slice(body).map_err(invalid)?;
            integral_floats_to_integers(&mut value);
            serde_json::from_value(value).map(Some).map_err(invalid)
        }
        Err(e) if e.is_data() => Err(invalid(e)),
        Err(e) => Err(AppError::BadRequest(format!("malformed JSON: {e}"))),
    }
}

fn integral_floats_to_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15) {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// 422 when `value` holds a control character (NUL above all, which
/// Postgres text cannot store): names, labels and references are plain text.
pub fn plain_text(field: &str, value: &str) -> AppResult<()> {
    if value.chars().any(char::is_control) {
        return Err(AppError::Invalid(format!("{field} must not contain control characters")));
    }
    Ok(())
}

/// Handler result.
pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::ERROR_CODES;
    use std::path::Path;

    /// The string literals written right after `marker` (and blanks) in `text`.
    fn literals_after<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
        text.match_indices(marker)
            .filter_map(|(at, _)| {
                let rest = text[at + marker.len()..].trim_start();
                let rest = rest.strip_prefix('"')?;
                Some(&rest[..rest.find('"')?])
            })
            .collect()
    }

    fn sources(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("src is readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(std::fs::read_to_string(&path).expect("a source file"));
            }
        }
    }

    /// Every code the source hands to an error (`conflict("…"`, `code: "…"`,
    /// `error_response(status, "…"`, the match arms of `code()` and of the
    /// challenge refusals) is in [`ERROR_CODES`], so the document's enum is
    /// complete.
    #[test]
    fn every_error_code_in_the_source_is_published() {
        let mut files = Vec::new();
        sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
        let mut found = Vec::new();
        for text in &files {
            for marker in [
                "conflict(",
                "forbidden(",
                "gone(",
                "code: ",
                "StatusCode::METHOD_NOT_ALLOWED,",
                "StatusCode::TOO_MANY_REQUESTS,",
                "StatusCode::NOT_FOUND,",
            ] {
                found.extend(literals_after(text, marker));
            }
        }
        let error_rs = include_str!("error.rs");
        let code_fn = &error_rs[error_rs.find("pub fn code(&self)").expect("code()")..];
        found.extend(literals_after(&code_fn[..code_fn.find("\n    }\n").expect("end of code()")], "=> "));
        found.extend(literals_after(include_str!("gate/challenge.rs"), "=> "));
        found.retain(|code| !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        assert!(found.len() > 30, "the scan found only {found:?}");
        for code in found {
            assert!(ERROR_CODES.contains(&code), "error code {code:?} is missing from ERROR_CODES");
        }
    }
}
