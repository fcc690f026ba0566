//! Inventory: claiming units into holds, releasing them, and putting expired
//! holds back on sale. Postgres row locks are the only arbiter (I1, I2):
//! a unit is claimed by flipping its row from `available` to `held` under
//! `FOR UPDATE SKIP LOCKED`, inside the transaction that also records the
//! hold, the buyer's count (I3) and the outbox event.

pub mod audit;
mod batch;
mod place;
pub mod routes;

pub use batch::HoldBatches;
pub use place::{place_hold, ClaimHints, HoldAsk, HoldOutcome};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::events;
use crate::prices::Money;
use crate::sessions::SessionRef;

/// A hold as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Hold {
    /// Hold id.
    pub id: Uuid,
    /// Sale.
    pub sale_id: String,
    /// Owner.
    pub visitor_id: String,
    /// Join number of the admission used, if any.
    pub queue_number: Option<i64>,
    /// Units held.
    pub quantity: i32,
    /// The units, kept after release for late payments.
    pub unit_ids: Vec<i32>,
    /// Where the hold is in its life.
    #[sqlx(try_from = "String")]
    pub state: HoldState,
    /// Deadline for payment.
    pub expires_at: DateTime<Utc>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// The total quoted, in minor units (`None`: the sale has no prices).
    pub amount: Option<i64>,
    /// Its currency.
    pub currency: Option<String>,
    /// The session it is in (`None`: the sale has none).
    pub session: Option<i32>,
    /// What its units count against in `user_purchases` when not the
    /// visitor (a per-session limit: `<visitor>@<session>`).
    pub allowance_key: Option<String>,
}

impl Hold {
    /// The key the hold's units count against for the per-user limit.
    pub fn allowance_key(&self) -> &str {
        self.allowance_key.as_deref().unwrap_or(&self.visitor_id)
    }

    /// The total the hold quoted, if the sale has prices.
    pub fn total(&self) -> Option<Money> {
        Some(Money { amount: self.amount?, currency: self.currency.clone()? })
    }
}

crate::text_enum! {
    /// Where a hold is in its life (`holds.state`, migrations/0002).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum HoldState {
        /// Units held, waiting for payment (until `expires_at`).
        Active => "active",
        /// Paid: its units are in an order.
        Confirmed => "confirmed",
        /// Let go by the buyer or by a failed payment.
        Released => "released",
        /// Not paid in time.
        Expired => "expired",
    }
}

/// Column list matching [`Hold`].
pub const HOLD_COLUMNS: &str =
    "id, sale_id, visitor_id, queue_number, quantity, unit_ids, state, expires_at, created_at, amount, currency, \
     session, allowance_key";

/// A unit in an answer.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct UnitView {
    /// Unit id within the sale.
    pub id: String,
    /// `section/row/seat`, or `GA-<n>` for general admission.
    pub label: String,
    /// Its price category, when the sale has prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Its price in minor units, when the sale has prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
}

/// A unit row's label.
pub fn unit_label(id: i32, label: Option<String>) -> String {
    label.unwrap_or_else(|| format!("GA-{id}"))
}

/// A hold in an answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HoldView {
    /// Hold id.
    pub id: String,
    /// Sale.
    pub sale_id: String,
    /// `held`, `confirmed`, `released` or `expired`.
    pub state: String,
    /// Units held.
    pub quantity: i32,
    /// The units.
    pub units: Vec<UnitView>,
    /// Pay before this.
    pub expires_at: DateTime<Utc>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// The order, once paid.
    pub order_id: Option<String>,
    /// What the units cost together, to be paid exactly (when the sale has
    /// prices).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<Money>,
    /// The session held in, with its times (when the sale has sessions).
    #[serde(flatten)]
    pub session: SessionRef,
    /// Bearer token to see, release or pay this hold and see its order
    /// (only in the answer that created it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_token: Option<String>,
}

impl Hold {
    /// Loads a hold; 404 when unknown.
    pub async fn load(conn: &mut PgConnection, id: Uuid, for_update: bool) -> AppResult<Hold> {
        let lock = if for_update { " FOR UPDATE" } else { "" };
        sqlx::query_as::<_, Hold>(sqlx::AssertSqlSafe(format!("SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1{lock}")))
            .bind(id)
            .fetch_optional(conn)
            .await?
            .ok_or(AppError::NotFound("hold"))
    }

    /// The state shown to clients: an active hold past its deadline is
    /// expired even if the sweeper has not reached it yet.
    pub fn visible_state(&self) -> &'static str {
        match self.state {
            HoldState::Active if self.expires_at <= Utc::now() => "expired",
            HoldState::Active => "held",
            other => other.as_str(),
        }
    }

    /// The hold's units with labels.
    pub async fn units(&self, conn: &mut PgConnection) -> AppResult<Vec<UnitView>> {
        unit_views(conn, &self.sale_id, &self.unit_ids).await
    }

    /// The answer for this hold.
    pub async fn view(&self, conn: &mut PgConnection) -> AppResult<HoldView> {
        let order_id: Option<(Uuid,)> =
            sqlx::query_as("SELECT id FROM orders WHERE hold_id = $1").bind(self.id).fetch_optional(&mut *conn).await?;
        let session = SessionRef::load(conn, &self.sale_id, self.session).await?;
        Ok(HoldView {
            id: self.id.to_string(),
            sale_id: self.sale_id.clone(),
            state: self.visible_state().to_owned(),
            quantity: self.quantity,
            units: self.units(conn).await?,
            expires_at: self.expires_at,
            created_at: self.created_at,
            order_id: order_id.map(|(id,)| id.to_string()),
            total: self.total(),
            session,
            hold_token: None,
        })
    }
}

/// The hold a hold token opens, if it is the one the path names.
pub fn hold_of(claims: &crate::tokens::Claims, path_id: &str) -> AppResult<Uuid> {
    let id = Uuid::parse_str(path_id).map_err(|_| AppError::NotFound("hold"))?;
    if claims.hold.as_deref() != Some(&id.to_string()) {
        return Err(AppError::Forbidden("this hold token is for another hold".into()));
    }
    Ok(id)
}

/// The admission a hold used: what freeing its slot needs.
#[derive(Debug, Clone)]
pub struct UsedAdmission {
    /// The hold's sale.
    pub sale_id: String,
    /// The join number admitted (none: the sale has no waiting room).
    pub queue_number: Option<i64>,
    /// The hold.
    pub hold: Uuid,
}

impl Hold {
    /// The admission this hold used.
    pub fn admission(&self) -> UsedAdmission {
        UsedAdmission { sale_id: self.sale_id.clone(), queue_number: self.queue_number, hold: self.id }
    }
}

/// Frees the admission slot a finished hold used, unless the buyer holds
/// again with the same admission (then the slot is that hold's). Best
/// effort: a slot left behind expires by its deadline anyway.
pub async fn free_admission(db: &PgPool, waiting_room: &crate::waiting_room::WaitingRoom, used: &UsedAdmission) {
    if let Some(n) = used.queue_number.filter(|n| *n > 0) {
        let again: Result<(bool,), _> = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM holds WHERE sale_id = $1 AND queue_number = $2 AND state = 'active' \
             AND id <> $3)",
        )
        .bind(&used.sale_id)
        .bind(n)
        .bind(used.hold)
        .fetch_one(db)
        .await;
        if let Ok((true,)) = again {
            return;
        }
        if let Err(e) = waiting_room.finish(&used.sale_id, n as u64, None).await {
            tracing::warn!(error = %e, "could not free admission slot");
        }
    }
}

/// A unit's id, label, price category and price.
type UnitRow = (i32, Option<String>, Option<String>, Option<i64>);

/// Labels (and prices) of units by id.
pub async fn unit_views(conn: &mut PgConnection, sale_id: &str, ids: &[i32]) -> AppResult<Vec<UnitView>> {
    let rows: Vec<UnitRow> = sqlx::query_as(
        "SELECT u.id, u.label, c.name, c.amount FROM units u \
         LEFT JOIN price_categories c ON c.sale_id = u.sale_id AND c.code = u.category \
         WHERE u.sale_id = $1 AND u.id = ANY($2) ORDER BY u.id",
    )
    .bind(sale_id)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, label, category, price)| UnitView {
            id: id.to_string(),
            label: unit_label(id, label),
            category,
            price,
        })
        .collect())
}

/// What a buyer asks to hold.
#[derive(Debug, Clone)]
pub enum Want {
    /// The best `n` available units.
    Best(i32),
    /// The best `n` available units of a price category (by name).
    InCategory(i32, String),
    /// These named seats, all or none.
    Seats(Vec<String>),
}

impl Want {
    /// Units asked for.
    pub fn count(&self) -> i32 {
        match self {
            Want::Best(n) | Want::InCategory(n, _) => *n,
            Want::Seats(seats) => seats.len() as i32,
        }
    }
}

/// Adds `quantity` to the visitor's count in the sale unless that would pass
/// `limit`. Concurrent requests of one visitor serialise on this row, so the
/// limit holds across devices (I3).
pub async fn reserve_allowance(
    conn: &mut PgConnection,
    sale_id: &str,
    key: &str,
    quantity: i32,
    limit: i32,
) -> AppResult<()> {
    if quantity > limit {
        return Err(limit_exceeded(limit));
    }
    let row: Option<(i32,)> = sqlx::query_as(
        "INSERT INTO user_purchases AS p (sale_id, visitor_id, units) VALUES ($1, $2, $3) \
         ON CONFLICT (sale_id, visitor_id) DO UPDATE SET units = p.units + EXCLUDED.units \
         WHERE p.units + EXCLUDED.units <= $4 RETURNING units",
    )
    .bind(sale_id)
    .bind(key)
    .bind(quantity)
    .bind(limit)
    .fetch_optional(conn)
    .await?;
    row.map(|_| ()).ok_or_else(|| limit_exceeded(limit))
}

fn limit_exceeded(limit: i32) -> AppError {
    AppError::conflict("limit_exceeded", format!("at most {limit} units per buyer in this sale"))
}

fn insufficient_stock(wanted: i32) -> AppError {
    AppError::conflict(
        "insufficient_stock",
        format!("fewer than {wanted} units are available right now; nothing was held"),
    )
}

/// Why a claim came up short, worked out after the rollback.
pub async fn shortage_error(db: &PgPool, sale_id: &str, want: &Want, got: usize) -> AppResult<AppError> {
    let sale = crate::sales::Sale::load(db, sale_id).await?;
    if let Err(not_on_sale) = sale.ensure_on_sale() {
        return Ok(not_on_sale);
    }
    match want {
        Want::Seats(labels) => {
            let known: Vec<(String, String, i32)> =
                sqlx::query_as("SELECT label, status, id FROM units WHERE sale_id = $1 AND label = ANY($2)")
                    .bind(sale_id)
                    .bind(labels)
                    .fetch_all(db)
                    .await?;
            let unknown: Vec<&String> = labels.iter().filter(|l| !known.iter().any(|(k, _, _)| k == *l)).collect();
            if !unknown.is_empty() {
                let list: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
                return Ok(AppError::Invalid(format!("no such seat in this sale: {}", list.join(", "))));
            }
            if let Some((label, _, _)) = known.iter().find(|(_, _, id)| *id > sale.released_upto) {
                return Ok(AppError::conflict("seat_not_released", format!("seat {label} is not on sale yet")));
            }
            let taken: Vec<&str> = known.iter().map(|(l, _, _)| l.as_str()).collect();
            Ok(AppError::conflict("seat_taken", format!("one or more seats are taken: {}", taken.join(", "))))
        }
        // Other categories may still have units: short, not sold out.
        Want::InCategory(n, _) => Ok(insufficient_stock(*n)),
        Want::Best(n) => {
            // Planned for this sale each time (not prepared): a generic plan
            // of this statement scanned the whole units table, every sale's.
            let (held, available): (bool, bool) = sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM holds WHERE sale_id = $1 AND state = 'active'), \
                        EXISTS (SELECT 1 FROM units WHERE sale_id = $1 AND status = 'available')",
            )
            .persistent(false)
            .bind(sale_id)
            .fetch_one(db)
            .await?;
            if got == 0 && !held && !available {
                Ok(AppError::gone("sold_out", "the sale is sold out"))
            } else {
                Ok(insufficient_stock(*n))
            }
        }
    }
}

/// Puts an active hold's units back on sale and gives the buyer their
/// allowance back, ending the hold as `new_state` (`released`/`expired`).
pub async fn return_hold(conn: &mut PgConnection, hold: &Hold, new_state: HoldState, event: &str) -> AppResult<()> {
    sqlx::query(
        "UPDATE units SET status = unit_return_status(sale_id, session), hold_id = NULL \
         WHERE hold_id = $1 AND status = 'held'",
    )
    .bind(hold.id)
    .execute(&mut *conn)
    .await?;
    give_back_allowance(conn, &hold.sale_id, hold.allowance_key(), hold.quantity).await?;
    crate::sessions::unbook(conn, hold.id).await?;
    sqlx::query("UPDATE holds SET state = $2, updated_at = now() WHERE id = $1")
        .bind(hold.id)
        .bind(new_state.as_str())
        .execute(&mut *conn)
        .await?;
    events::record_hold_event(conn, event, hold.id).await?;
    Ok(())
}

/// Releases every active hold of session `code` (cancelled: its units are
/// withdrawn as they return).
pub async fn release_session_holds(tx: &mut PgConnection, sale_id: &str, code: i32) -> AppResult<()> {
    let holds: Vec<Hold> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {HOLD_COLUMNS} FROM holds WHERE sale_id = $1 AND session = $2 AND state = 'active' FOR UPDATE"
    )))
    .bind(sale_id)
    .bind(code)
    .fetch_all(&mut *tx)
    .await?;
    for hold in &holds {
        return_hold(tx, hold, HoldState::Released, events::kind::HOLD_RELEASED).await?;
    }
    Ok(())
}

/// Lowers a visitor's held-or-bought count (`key`: the visitor, or their
/// key in a session, see [`Hold::allowance_key`]).
pub async fn give_back_allowance(conn: &mut PgConnection, sale_id: &str, key: &str, quantity: i32) -> AppResult<()> {
    sqlx::query("UPDATE user_purchases SET units = units - $3 WHERE sale_id = $1 AND visitor_id = $2")
        .bind(sale_id)
        .bind(key)
        .bind(quantity)
        .execute(conn)
        .await?;
    Ok(())
}

/// An expired hold, as the sweeper reports it.
#[derive(Debug, sqlx::FromRow)]
pub struct ExpiredHold {
    /// Hold id.
    pub id: Uuid,
    /// Sale.
    pub sale_id: String,
    /// Join number of its admission, when its slot is free now (`None`
    /// while the same buyer holds again with that admission).
    pub queue_number: Option<i64>,
}

/// Expires up to `batch` holds past their deadline in one statement and puts
/// their units back on sale (I7). Rows are matched by `= ANY(ARRAY(...))`,
/// not by a join: the planner sized a join for the batch limit and hashed
/// every sold unit on each sweep, also when nothing was due. `SKIP LOCKED` lets any number of instances
/// sweep at once without touching the same hold twice, and lets a payment
/// that is confirming a hold right now win over the sweeper.
pub async fn expire_due_holds(db: &PgPool, batch: i64) -> AppResult<Vec<ExpiredHold>> {
    let statement = sqlx::query_as::<_, ExpiredHold>(
        "WITH due AS ( \
             SELECT id FROM holds WHERE state = 'active' AND expires_at <= now() \
             ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED), \
         h AS ( \
             UPDATE holds SET state = 'expired', updated_at = now() WHERE holds.id = ANY(ARRAY(SELECT id FROM due)) \
             RETURNING holds.*), \
         freed AS ( \
             UPDATE units SET status = unit_return_status(units.sale_id, units.session), hold_id = NULL \
             WHERE units.hold_id = ANY(ARRAY(SELECT id FROM h)) AND units.status = 'held'), \
         allowance AS ( \
             UPDATE user_purchases p SET units = p.units - agg.quantity \
             FROM (SELECT sale_id, coalesce(allowance_key, visitor_id) AS key, sum(quantity)::int AS quantity \
                   FROM h GROUP BY 1, 2) agg \
             WHERE p.sale_id = agg.sale_id AND p.visitor_id = agg.key), \
         unbooked AS ( \
             DELETE FROM session_bookings b USING h WHERE b.hold_id = h.id), \
         outbox AS ( \
             INSERT INTO outbox_events (id, event_type, sale_id, subject_id, payload) \
             SELECT gen_random_uuid(), 'hold.expired', h.sale_id, h.id::text, hold_event_payload(h::holds) \
             FROM h) \
         SELECT h.id, h.sale_id, \
                CASE WHEN EXISTS (SELECT 1 FROM holds o WHERE o.sale_id = h.sale_id AND o.state = 'active' \
                                    AND o.queue_number = h.queue_number AND o.id <> h.id) \
                     THEN NULL ELSE h.queue_number END AS queue_number \
         FROM h",
    )
    .bind(batch);
    crate::store::with_pg(db, "expire_holds", async |conn| statement.fetch_all(conn).await.map_err(AppError::from))
        .await
}

/// A sale's holds by state.
pub async fn count_by_state(db: &PgPool, sale: &str) -> AppResult<Vec<(String, i64)>> {
    Ok(sqlx::query_as("SELECT state, count(*) FROM holds WHERE sale_id = $1 GROUP BY state")
        .bind(sale)
        .fetch_all(db)
        .await?)
}
