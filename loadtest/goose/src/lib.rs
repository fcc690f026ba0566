//! Shared pieces of floodgate's load tests: where the server is, how a sale
//! for a benchmark is created, how a payment webhook is signed, how the
//! audit is read, and a small latency recorder for the custom driver.
//!
//! Everything talks to one base URL (default `http://127.0.0.1:8080`); the
//! load tests are meant for a server on this machine only.

pub mod args;
pub mod stats;
pub mod wire;

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// Where the server is and its secrets, from the environment.
///
/// - `FG_BASE` (or `FG_HOST`): base URL, default `http://127.0.0.1:8080`
/// - `FG_ADMIN_KEY`: admin bearer key, default `test-admin-key` (`FLOODGATE_ENV=test`)
/// - `FG_WEBHOOK_SECRET`: payment webhook secret, default `test-webhook-secret`
#[derive(Debug, Clone)]
pub struct Env {
    /// Base URL without a trailing slash.
    pub base: String,
    /// Admin key.
    pub admin_key: String,
    /// Payment webhook secret.
    pub webhook_secret: String,
}

impl Env {
    /// Reads the environment.
    pub fn from_env() -> Env {
        let base = std::env::var("FG_BASE")
            .or_else(|_| std::env::var("FG_HOST"))
            .unwrap_or_else(|_| "http://127.0.0.1:8080".into());
        Env {
            base: base.trim_end_matches('/').to_owned(),
            admin_key: std::env::var("FG_ADMIN_KEY").unwrap_or_else(|_| "test-admin-key".into()),
            webhook_secret: std::env::var("FG_WEBHOOK_SECRET").unwrap_or_else(|_| "test-webhook-secret".into()),
        }
    }

    /// Refuses a base URL that is not on this machine: load tests only ever
    /// target loopback addresses.
    pub fn ensure_local(&self) -> Result<()> {
        let rest = self.base.split("://").nth(1).unwrap_or(&self.base);
        let host = rest.split('/').next().unwrap_or("");
        let host = if host.starts_with('[') {
            host.split(']').next().unwrap_or("").trim_start_matches('[')
        } else {
            host.split(':').next().unwrap_or("")
        };
        if host == "localhost" || host == "::1" || host.starts_with("127.") {
            Ok(())
        } else {
            bail!("refusing to load-test {}: only 127.0.0.0/8, localhost or [::1] are allowed", self.base)
        }
    }
}

/// The `Floodgate-Signature` header for `body` at unix time `t`:
/// `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn sign_webhook(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The body of a payment webhook.
pub fn webhook_body(event_id: &str, hold_id: &str, payment_reference: &str, status: &str) -> String {
    json!({
        "event_id": event_id,
        "hold_id": hold_id,
        "payment_reference": payment_reference,
        "status": status,
    })
    .to_string()
}

/// A sale as a benchmark creates it.
#[derive(Debug, Clone)]
pub struct SaleSpec {
    /// Display name.
    pub name: String,
    /// General-admission units.
    pub units: u64,
    /// Stage percentages.
    pub stages: Vec<u32>,
    /// Units per buyer.
    pub per_user_limit: u32,
    /// Hold lifetime.
    pub hold_ttl_seconds: u32,
    /// Joins go through the waiting room (else join admits at once).
    pub waiting_room: bool,
    /// Shuffle the pre-queue at the start.
    pub shuffle_prequeue: bool,
    /// Admission inflow.
    pub admit_per_second: u32,
    /// Admitted-but-unfinished cap.
    pub max_active: u32,
    /// Time an admitted visitor has to hold.
    pub admission_ttl_seconds: u32,
    /// Silence after which a waiting visitor loses their place.
    pub abandon_after_seconds: u32,
    /// `fixed` or `adaptive` admission rate.
    pub admission_mode: String,
    /// Ceiling of an adaptive rate (0: none).
    pub max_admit_per_second: u32,
    /// Proof-of-work bits asked of a new source (0: off).
    pub challenge_bits: u32,
    /// Proof-of-work bits asked of the busiest source (the adaptive rise's
    /// cap; equal to `challenge_bits`: no rise). 0: the server's default.
    pub max_challenge_bits: u32,
}

impl Default for SaleSpec {
    fn default() -> Self {
        SaleSpec {
            name: "bench".into(),
            units: 20_000,
            stages: vec![100],
            per_user_limit: 4,
            hold_ttl_seconds: 600,
            waiting_room: true,
            shuffle_prequeue: false,
            admit_per_second: 2000,
            max_active: 5000,
            admission_ttl_seconds: 300,
            abandon_after_seconds: 120,
            admission_mode: "fixed".into(),
            max_admit_per_second: 0,
            challenge_bits: 0,
            max_challenge_bits: 0,
        }
    }
}

impl SaleSpec {
    /// Overrides fields from `--key value` options (see [`args::Args`]).
    pub fn apply(&mut self, a: &args::Args) -> Result<()> {
        if let Some(v) = a.get("name") {
            self.name = v.to_owned();
        }
        self.units = a.num("units", self.units)?;
        if let Some(v) = a.get("stages") {
            self.stages = v
                .split(',')
                .map(|s| s.trim().parse::<u32>().context("--stages takes percentages like 30,40,30"))
                .collect::<Result<_>>()?;
        }
        self.per_user_limit = a.num("per-user-limit", self.per_user_limit)?;
        self.hold_ttl_seconds = a.num("hold-ttl", self.hold_ttl_seconds)?;
        self.waiting_room = a.flag("waiting-room", self.waiting_room)?;
        self.shuffle_prequeue = a.flag("shuffle-prequeue", self.shuffle_prequeue)?;
        self.admit_per_second = a.num("admit-per-second", self.admit_per_second)?;
        self.max_active = a.num("max-active", self.max_active)?;
        self.admission_ttl_seconds = a.num("admission-ttl", self.admission_ttl_seconds)?;
        self.abandon_after_seconds = a.num("abandon-after", self.abandon_after_seconds)?;
        if let Some(v) = a.get("admission-mode") {
            self.admission_mode = v.to_owned();
        }
        self.max_admit_per_second = a.num("max-admit-per-second", self.max_admit_per_second)?;
        self.challenge_bits = a.num("challenge-bits", self.challenge_bits)?;
        self.max_challenge_bits = a.num("max-challenge-bits", self.max_challenge_bits)?;
        Ok(())
    }

    /// The `POST /admin/v1/sales` body.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "name": self.name,
            "units": { "count": self.units },
            "stages": self.stages,
            "per_user_limit": self.per_user_limit,
            "hold_ttl_seconds": self.hold_ttl_seconds,
            "waiting_room": self.waiting_room,
            "shuffle_prequeue": self.shuffle_prequeue,
            "admission": {
                "admit_per_second": self.admit_per_second,
                "max_active": self.max_active,
                "admission_ttl_seconds": self.admission_ttl_seconds,
                "abandon_after_seconds": self.abandon_after_seconds,
                "mode": self.admission_mode,
                "max_admit_per_second": self.max_admit_per_second,
            }
        });
        if self.challenge_bits > 0 {
            body["challenge"] = json!({ "difficulty_bits": self.challenge_bits });
            if self.max_challenge_bits > 0 {
                body["challenge"]["max_difficulty_bits"] = json!(self.max_challenge_bits);
            }
        }
        body
    }
}

/// An HTTP client for benchmarks: keep-alive, no proxy, short timeouts.
pub fn client(max_idle: usize, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(max_idle)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("reqwest client")
}

/// The admin API.
#[derive(Clone)]
pub struct Admin {
    /// HTTP client.
    pub http: reqwest::Client,
    /// Server and keys.
    pub env: Env,
}

impl Admin {
    /// An admin client for `env`.
    pub fn new(env: Env) -> Admin {
        Admin { http: client(8, Duration::from_secs(120)), env }
    }

    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Value> {
        let res =
            req.bearer_auth(&self.env.admin_key).send().await.with_context(|| format!("{what}: request failed"))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{what}: HTTP {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("{what}: not JSON: {text}"))
    }

    /// Creates a sale; returns its id.
    pub async fn create_sale(&self, spec: &SaleSpec) -> Result<String> {
        let url = format!("{}/admin/v1/sales", self.env.base);
        let v = self.send(self.http.post(url).json(&spec.body()), "create sale").await?;
        v["id"].as_str().map(str::to_owned).ok_or_else(|| anyhow!("create sale: no id in {v}"))
    }

    /// Releases the next stage.
    pub async fn next_stage(&self, sale: &str) -> Result<Value> {
        let url = format!("{}/admin/v1/sales/{sale}/stages/next", self.env.base);
        self.send(self.http.post(url), "next stage").await
    }

    /// Admits `count` waiting visitors now.
    pub async fn admit(&self, sale: &str, count: u64) -> Result<Value> {
        let url = format!("{}/admin/v1/sales/{sale}/admit", self.env.base);
        self.send(self.http.post(url).json(&json!({ "count": count })), "admit").await
    }

    /// Full statistics.
    pub async fn stats(&self, sale: &str) -> Result<Value> {
        let url = format!("{}/admin/v1/sales/{sale}", self.env.base);
        self.send(self.http.get(url), "sale stats").await
    }

    /// Changes a sale (pause, resume, close, admission settings).
    pub async fn patch(&self, sale: &str, body: Value) -> Result<Value> {
        let url = format!("{}/admin/v1/sales/{sale}", self.env.base);
        self.send(self.http.patch(url).json(&body), "patch sale").await
    }

    /// The audit (I1–I3, Redis against Postgres).
    pub async fn audit(&self, sale: &str) -> Result<Value> {
        let url = format!("{}/admin/v1/sales/{sale}/audit", self.env.base);
        self.send(self.http.get(url), "audit").await
    }
}

/// Prints an audit and says whether it passed: `ok`, and no unit sold or
/// held twice (`sold + held <= total`, and the unit totals add up).
pub fn report_audit(audit: &Value) -> bool {
    let units = &audit["units"];
    let n = |k: &str| units[k].as_i64().unwrap_or(-1);
    let (total, available, held, sold, unreleased) =
        (n("total"), n("available"), n("held"), n("sold"), n("unreleased"));
    let ok = audit["ok"].as_bool().unwrap_or(false);
    let adds_up = available + held + sold + unreleased == total;
    let oversold = (sold + held - total).max(0);
    println!("--- audit of sale {} ---", audit["sale_id"].as_str().unwrap_or("?"));
    println!(
        "units: total {total}, available {available}, held {held}, sold {sold}, unreleased {unreleased} \
         (sum {} total)",
        if adds_up { "==" } else { "!=" }
    );
    if let Some(checks) = audit["checks"].as_array() {
        for c in checks {
            println!(
                "  [{}] {:<28} {:<4} violations {}{}",
                if c["ok"].as_bool().unwrap_or(false) { "ok" } else { "FAIL" },
                c["name"].as_str().unwrap_or("?"),
                c["invariant"].as_str().unwrap_or(""),
                c["violations"].as_i64().unwrap_or(0),
                match c["examples"].as_array() {
                    Some(ex) if !ex.is_empty() =>
                        format!(" e.g. {}", Value::Array(ex.iter().take(3).cloned().collect())),
                    _ => String::new(),
                }
            );
        }
    }
    let pass = ok && adds_up && oversold == 0 && sold <= total;
    println!("oversold units: {oversold}; audit ok: {ok}; verdict: {}", if pass { "PASS" } else { "FAIL" });
    pass
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A random id for idempotency keys, event ids and payment references.
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}-{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>())
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

/// Solves a floodgate proof-of-work challenge the way any client would
/// (README, "Proof of work"): the first decimal nonce such that
/// SHA-256(`challenge` ":" `nonce`) has `bits` leading zero bits. Also
/// answers how many hashes it took.
pub fn solve_challenge(challenge: &str, bits: u32) -> (String, u64) {
    solve_challenge_until(challenge, bits, None).unwrap_or_default()
}

/// [`solve_challenge`] that gives up (`None`) once `deadline` has passed.
pub fn solve_challenge_until(
    challenge: &str,
    bits: u32,
    deadline: Option<std::time::Instant>,
) -> Option<(String, u64)> {
    use sha2::{Digest, Sha256};
    let mut prefix = Sha256::new();
    prefix.update(challenge.as_bytes());
    prefix.update(b":");
    let mut buf = [0u8; 20];
    for n in 0u64.. {
        let nonce = format_nonce(&mut buf, n);
        let mut h = prefix.clone();
        h.update(nonce);
        if leading_zero_bits(&h.finalize()) >= bits {
            return Some((String::from_utf8_lossy(nonce).into_owned(), n + 1));
        }
        if n % 65_536 == 0 && deadline.is_some_and(|d| std::time::Instant::now() > d) {
            return None;
        }
    }
    None
}

/// `n` in decimal, written into the end of `buf`.
fn format_nonce(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}
