//! The waiting room: a serving-counter queue per sale in Redis.
//!
//! Each visitor gets a join number `n`; the sale's `serving` number advances
//! at `admit_per_second` while fewer than `max_active` admitted visitors are
//! unfinished; a visitor whose place is at or below `serving` is admitted.
//!
//! Memory per waiting visitor is 4 bytes (a u32 "last seen" slot in one
//! string, indexed by join number), plus 8 for a pre-queued one (its place
//! after the shuffle and the inverse) and one hash field for a signed-in user.
//! The queue token carries `n`, so a status poll is one O(1) script; a new
//! join is one script too, which also answers where the new place stands.
//!
//! Keys of a sale share the hash tag `{sale}` so the scripts run unchanged on
//! a Redis Cluster:
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `meta` | hash | state and admission settings copied from Postgres; `seq` (last join number), `serving`, the tick budget, the measured `rate`, `pq`/`shuf` (pre-queue size and whether its order is written), lottery `drawn`/`hold_until`, counters |
//! | `seen` | string | u32 per join number: last poll in unix seconds; 1 = abandoned |
//! | `active` | zset | join number → admission (or hold) deadline, unix ms |
//! | `users` | hash | signed-in user id → join number |
//! | `pos` | string | u32 per join number: place after the shuffle |
//! | `at` | string | u32 per place: join number (inverse of `pos`) |
//! | `rev` | string | 1 bit per join number: the admission was revealed to the visitor |
//! | `owed` | zset | join number → when: FIFO admissions their visitors slept through (past the reveal grace), given again before the serving number advances |
//! | `adm` | zset | admissions whose `queue.admitted` event is not yet in the outbox (join number → `n\|deadline\|user`) |
//! | `ch:<minute>` | string | proof-of-work challenges handed out in that minute (each challenge's serial number) |
//! | `pow:<minute>` | bitmap | bit n: the n-th challenge handed out in that minute has joined (dropped once they all expired) |
//! | `addr:<minute>` | hash | challenges handed out per client address in that minute (expires after 150 s) |
//! | `net:<minute>` | zset | challenges handed out per network (IPv4 /24, IPv6 /64) in that minute (expires after 150 s) |
//! | `removed` | set | visitor ids whose places an admin took away (`meta.rmv` counts the changes) |
//! | `gate` | hash | the gate's counters: challenges `issued` and `solved`, refusals by code |
//!
//! Two things keep Redis off the per-request path at line rate: joins are
//! batched (`batch.rs`), and a waiting visitor's poll is answered from this
//! instance's snapshot of the line ([`mod@line`]), whose heartbeats are written
//! with the next refresh. Only visitors at or past the serving number run
//! `status.lua` per poll.

mod batch;
pub mod idle;
pub mod line;
pub mod reconcile;
pub mod routes;
pub mod sources;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use redis::{AsyncCommands, FromRedisValue, ParsingError, Script, Value};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::AppResult;
use crate::fairness;
use crate::gate::challenge::Ticket;
use crate::per_thread::PerThread;
use crate::sales::Sale;
use crate::store::Redis;

/// The Lua scripts, each loaded once and run by EVALSHA (reloaded on
/// `NOSCRIPT` by `redis::Script`).
pub struct Scripts {
    join: Script,
    status: Script,
    admit: Script,
    freeze_prequeue: Script,
    finish: Script,
    sync_sale: Script,
    adapt: Script,
    draw: Script,
    source: Script,
    remove: Script,
}

impl Scripts {
    /// Loads the scripts from `lua/`.
    pub fn new() -> Self {
        Scripts {
            join: Script::new(include_str!("../../lua/join.lua")),
            status: Script::new(include_str!("../../lua/status.lua")),
            admit: Script::new(include_str!("../../lua/admit.lua")),
            freeze_prequeue: Script::new(include_str!("../../lua/freeze_prequeue.lua")),
            finish: Script::new(include_str!("../../lua/finish.lua")),
            sync_sale: Script::new(include_str!("../../lua/sync_sale.lua")),
            adapt: Script::new(include_str!("../../lua/adapt.lua")),
            draw: Script::new(include_str!("../../lua/draw.lua")),
            source: Script::new(include_str!("../../lua/source.lua")),
            remove: Script::new(include_str!("../../lua/remove.lua")),
        }
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}

/// How far above its last saved value the join counter resumes after Redis
/// lost its data. Numbers are saved every clock tick, so this covers the
/// joins of one tick at up to 20,000 joins a second; the ticker skips the
/// unused numbers (counting them as abandoned).
const RESTORED_SEQ_MARGIN: i64 = 10_000;

/// Key names of one sale (only the waiting room knows them).
struct Keys {
    base: String,
}

impl Keys {
    /// Keys of `sale` under `prefix`.
    fn new(prefix: &str, sale: &str) -> Self {
        Keys { base: format!("{prefix}:{{{sale}}}") }
    }

    /// A key of this sale.
    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.base)
    }
}

/// How long an unrevealed FIFO admission keeps its `max_active` slot (at
/// most the admission window): several times the 1 s poll interval of the
/// visitors near the front, so only a visitor who stopped polling loses it.
/// Losing the slot is not losing the place: back within the abandonment
/// time, they are admitted at once if a slot is free, else owed the next one
/// (`owed`, served by admit.lua before the serving number advances).
const REVEAL_GRACE: Duration = Duration::from_secs(10);

/// Everything the waiting room does, bound to Redis.
pub struct WaitingRoom {
    /// Redis access.
    pub redis: Redis,
    scripts: Scripts,
    lines: line::Lines,
    /// One join batcher per worker thread, so a join never wakes another
    /// thread to reach Redis.
    joiners: PerThread<Arc<batch::Joiner>>,
    /// The live sales whose admission tick and copy to Redis this instance
    /// may skip.
    pub idle: Arc<idle::IdleSales>,
}

/// What a status poll finds.
#[derive(Debug)]
pub enum Polled {
    /// An admin took the place away.
    Removed,
    /// The place and its standing.
    At(Standing),
}

/// Result of a join.
#[derive(Debug)]
pub enum JoinOutcome {
    /// A new place, and where it stands (from the same script call).
    New(u64, Standing),
    /// This signed-in user already had this place.
    Again(u64),
    /// The proof-of-work challenge sent with the join already joined.
    ChallengeReused,
    /// The sale takes no joins (state or `drawn`).
    Refused(String),
    /// Redis does not know the sale (new, or Redis lost its data): sync it
    /// from a fresh Postgres row, then join again.
    Unknown,
}

/// What `join.lua` says of one visitor's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A new number.
    New,
    /// The number this signed-in user already had.
    Again,
    /// None: the visitor's challenge already joined.
    ChallengeReused,
}

/// What `join.lua` did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchCode {
    /// Places given (one per visitor).
    Placed,
    /// Redis does not know the sale: sync it and join again.
    UnknownSale,
    /// The sale takes no joins (`state` says why).
    Refused,
}

/// What `join.lua` answers for a batch.
#[derive(Debug)]
struct JoinReply {
    code: BatchCode,
    state: String,
    serving: u64,
    frozen: bool,
    rate: Option<f64>,
    drawn: Option<u64>,
    /// The first new join number; the new numbers go out in batch order to
    /// every visitor not in `listed`.
    first: u64,
    /// The visitors without a new number: index in the batch, join number,
    /// and what it is (never [`Place::New`]), in batch order.
    listed: Vec<(usize, u64, Place)>,
}

impl FromRedisValue for JoinReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let mut items = Vec::<Value>::from_redis_value(v)?.into_iter();
        let mut next = || items.next().ok_or_else(|| ParsingError::from("join.lua reply too short".to_owned()));
        let code = match i64::from_redis_value(next()?)? {
            1 => BatchCode::Placed,
            -1 => BatchCode::UnknownSale,
            -2 => BatchCode::Refused,
            other => return Err(ParsingError::from(format!("join.lua answered an unknown code {other}"))),
        };
        let state = String::from_redis_value(next()?)?;
        let serving = u64::from_redis_value(next()?)?;
        let frozen = i64::from_redis_value(next()?)? == 1;
        let rate = parse_rate(&String::from_redis_value(next()?)?);
        let drawn = String::from_redis_value(next()?)?.parse().ok();
        let mut reply = JoinReply { code, state, serving, frozen, rate, drawn, first: 0, listed: Vec::new() };
        if code != BatchCode::Placed {
            return Ok(reply);
        }
        reply.first = u64::from_redis_value(next()?)?;
        while let Ok(index) = next() {
            let index = usize::from_redis_value(index)?;
            let n = u64::from_redis_value(next()?)?;
            let place = match i64::from_redis_value(next()?)? {
                1 => Place::Again,
                2 => Place::ChallengeReused,
                other => return Err(ParsingError::from(format!("join.lua answered an unknown place flag {other}"))),
            };
            reply.listed.push((index, n, place));
        }
        Ok(reply)
    }
}

impl JoinReply {
    /// One outcome per visitor of the batch, in order.
    fn outcomes(self, visitors: usize) -> Vec<JoinOutcome> {
        match self.code {
            BatchCode::Placed => {
                let mut listed = self.listed.iter().peekable();
                let mut fresh = self.first;
                (1..=visitors)
                    .map(|i| match listed.next_if(|&&(index, _, _)| index == i) {
                        Some(&(_, n, place)) => self.outcome(n, place),
                        None => {
                            fresh += 1;
                            self.outcome(fresh - 1, Place::New)
                        }
                    })
                    .collect()
            }
            BatchCode::Refused => (0..visitors).map(|_| JoinOutcome::Refused(self.state.clone())).collect(),
            BatchCode::UnknownSale => (0..visitors).map(|_| JoinOutcome::Unknown).collect(),
        }
    }

    fn outcome(&self, n: u64, place: Place) -> JoinOutcome {
        match place {
            Place::Again => JoinOutcome::Again(n),
            Place::ChallengeReused => JoinOutcome::ChallengeReused,
            Place::New => JoinOutcome::New(
                n,
                Standing {
                    sale_state: self.state.clone(),
                    serving: self.serving,
                    // A new number is above a frozen pre-queue, so it
                    // queues FIFO at n.
                    position: self.frozen.then_some(n),
                    standing: PlaceState::Waiting,
                    deadline_ms: None,
                    rate: self.rate,
                    drawn: self.drawn,
                },
            ),
        }
    }
}

/// Where a visitor's join number stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceState {
    /// Behind the serving number (or in an unordered pre-queue).
    Waiting,
    /// Admitted, deadline ahead.
    Admitted,
    /// Passed and admitted, but the deadline is over (or the slot freed).
    Expired,
    /// Passed while not polling.
    Abandoned,
}

impl PlaceState {
    fn parse(text: &str) -> Result<Self, ParsingError> {
        match text {
            "waiting" => Ok(PlaceState::Waiting),
            "admitted" => Ok(PlaceState::Admitted),
            "expired" => Ok(PlaceState::Expired),
            "abandoned" => Ok(PlaceState::Abandoned),
            other => Err(ParsingError::from(format!("status.lua answered an unknown standing {other}"))),
        }
    }
}

/// A visitor's standing as the status script sees it.
#[derive(Debug, Clone)]
pub struct Standing {
    /// Sale state in Redis.
    pub sale_state: String,
    /// Serving number.
    pub serving: u64,
    /// Place in admission order, if known yet.
    pub position: Option<u64>,
    /// Where the place stands.
    pub standing: PlaceState,
    /// Admission deadline, unix ms.
    pub deadline_ms: Option<i64>,
    /// Measured admissions per second.
    pub rate: Option<f64>,
    /// Lottery winners, once drawn.
    pub drawn: Option<u64>,
}

impl FromRedisValue for Standing {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        // status.lua also answers the last join number (unused here).
        let (sale_state, serving, position, standing, deadline, rate, drawn, _seq): (
            String,
            u64,
            i64,
            String,
            String,
            String,
            String,
            u64,
        ) = FromRedisValue::from_redis_value(v)?;
        Ok(Standing {
            sale_state,
            serving,
            position: u64::try_from(position).ok().filter(|p| *p > 0),
            standing: PlaceState::parse(&standing)?,
            deadline_ms: deadline.parse::<f64>().ok().map(|d| d as i64),
            rate: parse_rate(&rate),
            drawn: drawn.parse().ok(),
        })
    }
}

/// What `HMGET meta state serving pq shuf rate drawn` answers.
type LineFields = (Option<String>, Option<u64>, Option<u64>, Option<String>, Option<String>, Option<u64>, Option<u64>);

/// Queue figures for a sale page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueSummary {
    /// Join numbers handed out.
    pub joined: u64,
    /// Serving number.
    pub serving: u64,
    /// Visitors behind the serving number.
    pub length: u64,
    /// Admitted visitors not yet finished.
    pub active: u64,
    /// Admitted so far.
    pub admitted: u64,
    /// Skipped for not polling.
    pub abandoned: u64,
    /// Measured admissions per second, `null` when unknown.
    pub admission_rate: Option<f64>,
    /// Estimated wait at the back of the queue.
    pub estimated_wait_seconds: Option<u64>,
    /// Admission rate in force: the configured one, or the adaptive
    /// controller's.
    pub effective_admit_per_second: Option<f64>,
    /// Entries (join numbers `1..=n`) the pre-queue shuffle or the lottery
    /// draw puts in order (`src/fairness.rs`); `null` until the start
    /// fixes them, 0 when nothing was shuffled.
    pub shuffled_entries: Option<u64>,
}

/// `HMGET meta seq serving admitted abandoned rate amode arate aps pq`.
type SummaryFields = (
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<f64>,
    Option<u64>,
);

/// A lottery's draw as Redis holds it.
#[derive(Debug, Clone, Copy)]
pub struct Drawn {
    /// This call drew it (else an earlier one did).
    pub fresh: bool,
    /// Winners admitted.
    pub winners: u64,
    /// Entries in the draw.
    pub entries: u64,
    /// End of the winners' purchase window, unix ms.
    pub window_end_ms: i64,
}

/// An admission whose `queue.admitted` event may not be written yet.
#[derive(Debug, Clone)]
pub struct PendingAdmission {
    /// Join number.
    pub n: u64,
    /// Admission deadline (of the slot, at admission), unix ms.
    pub deadline_ms: i64,
    /// Signed-in user id, empty if anonymous.
    pub user: String,
    member: String,
}

/// Result of an admission tick.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct AdmitResult {
    /// Visitors admitted.
    pub admitted: u64,
    /// Visitors skipped as abandoned.
    pub abandoned: u64,
    /// Serving number after the tick.
    pub serving: u64,
    /// Last join number.
    pub joined: u64,
    /// Admitted visitors not yet finished.
    pub active: u64,
    /// False when a manual admission found the pre-queue's order not yet
    /// written, so it admitted nobody.
    #[serde(skip)]
    pub ready: bool,
    /// False when Redis does not know the sale (never copied, or its data
    /// was lost): such a sale is never idle, so the clock copies it back at
    /// its next tick.
    #[serde(skip)]
    pub known: bool,
}

/// What admit.lua returns.
type AdmitReply = (u64, u64, u64, u64, u64, i64);

fn parse_rate(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|r| r.is_finite() && *r > 0.0)
}

/// Seconds to get through `ahead` visitors at `rate`, when known.
pub fn estimated_wait(ahead: u64, rate: Option<f64>) -> Option<u64> {
    rate.map(|r| (ahead as f64 / r).ceil() as u64)
}

/// How long a client should wait before polling again. Near the front
/// (within `max_active` places, or five seconds of admissions) 1 s, so an
/// admitted visitor learns of it at once instead of sleeping on a slot.
/// Behind that a third of the remaining wait, but no more than the reveal
/// grace (`REVEAL_GRACE`): a visitor admitted while asleep, because the line
/// moved faster than its measured rate, still wakes up inside the grace and
/// keeps the slot, whatever the rate did. Where a tenth of the wait is
/// longer than the grace, a tenth: that far back the line would have to
/// move about fifteen times faster than its measured rate to admit a
/// sleeper more than the grace before their next poll (they then wait for
/// the next free slot, ahead of everyone behind them). At most 30 s, and always well
/// inside the abandonment window so patient visitors never lose their place.
///
/// Most polls come from the visitors a few seconds to a minute from the
/// front (the rate of polls is the integral of 1 / interval over the line):
/// with a tenth of the wait there, 200,000 visitors at 400 admissions/s
/// poll about 20,000 times a second, with this schedule about 14,000, and
/// the flash sale's 200,000 joins got in about a quarter sooner on two shared
/// cores (loadtest/RESULTS.md, session of 2026-12-03).
pub fn poll_after_ms(ahead: u64, rate: Option<f64>, sale: &Sale) -> u64 {
    let near = u64::try_from(sale.max_active).unwrap_or(0).max(rate.map(|r| (r * 5.0) as u64).unwrap_or(0));
    if ahead <= near {
        return 1000;
    }
    let guess = match rate {
        Some(r) => {
            let wait_ms = ahead as f64 / r * 1000.0;
            let grace_ms = REVEAL_GRACE.as_millis() as f64;
            (wait_ms / 3.0).min(grace_ms).max(wait_ms / 10.0) as u64
        }
        None => ahead.saturating_mul(10),
    };
    let ceiling = (u64::try_from(sale.abandon_after_seconds).unwrap_or(60) * 1000 / 3).clamp(1000, 30_000);
    guess.clamp(1000, ceiling)
}

impl WaitingRoom {
    /// The waiting room over `redis`.
    pub fn new(redis: Redis) -> Self {
        WaitingRoom {
            redis,
            scripts: Scripts::new(),
            lines: line::Lines::default(),
            joiners: PerThread::default(),
            idle: Arc::default(),
        }
    }

    fn keys(&self, sale: &str) -> Keys {
        Keys::new(&self.redis.prefix, sale)
    }

    /// Copies the sale's state and admission settings into Redis (never
    /// over a newer copy) and restores counters Redis lost (see
    /// `lua/sync_sale.lua`). Returns whether anything had to be restored.
    pub async fn sync_sale(&self, sale: &Sale) -> AppResult<bool> {
        let mut invocation = self.scripts.sync_sale.prepare_invoke();
        invocation
            .key(self.keys(&sale.id).key("meta"))
            .arg(sale.updated_at.timestamp_micros())
            .arg(sale.queue_seq_saved)
            .arg(sale.queue_serving_saved)
            .arg(sale.queue_prequeue_saved.unwrap_or(-1))
            .arg(sale.lottery_winners.map(|w| w.to_string()).unwrap_or_default())
            .arg(RESTORED_SEQ_MARGIN)
            .arg(Utc::now().timestamp());
        for (field, value) in [
            ("state", sale.state.as_str().to_owned()),
            ("mode", sale.mode.as_str().to_owned()),
            ("wr", if sale.waiting_room { "1" } else { "0" }.into()),
            ("aps", sale.admit_per_second.to_string()),
            ("max", sale.max_active.to_string()),
            ("attl", sale.admission_ttl_seconds.to_string()),
            ("aband", sale.abandon_after_seconds.to_string()),
            ("amode", sale.admission_mode.as_str().to_owned()),
            ("aceil", sale.admit_ceiling.map(|c| c.to_string()).unwrap_or_default()),
        ] {
            invocation.arg(field).arg(value);
        }
        let (written, restored): (i64, i64) =
            self.redis.run("sync_sale", |mut c| async move { invocation.invoke_async(&mut c).await }).await?;
        if written == 1 {
            self.lines.forget(&sale.id);
        }
        if restored == 1 {
            tracing::warn!(sale = %sale.id, "waiting room counters restored from Postgres");
            ::metrics::counter!(crate::metrics::REPAIRS, "kind" => "counters").increment(1);
        }
        Ok(restored == 1)
    }

    /// Joins `sale`; `user` is the signed-in user id, if any. Joins arriving
    /// together share one script call (see `batch.rs`).
    pub async fn join(&self, sale: &Sale, user: Option<&str>, ticket: Option<&Ticket>) -> AppResult<JoinOutcome> {
        let joiner = self.joiners.get_or_make(|| {
            Arc::new(batch::Joiner::start(self.redis.clone(), self.scripts.join.clone(), self.idle.clone()))
        });
        joiner.join(&sale.id, user.unwrap_or(""), ticket).await
    }

    /// Where join number `n` stands; also records that the visitor is there.
    /// A visitor behind the serving number is answered from this instance's
    /// snapshot of the line; others run `status.lua`.
    async fn status(&self, sale: &str, n: u64) -> AppResult<Standing> {
        if let Some(standing) = self.lines.waiting_standing(sale, n) {
            return Ok(standing);
        }
        self.status_script(sale, n).await
    }

    /// A poll of `visitor` at join number `n`: removed (its slot and place
    /// freed now, where the token tells the number), or where it stands.
    /// Both come from this instance's snapshot when it can tell.
    pub async fn poll(&self, sale: &str, visitor: &str, n: u64) -> AppResult<Polled> {
        let (snapshot_removed, standing) = self.lines.poll(sale, visitor, n);
        let removed = match snapshot_removed {
            Some(removed) => removed,
            None => self.removed_in_redis(sale, visitor).await?,
        };
        if removed {
            self.free_removed(sale, n).await?;
            return Ok(Polled::Removed);
        }
        match (standing, snapshot_removed) {
            (Some(standing), _) => Ok(Polled::At(standing)),
            // The snapshot was asked already and could not tell.
            (None, Some(_)) => self.status_script(sale, n).await.map(Polled::At),
            (None, None) => self.status(sale, n).await.map(Polled::At),
        }
    }

    /// `status.lua` for join number `n`.
    async fn status_script(&self, sale: &str, n: u64) -> AppResult<Standing> {
        // A visitor at or past the serving number: the next tick may owe
        // them an admission again.
        self.idle.wake(sale);
        let keys = self.keys(sale);
        let mut invocation = self.scripts.status.prepare_invoke();
        invocation
            .key(keys.key("meta"))
            .key(keys.key("seen"))
            .key(keys.key("active"))
            .key(keys.key("pos"))
            .key(keys.key("rev"))
            .key(keys.key("owed"))
            .arg(n)
            .arg(Utc::now().timestamp_millis());
        let standing: Standing =
            self.redis.run("status", |mut c| async move { invocation.invoke_async(&mut c).await }).await?;
        Ok(standing)
    }

    /// Refreshes this instance's snapshot of every sale polled here, and
    /// writes the heartbeats buffered since the last refresh: one pipelined
    /// round trip per sale, all in flight at once (a Redis Cluster keeps a
    /// sale's keys on one node and refuses a pipeline across slots), plus a
    /// one-off read of a pre-queue's order once it is written. Run every
    /// tick by a background job.
    pub async fn refresh_lines(&self) -> AppResult<()> {
        let due = self.lines.due();
        let refreshed = futures_util::future::join_all(due.into_iter().map(|sale| self.refresh_line(sale))).await;
        refreshed.into_iter().collect()
    }

    /// One sale's refresh; its heartbeats go back to the buffer when Redis
    /// did not take them.
    async fn refresh_line(&self, sale: line::Due) -> AppResult<()> {
        let pipe = self.refresh_pipeline(&sale);
        let replies: AppResult<Vec<LineFields>> =
            self.redis.run("line", |mut c| async move { pipe.query_async(&mut c).await }).await;
        match replies.map(|mut r| r.pop()) {
            Ok(Some(fields)) => self.store_line(&sale, fields).await,
            Ok(None) => Ok(()),
            Err(e) => {
                self.lines.requeue(&sale.sale, sale.heartbeats);
                Err(e)
            }
        }
    }

    /// The pipeline of one sale's refresh: its buffered heartbeats, then its
    /// line fields.
    fn refresh_pipeline(&self, sale: &line::Due) -> redis::Pipeline {
        let now_s = Utc::now().timestamp();
        let mut pipe = redis::pipe();
        let keys = self.keys(&sale.sale);
        for chunk in sale.heartbeats.chunks(2000) {
            let mut bitfield = redis::cmd("BITFIELD");
            bitfield.arg(keys.key("seen"));
            for n in chunk {
                bitfield.arg("SET").arg("u32").arg(format!("#{n}")).arg(now_s);
            }
            pipe.add_command(bitfield).ignore();
        }
        pipe.cmd("HMGET").arg(keys.key("meta")).arg(&["state", "serving", "pq", "shuf", "rate", "drawn", "rmv"]);
        pipe
    }

    /// Stores one sale's refreshed line, and reads what changed rarely
    /// (the pre-queue order, the removed visitors) when it changed.
    async fn store_line(&self, sale: &line::Due, fields: LineFields) -> AppResult<()> {
        let (state, serving, pq, shuf, rate, drawn, removals) = fields;
        let view = line::LineView {
            state: state.unwrap_or_default(),
            serving: serving.unwrap_or(0),
            prequeue: pq,
            shuffled: shuf.as_deref() == Some("1"),
            rate: rate.as_deref().and_then(parse_rate),
            drawn,
            removals: removals.unwrap_or(0),
        };
        if sale.removals_loaded != view.removals {
            let key = self.keys(&sale.sale).key("removed");
            let removed: Vec<String> = self
                .redis
                .run("line_members", |mut c| async move { redis::cmd("SMEMBERS").arg(&key).query_async(&mut c).await })
                .await?;
            self.lines.store_removed(&sale.sale, view.removals, removed.into_iter().collect());
        }
        self.lines.store(&sale.sale, view, sale.generation);
        // The order is read once it is known to be written (the refresh
        // after the one that saw it shuffled).
        if sale.wants_positions {
            let key = self.keys(&sale.sale).key("pos");
            let positions: Vec<u8> = self
                .redis
                .run("line_get", |mut c| async move { redis::cmd("GET").arg(&key).query_async(&mut c).await })
                .await?;
            self.lines.store_positions(&sale.sale, positions);
        }
        Ok(())
    }

    /// Advances the serving number: a regular tick (`manual = None`) at the
    /// configured rate, or exactly `manual` visitors now.
    pub async fn admit(&self, sale: &str, manual: Option<u64>) -> AppResult<AdmitResult> {
        let keys = self.keys(sale);
        let mut invocation = self.scripts.admit.prepare_invoke();
        invocation
            .key(keys.key("meta"))
            .key(keys.key("seen"))
            .key(keys.key("active"))
            .key(keys.key("at"))
            .key(keys.key("users"))
            .key(keys.key("adm"))
            .key(keys.key("owed"))
            .arg(Utc::now().timestamp_millis())
            .arg(manual.map(|m| m as i64).unwrap_or(-1))
            .arg(manual.map(|m| m.saturating_mul(4).max(2000)).unwrap_or(2000))
            .arg(REVEAL_GRACE.as_millis() as u64);
        let (admitted, abandoned, serving, joined, active, ready): AdmitReply =
            self.redis.run("admit", |mut c| async move { invocation.invoke_async(&mut c).await }).await?;
        self.lines.note_serving(sale, serving);
        Ok(AdmitResult { admitted, abandoned, serving, joined, active, ready: ready != 0, known: ready >= 0 })
    }

    /// Freezes the pre-queue at the start and writes its shuffled order
    /// (idempotent: the order is a pure function of the seed).
    pub async fn start(&self, sale: &Sale, shuffle: bool) -> AppResult<()> {
        let keys = self.keys(&sale.id);
        let mut invocation = self.scripts.freeze_prequeue.prepare_invoke();
        invocation.key(keys.key("meta")).arg(if shuffle { "1" } else { "0" });
        let (size, shuffled): (u32, u8) =
            self.redis.run("freeze_prequeue", |mut c| async move { invocation.invoke_async(&mut c).await }).await?;
        if shuffled == 1 || size == 0 {
            return Ok(());
        }
        let lock = keys.key("lock:shuffle");
        let got_lock: Option<String> = self
            .redis
            .run("shuffle_lock", |mut c| async move {
                redis::cmd("SET").arg(&lock).arg("1").arg("NX").arg("PX").arg(30_000).query_async(&mut c).await
            })
            .await?;
        if got_lock.is_none() {
            return Ok(());
        }
        let order = fairness::shuffled_order(&sale.seed, size);
        let mut positions = vec![0u8; (size as usize + 1) * 4];
        let mut at = vec![0u8; (size as usize + 1) * 4];
        for (index, &n) in order.iter().enumerate() {
            let place = index as u32 + 1;
            positions[n as usize * 4..n as usize * 4 + 4].copy_from_slice(&place.to_be_bytes());
            at[place as usize * 4..place as usize * 4 + 4].copy_from_slice(&n.to_be_bytes());
        }
        let (pos_key, at_key, meta) = (keys.key("pos"), keys.key("at"), keys.key("meta"));
        self.redis
            .run("shuffle_write", |mut c| async move {
                redis::pipe()
                    .atomic()
                    .set(&pos_key, positions)
                    .set(&at_key, at)
                    .hset(&meta, "shuf", 1)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await?;
        self.lines.forget(&sale.id);
        Ok(())
    }

    /// Frees (`until_ms = None`) or extends an admission slot.
    pub async fn finish(&self, sale: &str, n: u64, until_ms: Option<i64>) -> AppResult<()> {
        let keys = self.keys(sale);
        let mut invocation = self.scripts.finish.prepare_invoke();
        invocation.key(keys.key("active")).arg(n).arg(until_ms.unwrap_or(0));
        self.redis.run("finish", |mut c| async move { invocation.invoke_async::<i64>(&mut c).await }).await.map(|_| ())
    }

    /// Takes the places of `visitors` away (`lua/remove.lua`): answers how
    /// many were newly removed and how many places were freed at once.
    pub async fn remove(&self, sale: &str, visitors: &[String]) -> AppResult<(u64, u64)> {
        let keys = self.keys(sale);
        let mut invocation = self.scripts.remove.prepare_invoke();
        invocation
            .key(keys.key("meta"))
            .key(keys.key("removed"))
            .key(keys.key("users"))
            .key(keys.key("seen"))
            .key(keys.key("active"));
        for visitor in visitors {
            invocation.arg(visitor);
        }
        let removed = self.redis.run("remove", |mut c| async move { invocation.invoke_async(&mut c).await }).await?;
        self.lines.forget(sale);
        Ok(removed)
    }

    /// Whether an admin took `visitor`'s place in `sale` away: from this
    /// instance's snapshot when it is fresh, else one Redis call.
    pub async fn is_removed(&self, sale: &str, visitor: &str) -> AppResult<bool> {
        match self.lines.is_removed(sale, visitor) {
            Some(removed) => Ok(removed),
            None => self.removed_in_redis(sale, visitor).await,
        }
    }

    async fn removed_in_redis(&self, sale: &str, visitor: &str) -> AppResult<bool> {
        let key = self.keys(sale).key("removed");
        let visitor = visitor.to_owned();
        self.redis.run("is_removed", |mut c| async move { c.sismember(&key, visitor).await }).await
    }

    /// Frees join number `n` of a removed visitor: marked abandoned (the
    /// ticker skips it) and its admission slot released.
    async fn free_removed(&self, sale: &str, n: u64) -> AppResult<()> {
        let keys = self.keys(sale);
        let (seen, active) = (keys.key("seen"), keys.key("active"));
        self.redis
            .run("free_removed", |mut c| async move {
                redis::pipe()
                    .cmd("BITFIELD")
                    .arg(&seen)
                    .arg("SET")
                    .arg("u32")
                    .arg(format!("#{n}"))
                    .arg(1)
                    .ignore()
                    .zrem(&active, n)
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
    }

    /// Queue figures of a sale.
    pub async fn summary(&self, sale: &str) -> AppResult<QueueSummary> {
        let keys = self.keys(sale);
        let (meta, active) = (keys.key("meta"), keys.key("active"));
        let ((seq, serving, admitted, abandoned, rate, mode, adaptive, configured, shuffled), active): (
            SummaryFields,
            u64,
        ) = self
            .redis
            .run("summary", |mut c| async move {
                redis::pipe()
                    .cmd("HMGET")
                    .arg(&meta)
                    .arg(&["seq", "serving", "admitted", "abandoned", "rate", "amode", "arate", "aps", "pq"])
                    .zcount(&active, Utc::now().timestamp_millis(), "+inf")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let (seq, serving) = (seq.unwrap_or(0), serving.unwrap_or(0));
        let rate = rate.as_deref().and_then(parse_rate);
        let length = seq.saturating_sub(serving);
        let effective = match mode.as_deref() {
            Some("adaptive") => adaptive.as_deref().and_then(|r| r.parse().ok()).or(configured),
            _ => configured,
        };
        Ok(QueueSummary {
            joined: seq,
            serving,
            length,
            active,
            admitted: admitted.unwrap_or(0),
            abandoned: abandoned.unwrap_or(0),
            admission_rate: rate,
            estimated_wait_seconds: estimated_wait(length, rate.or(effective.filter(|r| *r > 0.0))),
            effective_admit_per_second: effective,
            shuffled_entries: shuffled,
        })
    }

    /// The counters the sale clock saves to Postgres: `seq`, `serving`, `pq`.
    pub async fn counters(&self, sale: &str) -> AppResult<(Option<i64>, Option<i64>, Option<i64>)> {
        let meta = self.keys(sale).key("meta");
        self.redis
            .run("counters", |mut c| async move {
                redis::cmd("HMGET").arg(&meta).arg(&["seq", "serving", "pq"]).query_async(&mut c).await
            })
            .await
    }

    /// Puts back admission slots (join number, until unix ms) that Redis
    /// lost, never shortening one it has. Returns how many were missing.
    pub async fn restore_slots(&self, sale: &str, slots: &[(i64, i64)]) -> AppResult<u64> {
        let active = self.keys(sale).key("active");
        let mut pipe = redis::pipe();
        for (n, until_ms) in slots {
            pipe.cmd("ZADD").arg(&active).arg("NX").arg(until_ms).arg(n);
        }
        let added: Vec<u64> =
            self.redis.run("restore_slots", |mut c| async move { pipe.query_async(&mut c).await }).await?;
        Ok(added.iter().sum())
    }

    /// The sale's state and join counter in Redis, and the admission slot
    /// deadline of each of `numbers` (`None`: no slot), for the audit.
    pub async fn state_and_slots(
        &self,
        sale: &str,
        numbers: &[i64],
    ) -> AppResult<(Option<String>, Option<i64>, Vec<Option<f64>>)> {
        let keys = self.keys(sale);
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET").arg(keys.key("meta")).arg(&["state", "seq"]);
        if numbers.is_empty() {
            pipe.cmd("ECHO").arg("");
        } else {
            pipe.cmd("ZMSCORE").arg(keys.key("active")).arg(numbers);
        }
        let ((state, seq), scores): ((Option<String>, Option<i64>), Value) =
            self.redis.run("state_and_slots", |mut c| async move { pipe.query_async(&mut c).await }).await?;
        let scores = Vec::<Option<f64>>::from_redis_value(scores).unwrap_or_default();
        Ok((state, seq, scores))
    }

    /// Draws a lottery in Redis: admits the first `winners` places of the
    /// written order until `window_end_ms` (see `lua/draw.lua`); a lottery
    /// drawn already keeps its draw, which is answered instead.
    pub async fn draw(&self, sale: &str, winners: i64, window_end_ms: i64) -> AppResult<Drawn> {
        let keys = self.keys(sale);
        let mut invocation = self.scripts.draw.prepare_invoke();
        invocation.key(keys.key("meta")).key(keys.key("active")).key(keys.key("at")).arg(winners).arg(window_end_ms);
        let (fresh, winners, entries, window_end_ms): (i64, u64, u64, i64) =
            self.redis.run("draw", |mut c| async move { invocation.invoke_async(&mut c).await }).await?;
        self.lines.forget(sale);
        Ok(Drawn { fresh: fresh == 1, winners, entries, window_end_ms })
    }

    /// Up to `limit` admissions whose `queue.admitted` event is not yet in
    /// the outbox, oldest first: (member, join number, deadline ms, user).
    /// Admission happens in Redis and the outbox is in Postgres, so each
    /// admission stays here until [`WaitingRoom::forget_admissions`] after
    /// its event was written (by whichever instance gets there).
    pub async fn pending_admissions(&self, sale: &str, limit: isize) -> AppResult<Vec<PendingAdmission>> {
        let key = self.keys(sale).key("adm");
        let members: Vec<String> = self
            .redis
            .run("pending_admissions", |mut c| async move {
                redis::cmd("ZRANGE").arg(&key).arg(0).arg(limit - 1).query_async(&mut c).await
            })
            .await?;
        Ok(members
            .into_iter()
            .filter_map(|member| {
                let mut parts = member.splitn(3, '|');
                let n = parts.next()?.parse().ok()?;
                let deadline_ms = parts.next()?.parse().ok()?;
                let user = parts.next().unwrap_or("").to_owned();
                Some(PendingAdmission { n, deadline_ms, user, member })
            })
            .collect())
    }

    /// Drops admissions whose events are written.
    pub async fn forget_admissions(&self, sale: &str, written: &[PendingAdmission]) -> AppResult<()> {
        if written.is_empty() {
            return Ok(());
        }
        let key = self.keys(sale).key("adm");
        let members: Vec<&str> = written.iter().map(|p| p.member.as_str()).collect();
        self.redis
            .run("forget_admissions", |mut c| async move {
                redis::cmd("ZREM").arg(&key).arg(&members).query_async::<i64>(&mut c).await
            })
            .await
            .map(|_| ())
    }

    /// One step of an adaptive sale's admission rate (see `adaptive`);
    /// returns the rate in force after it (`None` for a fixed-rate sale).
    pub async fn adapt(&self, sale: &str, verdict: crate::adaptive::Verdict) -> AppResult<Option<f64>> {
        let mut invocation = self.scripts.adapt.prepare_invoke();
        invocation.key(self.keys(sale).key("meta")).arg(Utc::now().timestamp_millis()).arg(verdict.as_arg());
        let rate: String =
            self.redis.run("adapt", |mut c| async move { invocation.invoke_async(&mut c).await }).await?;
        Ok(rate.parse().ok())
    }

    /// Marks a lottery drawn: the first `winners` places are admitted until
    /// `window_end_ms`, and the regular ticker waits until then before it
    /// admits from the waitlist.
    pub async fn mark_drawn(&self, sale: &str, winners: u64, window_end_ms: i64) -> AppResult<()> {
        let meta = self.keys(sale).key("meta");
        self.lines.forget(sale);
        self.redis
            .run("mark_drawn", |mut c| async move {
                redis::cmd("HSET")
                    .arg(&meta)
                    .arg("drawn")
                    .arg(winners)
                    .arg("hold_until")
                    .arg(window_end_ms)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_are_frequent_near_the_front_and_sparse_far_back() {
        let sale = Sale::example(); // max_active 50, abandon after 60 s
        assert_eq!(poll_after_ms(0, Some(10.0), &sale), 1000);
        assert_eq!(poll_after_ms(50, Some(10.0), &sale), 1000, "within max_active of the front");
        // 5 s of admissions at 100/s is further than max_active.
        assert_eq!(poll_after_ms(400, Some(100.0), &sale), 1000);
        // A third of the wait up to the reveal grace: 60 ahead at 10/s is
        // 6 s away, poll in 2 s; 240 ahead is 24 s away, poll in 8 s.
        assert_eq!(poll_after_ms(60, Some(10.0), &sale), 2_000);
        assert_eq!(poll_after_ms(240, Some(10.0), &sale), 8_000);
        // Then the grace itself, until a tenth of the wait is longer: 500
        // ahead at 10/s is 50 s away, poll in 10 s, not 16.7 s.
        assert_eq!(poll_after_ms(500, Some(10.0), &sale), REVEAL_GRACE.as_millis() as u64);
        assert_eq!(poll_after_ms(1000, Some(10.0), &sale), 10_000);
        // Then a tenth: 1,500 ahead at 10/s is 150 s away, poll in 15 s.
        assert_eq!(poll_after_ms(1500, Some(10.0), &sale), 15_000);
        // Never longer for a visitor further back.
        let mut previous = 0;
        for ahead in (0..5000).step_by(7) {
            let poll = poll_after_ms(ahead, Some(10.0), &sale);
            assert!(poll >= previous, "poll_after_ms shrank at {ahead} ahead: {poll} < {previous}");
            previous = poll;
        }
        // Never past a third of the abandonment window (60 s), nor 30 s.
        assert_eq!(poll_after_ms(1_000_000, Some(10.0), &sale), 20_000);
        assert_eq!(poll_after_ms(1_000_000, None, &sale), 20_000);
    }

    #[test]
    fn the_wait_is_unknown_without_a_rate() {
        assert_eq!(estimated_wait(100, None), None);
        assert_eq!(estimated_wait(100, Some(30.0)), Some(4));
        assert_eq!(parse_rate("0"), None);
        assert_eq!(parse_rate("NaN"), None);
        assert_eq!(parse_rate("2.5"), Some(2.5));
    }
}
