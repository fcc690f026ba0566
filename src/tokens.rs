//! Signed tokens for queue places, admissions and holds, and verification of
//! the site's own login tokens.
//!
//! floodgate's tokens are compact HS256 JWTs with a `kid` header, so keys can
//! be rotated: the first configured key signs, every configured key verifies.
//! Each token is bound to a sale, a visitor and a purpose; verifying checks all
//! three, so a queue token can never stand in for an admission token and a
//! token of one sale opens nothing in another.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::configuration::{IdentitySettings, SigningKey};
use crate::error::AppError;

/// What a token lets its bearer do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Proves a place in a sale's queue (status polls, re-joins).
    Queue,
    /// Lets an admitted visitor place holds.
    Admission,
    /// Lets the owner of a hold see, release and pay it, and see its order.
    Hold,
}

/// The claims of a floodgate token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Visitor id: minted at join, or `u:<sub>` of a signed-in user.
    pub sub: String,
    /// Sale the token is bound to.
    pub sale: String,
    /// What the token is for.
    pub pur: Purpose,
    /// Join number in the sale's queue (queue and admission tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    /// Hold id (hold tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
    /// Expiry, unix seconds, rounded up (JWT's `exp`; see `exp_ms`).
    pub exp: i64,
    /// Expiry, unix milliseconds: the instant the API states, checked
    /// exactly (a whole-second `exp` would let a token live up to a second
    /// past the expiry its holder was told).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp_ms: Option<i64>,
    /// Issued at, unix seconds.
    pub iat: i64,
}

/// Signs and verifies floodgate tokens.
pub struct TokenSigner {
    /// The signing key's JWT header, serialised and base64-encoded once: it
    /// is the same for every token, and `jsonwebtoken::encode` made it anew
    /// for each (a JSON map of ten optional fields, its base64 and three
    /// buffers).
    header: String,
    /// HMAC-SHA256 keyed with the signing key once; each token clones it.
    /// `jsonwebtoken::encode` keys a new one per token, hashing the padded
    /// key twice: two of the seven SHA-256 blocks of a queue token.
    mac: Hmac<Sha256>,
    decoding: HashMap<String, DecodingKey>,
    validation: Validation,
    verified: Verified,
}

/// Queue tokens verified lately. A waiting visitor polls with the same
/// token every few seconds; checking it again (two base64 decodes, two JSON
/// parses and the HMAC) was the largest piece of floodgate's own work per
/// poll. Remembered by a keyed hash of the whole token (the key is random
/// per process, so nobody can aim for a collision; foldhash, a fifth of
/// SipHash's 1,000 instructions for a 230-byte token, and only tokens that
/// verified are ever inserted, so lookups cannot flood a bucket) and
/// checked against its signature; the expiry is checked again on every use.
struct Verified {
    hasher: foldhash::fast::RandomState,
    claims: RwLock<HashMap<u64, Remembered>>,
}

/// A remembered token: its signature, and its claims, shared with every
/// request that presents it (cloning them cost two allocations per poll).
type Remembered = (Box<str>, Arc<Claims>);

/// Most remembered tokens (about 200 bytes each); past it the memory starts
/// over.
const VERIFIED_MAX: usize = 200_000;

impl Verified {
    fn new() -> Self {
        Verified { hasher: Default::default(), claims: RwLock::new(HashMap::new()) }
    }

    fn key(&self, token: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(token)
    }

    fn get(&self, token: &str) -> Option<Arc<Claims>> {
        let signature = token.rsplit('.').next()?;
        let map = self.claims.read().ok()?;
        let (remembered, claims) = map.get(&self.key(token))?;
        (**remembered == *signature).then(|| claims.clone())
    }

    fn put(&self, token: &str, claims: &Arc<Claims>) {
        let Some(signature) = token.rsplit('.').next() else {
            return;
        };
        let key = self.key(token);
        if let Ok(mut map) = self.claims.write() {
            if map.len() >= VERIFIED_MAX {
                map.clear();
            }
            map.insert(key, (signature.into(), claims.clone()));
        }
    }
}

impl TokenSigner {
    /// Builds a signer from the configured keys (first signs).
    pub fn new(keys: &[SigningKey]) -> anyhow::Result<Self> {
        let first = keys.first().ok_or_else(|| anyhow::anyhow!("no token signing key configured"))?;
        let decoding = keys
            .iter()
            .map(|k| (k.id.clone(), DecodingKey::from_secret(k.secret.expose_secret().as_bytes())))
            .collect();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(first.id.clone());
        Ok(TokenSigner {
            header: URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            mac: Hmac::<Sha256>::new_from_slice(first.secret.expose_secret().as_bytes())?,
            decoding,
            validation,
            verified: Verified::new(),
        })
    }

    /// Signs `claims`: the same JWT `jsonwebtoken::encode` makes (a test
    /// holds them equal), in one buffer, with the header and the keyed MAC
    /// made once: signing its token was the largest piece of floodgate's own
    /// work in a join.
    pub fn sign(&self, claims: &Claims) -> Result<String, AppError> {
        let payload = serde_json::to_vec(claims).map_err(|e| AppError::Internal(e.into()))?;
        let mut token = String::with_capacity(self.header.len() + payload.len() * 4 / 3 + 48);
        token.push_str(&self.header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let mut mac = self.mac.clone();
        mac.update(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(mac.finalize().into_bytes(), &mut token);
        Ok(token)
    }

    /// Signs a fresh token for `purpose`, valid until `expires_at`.
    pub fn issue(
        &self,
        purpose: Purpose,
        sale: &str,
        visitor: &str,
        n: Option<u64>,
        hold: Option<String>,
        expires_at: DateTime<Utc>,
    ) -> Result<String, AppError> {
        self.sign(&Claims {
            sub: visitor.to_owned(),
            sale: sale.to_owned(),
            pur: purpose,
            n,
            hold,
            exp: (expires_at.timestamp_millis() + 999).div_euclid(1000),
            exp_ms: Some(expires_at.timestamp_millis()),
            iat: Utc::now().timestamp(),
        })
    }

    /// Verifies signature and expiry only; `None` when the token is not one of
    /// ours (unknown or missing key id), so callers can try other issuers.
    pub fn verify_any(&self, token: &str) -> Option<Result<Arc<Claims>, AppError>> {
        if let Some(claims) = self.verified.get(token) {
            return Some(unexpired(claims));
        }
        let header = decode_header(token).ok()?;
        let key = self.decoding.get(header.kid.as_deref()?)?;
        let claims = decode::<Claims>(token, key, &self.validation)
            .map(|data| Arc::new(data.claims))
            .map_err(|e| AppError::Unauthorized(format!("token refused: {}", describe(&e))));
        if let Ok(claims) = &claims {
            // Only queue tokens are presented over and over.
            if claims.pur == Purpose::Queue {
                self.verified.put(token, claims);
            }
        }
        Some(claims.and_then(unexpired))
    }

    /// Verifies a token and that it is for `purpose` in `sale`.
    /// Forged, tampered, expired or unknown-key tokens are 401; a genuine token
    /// of another purpose or sale is 403.
    pub fn verify(&self, token: &str, purpose: Purpose, sale: Option<&str>) -> Result<Arc<Claims>, AppError> {
        let claims = self
            .verify_any(token)
            .unwrap_or_else(|| Err(AppError::Unauthorized("token refused: not a floodgate token".into())))?;
        if claims.pur != purpose {
            return Err(AppError::Forbidden(
                format!("this is a {:?} token; a {:?} token is needed here", claims.pur, purpose).to_lowercase(),
            ));
        }
        if let Some(sale) = sale {
            if claims.sale != sale {
                return Err(AppError::Forbidden("token belongs to another sale".into()));
            }
        }
        Ok(claims)
    }
}

/// The claims, unless past their exact expiry.
fn unexpired(claims: Arc<Claims>) -> Result<Arc<Claims>, AppError> {
    match claims.exp_ms {
        Some(exp_ms) if Utc::now().timestamp_millis() >= exp_ms => {
            Err(AppError::Unauthorized("token refused: expired".into()))
        }
        _ => Ok(claims),
    }
}

fn describe(error: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::InvalidSignature => "bad signature",
        _ => "malformed",
    }
}

/// Verifies the site's login JWTs, when configured.
pub struct LoginVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl LoginVerifier {
    /// `None` when the site's login is not configured.
    pub fn from_settings(settings: &IdentitySettings) -> anyhow::Result<Option<Self>> {
        if let Some(secret) = settings.jwt_hs256_secret.as_ref().map(|s| s.expose_secret()).filter(|s| !s.is_empty()) {
            let validation = Validation::new(Algorithm::HS256);
            return Ok(Some(LoginVerifier { key: DecodingKey::from_secret(secret.as_bytes()), validation }));
        }
        if let Some(pem) = settings.jwt_public_key_pem.as_deref().filter(|s| !s.is_empty()) {
            let (algorithm, key) = match settings.jwt_algorithm.to_uppercase().as_str() {
                "RS256" => (Algorithm::RS256, DecodingKey::from_rsa_pem(pem.as_bytes())?),
                "EDDSA" => (Algorithm::EdDSA, DecodingKey::from_ed_pem(pem.as_bytes())?),
                other => anyhow::bail!("identity.jwt_algorithm {other} is not RS256 or EdDSA"),
            };
            return Ok(Some(LoginVerifier { key, validation: Validation::new(algorithm) }));
        }
        Ok(None)
    }

    /// The user of a valid login token.
    pub fn verify(&self, token: &str) -> Result<Login, AppError> {
        #[derive(Deserialize)]
        struct Claims {
            sub: String,
            #[serde(default)]
            sale: Option<String>,
        }
        let data = decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| AppError::Unauthorized(format!("login token refused: {}", describe(&e))))?;
        if data.claims.sub.is_empty() || data.claims.sub.len() > 200 {
            return Err(AppError::Unauthorized("login token has no usable sub".into()));
        }
        Ok(Login { user_id: format!("u:{}", data.claims.sub), sale: data.claims.sale })
    }
}

/// A verified login token of the site.
#[derive(Debug, Clone)]
pub struct Login {
    /// `u:<sub>`.
    pub user_id: String,
    /// The sale its `sale` claim invites the user to, if any.
    pub sale: Option<String>,
}

/// The bearer token of an `Authorization` header, if any.
pub fn bearer(req: &actix_web::HttpRequest) -> Option<&str> {
    // Bytes, not `HeaderValue::to_str`: its byte-by-byte check of a 230-byte
    // token cost a status poll more than looking the token up did. A token
    // that is not ASCII fails verification like any other forgery.
    let value = req.headers().get(actix_web::http::header::AUTHORIZATION)?.as_bytes();
    let token = value.strip_prefix(b"Bearer ").or_else(|| value.strip_prefix(b"bearer "))?;
    let token = std::str::from_utf8(token.trim_ascii()).ok()?;
    (!token.is_empty()).then_some(token)
}

/// The bearer token, or 401.
pub fn require_bearer(req: &actix_web::HttpRequest) -> Result<&str, AppError> {
    bearer(req).ok_or_else(|| AppError::Unauthorized("missing Authorization: Bearer token".into()))
}

/// A random visitor id for anonymous visitors (128 bits, hex).
pub fn new_visitor_id() -> String {
    format!("v:{}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> TokenSigner {
        TokenSigner::new(&[SigningKey { id: "k1".into(), secret: "a-test-secret-of-enough-bytes".into() }])
            .expect("key")
    }

    #[test]
    fn tokens_are_the_jwts_jsonwebtoken_makes() {
        let signer = signer();
        let claims = Claims {
            sub: "v:1".into(),
            sale: "s_1".into(),
            pur: Purpose::Hold,
            n: Some(7),
            hold: Some("h_\"1\"".into()),
            exp: 2_000_000_000,
            exp_ms: Some(1_999_999_999_500),
            iat: 1_700_000_000,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let key = jsonwebtoken::EncodingKey::from_secret(b"a-test-secret-of-enough-bytes");
        let expected = jsonwebtoken::encode(&header, &claims, &key).expect("encode");
        assert_eq!(signer.sign(&claims).expect("sign"), expected);
        let verified = signer.verify(&expected, Purpose::Hold, Some("s_1")).expect("verifies");
        assert_eq!(verified.hold.as_deref(), Some("h_\"1\""));
    }

    #[test]
    fn a_remembered_queue_token_still_expires_and_a_tampered_one_is_refused() {
        let signer = signer();
        let token = signer
            .issue(Purpose::Queue, "s_1", "v:1", Some(7), None, Utc::now() + chrono::Duration::milliseconds(1500))
            .expect("token");
        let first = signer.verify(&token, Purpose::Queue, Some("s_1")).expect("valid");
        let again = signer.verify(&token, Purpose::Queue, Some("s_1")).expect("valid, from memory");
        assert_eq!((&first.sub, first.n), (&again.sub, again.n));
        // Another payload under the remembered signature is not the same token.
        let mut parts: Vec<&str> = token.split('.').collect();
        let other = signer
            .issue(Purpose::Queue, "s_1", "v:2", Some(8), None, Utc::now() + chrono::Duration::hours(1))
            .expect("token");
        parts[1] = other.split('.').nth(1).expect("payload");
        assert!(signer.verify(&parts.join("."), Purpose::Queue, Some("s_1")).is_err());
        std::thread::sleep(std::time::Duration::from_millis(1600));
        assert!(signer.verify(&token, Purpose::Queue, Some("s_1")).is_err(), "expired, remembered or not");
    }
}
