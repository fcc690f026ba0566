//! Layered settings: `config/default.toml`, then `config/<FLOODGATE_ENV>.toml`,
//! then `FLOODGATE__SECTION__KEY` environment variables.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Which configuration file is layered on top of the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Local development: dev secrets and the demo sale are allowed.
    Dev,
    /// The test suite.
    Test,
    /// Anything real: every secret must be configured.
    Production,
}

impl Environment {
    fn file_stem(self) -> &'static str {
        match self {
            Environment::Dev => "dev",
            Environment::Test => "test",
            Environment::Production => "production",
        }
    }
}

impl TryFrom<String> for Environment {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.to_lowercase().as_str() {
            "dev" | "development" | "local" => Ok(Environment::Dev),
            "test" => Ok(Environment::Test),
            "production" | "prod" => Ok(Environment::Production),
            other => Err(format!("FLOODGATE_ENV={other} is not one of dev, test, production")),
        }
    }
}

/// Everything floodgate can be told at start-up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// HTTP listener and request limits.
    pub server: ServerSettings,
    /// PostgreSQL, the truth for sales, units, holds and orders.
    pub database: DatabaseSettings,
    /// Redis, home of the waiting room.
    pub redis: RedisSettings,
    /// Signing keys and lifetimes of queue, admission and hold tokens.
    pub tokens: TokenSettings,
    /// Admin API keys.
    pub admin: AdminSettings,
    /// Payment provider webhook verification and the dev checkout.
    pub payments: PaymentSettings,
    /// Optional verification of the site's own login JWTs.
    pub identity: IdentitySettings,
    /// Intervals of the background loops.
    pub jobs: JobSettings,
    /// Per-IP limits and the per-instance load-shedding ceiling.
    pub rate_limits: RateLimitSettings,
    /// Webhook endpoints and delivery policy.
    pub webhooks: WebhookSettings,
    /// Reminder timing.
    pub events: EventSettings,
    /// Demo data for the dev run command.
    pub demo: DemoSettings,
    /// Global CIDR allow and deny rules (SPEC §4a); the admin API adds
    /// live ones.
    #[serde(default)]
    pub access: crate::gate::access::RuleLists,
    /// Which environment file was loaded (not read from files).
    #[serde(skip, default = "default_env")]
    pub environment: Option<Environment>,
}

fn default_env() -> Option<Environment> {
    None
}

/// HTTP listener settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Interface to bind.
    pub host: String,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// Actix worker threads; 0 means one per core.
    pub workers: usize,
    /// Largest accepted body in bytes.
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive once its headers did
    /// (408 after that; slow headers are cut by actix's request timeout).
    pub body_timeout_ms: u64,
    /// Grace period for in-flight requests on shutdown.
    pub shutdown_timeout_seconds: u64,
    /// JSON logs (production) or human-readable ones.
    pub json_logs: bool,
    /// Base URL printed in links.
    pub public_url: String,
    /// Listen backlog: connections the kernel queues before the workers
    /// accept them (capped by `net.core.somaxconn`). A flash sale's opening
    /// second arrives as one burst of connections.
    pub backlog: u32,
}

/// PostgreSQL pool settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Connection URL, including the database name.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// Wait for a pooled connection before giving up with 503.
    pub acquire_timeout_ms: u64,
    /// `statement_timeout` set on every connection.
    pub statement_timeout_ms: u64,
}

/// Redis connection settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// Connection URL of a single Redis (ignored when `cluster_nodes` is set).
    pub url: String,
    /// Seed nodes of a Redis Cluster (`redis://host:port`, any few of its
    /// masters or replicas); when given, floodgate uses the cluster client,
    /// which learns the slot map from them and follows `MOVED`/`ASK`. Empty:
    /// the single Redis at `url`.
    #[serde(default)]
    pub cluster_nodes: Vec<String>,
    /// Prefix of every key floodgate writes.
    pub key_prefix: String,
    /// Shared multiplexed connections per thread (each carries any number
    /// of concurrent commands).
    pub connections: usize,
    /// Upper bound on one Redis round trip, reconnecting included.
    pub timeout_ms: u64,
}

/// One HMAC key of the token signer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKey {
    /// Key id written into the token header (`kid`).
    pub id: String,
    /// HMAC secret.
    pub secret: SecretString,
}

/// Token signing settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// Keys, newest first: the first signs, all verify.
    #[serde(default)]
    pub keys: Vec<SigningKey>,
    /// Convenience for environment-only setups (`FLOODGATE__TOKENS__SECRET`):
    /// when set it becomes the signing key, in front of `keys`.
    #[serde(default)]
    pub secret: Option<SecretString>,
    /// Key id of `secret`.
    #[serde(default)]
    pub secret_id: Option<String>,
    /// Lifetime of a queue token.
    pub queue_ttl_seconds: i64,
}

/// Admin API access.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Accepted bearer keys.
    #[serde(default)]
    pub keys: Vec<SecretString>,
}

/// Payment webhook settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentSettings {
    /// Shared HMAC secret of `Floodgate-Signature`.
    #[serde(default)]
    pub webhook_secret: Option<SecretString>,
    /// Accepted age of a signature timestamp.
    pub signature_tolerance_seconds: i64,
    /// Enables `POST /api/v1/holds/{hold}/dev-checkout`.
    pub dev_checkout: bool,
}

/// Verification of the site's login JWTs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySettings {
    /// HS256 secret of the site's login tokens.
    #[serde(default)]
    pub jwt_hs256_secret: Option<SecretString>,
    /// PEM public key of the site's login tokens.
    #[serde(default)]
    pub jwt_public_key_pem: Option<String>,
    /// Algorithm used with the public key: RS256 or EdDSA.
    pub jwt_algorithm: String,
}

/// Background loop intervals.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    /// Admission ticker period.
    pub admission_tick_ms: u64,
    /// How often an idle sale (nobody waiting, nobody admitted) is ticked
    /// until a join or a poll at the front wakes it (waiting_room::idle).
    pub idle_tick_ms: u64,
    /// Hold expiry sweeper period.
    pub expiry_sweep_ms: u64,
    /// Sale state clock period (start, end, sold out, Redis sync).
    pub sale_clock_ms: u64,
    /// Refresh period of the per-instance line snapshots that answer
    /// waiting visitors' polls (and of the buffered heartbeats' writes).
    pub line_refresh_ms: u64,
}

/// Rate limiting settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Joins per second per IP; 0 disables.
    pub join_per_second: u32,
    /// Status polls per second per IP; 0 disables.
    pub status_per_second: u32,
    /// Hold attempts per second per IP; 0 disables.
    pub hold_per_second: u32,
    /// Requests in flight per instance before 429.
    pub max_in_flight: usize,
    /// Reverse proxies in front of floodgate that append the client's
    /// address to `X-Forwarded-For` (nginx, a load balancer): the client
    /// is the entry this many places from the right. 0 (the default): the
    /// header is ignored and the peer address is the client. Entries left
    /// of it are written by the client and never trusted.
    pub trusted_proxies: u32,
}

/// One webhook target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpoint {
    /// Name, used in delivery records and admin listings.
    pub name: String,
    /// URL events are POSTed to.
    pub url: String,
    /// HMAC secret of the `Floodgate-Signature` header.
    pub secret: SecretString,
    /// Event types: exact (`order.confirmed`), prefix (`hold.*`) or `*`.
    #[serde(default = "all_events")]
    pub events: Vec<String>,
}

fn all_events() -> Vec<String> {
    vec!["*".into()]
}

impl WebhookEndpoint {
    /// Whether this endpoint wants events of `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.events.iter().any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => event_type.starts_with(prefix),
            None => pattern == event_type,
        })
    }
}

/// Webhook delivery settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Targets.
    #[serde(default)]
    pub endpoints: Vec<WebhookEndpoint>,
    /// Timeout of one delivery.
    pub timeout_ms: u64,
    /// Tries before dead-lettering.
    pub max_attempts: i32,
    /// First retry delay.
    pub backoff_base_ms: u64,
    /// Largest retry delay.
    pub backoff_max_ms: u64,
    /// Dispatcher period.
    pub dispatch_ms: u64,
}

/// Reminder timing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSettings {
    /// `hold.expiring` this long before a hold expires, but not before half
    /// of the hold's time has passed (see `events::reminders`).
    pub hold_expiring_before_seconds: i64,
    /// `sale.starting` this long before a sale starts.
    pub sale_starting_before_seconds: i64,
}

/// Demo data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSettings {
    /// Seed a demo sale at start-up when none exists.
    pub seed: bool,
}

/// Reads the settings for `FLOODGATE_ENV` (default `dev`) from `config/`
/// next to the working directory or the crate.
pub fn get_configuration() -> Result<Settings, anyhow::Error> {
    let environment: Environment =
        std::env::var("FLOODGATE_ENV").unwrap_or_else(|_| "dev".into()).try_into().map_err(anyhow::Error::msg)?;
    let dir = std::env::var("FLOODGATE_CONFIG_DIR").unwrap_or_else(|_| {
        let local = Path::new("config");
        if local.join("default.toml").exists() {
            "config".into()
        } else {
            concat!(env!("CARGO_MANIFEST_DIR"), "/config").into()
        }
    });
    load(Path::new(&dir), environment)
}

/// Whether logs should be JSON when the settings themselves could not be
/// read: `FLOODGATE__SERVER__JSON_LOGS` if it says, else as the
/// environment's files do (text in dev and test, JSON elsewhere).
pub fn json_logs_before_settings() -> bool {
    if let Some(json) = std::env::var("FLOODGATE__SERVER__JSON_LOGS").ok().and_then(|v| v.parse().ok()) {
        return json;
    }
    let environment = std::env::var("FLOODGATE_ENV").unwrap_or_else(|_| "dev".into());
    !matches!(Environment::try_from(environment), Ok(Environment::Dev | Environment::Test))
}

/// Loads and validates settings from `dir` for `environment`.
pub fn load(dir: &Path, environment: Environment) -> Result<Settings, anyhow::Error> {
    let settings = config::Config::builder()
        .add_source(config::File::from(dir.join("default.toml")))
        .add_source(config::File::from(dir.join(format!("{}.toml", environment.file_stem()))).required(false))
        .add_source(
            config::Environment::with_prefix("FLOODGATE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("admin.keys")
                .with_list_parse_key("redis.cluster_nodes"),
        )
        .build()?;
    // Unknown keys are refused (every settings struct denies them), so a
    // misspelled FLOODGATE__SERVER__PROT or max_body_byte stops start-up.
    let mut settings: Settings =
        settings.try_deserialize().map_err(|e| anyhow::anyhow!("configuration in {} refused: {e}", dir.display()))?;
    if let Some(secret) = settings.tokens.secret.take() {
        let id = settings.tokens.secret_id.clone().unwrap_or_else(|| "env".into());
        settings.tokens.keys.insert(0, SigningKey { id, secret });
    }
    settings.environment = Some(environment);
    settings.validate(environment)?;
    Ok(settings)
}

/// Secrets shipped in `dev.toml`/`test.toml`; refused in production.
const KNOWN_DEV_SECRETS: &[&str] = &[
    "dev-token-secret-change-me-0123456789",
    "test-token-secret-0123456789abcdef",
    "dev-admin-key",
    "test-admin-key",
    "dev-webhook-secret",
    "test-webhook-secret",
];

/// Longest `jobs.idle_tick_ms`: half the time after which an untouched
/// metric series is retired (`metrics::IDLE_TIMEOUT`).
pub const MAX_IDLE_TICK_MS: u64 = 15_000;

impl Settings {
    fn validate(&self, environment: Environment) -> Result<(), anyhow::Error> {
        let mut missing = Vec::new();
        if self.tokens.keys.is_empty() || self.tokens.keys.iter().any(|k| k.secret.expose_secret().len() < 16) {
            missing.push("tokens.keys or tokens.secret (FLOODGATE__TOKENS__SECRET, >= 16 bytes)");
        }
        if self.admin.keys.iter().all(|k| k.expose_secret().is_empty()) {
            missing.push("admin.keys (FLOODGATE__ADMIN__KEYS)");
        }
        if self.payments.webhook_secret.as_ref().is_none_or(|s| s.expose_secret().is_empty()) {
            missing.push("payments.webhook_secret (FLOODGATE__PAYMENTS__WEBHOOK_SECRET)");
        }
        if self.webhooks.endpoints.iter().any(|e| e.secret.expose_secret().len() < 8 || e.url.is_empty()) {
            missing.push("webhooks.endpoints[].url and secret (>= 8 bytes)");
        }
        if !missing.is_empty() {
            anyhow::bail!("missing secrets, refusing to start: {}", missing.join(", "));
        }
        if !(1..=MAX_IDLE_TICK_MS).contains(&self.jobs.idle_tick_ms) {
            // An idle sale's gauges are refreshed at its idle ticks, and a
            // metric series untouched for 30 s is retired.
            anyhow::bail!("jobs.idle_tick_ms must be between 1 and {MAX_IDLE_TICK_MS}");
        }
        if environment == Environment::Production {
            let secrets = self
                .tokens
                .keys
                .iter()
                .map(|k| (format!("tokens.keys (key id {})", k.id), k.secret.expose_secret()))
                .chain(self.admin.keys.iter().map(|k| ("admin.keys".to_owned(), k.expose_secret())))
                .chain(
                    self.payments
                        .webhook_secret
                        .iter()
                        .map(|s| ("payments.webhook_secret".to_owned(), s.expose_secret())),
                );
            for (setting, secret) in secrets {
                if KNOWN_DEV_SECRETS.contains(&secret) {
                    anyhow::bail!("{setting} holds a dev/test secret; refusing to start in production");
                }
            }
            if self.payments.dev_checkout {
                anyhow::bail!("payments.dev_checkout must be off in production");
            }
            if self.demo.seed {
                anyhow::bail!("demo.seed must be off in production");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The project's config files copied to a temporary folder, with
    /// `edit` applied to `test.toml`.
    fn load_edited(edit: impl Fn(String) -> String, environment: Environment) -> Result<Settings, anyhow::Error> {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let dir = std::env::temp_dir().join(format!("floodgate-config-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(source.join("default.toml"), dir.join("default.toml")).unwrap();
        let test = std::fs::read_to_string(source.join("test.toml")).unwrap();
        let stem = if environment == Environment::Production { "production" } else { "test" };
        std::fs::write(dir.join(format!("{stem}.toml")), edit(test)).unwrap();
        let loaded = load(&dir, environment);
        let _ = std::fs::remove_dir_all(&dir);
        loaded
    }

    #[test]
    fn endpoints_want_exact_types_prefixes_or_everything() {
        let endpoint = |events: &[&str]| WebhookEndpoint {
            name: "e".into(),
            url: "http://127.0.0.1:1/".into(),
            secret: "secret-secret".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
        };
        assert!(endpoint(&["*"]).wants("hold.created"));
        assert!(endpoint(&["hold.*"]).wants("hold.expired"));
        assert!(!endpoint(&["hold.*"]).wants("order.confirmed"));
        assert!(endpoint(&["order.confirmed"]).wants("order.confirmed"));
        assert!(!endpoint(&["order.confirmed"]).wants("order.cancelled"));
        assert!(!endpoint(&[]).wants("hold.created"));
    }

    #[test]
    fn the_project_configuration_loads() {
        load_edited(|t| t, Environment::Test).expect("test.toml loads");
    }

    #[test]
    fn a_misspelled_key_stops_start_up_and_is_named() {
        let error = load_edited(|t| t.replacen("[server]", "[server]\nprot = 9000", 1), Environment::Test)
            .expect_err("an unknown key is refused");
        assert!(format!("{error:#}").contains("prot"), "{error:#}");
        let error = load_edited(|t| format!("{t}\n[typo_section]\nx = 1\n"), Environment::Test)
            .expect_err("an unknown section is refused");
        assert!(format!("{error:#}").contains("typo_section"), "{error:#}");
    }

    #[test]
    fn an_idle_tick_longer_than_a_metric_series_lives_is_refused() {
        let error = load_edited(|t| t.replacen("[jobs]", "[jobs]\nidle_tick_ms = 60000", 1), Environment::Test)
            .expect_err("a minute is too long");
        assert!(format!("{error:#}").contains("jobs.idle_tick_ms"), "{error:#}");
        let edit = |t: String| t.replacen("[jobs]", &format!("[jobs]\nidle_tick_ms = {MAX_IDLE_TICK_MS}"), 1);
        assert_eq!(
            load_edited(edit, Environment::Test).expect("the longest allowed").jobs.idle_tick_ms,
            MAX_IDLE_TICK_MS
        );
    }

    #[test]
    fn a_dev_secret_in_production_is_named() {
        let error = load_edited(|t| t, Environment::Production).expect_err("test secrets refused in production");
        let text = format!("{error:#}");
        assert!(
            text.contains("tokens.keys") || text.contains("admin.keys") || text.contains("webhook_secret"),
            "{text}"
        );
    }
}
