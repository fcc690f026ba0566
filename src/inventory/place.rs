//! Placing a hold: the idempotency record, the buyer's allowance (I3), the
//! claim (I1, I2), the hold row and its outbox event in one statement, the
//! `place_hold` function of `migrations/0004_place_hold.sql`. Named seats
//! call it alone; "best available" goes through `batch.rs`, which places
//! the holds that arrive together in one statement and one commit.
//!
//! "Best available" scans the partial index of free units up from a per-sale
//! floor this instance keeps (the lowest unit its last claim took), so claims
//! do not wade through the ever longer run of taken units at the head of the
//! index as the sale sells; the statement wraps around below the floor before
//! it reports a shortage, so a stale floor costs time, never a unit. The
//! floor drops back to the start every [`FLOOR_RESET`], so units that came
//! back (expired holds, cancellations) are again the best available soon.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgDatabaseError;
use sqlx::PgPool;
use uuid::Uuid;

use super::batch::{BatchedHold, HoldBatches};
use super::{shortage_error, HoldView, Want};
use crate::error::{AppError, AppResult};
use crate::idempotency;
use crate::sales::Sale;
use crate::sessions::SessionRef;
use crate::tokens::{Claims, Purpose, TokenSigner};

/// How long a hold token stays valid: long enough to see the order later.
const HOLD_TOKEN_DAYS: i64 = 30;

/// How often a sale's claim floor goes back to its first unit.
const FLOOR_RESET: Duration = Duration::from_secs(2);

/// How long a claim that found no unit at all answers for the next ones.
const EMPTY_FOR: Duration = Duration::from_millis(250);

/// What this instance learnt from its last claims of a sale.
struct Hint {
    floor: i32,
    floor_since: Instant,
    /// A "best available" claim found nothing: until then, the same answer
    /// without a transaction (at the end of a sale, retrying buyers would
    /// otherwise fill the pool with claims that cannot succeed).
    empty: Option<(Instant, Shortage)>,
}

#[derive(Clone, Copy)]
enum Shortage {
    SoldOut,
    Insufficient,
}

/// Per-sale claim hints of this instance: the floor, and a recent empty claim.
#[derive(Default)]
pub struct ClaimHints {
    sales: RwLock<HashMap<String, Hint>>,
}

impl ClaimHints {
    fn floor(&self, sale: &str) -> i32 {
        let sales = self.sales.read().unwrap_or_else(|e| e.into_inner());
        match sales.get(sale) {
            Some(hint) if hint.floor_since.elapsed() < FLOOR_RESET => hint.floor,
            _ => 1,
        }
    }

    fn empty(&self, sale: &str, wanted: i32) -> Option<AppError> {
        let sales = self.sales.read().unwrap_or_else(|e| e.into_inner());
        let (until, shortage) = sales.get(sale)?.empty?;
        (Instant::now() < until).then(|| match shortage {
            Shortage::SoldOut => AppError::gone("sold_out", "the sale is sold out"),
            Shortage::Insufficient => super::insufficient_stock(wanted),
        })
    }

    fn update(&self, sale: &str, f: impl FnOnce(&mut Hint)) {
        let mut sales = self.sales.write().unwrap_or_else(|e| e.into_inner());
        let hint =
            sales.entry(sale.to_owned()).or_insert_with(|| Hint { floor: 1, floor_since: Instant::now(), empty: None });
        f(hint);
    }

    fn taken(&self, sale: &str, lowest: i32) {
        self.update(sale, |hint| {
            hint.empty = None;
            if hint.floor_since.elapsed() >= FLOOR_RESET {
                (hint.floor, hint.floor_since) = (lowest, Instant::now());
            } else {
                hint.floor = hint.floor.max(lowest);
            }
        });
    }

    fn found_none(&self, sale: &str, error: &AppError) {
        let shortage = match error.code() {
            "sold_out" => Shortage::SoldOut,
            "insufficient_stock" => Shortage::Insufficient,
            _ => return,
        };
        self.update(sale, |hint| hint.empty = Some((Instant::now() + EMPTY_FOR, shortage)));
    }

    /// Units of `sale` came back on sale through this instance.
    pub fn returned(&self, sale: &str) {
        self.update(sale, |hint| {
            hint.empty = None;
            hint.floor = 1;
        });
    }
}

/// A `place_hold` row: outcome, lowest unit taken, answer status and body.
pub(super) type Placed = (String, Option<i32>, Option<i16>, Option<Value>);

/// Why `place_hold` placed nothing.
pub(super) enum NotPlaced {
    /// Postgres raised: a refusal of migrations/0004 (`FG...`), a
    /// constraint, or any other error of the statement. Nothing of the
    /// hold is left.
    Refused(Refusal),
    /// The call did not get through (pool, connection).
    Failed(AppError),
}

/// An error `place_hold` raised, as Postgres reported it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("place_hold raised {code}: {message}")]
pub(super) struct Refusal {
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub constraint: Option<String>,
}

impl From<sqlx::Error> for NotPlaced {
    fn from(error: sqlx::Error) -> Self {
        let Some(db) = error.as_database_error() else {
            return NotPlaced::Failed(AppError::from(error));
        };
        NotPlaced::Refused(Refusal {
            code: db.code().map(|c| c.into_owned()).unwrap_or_default(),
            message: db.message().to_owned(),
            detail: db.try_downcast_ref::<PgDatabaseError>().and_then(|pg| pg.detail()).map(str::to_owned),
            constraint: db.constraint().map(str::to_owned),
        })
    }
}

impl NotPlaced {
    /// The same answer for another hold of a batch that failed as a whole.
    pub(super) fn duplicate(&self) -> NotPlaced {
        match self {
            NotPlaced::Refused(refusal) => NotPlaced::Refused(refusal.clone()),
            NotPlaced::Failed(AppError::Unavailable(cause)) => {
                NotPlaced::Failed(AppError::Unavailable(cause.to_string().into()))
            }
            NotPlaced::Failed(other) => NotPlaced::Failed(AppError::Internal(anyhow::anyhow!("{other:#}"))),
        }
    }
}

/// What a hold request came to.
pub enum HoldOutcome {
    /// A new hold: the 201 answer, and until when the hold lasts.
    Created(Value, DateTime<Utc>),
    /// The first answer to this `Idempotency-Key`.
    Replayed(StatusCode, Value),
}

/// The buyer's request.
pub struct HoldAsk<'a> {
    /// What to hold.
    pub want: Want,
    /// The admission token's claims: buyer, sale, join number.
    pub buyer: &'a Claims,
    /// `Idempotency-Key`, if sent.
    pub key: Option<String>,
    /// The session to hold in (a sale with sessions needs one).
    pub session: Option<i32>,
}

/// Places a hold for an admitted buyer (all or nothing), or answers why not.
#[tracing::instrument(name = "place hold", level = "debug", skip_all, fields(sale = %sale.id))]
pub async fn place_hold(
    db: &PgPool,
    batches: &HoldBatches,
    hints: &ClaimHints,
    tokens: &TokenSigner,
    sale: &Sale,
    ask: HoldAsk<'_>,
) -> AppResult<HoldOutcome> {
    if ask.want.count() > sale.per_user_limit {
        return Err(super::limit_exceeded(sale.per_user_limit));
    }
    let attempt = Attempt::new(sale, ask);
    if let Some(outcome) = attempt.refused_early(db, hints).await? {
        return Ok(outcome);
    }
    let hold_id = Uuid::new_v4();
    let now = Utc::now();
    let expires_at = now + chrono::Duration::seconds(i64::from(sale.hold_ttl_seconds));
    let body = attempt.answer(tokens, hold_id, now, expires_at)?;
    let (outcome, lowest, status, body) = match attempt.run(db, batches, hints, hold_id, now, expires_at, body).await {
        Ok(row) => row,
        Err(e) => return attempt.failed(db, hints, e).await,
    };
    match outcome.as_str() {
        "created" => {
            if let (Want::Best(_), Some(lowest), None) = (&attempt.want, lowest, attempt.session) {
                hints.taken(&sale.id, lowest);
            }
            let body = body.ok_or_else(|| AppError::Internal(anyhow::anyhow!("place_hold answered no body")))?;
            Ok(HoldOutcome::Created(body, expires_at))
        }
        "reused" => {
            Err(AppError::conflict("idempotency_key_reused", "this Idempotency-Key was used for a different request"))
        }
        _ => match (status.and_then(|s| StatusCode::from_u16(s as u16).ok()), body) {
            (Some(status), Some(body)) => Ok(HoldOutcome::Replayed(status, body)),
            _ => Err(in_progress()),
        },
    }
}

fn in_progress() -> AppError {
    AppError::conflict("request_in_progress", "a request with this Idempotency-Key is still running")
}

/// One hold request and what identifies it for `Idempotency-Key`.
struct Attempt<'a> {
    sale: &'a Sale,
    buyer: &'a Claims,
    want: Want,
    session: Option<i32>,
    key: Option<String>,
    scope: String,
    request_hash: String,
}

impl<'a> Attempt<'a> {
    fn new(sale: &'a Sale, ask: HoldAsk<'a>) -> Self {
        let HoldAsk { want, buyer, key, session } = ask;
        let request_hash = idempotency::fingerprint(&[&sale.id, &format!("{want:?}"), &format!("{session:?}")]);
        Attempt { sale, buyer, want, session, key, scope: format!("hold:{}", buyer.sub), request_hash }
    }

    /// The first answer to this key, if one was recorded.
    async fn replay(&self, db: &PgPool) -> AppResult<Option<HoldOutcome>> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let stored = idempotency::stored(db, &self.scope, key, &self.request_hash).await?;
        Ok(stored.map(|(status, body)| HoldOutcome::Replayed(status, body)))
    }

    /// Refusals known without a transaction: the sale is not on sale (as
    /// of the cached row), or a claim just found nothing. A retry of a
    /// request that succeeded still gets its first answer back.
    async fn refused_early(&self, db: &PgPool, hints: &ClaimHints) -> AppResult<Option<HoldOutcome>> {
        let known_empty = match self.want {
            Want::Best(n) if self.session.is_none() => hints.empty(&self.sale.id, n),
            Want::Best(_) => None,
            Want::InCategory(..) | Want::Seats(_) => None,
        };
        let Some(refused) = self.sale.ensure_on_sale().err().or(known_empty) else {
            return Ok(None);
        };
        match self.replay(db).await? {
            Some(outcome) => Ok(Some(outcome)),
            None => Err(refused),
        }
    }

    /// The answer a created hold gives (stored with the key, so a retry
    /// gets the very same answer).
    fn answer(
        &self,
        tokens: &TokenSigner,
        hold_id: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> AppResult<Value> {
        let hold_token = tokens.issue(
            Purpose::Hold,
            &self.sale.id,
            &self.buyer.sub,
            self.buyer.n,
            Some(hold_id.to_string()),
            now + chrono::Duration::days(HOLD_TOKEN_DAYS),
        )?;
        let answer = HoldView {
            id: hold_id.to_string(),
            sale_id: self.sale.id.clone(),
            state: "held".into(),
            quantity: self.want.count(),
            units: Vec::new(),
            expires_at,
            created_at: now,
            order_id: None,
            // place_hold adds the total, from the units it took.
            total: None,
            // place_hold adds the session's times.
            session: SessionRef { session: self.session.map(|s| s.to_string()), ..SessionRef::default() },
            hold_token: Some(hold_token),
        };
        serde_json::to_value(&answer).map_err(|e| AppError::Internal(e.into()))
    }

    /// The one statement (migrations/0004): named seats alone, "best
    /// available" in a batch with the holds arriving with it (`batch.rs`).
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        db: &PgPool,
        batches: &HoldBatches,
        hints: &ClaimHints,
        hold_id: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        body: Value,
    ) -> Result<Placed, NotPlaced> {
        let (quantity, category) = match &self.want {
            Want::Best(n) => (*n, None),
            Want::InCategory(n, category) => (*n, Some(category.clone())),
            Want::Seats(seats) => return self.run_seats(db, seats, hold_id, now, expires_at, &body).await,
        };
        let hold = BatchedHold {
            sale: self.sale.id.clone(),
            limit: self.sale.per_user_limit,
            floor: hints.floor(&self.sale.id),
            visitor: self.buyer.sub.clone(),
            queue_number: self.buyer.n.map(|n| n as i64),
            hold: hold_id,
            quantity,
            expires_at,
            created_at: now,
            scope: self.scope.clone(),
            key: self.key.clone(),
            request_hash: self.request_hash.clone(),
            body,
            category,
            session: self.session,
        };
        batches.place(hold).await
    }

    /// Named seats: one `place_hold` of their own.
    async fn run_seats(
        &self,
        db: &PgPool,
        seats: &[String],
        hold_id: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        body: &Value,
    ) -> Result<Placed, NotPlaced> {
        let statement = sqlx::query_as(
            "SELECT outcome, lowest, status, body \
             FROM place_hold($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&self.sale.id)
        .bind(&self.buyer.sub)
        .bind(self.buyer.n.map(|n| n as i64))
        .bind(hold_id)
        .bind(seats.len() as i32)
        .bind(seats)
        .bind(self.sale.per_user_limit)
        .bind(1)
        .bind(expires_at)
        .bind(now)
        .bind(&self.scope)
        .bind(self.key.as_deref())
        .bind(&self.request_hash)
        .bind(body)
        .bind(None::<&str>)
        .bind(self.session);
        Ok(crate::store::with_pg(db, "place_hold", async |conn| statement.fetch_one(conn).await).await?)
    }

    /// What a hold that placed nothing means for the buyer.
    async fn failed(&self, db: &PgPool, hints: &ClaimHints, error: NotPlaced) -> AppResult<HoldOutcome> {
        let refusal = match error {
            NotPlaced::Failed(error) => return Err(error),
            NotPlaced::Refused(refusal) => refusal,
        };
        if refusal.constraint.as_deref() == Some("idempotency_keys_pkey") {
            // A concurrent retry with the same key recorded its answer first.
            return self.replay(db).await?.ok_or_else(in_progress);
        }
        // A concurrent retry that committed while this one waited on the
        // buyer's row (and then found the limit reached) is the first
        // answer to this key, not a refusal.
        if let Ok(Some(outcome)) = self.replay(db).await {
            return Ok(outcome);
        }
        let (refused, found) = refusal_answer(db, self.sale, &self.want, refusal).await;
        if let (Want::Best(_), Some(0), None) = (&self.want, found, self.session) {
            hints.found_none(&self.sale.id, &refused);
        }
        Err(refused)
    }
}

/// A hold in a session that is not on sale.
fn session_not_on_sale(state: &str) -> AppError {
    match state {
        "paused" => AppError::conflict("session_paused", "this session is paused; try again later"),
        _ => AppError::gone("session_closed", "this session is over"),
    }
}

/// The answer for a hold `place_hold` refused (it undid itself), and for
/// a shortage how many units it found.
async fn refusal_answer(db: &PgPool, sale: &Sale, want: &Want, refusal: Refusal) -> (AppError, Option<usize>) {
    match refusal.code.as_str() {
        "FG001" => (super::limit_exceeded(sale.per_user_limit), None),
        "FG003" => (AppError::Invalid("no such price category in this sale".into()), None),
        "FG004" => (AppError::NotFound("session"), None),
        "FG005" if refusal.message == "session_required" => {
            (AppError::Invalid("this sale has sessions: name the session to hold in".into()), None)
        }
        "FG005" => (AppError::Invalid("this sale has no sessions: hold without one".into()), None),
        "FG006" => (session_not_on_sale(refusal.detail.as_deref().unwrap_or("")), None),
        "23P01" => {
            (AppError::conflict("session_overlap", "you hold or own another session at an overlapping time"), None)
        }
        "FG002" => {
            let found = refusal.detail.as_deref().and_then(|d| d.parse().ok()).unwrap_or(0);
            match shortage_error(db, &sale.id, want, found).await {
                Ok(error) | Err(error) => (error, Some(found)),
            }
        }
        code => {
            let code = code.to_owned();
            (AppError::from_sqlstate(Some(&code), refusal), None)
        }
    }
}
