//! Staged release: stage k's units (a contiguous id range) become holdable
//! when the admin releases it or its scheduled time comes, exactly once
//! however many instances try.

use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::error::{AppError, AppResult};
use crate::sales::state;

/// A stage that was just released.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Released {
    /// The sale.
    pub sale_id: String,
    /// The stage now on sale.
    pub stage: i32,
    /// Units released with it.
    pub units: i32,
    /// Units on sale in all released stages.
    pub released_units: i32,
}

/// Sales with a stage whose scheduled opening has come and that is not
/// released yet.
pub async fn due(db: &PgPool) -> AppResult<Vec<String>> {
    let due: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT st.sale_id FROM sale_stages st JOIN sales s ON s.id = st.sale_id \
         WHERE s.state <> 'closed' AND st.released_at IS NULL AND st.opens_at <= now()",
    )
    .fetch_all(db)
    .await?;
    Ok(due.into_iter().map(|(sale,)| sale).collect())
}

/// Releases the sale's next stage. With `only_if_due`, only when that stage
/// has a scheduled time that has passed (the clock's call); without, at once
/// (the admin's call, 409 when every stage is out).
pub async fn release_next_stage(db: &PgPool, sale_id: &str, only_if_due: bool) -> AppResult<Option<Released>> {
    let mut tx = db.begin().await?;
    // The sale row lock makes concurrent releases (admin and clocks of
    // several instances) take turns, so each stage opens exactly once.
    let current: Option<(i32, String)> =
        sqlx::query_as("SELECT released_stages, state FROM sales WHERE id = $1 FOR UPDATE")
            .bind(sale_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((released_stages, sale_state)) = current else {
        return Err(AppError::NotFound("sale"));
    };
    if sale_state == state::CLOSED {
        return Err(AppError::gone("sale_closed", "the sale is closed"));
    }
    let due = if only_if_due { "AND opens_at IS NOT NULL AND opens_at <= now()" } else { "" };
    let next: Option<(i32, i32, i32)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT stage, unit_count, last_unit FROM sale_stages WHERE sale_id = $1 AND stage = $2 {due}"
    )))
    .bind(sale_id)
    .bind(released_stages + 1)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((stage, units, last_unit)) = next else {
        if only_if_due {
            return Ok(None);
        }
        return Err(AppError::conflict("no_more_stages", "every stage is already released"));
    };
    sqlx::query("UPDATE sale_stages SET released_at = now() WHERE sale_id = $1 AND stage = $2")
        .bind(sale_id)
        .bind(stage)
        .execute(&mut *tx)
        .await?;
    // New stock reopens a sold-out sale.
    sqlx::query(
        "UPDATE sales SET released_stages = $2, released_upto = $3, updated_at = now(), \
         state = CASE WHEN state = 'sold_out' THEN 'on_sale' ELSE state END WHERE id = $1",
    )
    .bind(sale_id)
    .bind(stage)
    .bind(last_unit)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(sale = sale_id, stage, units, "stage released");
    Ok(Some(Released { sale_id: sale_id.to_owned(), stage, units, released_units: last_unit }))
}
