//! Connection pools for Postgres and Redis, built so that a dead dependency
//! answers within a bounded time instead of hanging a request.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use deadpool_redis::{Config as RedisPoolConfig, Pool as RedisPool, Runtime, Timeouts};
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

/// The Redis side: a pool, the key prefix, and the per-call time limit.
#[derive(Clone)]
pub struct Redis {
    /// Pooled multiplexed connections.
    pub pool: RedisPool,
    /// Prefix of every key.
    pub prefix: String,
    /// Upper bound on one call, pool wait included.
    pub timeout: Duration,
}

impl Redis {
    /// Builds the pool; connections are made on first use.
    pub fn new(settings: &RedisSettings) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(settings.timeout_ms);
        let mut config = RedisPoolConfig::from_url(settings.url.clone());
        let mut pool_config = deadpool_redis::PoolConfig::new(settings.max_connections);
        pool_config.timeouts = Timeouts { wait: Some(timeout), create: Some(timeout), recycle: Some(timeout) };
        config.pool = Some(pool_config);
        let pool = config.create_pool(Some(Runtime::Tokio1))?;
        Ok(Redis { pool, prefix: settings.key_prefix.clone(), timeout })
    }

    /// Runs `f` with a pooled connection, bounded by the configured timeout.
    /// Any failure to reach Redis becomes a 503.
    pub async fn run<T, F, Fut>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(deadpool_redis::Connection) -> Fut,
        Fut: Future<Output = Result<T, redis::RedisError>>,
    {
        let work = async {
            let connection = self.pool.get().await?;
            f(connection).await.map_err(AppError::from)
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(AppError::Unavailable(anyhow::anyhow!("redis call timed out"))),
        }
    }

    /// `PING`, for readiness.
    pub async fn ping(&self) -> AppResult<()> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await }).await.map(|_| ())
    }
}

/// `SELECT 1` bounded by `timeout`, for readiness.
pub async fn pg_ping(pool: &PgPool, timeout: Duration) -> AppResult<()> {
    match tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(pool)).await {
        Ok(result) => result.map(|_| ()).map_err(|e| AppError::Unavailable(e.into())),
        Err(_) => Err(AppError::Unavailable(anyhow::anyhow!("postgres ping timed out"))),
    }
}
