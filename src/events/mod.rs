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
    /// A cancelled order's payment is to be refunded (with its amount).
    pub const ORDER_REFUND_DUE: &str = "order.refund_due";
    /// A lottery entry won.
    pub const LOTTERY_WON: &str = "lottery.won";
    /// A lottery entry lost.
    pub const LOTTERY_LOST: &str = "lottery.lost";
    /// A sale is about to start.
    pub const SALE_STARTING: &str = "sale.starting";

    /// Every type above.
    pub const ALL: &[&str] = &[
        QUEUE_ADMITTED,
        HOLD_CREATED,
        HOLD_EXPIRING,
        HOLD_EXPIRED,
        HOLD_RELEASED,
        ORDER_CONFIRMED,
        ORDER_CANCELLED,
        ORDER_REFUND_DUE,
        PAYMENT_REFUND_REQUIRED,
        LOTTERY_WON,
        LOTTERY_LOST,
        SALE_STARTING,
    ];
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

/// Writes the `order.confirmed` event of `order` inside the caller's
/// transaction (payload: `order_event_payload` in migrations/0011, which
/// `confirm_payment` writes too).
pub async fn record_order_confirmed(conn: &mut PgConnection, order: uuid::Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox_events (id, event_type, sale_id, subject_id, payload) \
         SELECT gen_random_uuid(), $1, o.sale_id, o.id::text, order_event_payload(o) FROM orders o WHERE o.id = $2",
    )
    .bind(kind::ORDER_CONFIRMED)
    .bind(order)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes one `queue.admitted` event per admitted visitor, at most once
/// each: the event id is derived from the sale and the join number, so
/// writing the same admissions again (a retry, another instance) adds
/// nothing. Admission happens in Redis, so the waiting room keeps each
/// admission pending until this succeeded (see `WaitingRoom::pending_admissions`).
pub async fn queue_admitted(
    db: &sqlx::PgPool,
    sale_id: &str,
    admissions: &[crate::waiting_room::PendingAdmission],
) -> Result<(), sqlx::Error> {
    if admissions.is_empty() {
        return Ok(());
    }
    let numbers: Vec<i64> = admissions.iter().map(|a| a.n as i64).collect();
    let users: Vec<Option<&str>> = admissions.iter().map(|a| (!a.user.is_empty()).then_some(a.user.as_str())).collect();
    let deadlines: Vec<Option<chrono::DateTime<chrono::Utc>>> =
        admissions.iter().map(|a| chrono::DateTime::from_timestamp_millis(a.deadline_ms)).collect();
    sqlx::query(
        "INSERT INTO outbox_events (id, event_type, sale_id, subject_id, payload) \
         SELECT md5('queue.admitted:' || $1 || ':' || entry)::uuid, 'queue.admitted', $1, $1 || ':' || entry, \
                jsonb_build_object('sale_id', $1::text, 'entry', entry, 'user_id', user_id, \
                                   'admission_expires_at', deadline) \
         FROM unnest($2::bigint[], $3::text[], $4::timestamptz[]) AS t(entry, user_id, deadline) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(sale_id)
    .bind(&numbers)
    .bind(&users)
    .bind(&deadlines)
    .execute(db)
    .await?;
    Ok(())
}

/// Writes the `queue.admitted` events of the admissions still pending in the
/// waiting room, then forgets them there; what fails stays pending for the
/// next try (the admission ticker's, on any instance). Returns how many
/// events were written.
pub async fn flush_admissions(
    db: &sqlx::PgPool,
    waiting_room: &crate::waiting_room::WaitingRoom,
    sale_id: &str,
) -> crate::error::AppResult<usize> {
    const BATCH: isize = 500;
    let mut written = 0;
    loop {
        let pending = waiting_room.pending_admissions(sale_id, BATCH).await?;
        if pending.is_empty() {
            return Ok(written);
        }
        queue_admitted(db, sale_id, &pending).await?;
        waiting_room.forget_admissions(sale_id, &pending).await?;
        written += pending.len();
        if (pending.len() as isize) < BATCH {
            return Ok(written);
        }
    }
}

/// What happened in a sale lately, for the admin console: counted from the
/// outbox, which records every such change in the change's own transaction.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Activity {
    /// The window the `*_created`/`*_confirmed`/`*_expired` counts cover.
    pub window_seconds: i64,
    /// Holds placed in the window.
    pub holds_created: i64,
    /// Orders confirmed in the window.
    pub orders_confirmed: i64,
    /// Holds that expired unpaid in the window.
    pub holds_expired: i64,
    /// `payment.refund_required` events of the sale, all time.
    pub refunds_required: i64,
    /// Webhook deliveries of the sale's events that gave up, all time.
    pub dead_letters: i64,
}

/// The sale's [`Activity`] over the last `window_seconds`.
pub async fn activity(db: &sqlx::PgPool, sale_id: &str, window_seconds: i64) -> crate::error::AppResult<Activity> {
    // Each count is a range of `outbox_sale_type` (sale, type, time), so a
    // window costs its own events, not the sale's whole history.
    let (holds_created, orders_confirmed, holds_expired, refunds_required, dead_letters): (i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM outbox_events WHERE sale_id = $1 AND event_type = $3 \
                       AND created_at > now() - make_interval(secs => $2)), \
                    (SELECT count(*) FROM outbox_events WHERE sale_id = $1 AND event_type = $4 \
                       AND created_at > now() - make_interval(secs => $2)), \
                    (SELECT count(*) FROM outbox_events WHERE sale_id = $1 AND event_type = $5 \
                       AND created_at > now() - make_interval(secs => $2)), \
                    (SELECT count(*) FROM outbox_events WHERE sale_id = $1 AND event_type = $6), \
                    (SELECT count(*) FROM webhook_deliveries d JOIN outbox_events o ON o.id = d.event_id \
                      WHERE d.state = 'dead' AND o.sale_id = $1)",
        )
        .bind(sale_id)
        .bind(window_seconds as f64)
        .bind(kind::HOLD_CREATED)
        .bind(kind::ORDER_CONFIRMED)
        .bind(kind::HOLD_EXPIRED)
        .bind(kind::PAYMENT_REFUND_REQUIRED)
        .fetch_one(db)
        .await?;
    Ok(Activity { window_seconds, holds_created, orders_confirmed, holds_expired, refunds_required, dead_letters })
}
