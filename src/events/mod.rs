//! The transactional outbox (SPEC §6): events are rows written in the same
//! transaction as the change they report, so there is never one without the
//! other. [`delivery`] sends them to the configured webhooks;
//! [`reminders`] writes the time-based ones.

pub mod delivery;
pub mod reminders;
pub mod routes;

use serde_json::Value;
use sqlx::PgConnection;

/// Event types buyers and the site's systems care about.
pub mod kind {
    /// A visitor was admitted by the waiting room.
    pub const QUEUE_ADMITTED: &str = "queue.admitted";
    /// Units were held.
    pub const HOLD_CREATED: &str = "hold.created";
    /// A hold is about to expire.
    pub const HOLD_EXPIRING: &str = "hold.expiring";
    /// A hold expired; its units are on sale again.
    pub const HOLD_EXPIRED: &str = "hold.expired";
    /// A hold was released by its owner or by a failed payment.
    pub const HOLD_RELEASED: &str = "hold.released";
    /// A payment turned a hold into an order.
    pub const ORDER_CONFIRMED: &str = "order.confirmed";
    /// An order was cancelled; its units are on sale again.
    pub const ORDER_CANCELLED: &str = "order.cancelled";
    /// A payment could not be honoured and must be refunded.
    pub const PAYMENT_REFUND_REQUIRED: &str = "payment.refund_required";
    /// A lottery entry won.
    pub const LOTTERY_WON: &str = "lottery.won";
    /// A lottery entry lost.
    pub const LOTTERY_LOST: &str = "lottery.lost";
    /// A sale is about to start.
    pub const SALE_STARTING: &str = "sale.starting";
}

/// Writes one event inside the caller's transaction.
pub async fn record(
    conn: &mut PgConnection,
    event_type: &str,
    sale_id: &str,
    subject_id: &str,
    payload: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO outbox_events (id, event_type, sale_id, subject_id, payload) VALUES ($1, $2, $3, $4, $5)")
        .bind(uuid::Uuid::new_v4())
        .bind(event_type)
        .bind(sale_id)
        .bind(subject_id)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes a `hold.*` event about `hold` inside the caller's transaction,
/// with the payload every hold event has (`hold_event_payload` in
/// migrations/0004).
pub async fn record_hold_event(conn: &mut PgConnection, event_type: &str, hold: uuid::Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox_events (id, event_type, sale_id, subject_id, payload) \
         SELECT gen_random_uuid(), $1, h.sale_id, h.id::text, hold_event_payload(h) FROM holds h WHERE h.id = $2",
    )
    .bind(event_type)
    .bind(hold)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes one `queue.admitted` event per admitted visitor. Admission
/// happens in Redis, so this follows it rather than sharing a transaction
/// with it: an instance dying in between loses these notifications (never
/// the admission itself).
pub async fn queue_admitted(
    db: &sqlx::PgPool,
    sale_id: &str,
    entries: &[(u64, String)],
    deadline_ms: i64,
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let numbers: Vec<i64> = entries.iter().map(|(n, _)| *n as i64).collect();
    let users: Vec<Option<&str>> = entries.iter().map(|(_, u)| (!u.is_empty()).then_some(u.as_str())).collect();
    let deadline = chrono::DateTime::from_timestamp_millis(deadline_ms);
    sqlx::query(
        "INSERT INTO outbox_events (id, event_type, sale_id, subject_id, payload) \
         SELECT gen_random_uuid(), 'queue.admitted', $1, $1 || ':' || entry, \
                jsonb_build_object('sale_id', $1::text, 'entry', entry, 'user_id', user_id, \
                                   'admission_expires_at', $4::timestamptz) \
         FROM unnest($2::bigint[], $3::text[]) AS t(entry, user_id)",
    )
    .bind(sale_id)
    .bind(&numbers)
    .bind(&users)
    .bind(deadline)
    .execute(db)
    .await?;
    Ok(())
}
