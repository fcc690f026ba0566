//! Reconciliation: Redis holds the waiting room, Postgres the truth. The
//! sale clock saves the waiting room's counters to Postgres and, when Redis
//! has lost them, puts them back; a slower pass re-adds admission slots
//! that active holds still use. Every repair is logged and counted.
//!
//! Units never depend on Redis: a Redis that forgets everything can delay
//! visitors, never sell a unit twice.

use crate::error::AppResult;
use crate::sales::Sale;
use crate::startup::AppState;
use crate::waiting_room::Keys;

/// Repairs made, by kind.
pub const REPAIRS: &str = "floodgate_reconcile_repairs_total";

/// Saves the waiting room's counters to Postgres (only ever upwards), so a
/// Redis that loses its data can be given them back by
/// [`crate::waiting_room::WaitingRoom::sync_sale`].
pub async fn save_counters(state: &AppState, sale: &Sale) -> AppResult<()> {
    let meta = Keys::new(&state.redis().prefix, &sale.id).key("meta");
    let (seq, serving, prequeue): (Option<i64>, Option<i64>, Option<i64>) =
        state
            .redis()
            .run(|mut c| async move {
                redis::cmd("HMGET").arg(&meta).arg(&["seq", "serving", "pq"]).query_async(&mut c).await
            })
            .await?;
    let (seq, serving) = (seq.unwrap_or(0), serving.unwrap_or(0));
    if seq > sale.queue_seq_saved
        || serving > sale.queue_serving_saved
        || prequeue.is_some() && sale.queue_prequeue_saved.is_none()
    {
        // updated_at stays: these are copies, not changes to the sale.
        sqlx::query(
            "UPDATE sales SET queue_seq_saved = GREATEST(queue_seq_saved, $2), \
             queue_serving_saved = GREATEST(queue_serving_saved, $3), \
             queue_prequeue_saved = COALESCE(queue_prequeue_saved, $4) WHERE id = $1",
        )
        .bind(&sale.id)
        .bind(seq)
        .bind(serving)
        .bind(prequeue)
        .execute(&state.db)
        .await?;
    }
    Ok(())
}

/// Gives every active hold's visitor their admission slot back if Redis
/// lost it (so `max_active` keeps counting them). Returns repairs made.
pub async fn admission_slots(state: &AppState, sale: &Sale) -> AppResult<u64> {
    let holds: Vec<(i64, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT queue_number, expires_at FROM holds \
         WHERE sale_id = $1 AND state = 'active' AND queue_number > 0 AND expires_at > now()",
    )
    .bind(&sale.id)
    .fetch_all(&state.db)
    .await?;
    if holds.is_empty() {
        return Ok(0);
    }
    let active = Keys::new(&state.redis().prefix, &sale.id).key("active");
    let added: u64 = state
        .redis()
        .run(|mut c| async move {
            let mut pipe = redis::pipe();
            for (n, expires_at) in &holds {
                pipe.cmd("ZADD").arg(&active).arg("NX").arg(expires_at.timestamp_millis()).arg(n);
            }
            let added: Vec<u64> = pipe.query_async(&mut c).await?;
            Ok(added.iter().sum())
        })
        .await?;
    if added > 0 {
        tracing::warn!(sale = %sale.id, added, "admission slots of active holds restored");
        ::metrics::counter!(REPAIRS, "kind" => "admission_slots").increment(added);
    }
    Ok(added)
}
