//! Reminders: `hold.expiring` shortly before a hold expires and
//! `sale.starting` shortly before a sale starts, each sent once (the
//! `reminded_at` / `starting_notified_at` marks are set in the statement that
//! writes the event).
//!
//! A hold is reminded `hold_before_seconds` before it expires, but never in
//! the first half of its life: a hold shorter than twice that lead (a flash
//! sale's 30 s against the default 60 s) is reminded at half-time. Reminding
//! it at once told a buyer who had just been shown the countdown that it was
//! running out, and cost every hold of such a sale a second outbox event
//! and an update, although most are paid within seconds.

use sqlx::PgPool;

use crate::error::AppResult;

/// Writes due reminders. Returns how many events were written.
pub async fn send_due(db: &PgPool, hold_before_seconds: i64, sale_before_seconds: i64) -> AppResult<u64> {
    let holds = sqlx::query(
        "WITH due AS ( \
             SELECT id FROM holds \
             WHERE state = 'active' AND reminded_at IS NULL \
               AND expires_at <= now() + make_interval(secs => $1) AND expires_at > now() \
               AND created_at + (expires_at - created_at) / 2 <= now() \
             ORDER BY expires_at LIMIT 500 FOR UPDATE SKIP LOCKED), \
         h AS ( \
             UPDATE holds SET reminded_at = now() FROM due WHERE holds.id = due.id \
             RETURNING holds.id, holds.sale_id, holds.visitor_id, holds.quantity, holds.unit_ids, holds.expires_at) \
         INSERT INTO outbox_events (id, event_type, sale_id, subject_id, payload) \
         SELECT gen_random_uuid(), 'hold.expiring', h.sale_id, h.id::text, \
                jsonb_build_object('hold_id', h.id, 'sale_id', h.sale_id, 'visitor_id', h.visitor_id, \
                                   'quantity', h.quantity, 'unit_ids', h.unit_ids, 'expires_at', h.expires_at) \
         FROM h",
    )
    .bind(hold_before_seconds as f64)
    .execute(db)
    .await?
    .rows_affected();
    let sales = sqlx::query(
        "WITH s AS ( \
             UPDATE sales SET starting_notified_at = now() \
             WHERE state = 'scheduled' AND starting_notified_at IS NULL \
               AND starts_at <= now() + make_interval(secs => $1) \
             RETURNING id, name, mode, starts_at) \
         INSERT INTO outbox_events (id, event_type, sale_id, subject_id, payload) \
         SELECT gen_random_uuid(), 'sale.starting', s.id, s.id, \
                jsonb_build_object('sale_id', s.id, 'name', s.name, 'mode', s.mode, 'starts_at', s.starts_at) \
         FROM s",
    )
    .bind(sale_before_seconds as f64)
    .execute(db)
    .await?
    .rows_affected();
    Ok(holds + sales)
}
