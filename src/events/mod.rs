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
