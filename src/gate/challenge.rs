//! Proof-of-work challenges: stateless, signed, single use (SPEC §4a).
//!
//! A challenge is one ASCII string of six dot-separated fields,
//!
//! ```text
//! <bits>.<expires_ms>.<id>.<mac>.<kid>.<sale>
//! ```
//!
//! `bits` the difficulty, `expires_ms` the expiry in unix milliseconds,
//! `id` its serial `<minute>-<n>` (the n-th challenge of the sale handed out
//! in that unix minute, counted in Redis), `mac` the first 16 bytes (hex) of
//! HMAC-SHA256(key `kid`, `"fgc1|" bits "|" expires_ms "|" id "|" kid "|" sale`)
//! under one of the token keys, so any instance verifies it without state
//! and rotating keys keeps outstanding challenges valid. A client solves it
//! by finding a `nonce` (1 to 32 printable ASCII characters) such that
//! SHA-256(`challenge` ":" `nonce`) starts with at least `bits` zero bits.
//!
//! What a challenge cannot say by itself is whether it was used: the join
//! script sets bit `n` of the sale's bitmap of `minute` (one bit per
//! challenge handed out, dropped once they have all expired; see
//! `lua/join.lua`), so that check rides on the join's own Redis call.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::configuration::SigningKey;

/// How long a challenge can be used: long enough to solve the hardest one a
/// browser is handed, short enough that the single-use records stay few.
pub const LIFETIME: Duration = Duration::from_secs(120);

/// Longest nonce accepted.
pub const MAX_NONCE: usize = 32;

/// Longest challenge string accepted (a real one is about 100 characters).
const MAX_CHALLENGE: usize = 256;

/// Why a challenge does not let a visitor join; each is one of SPEC §4a's
/// refusal codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The sale asks for a challenge and none was sent.
    Required,
    /// Malformed, forged, or the nonce does not meet the difficulty.
    Failed,
    /// Past its expiry, or another sale's.
    Expired,
    /// This challenge already joined.
    Reused,
}

impl Refusal {
    /// The error code of SPEC §4a.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Required => "challenge_required",
            Refusal::Failed => "challenge_failed",
            Refusal::Expired => "challenge_expired",
            Refusal::Reused => "challenge_reused",
        }
    }
}

/// A challenge handed to a client.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The string to solve.
    pub challenge: String,
    /// Leading zero bits asked for.
    pub difficulty_bits: u8,
    /// Until when it can be used.
    pub expires_at: DateTime<Utc>,
}

/// Where a challenge stands among those of its sale: the `n`-th handed out
/// in unix minute `minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Serial {
    /// Unix minute in which it was handed out.
    pub minute: i64,
    /// Its number within that minute (from 1).
    pub n: u64,
}

impl Serial {
    fn parse(id: &str) -> Option<Serial> {
        let (minute, n) = id.split_once('-')?;
        Some(Serial { minute: minute.parse().ok()?, n: n.parse().ok()? })
    }
}

/// A solved, genuine, unexpired challenge: what the join script needs to
/// refuse a second use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// The challenge's serial.
    pub serial: Serial,
    /// Its expiry, unix milliseconds.
    pub expires_ms: i64,
}

/// Issues and verifies challenges with the token keys.
pub struct Challenger {
    /// Key id and a MAC keyed with its secret, first one issues.
    keys: Vec<(String, Hmac<Sha256>)>,
}

impl Challenger {
    /// From the configured token keys (the first issues, all verify).
    pub fn new(keys: &[SigningKey]) -> anyhow::Result<Self> {
        let keys = keys
            .iter()
            .map(|k| Ok((k.id.clone(), Hmac::<Sha256>::new_from_slice(k.secret.expose_secret().as_bytes())?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!keys.is_empty(), "no token signing key configured");
        Ok(Challenger { keys })
    }

    fn mac(key: &Hmac<Sha256>, bits: u8, expires_ms: i64, id: &str, kid: &str, sale: &str) -> Hmac<Sha256> {
        let mut mac = key.clone();
        // The numbers are written into a stack buffer: this runs on every
        // join of a sale with proof of work.
        let mut numbers = [0u8; 48];
        let mut cursor = std::io::Cursor::new(&mut numbers[..]);
        let _ = write!(cursor, "{bits}|{expires_ms}");
        let written = cursor.position() as usize;
        for part in
            [&b"fgc1|"[..], &numbers[..written], b"|", id.as_bytes(), b"|", kid.as_bytes(), b"|", sale.as_bytes()]
        {
            mac.update(part);
        }
        mac
    }

    /// A fresh challenge of `bits` for `sale`, valid for [`LIFETIME`].
    pub fn issue(&self, sale: &str, bits: u8, now: DateTime<Utc>, serial: Serial) -> Issued {
        let (kid, key) = &self.keys[0];
        let expires_at = now + LIFETIME;
        let expires_ms = expires_at.timestamp_millis();
        let id = format!("{}-{}", serial.minute, serial.n);
        let mac = hex::encode(&Self::mac(key, bits, expires_ms, &id, kid, sale).finalize().into_bytes()[..16]);
        Issued { challenge: format!("{bits}.{expires_ms}.{id}.{mac}.{kid}.{sale}"), difficulty_bits: bits, expires_at }
    }

    /// Checks a solution for `sale` at `now`: the signature, the sale, the
    /// expiry and the work, in that order. Whether it was used before is
    /// the join script's to say.
    pub fn verify(&self, sale: &str, challenge: &str, nonce: &str, now: DateTime<Utc>) -> Result<Ticket, Refusal> {
        if challenge.len() > MAX_CHALLENGE
            || nonce.is_empty()
            || nonce.len() > MAX_NONCE
            || !nonce.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Refusal::Failed);
        }
        let mut fields = challenge.splitn(5, '.');
        let (Some(bits), Some(expires_ms), Some(id), Some(mac), Some(rest)) =
            (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(Refusal::Failed);
        };
        let (Ok(bits), Ok(expires_ms)) = (bits.parse::<u8>(), expires_ms.parse::<i64>()) else {
            return Err(Refusal::Failed);
        };
        // Key ids may contain dots, sale ids do not: the key is whichever
        // configured id the rest starts with.
        let (kid, key, signed_sale) = self
            .keys
            .iter()
            .find_map(|(kid, key)| {
                let signed_sale = rest.strip_prefix(kid.as_str())?.strip_prefix('.')?;
                Some((kid, key, signed_sale))
            })
            .ok_or(Refusal::Failed)?;
        let mut tag = [0u8; 16];
        hex::decode_to_slice(mac, &mut tag).map_err(|_| Refusal::Failed)?;
        // Constant-time comparison of the first 16 bytes.
        Self::mac(key, bits, expires_ms, id, kid, signed_sale)
            .verify_truncated_left(&tag)
            .map_err(|_| Refusal::Failed)?;
        if signed_sale != sale || now.timestamp_millis() >= expires_ms {
            return Err(Refusal::Expired);
        }
        let work = Sha256::new().chain_update(challenge).chain_update(":").chain_update(nonce).finalize();
        if leading_zero_bits(&work) < u32::from(bits) {
            return Err(Refusal::Failed);
        }
        // Genuine, so the serial is one this service wrote.
        let serial = Serial::parse(id).ok_or(Refusal::Failed)?;
        Ok(Ticket { serial, expires_ms })
    }
}

/// Leading zero bits of a digest, from the first byte's most significant bit.
pub fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in digest {
        bits += byte.leading_zeros();
        if *byte != 0 {
            break;
        }
    }
    bits
}

/// Finds a nonce for `challenge` (counting up in decimal): what a client
/// does, here for tests and the load generator.
pub fn solve(challenge: &str, bits: u8) -> String {
    let mut hasher = Sha256::new();
    hasher.update(challenge.as_bytes());
    hasher.update(b":");
    (0u64..)
        .map(|n| n.to_string())
        .find(|nonce| {
            let mut h = hasher.clone();
            h.update(nonce.as_bytes());
            leading_zero_bits(&h.finalize()) >= u32::from(bits)
        })
        .unwrap_or_default()
}

/// The expiry of a challenge string, if it parses (for error messages).
pub fn expiry_of(challenge: &str) -> Option<DateTime<Utc>> {
    let ms = challenge.split('.').nth(1)?.parse().ok()?;
    Utc.timestamp_millis_opt(ms).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serial(n: u64) -> Serial {
        Serial { minute: 29_000_000, n }
    }

    fn challenger() -> Challenger {
        Challenger::new(&[
            SigningKey { id: "k.2".into(), secret: "new-secret".into() },
            SigningKey { id: "k1".into(), secret: "old-secret".into() },
        ])
        .expect("keys")
    }

    #[test]
    fn leading_zero_bits_count_from_the_first_byte() {
        assert_eq!(leading_zero_bits(&[0x80, 0]), 0);
        assert_eq!(leading_zero_bits(&[0x0f, 0xff]), 4);
        assert_eq!(leading_zero_bits(&[0, 0x01]), 15);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }

    #[test]
    fn a_solved_challenge_verifies_once_per_rule() {
        let c = challenger();
        let now = Utc::now();
        let issued = c.issue("s_1", 8, now, serial(1));
        let nonce = solve(&issued.challenge, 8);
        let ticket = c.verify("s_1", &issued.challenge, &nonce, now).expect("valid");
        assert_eq!(ticket.expires_ms, issued.expires_at.timestamp_millis());
        assert_eq!(ticket.serial, serial(1));
        // The documented rule, recomputed by hand.
        let digest = Sha256::digest(format!("{}:{nonce}", issued.challenge).as_bytes());
        assert!(leading_zero_bits(&digest) >= 8);
        // Another sale's challenge, and an expired one.
        assert_eq!(c.verify("s_2", &issued.challenge, &nonce, now), Err(Refusal::Expired));
        assert_eq!(c.verify("s_1", &issued.challenge, &nonce, now + LIFETIME), Err(Refusal::Expired));
        // A nonce that misses the difficulty (some nonce does among a few).
        let wrong = (0..64)
            .map(|i| format!("x{i}"))
            .find(|n| leading_zero_bits(&Sha256::digest(format!("{}:{n}", issued.challenge).as_bytes())) < 8);
        assert_eq!(c.verify("s_1", &issued.challenge, &wrong.expect("a miss"), now), Err(Refusal::Failed));
    }

    #[test]
    fn forged_or_malformed_challenges_fail() {
        let c = challenger();
        let now = Utc::now();
        let issued = c.issue("s_1", 0, now, serial(2));
        assert!(c.verify("s_1", &issued.challenge, "1", now).is_ok());
        // Lowering the difficulty breaks the signature.
        let harder = c.issue("s_1", 20, now, serial(3));
        let lowered = format!("0{}", &harder.challenge[2..]);
        assert_eq!(c.verify("s_1", &lowered, "1", now), Err(Refusal::Failed));
        let truncated = &issued.challenge[..issued.challenge.len() - 1];
        for bad in ["", "x", "1.2.3.4.5", truncated] {
            assert_eq!(c.verify("s_1", bad, "1", now), Err(Refusal::Failed), "{bad}");
        }
        for nonce in ["", " x", "é", &"a".repeat(33)] {
            assert_eq!(c.verify("s_1", &issued.challenge, nonce, now), Err(Refusal::Failed), "{nonce:?}");
        }
    }

    #[test]
    fn challenges_of_an_older_key_still_verify() {
        let old = Challenger::new(&[SigningKey { id: "k1".into(), secret: "old-secret".into() }]).expect("key");
        let now = Utc::now();
        let issued = old.issue("s_1", 0, now, serial(4));
        assert!(challenger().verify("s_1", &issued.challenge, "0", now).is_ok());
        let stranger = Challenger::new(&[SigningKey { id: "k1".into(), secret: "other".into() }]).expect("key");
        assert_eq!(stranger.verify("s_1", &issued.challenge, "0", now), Err(Refusal::Failed));
    }
}
