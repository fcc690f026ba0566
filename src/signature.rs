//! `Floodgate-Signature`: HMAC-SHA256 over `"<t>.<body>"`, the one signature
//! scheme of floodgate, both ways: the payment provider signs its webhook
//! with it, and floodgate signs the events it delivers (SPEC §5, §6).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{AppError, AppResult};

/// Header carrying `t=<unix>,v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "floodgate-signature";

/// `Floodgate-Signature` value for `body` at `timestamp`: HMAC-SHA256 of
/// `"<t>.<body>"`. Used to verify the provider and to sign outgoing events.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", hex::encode(signed_payload(secret, timestamp, body).finalize().into_bytes()))
}

/// HMAC-SHA256 over `"<t>.<body>"`, ready to finalize or verify.
fn signed_payload(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks a `Floodgate-Signature` header: a `t` within `tolerance` seconds of
/// `now` and one `v1` equal (in constant time) to the expected HMAC.
pub fn verify_signature(secret: &str, header: &str, body: &[u8], now: i64, tolerance: i64) -> AppResult<()> {
    let refuse = |why: &str| AppError::Unauthorized(format!("bad Floodgate-Signature: {why}"));
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => candidates.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| refuse("no timestamp"))?;
    if (now - timestamp).abs() > tolerance {
        return Err(refuse("timestamp outside the tolerance"));
    }
    for candidate in candidates {
        let Ok(expected) = hex::decode(candidate) else { continue };
        if signed_payload(secret, timestamp, body).verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err(refuse("no matching v1 signature"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trip_and_refusals() {
        let body = br#"{"event_id":"e1"}"#;
        let header = sign("secret", 1_000, body);
        assert!(verify_signature("secret", &header, body, 1_000, 300).is_ok());
        assert!(verify_signature("secret", &header, body, 1_299, 300).is_ok());
        assert!(verify_signature("secret", &header, body, 1_301, 300).is_err(), "stale");
        assert!(verify_signature("other", &header, body, 1_000, 300).is_err(), "wrong secret");
        assert!(verify_signature("secret", &header, b"{}", 1_000, 300).is_err(), "tampered body");
        assert!(verify_signature("secret", "v1=00", body, 1_000, 300).is_err(), "no timestamp");
        assert!(verify_signature("secret", "garbage", body, 1_000, 300).is_err());
        let rotated = format!("{header},v1=deadbeef");
        assert!(verify_signature("secret", &rotated, body, 1_000, 300).is_ok(), "any matching v1");
    }
}
