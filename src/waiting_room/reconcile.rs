//! Reconciliation: Redis holds the waiting room, Postgres the truth. The
//! sale clock saves the waiting room's counters to Postgres and, when Redis
//! has lost them, puts them back; a slower pass re-adds admission slots
//! that active holds still use. Every repair is logged and counted.
//!
//! Units never depend on Redis: a Redis that forgets everything can delay
//! visitors, never sell a unit twice.

use sqlx::PgPool;

use super::WaitingRoom;
use crate::error::AppResult;
use crate::metrics::REPAIRS;
use crate::sales::Sale;

/// Saves the waiting room's counters to Postgres (only ever upwards), so a
/// Redis that loses its data can be given them back by
/// [`crate::waiting_room::WaitingRoom::sync_sale`].
pub async fn save_counters(db: &PgPool, waiting_room: &WaitingRoom, sale: &Sale) -> AppResult<()> {
    let (seq, serving, prequeue) = waiting_room.counters(&sale.id).await?;
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
        .execute(db)
        .await?;
    }
    Ok(())
}

/// Gives every active hold's visitor their admission slot back if Redis
/// lost it (so `max_active` keeps counting them). Returns repairs made.
pub async fn admission_slots(db: &PgPool, waiting_room: &WaitingRoom, sale: &Sale) -> AppResult<u64> {
    let holds: Vec<(i64, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT queue_number, expires_at FROM holds \
         WHERE sale_id = $1 AND state = 'active' AND queue_number > 0 AND expires_at > now()",
    )
    .bind(&sale.id)
    .fetch_all(db)
    .await?;
    if holds.is_empty() {
        return Ok(0);
    }
    let slots: Vec<(i64, i64)> = holds.iter().map(|(n, until)| (*n, until.timestamp_millis())).collect();
    let added = waiting_room.restore_slots(&sale.id, &slots).await?;
    if added > 0 {
        tracing::warn!(sale = %sale.id, added, "admission slots of active holds restored");
        ::metrics::counter!(REPAIRS, "kind" => "admission_slots").increment(added);
    }
    Ok(added)
}

/// How the waiting room in Redis compares with Postgres, for the audit.
/// Differences here are repaired by the clock and the slot repair pass;
/// they delay visitors but cannot oversell, so they are reported apart from
/// the invariants.
pub async fn compare(
    db: &PgPool,
    waiting_room: &WaitingRoom,
    sale: &Sale,
) -> AppResult<Vec<crate::inventory::audit::Check>> {
    use crate::inventory::audit::Check;
    if !sale.waiting_room {
        return Ok(Vec::new());
    }
    let holds: Vec<(i64,)> = sqlx::query_as(
        "SELECT queue_number FROM holds WHERE sale_id = $1 AND state = 'active' AND queue_number > 0 \
         AND expires_at > now()",
    )
    .bind(&sale.id)
    .fetch_all(db)
    .await?;
    let numbers: Vec<i64> = holds.iter().map(|(n,)| *n).collect();
    let (redis_state, seq, scores) = waiting_room.state_and_slots(&sale.id, &numbers).await?;
    let missing: Vec<String> = holds
        .iter()
        .zip(scores.iter().chain(std::iter::repeat(&None)))
        .filter(|(_, score)| score.is_none())
        .map(|((n,), _)| format!("entry {n}"))
        .collect();
    let state_ok = redis_state.as_deref() == Some(sale.state.as_str());
    let seq_ok = seq.unwrap_or(0) >= sale.queue_seq_saved;
    Ok(vec![
        Check {
            name: "waiting_room_state",
            invariant: "redis",
            description: "the waiting room's copy of the sale state matches Postgres",
            ok: state_ok,
            violations: i64::from(!state_ok),
            examples: if state_ok {
                Vec::new()
            } else {
                vec![format!("redis {:?}, postgres {}", redis_state, sale.state)]
            },
        },
        Check {
            name: "join_numbers_above_saved",
            invariant: "redis",
            description: "the join counter is at or above the last value saved in Postgres",
            ok: seq_ok,
            violations: i64::from(!seq_ok),
            examples: if seq_ok { Vec::new() } else { vec![format!("{seq:?} < {}", sale.queue_seq_saved)] },
        },
        Check {
            name: "holds_have_admission_slots",
            invariant: "redis",
            description: "every active hold's visitor still counts against max_active",
            ok: missing.is_empty(),
            violations: missing.len() as i64,
            examples: missing.into_iter().take(20).collect(),
        },
    ])
}
