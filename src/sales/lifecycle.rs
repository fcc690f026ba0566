//! A sale's life: every change of `sales.state` is made here.
//!
//! ```text
//! scheduled ──starts_at (FIFO) or the lottery draw──▶ on_sale ⇄ paused (admin)
//!     on_sale ⇄ sold_out (clock: nothing available or held / units came back)
//!     any ──ends_at or admin close──▶ closed
//! ```
//!
//! The clock's transitions are single conditional UPDATEs, so whichever
//! instance runs one first makes it and the others change nothing; an
//! admin's change locks the row so concurrent changes take turns.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;

use super::create::{validate_admission, validate_challenge, AdmissionSpec, ChallengeSpec, ValidAdmission};
use super::{Sale, SaleState, SALE_COLUMNS};
use crate::error::{AppError, AppResult};

/// What an admin can do to a sale's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SaleAction {
    /// Stop admission and holds for now (joins still queue).
    Pause,
    /// Go on after a pause.
    Resume,
    /// End the sale for good.
    Close,
}

/// `PATCH /admin/v1/sales/{sale}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaleUpdate {
    /// `pause`, `resume` or `close`.
    pub action: Option<SaleAction>,
    /// Admission settings to change live.
    #[serde(default, deserialize_with = "crate::extractor::objects::optional")]
    pub admission: Option<AdmissionSpec>,
    /// Proof-of-work settings to change live (outstanding challenges keep
    /// the difficulty they were handed out with).
    #[serde(default, deserialize_with = "crate::extractor::objects::optional")]
    pub challenge: Option<ChallengeSpec>,
}

/// The state `action` leads to from `sale`'s, at `now`; 409
/// `invalid_transition` when it leads nowhere.
pub fn next_state(sale: &Sale, action: SaleAction, now: DateTime<Utc>) -> AppResult<SaleState> {
    use SaleState::*;
    match (action, sale.state) {
        (SaleAction::Pause, Closed) => Err(AppError::conflict("invalid_transition", "a closed sale cannot be paused")),
        (SaleAction::Pause, _) => Ok(Paused),
        (SaleAction::Resume, Paused) if sale.starts_at > now => Ok(Scheduled),
        // The clock turns it sold_out again if nothing is left.
        (SaleAction::Resume, Paused | OnSale) => Ok(OnSale),
        (SaleAction::Resume, other) => {
            Err(AppError::conflict("invalid_transition", format!("a {other} sale cannot be resumed")))
        }
        (SaleAction::Close, _) => Ok(Closed),
    }
}

/// Applies an admin's update to sale `id`: a state change and live
/// settings, validated before anything is written.
#[tracing::instrument(name = "update sale", skip_all, fields(sale = %id))]
pub async fn update(db: &PgPool, id: &str, update: &SaleUpdate) -> AppResult<Sale> {
    let mut tx = db.begin().await?;
    let sale = Sale::lock(&mut tx, id).await?;
    let new_state = match update.action {
        Some(action) => next_state(&sale, action, Utc::now())?,
        None => sale.state,
    };
    let admission = match &update.admission {
        Some(spec) => validate_admission(spec, Some(ValidAdmission::of(&sale)))?,
        None => ValidAdmission::of(&sale),
    };
    let challenge = match &update.challenge {
        Some(spec) => validate_challenge(spec, (sale.challenge_bits, sale.challenge_max_bits))?,
        None => (sale.challenge_bits, sale.challenge_max_bits),
    };
    let sale = sqlx::query_as::<_, Sale>(sqlx::AssertSqlSafe(format!(
        "UPDATE sales SET state = $2, admit_per_second = $3, max_active = $4, admission_ttl_seconds = $5, \
         abandon_after_seconds = $6, admission_mode = $7, admit_ceiling = $8, hold_p99_target_ms = $9, \
         challenge_bits = $10, challenge_max_bits = $11, updated_at = now() WHERE id = $1 RETURNING {SALE_COLUMNS}"
    )))
    .bind(&sale.id)
    .bind(new_state.as_str())
    .bind(admission.admit_per_second)
    .bind(admission.max_active)
    .bind(admission.admission_ttl_seconds)
    .bind(admission.abandon_after_seconds)
    .bind(admission.mode.as_str())
    .bind(admission.ceiling)
    .bind(admission.hold_p99_target_ms)
    .bind(challenge.0)
    .bind(challenge.1)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(sale = %sale.id, state = %sale.state, "sale updated");
    Ok(sale)
}

/// The clock's time-driven transitions: FIFO sales whose start has come
/// go on sale, sales whose end has come close.
pub async fn start_and_end(db: &PgPool) -> AppResult<()> {
    sqlx::query(
        "UPDATE sales SET state = 'on_sale', updated_at = now() \
         WHERE state = 'scheduled' AND mode = 'fifo' AND starts_at <= now()",
    )
    .execute(db)
    .await?;
    sqlx::query("UPDATE sales SET state = 'closed', updated_at = now() WHERE state <> 'closed' AND ends_at <= now()")
        .execute(db)
        .await?;
    Ok(())
}

/// The clock's stock-driven transitions: a sale with every stage released
/// and nothing available or held is sold out; a sold-out sale whose units
/// came back (an expiry, a cancellation) is on sale again.
pub async fn sold_out_or_back(db: &PgPool) -> AppResult<()> {
    sqlx::query(
        "UPDATE sales s SET state = 'sold_out', updated_at = now() \
         WHERE s.state = 'on_sale' \
           AND s.released_stages = (SELECT count(*) FROM sale_stages st WHERE st.sale_id = s.id) \
           AND NOT EXISTS (SELECT 1 FROM units u WHERE u.sale_id = s.id AND u.status = 'available') \
           AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.sale_id = s.id AND h.state = 'active')",
    )
    .execute(db)
    .await?;
    sqlx::query(
        "UPDATE sales s SET state = 'on_sale', updated_at = now() WHERE s.state = 'sold_out' \
         AND EXISTS (SELECT 1 FROM units u WHERE u.sale_id = s.id AND u.status = 'available' \
                     AND u.id <= s.released_upto)",
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Records a lottery draw inside `tx`: the seed revealed, the winners, the
/// sale on sale. `false` when the draw was recorded already.
pub async fn record_draw(tx: &mut PgConnection, sale: &str, winners: i32) -> AppResult<bool> {
    let recorded = sqlx::query(
        "UPDATE sales SET lottery_drawn_at = now(), lottery_winners = $2, seed_revealed = true, \
         state = 'on_sale', updated_at = now() WHERE id = $1 AND lottery_drawn_at IS NULL",
    )
    .bind(sale)
    .bind(winners)
    .execute(tx)
    .await?
    .rows_affected();
    Ok(recorded == 1)
}

/// The pre-queue's order is written: the seed may be shown.
pub async fn reveal_seed(db: &PgPool, sale: &str) -> AppResult<()> {
    sqlx::query("UPDATE sales SET seed_revealed = true WHERE id = $1 AND NOT seed_revealed")
        .bind(sale)
        .execute(db)
        .await?;
    Ok(())
}

/// Sales the clock keeps in step with Redis: every one not closed, and
/// those closed within the hour.
pub async fn live(db: &PgPool) -> AppResult<Vec<Sale>> {
    Ok(sqlx::query_as::<_, Sale>(sqlx::AssertSqlSafe(format!(
        "SELECT {SALE_COLUMNS} FROM sales WHERE state <> 'closed' OR updated_at > now() - interval '1 hour'"
    )))
    .fetch_all(db)
    .await?)
}

/// Ids of the sales on offer (not closed), soonest first, at most 100.
pub async fn on_offer(db: &PgPool) -> AppResult<Vec<String>> {
    let ids: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM sales WHERE state <> 'closed' ORDER BY starts_at, id LIMIT 100")
            .fetch_all(db)
            .await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Every sale, newest first (at most 200): the admin console's list.
pub async fn all(db: &PgPool) -> AppResult<Vec<String>> {
    let ids: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM sales ORDER BY created_at DESC, id LIMIT 200").fetch_all(db).await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_actions_lead_where_the_diagram_says() {
        let now = Utc::now();
        let at = |state| Sale { state, starts_at: now - chrono::Duration::hours(1), ..Sale::example() };
        assert_eq!(next_state(&at(SaleState::OnSale), SaleAction::Pause, now).ok(), Some(SaleState::Paused));
        assert_eq!(next_state(&at(SaleState::Paused), SaleAction::Resume, now).ok(), Some(SaleState::OnSale));
        let later = Sale { state: SaleState::Paused, starts_at: now + chrono::Duration::hours(1), ..Sale::example() };
        assert_eq!(next_state(&later, SaleAction::Resume, now).ok(), Some(SaleState::Scheduled));
        assert_eq!(next_state(&at(SaleState::SoldOut), SaleAction::Close, now).ok(), Some(SaleState::Closed));
        for (state, action) in [(SaleState::Closed, SaleAction::Pause), (SaleState::Closed, SaleAction::Resume)] {
            let refused = next_state(&at(state), action, now).expect_err("refused");
            assert_eq!(refused.code(), "invalid_transition");
        }
    }
}
