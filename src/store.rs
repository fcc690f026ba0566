//! Connection pools for Postgres and Redis, built so that a dead dependency
//! answers within a bounded time instead of hanging a request.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::configuration::{DatabaseSettings, RedisSettings};
use crate::error::{AppError, AppResult};
use crate::per_thread::PerThread;

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

/// The Redis side: shared multiplexed connections (to one Redis, or to a
/// Redis Cluster), the key prefix, and the per-call time limit.
///
/// A multiplexed connection pipelines every caller's commands over one
/// socket, so it is cloned per request rather than pooled: a pool would add
/// a checkout (and deadpool's `PING` on every recycle, a second round trip
/// per poll) for nothing. Each thread that calls Redis (every actix worker,
/// the background jobs) gets connections of its own, opened on that thread:
/// redis-rs drives a connection from a task on the runtime that opened it,
/// so a worker's commands and their answers never cross to another thread
/// (a wake-up of another core per call). Each reconnects by itself after
/// Redis comes back.
#[derive(Clone)]
pub struct Redis {
    opener: Arc<Opener>,
    /// Connections per thread.
    per_thread: usize,
    by_thread: Arc<PerThread<Arc<[Connection]>>>,
    /// Prefix of every key.
    pub prefix: String,
    /// Upper bound on one call, reconnecting included.
    pub timeout: Duration,
}

/// How to open a connection.
enum Opener {
    Single(redis::Client, ConnectionManagerConfig),
    Cluster(ClusterClient, ClusterConfig),
}

/// One shared connection: to a single Redis, or to a Redis Cluster.
///
/// The cluster connection keeps one multiplexed socket per node, routes each
/// command (and each script, by its first key) to the master of its slot,
/// follows `MOVED`/`ASK` and refreshes its slot map after a failover. It
/// needs every pipeline to stay within one slot, which the waiting room's
/// key layout guarantees (all keys of a sale share the hash tag `{sale}`).
#[derive(Clone)]
pub enum Connection {
    /// A single Redis.
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

impl Redis {
    /// Sets the connections up; they connect on first use, so start-up does
    /// not wait for Redis (a configuration they cannot use fails here).
    pub fn new(settings: &RedisSettings) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(settings.timeout_ms);
        let seeds: Vec<&str> = settings.cluster_nodes.iter().map(|n| n.trim()).filter(|n| !n.is_empty()).collect();
        let opener =
            if seeds.is_empty() { single_opener(&settings.url, timeout)? } else { cluster_opener(&seeds, timeout)? };
        opener.open()?;
        Ok(Redis {
            opener: Arc::new(opener),
            per_thread: settings.connections.max(1),
            by_thread: Arc::new(PerThread::default()),
            prefix: settings.key_prefix.clone(),
            timeout,
        })
    }

    /// Connections open, over all threads.
    pub fn connection_count(&self) -> usize {
        self.by_thread.count() * self.per_thread
    }

    /// A handle on one of this thread's connections (opened now on first
    /// use), the next one of them in turn.
    pub fn connection(&self) -> AppResult<Connection> {
        thread_local!(static TURN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) });
        let turn = TURN.with(|t| {
            let turn = t.get();
            t.set(turn.wrapping_add(1));
            turn
        });
        let connections = self.by_thread.get_or_try_make(|| {
            (0..self.per_thread)
                .map(|_| self.opener.open())
                .collect::<anyhow::Result<Vec<_>>>()
                .map(Arc::from)
                .map_err(|e| AppError::Unavailable(e.into()))
        })?;
        Ok(connections[turn % connections.len()].clone())
    }

    /// Runs `f` with a shared connection, bounded by the configured timeout,
    /// and records its latency under `op` (a script or command name, see
    /// [`crate::metrics::REDIS_COMMAND_DURATION`]). Any failure to reach Redis
    /// becomes a 503.
    pub async fn run<T, F, Fut>(&self, op: &'static str, f: F) -> AppResult<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = Result<T, redis::RedisError>>,
    {
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(self.timeout, f(self.connection()?)).await;
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

/// Opens connections to the single Redis at `url`, each reconnecting by
/// itself.
fn single_opener(url: &str, timeout: Duration) -> anyhow::Result<Opener> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(200));
    Ok(Opener::Single(client, config))
}

/// Opens connections to the Redis Cluster that `seeds` belong to. They connect in
/// the background; a command sent before (or while a failover promotes a
/// replica) is retried with backoff until the call's timeout answers 503.
fn cluster_opener(seeds: &[&str], timeout: Duration) -> anyhow::Result<Opener> {
    let client =
        ClusterClientBuilder::new(seeds.to_vec()).retries(16).min_retry_wait(10).max_retry_wait(200).build()?;
    let config = ClusterConfig::new().set_connection_timeout(timeout).set_response_timeout(timeout);
    Ok(Opener::Cluster(client, config))
}

impl Opener {
    /// A new connection, driven from the current thread's runtime.
    fn open(&self) -> anyhow::Result<Connection> {
        Ok(match self {
            Opener::Single(client, config) => {
                Connection::Single(ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?)
            }
            Opener::Cluster(client, config) => {
                Connection::Cluster(client.get_pending_async_connection_with_config(config.clone()))
            }
        })
    }
}

/// `SELECT 1` bounded by `timeout`, for readiness.
pub async fn pg_ping(pool: &PgPool, timeout: Duration) -> AppResult<()> {
    match tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(pool)).await {
        Ok(result) => result.map(|_| ()).map_err(|e| AppError::Unavailable(e.into())),
        Err(_) => Err(AppError::Unavailable("postgres ping timed out".into())),
    }
}
