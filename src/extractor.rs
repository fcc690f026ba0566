//! Who is asking: the admin key and floodgate's bearer tokens, checked once
//! here as `FromRequest` extractors, so a handler names what it needs in its
//! signature and never sees a request it may not serve.
//!
//! - [`Admin`]: a configured admin key (constant-time compare). Put it first
//!   in a handler's arguments: extractors run in order, so a request without
//!   the key is refused before its body is read.
//! - [`QueueBearer`], [`AdmissionBearer`]: a queue or admission token of the
//!   sale named in the path (`{sale}`).
//! - [`HoldBearer`]: a hold token (the handler checks which hold or order).
//! - [`JsonBody`], [`RawBody`]: the request body, read within a time and
//!   size limit; a JSON object of the handler's type (unknown fields
//!   refused), or the bytes; errors in floodgate's error shape.
//! - [`JoinQuota`], [`StatusQuota`], [`HoldQuota`]: the client's per-IP
//!   budget and the access rules (403 `access_denied`); put first, before
//!   any token is checked.
//!
//! Forged, tampered, expired or unknown-key tokens are 401; a genuine token
//! of another purpose or sale is 403 (see [`crate::tokens`]).

use std::future::{ready, Future, Ready};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{dev::Payload, web, FromRequest, HttpMessage, HttpRequest};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::gate::access::Verdict;
use crate::rate_limit::Limit;
use crate::state::AppState;
use crate::tokens::{self, Claims, Purpose};

fn state(req: &HttpRequest) -> Result<&web::Data<AppState>, AppError> {
    req.app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("application state is not registered")))
}

/// The request carries a configured admin key.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequest for Admin {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(state(req).and_then(|state| {
            let presented = tokens::bearer(req).unwrap_or("");
            let accepted = !presented.is_empty()
                && state
                    .settings
                    .admin
                    .keys
                    .iter()
                    .filter(|k| !k.expose_secret().is_empty())
                    .fold(false, |ok, key| ok | bool::from(key.expose_secret().as_bytes().ct_eq(presented.as_bytes())));
            if accepted {
                Ok(Admin)
            } else {
                // The refused key itself is never logged.
                tracing::warn!(path = %req.path(), present = !presented.is_empty(), "admin request refused");
                Err(AppError::Unauthorized("a valid admin key is required".into()))
            }
        }))
    }
}

/// Verifies the bearer token for `purpose`, bound to the path's sale if the
/// route has one.
fn bearer_claims(req: &HttpRequest, purpose: Purpose) -> Result<Arc<Claims>, AppError> {
    let state = state(req)?;
    let token = tokens::require_bearer(req)?;
    state.tokens.verify(token, purpose, req.match_info().get("sale"))
}

macro_rules! bearer_extractor {
    ($(#[$doc:meta])* $name:ident, $purpose:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Arc<Claims>);

        impl FromRequest for $name {
            type Error = AppError;
            type Future = Ready<Result<Self, AppError>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                ready(bearer_claims(req, $purpose).map($name))
            }
        }
    };
}

bearer_extractor!(
    /// A queue token of the path's sale: the bearer's place in line.
    QueueBearer,
    Purpose::Queue
);
bearer_extractor!(
    /// An admission token of the path's sale: the bearer may hold units.
    AdmissionBearer,
    Purpose::Admission
);
bearer_extractor!(
    /// A hold token: the bearer owns that hold (and its order).
    HoldBearer,
    Purpose::Hold
);

/// The client's per-IP budget and the access rules, checked together: the
/// client address is worked out once (through the trusted-proxy rule).
fn gate(req: &HttpRequest, limit: Limit) -> Result<(Option<IpAddr>, Verdict), AppError> {
    let state = state(req)?;
    let ip = state.limits.client_ip(req);
    let verdict = state.access.check(req.match_info().get("sale"), ip)?;
    state.limits.check_ip(limit, ip)?;
    Ok((ip, verdict))
}

macro_rules! limit_extractor {
    ($(#[$doc:meta])* $name:ident, $limit:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name {
            /// The client's address, as the trusted-proxy rule gives it.
            pub ip: Option<IpAddr>,
            /// What the access rules say of it (never `Denied`: that is a 403).
            pub verdict: Verdict,
        }

        impl FromRequest for $name {
            type Error = AppError;
            type Future = Ready<Result<Self, AppError>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                ready(gate(req, $limit).map(|(ip, verdict)| $name { ip, verdict }))
            }
        }
    };
}

limit_extractor!(
    /// Within the client's per-IP budget of joins (else 429) and not denied
    /// by an access rule (else 403 `access_denied`). Put it first: a client
    /// over its budget costs no token check.
    JoinQuota,
    Limit::Join
);
limit_extractor!(
    /// Within the client's per-IP budget of status polls and not denied.
    StatusQuota,
    Limit::Status
);
limit_extractor!(
    /// Within the client's per-IP budget of holds and not denied.
    HoldQuota,
    Limit::Hold
);

/// A JSON object body of type `T` (declare `T` with
/// `#[serde(deny_unknown_fields)]`): 415 unless sent as JSON, 413 over the
/// size limit, 400 malformed, 422 not an object or wrong values, all with
/// the JSON error body.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = req
            .mime_type()
            .ok()
            .flatten()
            .is_some_and(|m| m.subtype() == actix_web::mime::JSON || m.suffix() == Some(actix_web::mime::JSON));
        let body = RawBody::from_request(req, payload);
        Box::pin(async move {
            if !json {
                return Err(AppError::UnsupportedMediaType("send the body as Content-Type: application/json".into()));
            }
            let RawBody(body) = body.await?;
            crate::error::parse_json(&body)?
                .map(JsonBody)
                .ok_or_else(|| AppError::BadRequest("a JSON body is required".into()))
        })
    }
}

/// The raw request body, read within `server.body_timeout_ms` (408 when a
/// client stops sending mid-body) and `server.max_body_bytes` (413), every
/// failure in floodgate's error shape.
#[derive(Debug)]
pub struct RawBody(pub web::Bytes);

impl FromRequest for RawBody {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (limit, timeout) = state(req)
            .map(|s| (s.settings.server.max_body_bytes, s.settings.server.body_timeout_ms))
            .unwrap_or((usize::MAX, 5000));
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let read = tokio::time::timeout(std::time::Duration::from_millis(timeout), bytes)
                .await
                .map_err(|_| AppError::RequestTimeout)?;
            read.map(RawBody).map_err(|e| match e.as_response_error().status_code() {
                StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge(limit),
                _ => AppError::BadRequest(format!("unreadable body: {e}")),
            })
        })
    }
}

/// Nested objects of request bodies (`#[serde(deserialize_with = ...)]`):
/// serde would also take a struct from a JSON array of its fields in
/// order; the API's bodies are objects all the way down, as the OpenAPI
/// document says, so an array there is a 422 like any other wrong type.
pub mod objects {
    use serde::de::{DeserializeOwned, Error, Unexpected};
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    fn unexpected(value: &Value) -> Unexpected<'_> {
        match value {
            Value::Null => Unexpected::Unit,
            Value::Bool(b) => Unexpected::Bool(*b),
            Value::Number(_) => Unexpected::Other("a number"),
            Value::String(s) => Unexpected::Str(s),
            Value::Array(_) => Unexpected::Seq,
            Value::Object(_) => Unexpected::Map,
        }
    }

    fn from_object<'de, D: Deserializer<'de>, T: DeserializeOwned>(value: Value) -> Result<T, D::Error> {
        if !value.is_object() {
            return Err(D::Error::invalid_type(unexpected(&value), &"an object"));
        }
        T::deserialize(value).map_err(D::Error::custom)
    }

    /// An object.
    pub fn required<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
        from_object::<D, T>(Value::deserialize(d)?)
    }

    /// An object, or `null`/absent (with `#[serde(default)]`).
    pub fn optional<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            value => from_object::<D, T>(value).map(Some),
        }
    }

    /// A list of objects.
    pub fn required_list<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
        optional_list::<D, T>(d)?.ok_or_else(|| D::Error::invalid_type(Unexpected::Unit, &"a list of objects"))
    }

    /// A list of objects, or `null`/absent (with `#[serde(default)]`).
    pub fn optional_list<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<Vec<T>>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Array(items) => items.into_iter().map(from_object::<D, T>).collect::<Result<_, _>>().map(Some),
            other => Err(D::Error::invalid_type(unexpected(&other), &"a list of objects")),
        }
    }
}
