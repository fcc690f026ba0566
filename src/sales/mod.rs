//! Sales: their definition, state, stages and live availability.
//!
//! A sale's row in Postgres is its truth; a short-lived in-process snapshot
//! spares the hot paths (join, hold) a query per request, and a copy of the
//! fields the waiting room needs lives in Redis (see `waiting_room`).

pub mod create;
pub mod lifecycle;
pub mod routes;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::error::{AppError, AppResult};

/// A sale as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Sale {
    /// Opaque id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// First come, first served, or a lottery.
    #[sqlx(try_from = "String")]
    pub mode: SaleMode,
    /// Where the sale is in its life.
    #[sqlx(try_from = "String")]
    pub state: SaleState,
    /// When stage 1 opens (FIFO) or the entry window closes (lottery).
    pub starts_at: DateTime<Utc>,
    /// When the sale closes by itself.
    pub ends_at: Option<DateTime<Utc>>,
    /// Numbered units or reserved seats.
    #[sqlx(try_from = "String")]
    pub seating: Seating,
    /// Units in all stages.
    pub total_units: i32,
    /// Units one visitor may hold or own at once.
    pub per_user_limit: i32,
    /// Lifetime of a hold.
    pub hold_ttl_seconds: i32,
    /// Shuffle the pre-queue at the start.
    pub shuffle_prequeue: bool,
    /// Highest unit id on sale.
    pub released_upto: i32,
    /// Stages released so far.
    pub released_stages: i32,
    /// Whether joins go through the waiting room.
    pub waiting_room: bool,
    /// Admission inflow.
    pub admit_per_second: i32,
    /// Admitted-but-unfinished visitors allowed at once.
    pub max_active: i32,
    /// Time an admitted visitor has to place a hold.
    pub admission_ttl_seconds: i32,
    /// Silence after which a waiting visitor loses their place.
    pub abandon_after_seconds: i32,
    /// Fairness seed (secret until revealed).
    pub seed: String,
    /// `sha256(seed)`, published from creation.
    pub seed_commitment: String,
    /// Whether the seed has been used and may be shown.
    pub seed_revealed: bool,
    /// When the lottery was drawn.
    pub lottery_drawn_at: Option<DateTime<Utc>>,
    /// Winners drawn.
    pub lottery_winners: Option<i32>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change; versions the copy in Redis.
    pub updated_at: DateTime<Utc>,
    /// Waiting room join counter last saved from Redis.
    pub queue_seq_saved: i64,
    /// Waiting room serving number last saved from Redis.
    pub queue_serving_saved: i64,
    /// Frozen pre-queue size saved from Redis.
    pub queue_prequeue_saved: Option<i64>,
    /// Fixed or adaptive admission rate.
    #[sqlx(try_from = "String")]
    pub admission_mode: AdmissionMode,
    /// Upper bound of an adaptive rate.
    pub admit_ceiling: Option<i32>,
    /// Hold p99 the adaptive rate keeps under.
    pub hold_p99_target_ms: i32,
    /// Proof-of-work bits asked of a new source (0: none).
    pub challenge_bits: i16,
    /// Proof-of-work bits asked of the busiest source.
    pub challenge_max_bits: i16,
    /// Who may join.
    #[sqlx(try_from = "String")]
    pub access: SaleAccess,
    /// ISO 4217 code of the sale's prices (`None`: no prices).
    pub currency: Option<String>,
    /// IANA time zone of the sale's sessions (`None`: no sessions).
    pub time_zone: Option<String>,
    /// Sessions (0: a sale of one show, holds name none).
    pub session_count: i32,
    /// The per-user limit counts per session.
    pub limit_per_session: bool,
    /// A buyer cannot hold two sessions whose times overlap.
    pub no_overlap: bool,
}

crate::text_enum! {
    /// How a sale orders its buyers (`sales.mode`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum SaleMode {
        /// In join order (after the pre-queue's shuffle).
        Fifo => "fifo",
        /// Entries during a window, then one verifiable draw.
        Lottery => "lottery",
    }
}

crate::text_enum! {
    /// What a sale's units are (`sales.seating`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum Seating {
        /// General admission: numbered units.
        General => "general",
        /// Reserved seats, labelled `section/row/seat`.
        Reserved => "reserved",
    }
}

crate::text_enum! {
    /// Who may join a sale.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum SaleAccess {
        /// Anyone (through the gate's challenge and rules).
        Public => "public",
        /// Only signed-in users whose login token names the sale
        /// (`sale` claim); one place per user.
        Invite => "invite",
    }
}

crate::text_enum! {
    /// How a sale's admission rate is set.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum AdmissionMode {
        /// `admit_per_second` as configured.
        Fixed => "fixed",
        /// Starts at `admit_per_second`, then follows the hold path's health
        /// (see `adaptive`).
        Adaptive => "adaptive",
    }
}

crate::text_enum! {
    /// A sale's state (`sales.state`, migrations/0001): `scheduled` (the
    /// pre-queue or lottery entries are open) → `on_sale` ⇄ `paused` →
    /// `sold_out` | `closed`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum SaleState {
        /// Before `starts_at`.
        Scheduled => "scheduled",
        /// Holds are possible.
        OnSale => "on_sale",
        /// Admission and holds stopped by an admin; joins still queue.
        Paused => "paused",
        /// No unit available or held in any stage.
        SoldOut => "sold_out",
        /// Over for good.
        Closed => "closed",
    }
}

/// Sale states as words, for states read back from Redis (the waiting
/// room's copy) and SQL.
pub mod state {
    /// Before `starts_at`: the pre-queue (or lottery entry window) is open.
    pub const SCHEDULED: &str = "scheduled";
    /// Holds are possible.
    pub const ON_SALE: &str = "on_sale";
    /// Admission and holds stopped by an admin; joins still queue.
    pub const PAUSED: &str = "paused";
    /// No unit available or held in any stage.
    pub const SOLD_OUT: &str = "sold_out";
    /// Over for good.
    pub const CLOSED: &str = "closed";
}

/// The column list matching [`Sale`].
pub const SALE_COLUMNS: &str = "id, name, mode, state, starts_at, ends_at, seating, total_units, \
    per_user_limit, hold_ttl_seconds, shuffle_prequeue, released_upto, released_stages, waiting_room, \
    admit_per_second, max_active, admission_ttl_seconds, abandon_after_seconds, seed, seed_commitment, \
    seed_revealed, lottery_drawn_at, lottery_winners, created_at, updated_at, queue_seq_saved, queue_serving_saved, \
    queue_prequeue_saved, admission_mode, admit_ceiling, hold_p99_target_ms, challenge_bits, challenge_max_bits, access, currency, \
    time_zone, session_count, limit_per_session, no_overlap";

/// One stage of a sale.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StageRow {
    /// 1-based stage number.
    pub stage: i32,
    /// Share of the units.
    pub percent: i32,
    /// Exact unit count.
    pub unit_count: i32,
    /// First unit id of the stage.
    pub first_unit: i32,
    /// Last unit id of the stage.
    pub last_unit: i32,
    /// Scheduled opening, if any.
    pub opens_at: Option<DateTime<Utc>>,
    /// When it was released.
    pub released_at: Option<DateTime<Utc>>,
}

impl Sale {
    /// Loads a sale; 404 when there is none.
    pub async fn load(db: &PgPool, id: &str) -> AppResult<Sale> {
        if !valid_sale_id(id) {
            return Err(AppError::NotFound("sale"));
        }
        sqlx::query_as::<_, Sale>(sqlx::AssertSqlSafe(format!("SELECT {SALE_COLUMNS} FROM sales WHERE id = $1")))
            .bind(id)
            .fetch_optional(db)
            .await?
            .ok_or(AppError::NotFound("sale"))
    }

    /// Loads and row-locks a sale inside a transaction, so concurrent admin
    /// changes (updates, draws) take turns; 404 when there is none.
    pub async fn lock(conn: &mut sqlx::PgConnection, id: &str) -> AppResult<Sale> {
        if !valid_sale_id(id) {
            return Err(AppError::NotFound("sale"));
        }
        sqlx::query_as::<_, Sale>(sqlx::AssertSqlSafe(format!(
            "SELECT {SALE_COLUMNS} FROM sales WHERE id = $1 FOR UPDATE"
        )))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(AppError::NotFound("sale"))
    }

    /// The sale's stages in order.
    pub async fn stages(db: &PgPool, id: &str) -> AppResult<Vec<StageRow>> {
        Ok(sqlx::query_as::<_, StageRow>(
            "SELECT stage, percent, unit_count, first_unit, last_unit, opens_at, released_at \
             FROM sale_stages WHERE sale_id = $1 ORDER BY stage",
        )
        .bind(id)
        .fetch_all(db)
        .await?)
    }

    /// Whether holds are possible now.
    pub fn ensure_on_sale(&self) -> AppResult<()> {
        match self.state {
            SaleState::OnSale => Ok(()),
            SaleState::Scheduled => Err(AppError::conflict("sale_not_started", "the sale has not started yet")),
            SaleState::Paused => Err(AppError::conflict("sale_paused", "the sale is paused; try again shortly")),
            SaleState::SoldOut => Err(AppError::gone("sold_out", "the sale is sold out")),
            SaleState::Closed => Err(AppError::gone("sale_closed", "the sale is closed")),
        }
    }

    /// The seed, once it may be shown.
    pub fn revealed_seed(&self) -> Option<&str> {
        self.seed_revealed.then_some(self.seed.as_str())
    }
}

#[cfg(test)]
impl Sale {
    /// A FIFO sale on sale, for unit tests of functions that read a sale.
    pub fn example() -> Sale {
        Sale {
            id: "s_example".into(),
            name: "Example".into(),
            mode: SaleMode::Fifo,
            state: SaleState::OnSale,
            starts_at: Utc::now(),
            ends_at: None,
            seating: Seating::General,
            total_units: 100,
            per_user_limit: 4,
            hold_ttl_seconds: 600,
            shuffle_prequeue: true,
            released_upto: 100,
            released_stages: 1,
            waiting_room: true,
            admit_per_second: 10,
            max_active: 50,
            admission_ttl_seconds: 300,
            abandon_after_seconds: 60,
            seed: String::new(),
            seed_commitment: String::new(),
            seed_revealed: false,
            lottery_drawn_at: None,
            lottery_winners: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            queue_seq_saved: 0,
            queue_serving_saved: 0,
            queue_prequeue_saved: None,
            admission_mode: AdmissionMode::Fixed,
            admit_ceiling: None,
            hold_p99_target_ms: 50,
            challenge_bits: 0,
            challenge_max_bits: 0,
            access: SaleAccess::Public,
            currency: None,
            time_zone: None,
            session_count: 0,
            limit_per_session: false,
            no_overlap: false,
        }
    }
}

/// Sale ids are short and URL-safe; anything else cannot exist.
pub fn valid_sale_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A small time-bounded cache of values by key.
pub struct Snapshots<V> {
    ttl: Duration,
    entries: RwLock<HashMap<String, (Instant, Arc<V>)>>,
}

impl<V> Snapshots<V> {
    /// An empty cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Snapshots { ttl, entries: RwLock::new(HashMap::new()) }
    }

    /// A fresh entry, if any.
    pub fn get(&self, key: &str) -> Option<Arc<V>> {
        let entries = self.entries.read().ok()?;
        let (at, value) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    /// An entry of any age.
    pub fn get_stale(&self, key: &str) -> Option<Arc<V>> {
        self.entries.read().ok()?.get(key).map(|(_, value)| value.clone())
    }

    /// Stores `value` under `key`.
    pub fn put(&self, key: &str, value: Arc<V>) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() > 10_000 {
                entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            }
            entries.insert(key.to_owned(), (Instant::now(), value));
        }
    }

    /// Drops `key` so the next read reloads it.
    pub fn invalidate(&self, key: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(key);
        }
    }
}

/// Values by key, loaded once however many ask at the same moment: a
/// fresh copy is answered at once; an old one is answered while one caller
/// reloads it (so a busy Postgres pool never stalls a crowd of readers);
/// only a key never loaded makes callers wait, for the one load. When the
/// load finds Postgres unreachable, the last copy is served, however old.
pub struct RefreshOnce<V> {
    snapshots: Snapshots<V>,
    loading: tokio::sync::Mutex<()>,
}

impl<V> RefreshOnce<V> {
    /// An empty cache whose copies are fresh for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        RefreshOnce { snapshots: Snapshots::new(ttl), loading: tokio::sync::Mutex::new(()) }
    }

    /// The value of `key`, from `load` when there is no fresh copy.
    pub async fn get<F, Fut>(&self, key: &str, load: F) -> AppResult<Arc<V>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = AppResult<V>>,
    {
        if let Some(value) = self.snapshots.get(key) {
            return Ok(value);
        }
        let _guard = match (self.snapshots.get_stale(key), self.loading.try_lock()) {
            (Some(stale), Err(_)) => return Ok(stale),
            (_, Ok(guard)) => guard,
            (None, Err(_)) => self.loading.lock().await,
        };
        if let Some(value) = self.snapshots.get(key) {
            return Ok(value);
        }
        match load().await {
            Ok(value) => {
                let value = Arc::new(value);
                self.snapshots.put(key, value.clone());
                Ok(value)
            }
            Err(AppError::Unavailable(cause)) => match self.snapshots.get_stale(key) {
                Some(stale) => {
                    tracing::debug!(key, error = %cause, "serving the last known copy");
                    Ok(stale)
                }
                None => Err(AppError::Unavailable(cause)),
            },
            Err(e) => Err(e),
        }
    }

    /// The last value of `key`, however old, without loading it.
    pub fn peek(&self, key: &str) -> Option<Arc<V>> {
        self.snapshots.get_stale(key)
    }

    /// Stores a value loaded elsewhere (a background refresh).
    pub fn put(&self, key: &str, value: V) {
        self.snapshots.put(key, Arc::new(value));
    }

    /// Drops `key` so the next read loads it.
    pub fn invalidate(&self, key: &str) {
        self.snapshots.invalidate(key);
    }
}

/// Sale rows, about a second old at most (see [`RefreshOnce`]): the waiting
/// room (joins, polls) goes on with the last known sale while Postgres is
/// down; what needs Postgres fails on its own queries.
pub struct SaleCache(RefreshOnce<Sale>);

impl SaleCache {
    /// An empty cache.
    pub fn new() -> Self {
        SaleCache(RefreshOnce::new(Duration::from_millis(1000)))
    }

    /// The sale, about a second old at most.
    pub async fn get(&self, db: &PgPool, id: &str) -> AppResult<Arc<Sale>> {
        self.0.get(id, || Sale::load(db, id)).await
    }

    /// Forgets a sale after this instance changed it.
    pub fn invalidate(&self, id: &str) {
        self.0.invalidate(id);
    }
}

impl Default for SaleCache {
    fn default() -> Self {
        Self::new()
    }
}

/// Units of a stage (or a sale) by state.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct UnitCounts {
    /// On sale and free.
    pub available: i64,
    /// In an active hold.
    pub held: i64,
    /// In a confirmed order.
    pub sold: i64,
    /// Not yet released (later stages).
    pub unreleased: i64,
    /// Out of stock for good: units of a closed or cancelled session.
    pub withdrawn: i64,
}

/// Live availability of one stage.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StageAvailability {
    /// 1-based stage number.
    pub stage: i32,
    /// Share of all units.
    pub percent: i32,
    /// Units in the stage.
    pub units: i32,
    /// Whether the stage is on sale.
    pub released: bool,
    /// Scheduled opening.
    pub opens_at: Option<DateTime<Utc>>,
    /// When it opened.
    pub released_at: Option<DateTime<Utc>>,
    /// Counts by state.
    #[serde(flatten)]
    pub counts: UnitCounts,
}

/// Live availability of a sale.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Availability {
    /// All units.
    pub total: i64,
    /// Units in released stages.
    pub released: i64,
    /// Totals by state; available + held + sold + unreleased = total (I1).
    #[serde(flatten)]
    pub counts: UnitCounts,
    /// Per stage.
    pub stages: Vec<StageAvailability>,
    /// Per price category, in the sale's order (empty: no prices).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<CategoryAvailability>,
    /// Per session code (the calendar shows them a page at a time).
    /// Shared, so copying the counts into a sale's view copies no map.
    #[serde(skip)]
    pub sessions: SessionCounts,
    /// Per session code and price category code.
    #[serde(skip)]
    pub session_categories: SessionCategoryCounts,
    /// When these counts were taken.
    pub as_of: DateTime<Utc>,
}

/// Units by state per session code.
pub type SessionCounts = Arc<HashMap<i32, UnitCounts>>;

/// Units by state per session code and price category code.
pub type SessionCategoryCounts = Arc<HashMap<(i32, i16), UnitCounts>>;

/// Live availability of one price category.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CategoryAvailability {
    /// Name (what a hold's `category` names).
    pub name: String,
    /// Price of one unit, in minor units of the sale's currency.
    pub amount: i64,
    /// Units in it.
    pub units: i64,
    /// Counts by state.
    #[serde(flatten)]
    pub counts: UnitCounts,
}

/// A count of units by stage, price category, session and state.
type CountRow = (i16, Option<i16>, Option<i32>, String, i64);

/// Counts units of a sale by stage and state. One grouped index scan, so the
/// read path caches it (see [`AvailabilityCache`]) instead of running it per
/// request.
pub async fn count_units(db: &PgPool, sale: &Sale) -> AppResult<Availability> {
    let count = sqlx::query_as(
        "SELECT stage, category, session, status, count(*) FROM units WHERE sale_id = $1 \
         GROUP BY stage, category, session, status",
    )
    .bind(&sale.id);
    let rows: Vec<CountRow> =
        crate::store::with_pg(db, "count_units", async |conn| count.fetch_all(conn).await.map_err(AppError::from))
            .await?;
    let stages = Sale::stages(db, &sale.id).await?;
    let mut per_stage: Vec<StageAvailability> = stages
        .iter()
        .map(|s| StageAvailability {
            stage: s.stage,
            percent: s.percent,
            units: s.unit_count,
            released: s.stage <= sale.released_stages,
            opens_at: s.opens_at,
            released_at: s.released_at,
            counts: UnitCounts::default(),
        })
        .collect();
    let mut categories: Vec<CategoryAvailability> = match sale.currency {
        Some(_) => crate::prices::categories(db, &sale.id)
            .await?
            .into_iter()
            .map(|c| CategoryAvailability { name: c.name, amount: c.amount, units: 0, counts: UnitCounts::default() })
            .collect(),
        None => Vec::new(),
    };
    let mut sessions = HashMap::<i32, UnitCounts>::new();
    let mut session_categories = HashMap::<(i32, i16), UnitCounts>::new();
    for (stage, category, session, status, count) in rows {
        let Some(entry) = per_stage.iter_mut().find(|s| s.stage == i32::from(stage)) else {
            continue;
        };
        let released = entry.released;
        entry.counts.add(&status, released, count);
        let slot = category.and_then(|c| usize::try_from(c - 1).ok()).and_then(|i| categories.get_mut(i));
        if let Some(category) = slot {
            category.units += count;
            category.counts.add(&status, released, count);
        }
        if let Some(session) = session {
            sessions.entry(session).or_default().add(&status, released, count);
            if let Some(category) = category {
                session_categories.entry((session, category)).or_default().add(&status, released, count);
            }
        }
    }
    let mut totals = UnitCounts::default();
    let mut released = 0;
    for s in &per_stage {
        totals.available += s.counts.available;
        totals.held += s.counts.held;
        totals.sold += s.counts.sold;
        totals.unreleased += s.counts.unreleased;
        totals.withdrawn += s.counts.withdrawn;
        if s.released {
            released += i64::from(s.units);
        }
    }
    Ok(Availability {
        total: i64::from(sale.total_units),
        released,
        counts: totals,
        stages: per_stage,
        categories,
        sessions: Arc::new(sessions),
        session_categories: Arc::new(session_categories),
        as_of: Utc::now(),
    })
}

impl UnitCounts {
    /// Adds `count` units in `status` (of a released stage or not).
    fn add(&mut self, status: &str, released: bool, count: i64) {
        match (status, released) {
            ("available", true) => self.available += count,
            ("available", false) => self.unreleased += count,
            ("held", _) => self.held += count,
            ("withdrawn", _) => self.withdrawn += count,
            _ => self.sold += count,
        }
    }
}

/// Availability per sale, recounted in the background
/// (`jobs` calls [`AvailabilityCache::refresh`] about twice a second for
/// every sale in [`AvailabilityCache::wanted`]), so a read never waits for a
/// recount: only the very first read of a sale on an instance counts inline.
pub struct AvailabilityCache {
    /// Any copy is good enough for a read: the refresh keeps them young.
    counts: RefreshOnce<Availability>,
    /// Sales read lately, and when.
    wanted: std::sync::Mutex<HashMap<String, Instant>>,
    /// How long the last recount of each sale took.
    recount_cost: std::sync::Mutex<HashMap<String, Duration>>,
}

/// The metrics' recounts of unread sales take at most this share of the
/// time (a recount that took 100 ms waits at least 5 s before the next).
const METRICS_RECOUNT_SHARE: u32 = 50;

/// A sale nobody read for this long is no longer recounted.
const AVAILABILITY_IDLE: Duration = Duration::from_secs(30);

/// The background recounts of read sales take at most this share of the
/// time: a sale is recounted every pass of the job (twice a second) while
/// its recount takes under 50 ms, and no sooner than ten times its last
/// recount after one that took longer (on the bench machine a sale of
/// 300,000 units takes 84-193 ms to count and one of 1,000,000 units 0.2-0.4
/// s, which kept a Postgres backend counting most of the time while its
/// buyers read it).
const READ_RECOUNT_SHARE: u32 = 10;

/// Whether counts `age` old, whose last recount took `cost`, are due again.
fn recount_due(age: Duration, cost: Duration) -> bool {
    age >= cost * READ_RECOUNT_SHARE
}

impl AvailabilityCache {
    /// An empty cache.
    pub fn new() -> Self {
        AvailabilityCache {
            counts: RefreshOnce::new(Duration::MAX),
            wanted: std::sync::Mutex::new(HashMap::new()),
            recount_cost: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The latest counts of the sale.
    pub async fn get(&self, db: &PgPool, sale: &Sale) -> AppResult<Arc<Availability>> {
        if let Ok(mut wanted) = self.wanted.lock() {
            wanted.insert(sale.id.clone(), Instant::now());
        }
        self.counts.get(&sale.id, || count_units(db, sale)).await
    }

    /// The counts for the metrics job: what readers keep fresh, or (for a
    /// sale nobody reads) a recount once the last is older than `max_age`
    /// and than [`METRICS_RECOUNT_SHARE`] times what the last recount took,
    /// so `/metrics` follows every live sale without a recount per second
    /// of each, and a sale of millions of units is recounted less often.
    pub async fn for_metrics(&self, db: &PgPool, sale: &Sale, max_age: Duration) -> AppResult<Arc<Availability>> {
        let counts = self.counts.get(&sale.id, || count_units(db, sale)).await?;
        let age = (Utc::now() - counts.as_of).to_std().unwrap_or_default();
        let read = self.wanted.lock().map(|w| w.contains_key(&sale.id)).unwrap_or(false);
        let cost = self.recount_cost.lock().ok().and_then(|c| c.get(&sale.id).copied()).unwrap_or_default();
        if read || age < max_age.max(cost * METRICS_RECOUNT_SHARE) {
            return Ok(counts);
        }
        let counts = self.recount(db, sale).await?;
        self.counts.put(&sale.id, counts.clone());
        Ok(Arc::new(counts))
    }

    /// Sales read lately whose counts are due for a recount (see
    /// [`READ_RECOUNT_SHARE`]), forgetting the sales nobody reads.
    pub fn due(&self) -> Vec<String> {
        let read: Vec<String> = match self.wanted.lock() {
            Ok(mut wanted) => {
                wanted.retain(|_, at| at.elapsed() < AVAILABILITY_IDLE);
                wanted.keys().cloned().collect()
            }
            Err(_) => return Vec::new(),
        };
        let Ok(costs) = self.recount_cost.lock() else {
            return read;
        };
        read.into_iter()
            .filter(|id| {
                let age = self.counts.peek(id).map(|c| (Utc::now() - c.as_of).to_std().unwrap_or_default());
                age.is_none_or(|age| recount_due(age, costs.get(id).copied().unwrap_or_default()))
            })
            .collect()
    }

    /// Recounts `sale`.
    pub async fn refresh(&self, db: &PgPool, sale: &Sale) -> AppResult<()> {
        let counts = self.recount(db, sale).await?;
        self.counts.put(&sale.id, counts);
        Ok(())
    }

    /// Counts `sale`'s units, noting what the count took.
    async fn recount(&self, db: &PgPool, sale: &Sale) -> AppResult<Availability> {
        let started = Instant::now();
        let counts = count_units(db, sale).await?;
        if let Ok(mut costs) = self.recount_cost.lock() {
            costs.insert(sale.id.clone(), started.elapsed());
        }
        Ok(counts)
    }

    /// Forgets a sale's counts after this instance changed its stages.
    pub fn invalidate(&self, id: &str) {
        self.counts.invalidate(id);
    }
}

impl Default for AvailabilityCache {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_sale_whose_recount_is_slow_is_recounted_less_often() {
        // 20,000 units (13 ms): at every pass of the job, twice a second.
        assert!(recount_due(Duration::from_millis(500), Duration::from_millis(13)));
        // 300,000 units (193 ms): not before ten times that.
        assert!(!recount_due(Duration::from_millis(1_000), Duration::from_millis(193)));
        assert!(recount_due(Duration::from_millis(1_930), Duration::from_millis(193)));
    }
}
