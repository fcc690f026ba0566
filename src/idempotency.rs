//! `Idempotency-Key` handling (I5): the first answer to a key is stored in
//! the same transaction as the work (for holds, inside `place_hold`,
//! migrations/0004), and a retry gets that answer back from here.

use actix_web::http::StatusCode;
use actix_web::HttpRequest;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};

/// Header name.
pub const HEADER: &str = "idempotency-key";

/// The request's key, if it sent one; 400 if it is unusable.
pub fn key(req: &HttpRequest) -> AppResult<Option<String>> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| AppError::BadRequest("Idempotency-Key must be printable ASCII".into()))?;
    let key = key.trim();
    if key.is_empty() || key.len() > 255 {
        return Err(AppError::BadRequest("Idempotency-Key must be 1 to 255 characters".into()));
    }
    Ok(Some(key.to_owned()))
}

/// A fingerprint of what was asked, to tell a retry from a reuse.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(hasher.finalize())
}

/// The stored answer to `key` in `scope`, if any: the first answer, or 409
/// when the key was used for another request. For requests that can be
/// answered without doing their work (a refusal known in advance, or a
/// concurrent retry that lost the race to record the key).
pub async fn stored(
    db: &sqlx::PgPool,
    scope: &str,
    key: &str,
    request_hash: &str,
) -> AppResult<Option<(StatusCode, Value)>> {
    let row: Option<(String, Option<i16>, Option<Value>)> = sqlx::query_as(
        "SELECT request_hash, response_status, response_body FROM idempotency_keys WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_optional(db)
    .await?;
    match row {
        None => Ok(None),
        Some((stored_hash, _, _)) if stored_hash != request_hash => {
            Err(AppError::conflict("idempotency_key_reused", "this Idempotency-Key was used for a different request"))
        }
        Some((_, Some(status), Some(body))) => StatusCode::from_u16(status as u16)
            .map(|status| Some((status, body)))
            .map_err(|e| AppError::Internal(e.into())),
        Some(_) => {
            Err(AppError::conflict("request_in_progress", "a request with this Idempotency-Key is still running"))
        }
    }
}
