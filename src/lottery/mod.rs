//! Lottery mode: entries join during the entry window; one admin draw picks
//! the winners with the sale's committed seed (see [`crate::fairness`]), so
//! anyone can recompute them from the revealed seed and the entry numbers
//! `1..=entries`: the winners are the first `winners` of
//! `shuffled_order(seed, entries)`, the rest are the waitlist in that order.

pub mod routes;

use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::error::{AppError, AppResult};
use crate::events;
use crate::fairness::shuffled_order;
use crate::sales::{Sale, SaleMode};
use crate::waiting_room::{Drawn, WaitingRoom};

/// `POST /admin/v1/sales/{sale}/lottery/draw` body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrawRequest {
    /// Winners to draw; by default as many as the released units allow at
    /// the per-user limit.
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub winners: Option<i64>,
    /// How long winners have to buy; the sale's `admission_ttl_seconds` by
    /// default. The waitlist is admitted after it.
    #[schema(minimum = 1, maximum = 604_800)]
    pub purchase_window_seconds: Option<i64>,
}

/// The result of a draw.
#[derive(Debug, Serialize, ToSchema)]
pub struct DrawResult {
    /// The sale.
    pub sale_id: String,
    /// Entries in the draw, numbered `1..=entries`.
    pub entries: u64,
    /// Winners admitted.
    pub winners: u64,
    /// The revealed seed; `sha256(seed)` is the published commitment.
    pub seed: String,
    /// The commitment published at creation.
    pub seed_commitment: String,
    /// End of the winners' purchase window; the waitlist follows.
    pub purchase_window_ends_at: chrono::DateTime<Utc>,
}

/// What a valid draw request asks for.
struct DrawPlan {
    winners: i64,
    window_end: chrono::DateTime<Utc>,
}

/// Checks the sale and the request before anything changes.
fn plan(sale: &Sale, request: &DrawRequest) -> AppResult<DrawPlan> {
    if sale.mode != SaleMode::Lottery {
        return Err(AppError::conflict("not_a_lottery", "this sale is not a lottery"));
    }
    if sale.lottery_drawn_at.is_some() {
        return Err(AppError::conflict("already_drawn", "the lottery has already been drawn"));
    }
    if sale.state == crate::sales::SaleState::Closed {
        return Err(AppError::gone("sale_closed", "the sale is closed"));
    }
    let default_winners = i64::from(sale.released_upto / sale.per_user_limit.max(1)).max(1);
    let winners = request.winners.unwrap_or(default_winners);
    if !(1..=10_000_000).contains(&winners) {
        return Err(AppError::Invalid("winners must be between 1 and 10000000".into()));
    }
    let window = request.purchase_window_seconds.unwrap_or(i64::from(sale.admission_ttl_seconds));
    if !(1..=7 * 86_400).contains(&window) {
        return Err(AppError::Invalid("purchase_window_seconds must be between 1 and 604800".into()));
    }
    Ok(DrawPlan { winners, window_end: Utc::now() + chrono::Duration::seconds(window) })
}

/// Draws `sale`'s lottery. The draw itself is one atomic Redis script
/// that refuses to draw twice; Postgres then records it (seed revealed,
/// one event per entry) in one transaction guarded by `lottery_drawn_at IS
/// NULL`, so no row lock is held across Redis calls, two concurrent draws
/// record once, and a draw whose record failed is recorded by the next
/// attempt from what Redis holds.
pub async fn draw_lottery(
    db: &PgPool,
    waiting_room: &WaitingRoom,
    sale_id: &str,
    request: &DrawRequest,
) -> AppResult<DrawResult> {
    let sale = Sale::load(db, sale_id).await?;
    let plan = plan(&sale, request)?;
    // Entries close and their order is drawn from the committed seed.
    waiting_room.sync_sale(&sale).await?;
    waiting_room.start(&sale, true).await?;
    let drawn = waiting_room.draw(&sale.id, plan.winners, plan.window_end.timestamp_millis()).await?;
    let window_end = Utc.timestamp_millis_opt(drawn.window_end_ms).single().unwrap_or(plan.window_end);
    if !record(db, &sale, &drawn, window_end).await? {
        return Err(AppError::conflict("already_drawn", "the lottery has already been drawn"));
    }
    if let Ok(fresh) = Sale::load(db, &sale.id).await {
        let _ = waiting_room.sync_sale(&fresh).await;
    }
    tracing::info!(sale = %sale.id, entries = drawn.entries, winners = drawn.winners, fresh = drawn.fresh, "lottery drawn");
    Ok(DrawResult {
        sale_id: sale.id.clone(),
        entries: drawn.entries,
        winners: drawn.winners,
        seed: sale.seed.clone(),
        seed_commitment: sale.seed_commitment.clone(),
        purchase_window_ends_at: window_end,
    })
}

/// Records a draw in Postgres: the seed revealed, the winners, one
/// `lottery.won` / `lottery.lost` event per entry. `false` when another
/// call recorded it first.
async fn record(db: &PgPool, sale: &Sale, drawn: &Drawn, window_end: chrono::DateTime<Utc>) -> AppResult<bool> {
    let mut tx = db.begin().await?;
    if !crate::sales::lifecycle::record_draw(&mut tx, &sale.id, drawn.winners as i32).await? {
        return Ok(false);
    }
    let order = shuffled_order(&sale.seed, drawn.entries as u32);
    let entry_numbers: Vec<i64> = order.iter().map(|&n| i64::from(n)).collect();
    let places: Vec<i64> = (1..=drawn.entries as i64).collect();
    sqlx::query(
        "INSERT INTO outbox_events (id, event_type, sale_id, subject_id, payload) \
         SELECT gen_random_uuid(), CASE WHEN place <= $3 THEN $4 ELSE $5 END, $1, $1 || ':' || entry, \
                jsonb_build_object('sale_id', $1::text, 'entry', entry, 'place', place, 'won', place <= $3, \
                                   'purchase_window_ends_at', $6::timestamptz) \
         FROM unnest($2::bigint[], $7::bigint[]) AS t(entry, place)",
    )
    .bind(&sale.id)
    .bind(&entry_numbers)
    .bind(drawn.winners as i64)
    .bind(events::kind::LOTTERY_WON)
    .bind(events::kind::LOTTERY_LOST)
    .bind(window_end)
    .bind(&places)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}
