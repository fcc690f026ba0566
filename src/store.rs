//! Connection pools for Postgres and Redis, built so that a dead dependency
//! answers within a bounded time instead of hanging a request.

use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::configuration::{DatabaseSettings, RedisSettings};
use crate::error::{AppError, AppResult};

/// Connection options for `settings.url`.
pub fn pg_connect_options(settings: &DatabaseSettings) -> Result<PgConnectOptions, sqlx::Error> {
    let options = PgConnectOptions::from_str(&settings.url)?;
    Ok(options.options([("statement_timeout", settings.statement_timeout_ms.to_string())]))
}

/// A lazily connecting Postgres pool: start-up does not wait for it, and a
/// request waits at most `acquire_timeout_ms` for a connection.
pub fn pg_pool(settings: &DatabaseSettings, options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        .connect_lazy_with(options)
}

/// The Redis side: a few shared multiplexed connections, the key prefix, and
/// the per-call time limit.
///
/// A multiplexed connection pipelines every caller's commands over one
/// socket, so it is cloned per request rather than pooled: a pool would add
/// a checkout (and deadpool's `PING` on every recycle, a second round trip
/// per poll) for nothing. A few connections instead of one spread the
/// encoding and socket work over the runtime's workers. Each reconnects by
/// itself after Redis comes back.
#[derive(Clone)]
pub struct Redis {
    connections: Arc<[ConnectionManager]>,
    next: Arc<AtomicUsize>,
    /// Prefix of every key.
    pub prefix: String,
    /// Upper bound on one call, reconnecting included.
    pub timeout: Duration,
}

impl Redis {
    /// Sets the connections up; they connect on first use, so start-up does
    /// not wait for Redis.
    pub fn new(settings: &RedisSettings) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(settings.timeout_ms);
        let client = redis::Client::open(settings.url.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let connections = (0..settings.connections.max(1))
            .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Redis {
            connections: connections.into(),
            next: Arc::new(AtomicUsize::new(0)),
            prefix: settings.key_prefix.clone(),
            timeout,
        })
    }

    /// Shared connections.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// A handle on one of the shared connections, round robin.
    pub fn connection(&self) -> ConnectionManager {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        self.connections[i].clone()
    }

    /// Runs `f` with a shared connection, bounded by the configured timeout,
    /// and records its latency under `op` (a script or command name, see
    /// [`crate::metrics::REDIS_COMMAND_DURATION`]). Any failure to reach Redis
    /// becomes a 503.
    pub async fn run<T, F, Fut>(&self, op: &'static str, f: F) -> AppResult<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, redis::RedisError>>,
    {
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(self.timeout, f(self.connection())).await;
        crate::metrics::redis_call(op, started.elapsed());
        match result {
            Ok(result) => result.map_err(AppError::from),
            Err(_) => Err(AppError::Unavailable("redis call timed out".into())),
        }
    }

    /// `PING`, for readiness.
    pub async fn ping(&self) -> AppResult<()> {
        self.run("ping", |mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
    }
}

/// Runs `f` on a pooled Postgres connection, recording the wait for the
/// connection ([`crate::metrics::PG_POOL_ACQUIRE`]) and how long `op` took
/// on it ([`crate::metrics::PG_QUERY_DURATION`]).
pub async fn with_pg<T, E: From<sqlx::Error>>(
    db: &PgPool,
    op: &'static str,
    f: impl AsyncFnOnce(&mut sqlx::PgConnection) -> Result<T, E>,
) -> Result<T, E> {
    let waited = std::time::Instant::now();
    let mut conn = db.acquire().await?;
    crate::metrics::pg_acquire(waited.elapsed());
    let started = std::time::Instant::now();
    let result = f(&mut conn).await;
    crate::metrics::pg_query(op, started.elapsed());
    result
}

/// `SELECT 1` bounded by `timeout`, for readiness.
pub async fn pg_ping(pool: &PgPool, timeout: Duration) -> AppResult<()> {
    match tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(pool)).await {
        Ok(result) => result.map(|_| ()).map_err(|e| AppError::Unavailable(e.into())),
        Err(_) => Err(AppError::Unavailable("postgres ping timed out".into())),
    }
}
