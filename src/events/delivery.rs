//! Delivering outbox events to the configured webhooks, at least once.
//!
//! Two steps, each safe with any number of instances:
//! 1. Fan-out: undispatched events (`FOR UPDATE SKIP LOCKED`) become one
//!    `webhook_deliveries` row per endpoint that wants their type, in the
//!    same transaction that marks them dispatched.
//! 2. Delivery: due deliveries are leased by moving `next_attempt_at` past
//!    the request timeout (so no other instance sends them meanwhile), sent
//!    signed like the payment webhook, then marked delivered, rescheduled
//!    with exponential backoff and jitter, or dead after the last try.
//!    A delivery waits while an earlier event of the same hold or order is
//!    still pending for that endpoint, so each subject's events arrive in
//!    order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use serde::Serialize;
use utoipa::ToSchema;

use crate::configuration::WebhookSettings;
use crate::error::{AppError, AppResult};
use crate::jobs::pause;
use crate::metrics::{BACKLOG, DELIVERIES, DELIVERY_LATENCY, EVENTS};
use crate::signature::sign;
use crate::state::AppState;

/// Deliveries sent per pass.
const BATCH: i64 = 50;

/// Delay before try `attempt + 1`: exponential, capped, with "equal jitter"
/// (half fixed, half random) so retries of many events spread out.
pub fn backoff(settings: &WebhookSettings, attempt: i32) -> Duration {
    let exponent = attempt.clamp(1, 30) as u32 - 1;
    let full = settings.backoff_base_ms.saturating_mul(1u64 << exponent).min(settings.backoff_max_ms);
    let half = full / 2;
    Duration::from_millis(half + rand::rng().random_range(0..=half))
}

/// Runs the dispatcher until shutdown.
pub async fn run(state: Arc<AppState>, mut stopped: watch::Receiver<bool>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(state.settings.webhooks.timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "webhook client could not be built; events stay in the outbox");
            return;
        }
    };
    let period = Duration::from_millis(state.settings.webhooks.dispatch_ms);
    let mut last_backlog = Instant::now();
    while pause(&mut stopped, period).await {
        if let Err(e) = fan_out_pending(&state.db, &state.settings.webhooks).await {
            tracing::warn!(error = %e, "outbox fan-out failed");
        }
        loop {
            match deliver_due(&state.db, &client, &state.settings.webhooks).await {
                Ok(sent) if sent as i64 == BATCH => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook delivery pass failed");
                    break;
                }
            }
        }
        if last_backlog.elapsed() > Duration::from_secs(1) {
            last_backlog = Instant::now();
            if let Ok((backlog,)) = sqlx::query_as::<_, (i64,)>(
                "SELECT (SELECT count(*) FROM outbox_events WHERE state = 'pending') \
                      + (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending')",
            )
            .fetch_one(&state.db)
            .await
            {
                ::metrics::gauge!(BACKLOG).set(backlog as f64);
            }
        }
    }
}

/// Events one `fan_out` call takes (the `LIMIT` written in its statement).
const FAN_OUT_BATCH: usize = 500;

/// Most `fan_out` calls in one dispatch pass, so that a pass (and the
/// deliveries behind it) ends even while events keep arriving.
const FAN_OUT_CALLS: usize = 40;

/// Fans out the backlog, batch after batch, until a batch comes back short
/// (or [`FAN_OUT_CALLS`] batches). One batch per dispatch pass capped an
/// instance at 500 events per period, 2,000 per second at the default 250 ms:
/// fewer than a burst of holds writes, so the backlog grew for as long as
/// the burst lasted. Returns how many events.
pub async fn fan_out_pending(db: &PgPool, settings: &WebhookSettings) -> AppResult<usize> {
    let mut total = 0;
    for _ in 0..FAN_OUT_CALLS {
        let batch = fan_out(db, settings).await?;
        total += batch;
        if batch < FAN_OUT_BATCH {
            break;
        }
    }
    Ok(total)
}

/// Turns undispatched events into deliveries. Returns how many events. The
/// batch's rows are found by `= ANY(ARRAY(...))` (the primary key), not by a
/// join the planner sized for 500 rows and ran as a scan of the whole outbox.
async fn fan_out(db: &PgPool, settings: &WebhookSettings) -> AppResult<usize> {
    let mut tx = db.begin().await?;
    let events: Vec<(Uuid, String, i64, Option<String>)> = sqlx::query_as(
        "WITH batch AS ( \
             SELECT id FROM outbox_events WHERE state = 'pending' ORDER BY seq LIMIT 500 FOR UPDATE SKIP LOCKED) \
         UPDATE outbox_events e SET state = 'dispatched' WHERE e.id = ANY(ARRAY(SELECT id FROM batch)) \
         RETURNING e.id, e.event_type, e.seq, e.subject_id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let (mut ids, mut endpoints, mut seqs, mut subjects) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, event_type, seq, subject) in &events {
        ::metrics::counter!(EVENTS, "type" => event_type.clone()).increment(1);
        for endpoint in settings.endpoints.iter().filter(|e| e.wants(event_type)) {
            ids.push(*id);
            endpoints.push(endpoint.name.clone());
            seqs.push(*seq);
            subjects.push(subject.clone());
        }
    }
    if !ids.is_empty() {
        sqlx::query(
            "INSERT INTO webhook_deliveries (event_id, endpoint, seq, subject_id) \
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(&ids)
        .bind(&endpoints)
        .bind(&seqs)
        .bind(&subjects)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(events.len())
}

/// A leased delivery with its event.
#[derive(sqlx::FromRow)]
struct Due {
    event_id: Uuid,
    endpoint: String,
    attempts: i32,
    event_type: String,
    sale_id: Option<String>,
    subject_id: Option<String>,
    payload: Value,
    created_at: DateTime<Utc>,
}

/// Leases and sends due deliveries. Returns how many were attempted.
pub async fn deliver_due(db: &PgPool, client: &reqwest::Client, settings: &WebhookSettings) -> AppResult<usize> {
    let lease_seconds = (settings.timeout_ms / 1000 + 10) as f64;
    let due: Vec<Due> = sqlx::query_as(
        "WITH next AS ( \
             SELECT d.event_id, d.endpoint FROM webhook_deliveries d \
             WHERE d.state = 'pending' AND d.next_attempt_at <= now() \
               AND NOT EXISTS ( \
                   SELECT 1 FROM webhook_deliveries e \
                   WHERE e.endpoint = d.endpoint AND e.subject_id = d.subject_id \
                     AND e.state = 'pending' AND e.seq < d.seq) \
             ORDER BY d.seq LIMIT $1 FOR UPDATE SKIP LOCKED), \
         leased AS ( \
             UPDATE webhook_deliveries w \
             SET attempts = w.attempts + 1, next_attempt_at = now() + make_interval(secs => $2) \
             FROM next WHERE w.event_id = ANY(ARRAY(SELECT event_id FROM next)) \
               AND w.event_id = next.event_id AND w.endpoint = next.endpoint \
             RETURNING w.event_id, w.endpoint, w.attempts) \
         SELECT l.event_id, l.endpoint, l.attempts, o.event_type, o.sale_id, o.subject_id, o.payload, o.created_at \
         FROM leased l JOIN outbox_events o ON o.id = l.event_id",
    )
    .bind(BATCH)
    .bind(lease_seconds)
    .fetch_all(db)
    .await?;
    let count = due.len();
    let sends = due.into_iter().map(|delivery| async move {
        let outcome = send(client, settings, &delivery).await;
        record(db, settings, &delivery, outcome).await
    });
    for result in futures_util::future::join_all(sends).await {
        result?;
    }
    Ok(count)
}

async fn send(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    delivery: &Due,
) -> Result<u16, (Option<u16>, String)> {
    let Some(endpoint) = settings.endpoints.iter().find(|e| e.name == delivery.endpoint) else {
        return Err((None, format!("endpoint {} is no longer configured", delivery.endpoint)));
    };
    let body = json!({
        "id": delivery.event_id,
        "type": delivery.event_type,
        "sale_id": delivery.sale_id,
        "subject_id": delivery.subject_id,
        "created_at": delivery.created_at,
        "data": delivery.payload,
    });
    let raw = serde_json::to_vec(&body).map_err(|e| (None, e.to_string()))?;
    let signature = sign(endpoint.secret.expose_secret(), Utc::now().timestamp(), &raw);
    let response = client
        .post(&endpoint.url)
        .header("Content-Type", "application/json")
        .header("Floodgate-Signature", signature)
        .header("Floodgate-Event-Id", delivery.event_id.to_string())
        .header("Floodgate-Event-Type", delivery.event_type.as_str())
        .body(raw)
        .send()
        .await
        .map_err(|e| (None, e.to_string()))?;
    let status = response.status();
    if status.is_success() {
        Ok(status.as_u16())
    } else {
        Err((Some(status.as_u16()), format!("endpoint answered {status}")))
    }
}

async fn record(
    db: &PgPool,
    settings: &WebhookSettings,
    delivery: &Due,
    outcome: Result<u16, (Option<u16>, String)>,
) -> AppResult<()> {
    let event_type = delivery.event_type.clone();
    match outcome {
        Ok(status) => {
            sqlx::query(
                "UPDATE webhook_deliveries SET state = 'delivered', delivered_at = now(), last_status = $3, \
                 last_error = NULL WHERE event_id = $1 AND endpoint = $2",
            )
            .bind(delivery.event_id)
            .bind(&delivery.endpoint)
            .bind(i32::from(status))
            .execute(db)
            .await?;
            ::metrics::counter!(DELIVERIES, "type" => event_type, "outcome" => "delivered").increment(1);
            let latency = (Utc::now() - delivery.created_at).num_milliseconds().max(0) as f64 / 1000.0;
            ::metrics::histogram!(DELIVERY_LATENCY).record(latency);
        }
        Err((status, error)) => {
            let dead = delivery.attempts >= settings.max_attempts;
            let delay = backoff(settings, delivery.attempts);
            sqlx::query(
                "UPDATE webhook_deliveries SET state = $3, last_status = $4, last_error = $5, \
                 next_attempt_at = now() + make_interval(secs => $6) WHERE event_id = $1 AND endpoint = $2",
            )
            .bind(delivery.event_id)
            .bind(&delivery.endpoint)
            .bind(if dead { "dead" } else { "pending" })
            .bind(status.map(i32::from))
            .bind(error.chars().take(500).collect::<String>())
            .bind(delay.as_secs_f64())
            .execute(db)
            .await?;
            let outcome = if dead { "dead" } else { "retried" };
            ::metrics::counter!(DELIVERIES, "type" => event_type, "outcome" => outcome).increment(1);
            if dead {
                tracing::warn!(event = %delivery.event_id, endpoint = %delivery.endpoint, "webhook delivery dead-lettered");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WebhookSettings {
        WebhookSettings {
            endpoints: Vec::new(),
            timeout_ms: 1000,
            max_attempts: 5,
            backoff_base_ms: 1000,
            backoff_max_ms: 60_000,
            dispatch_ms: 100,
        }
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_a_cap() {
        let s = settings();
        for attempt in 1..=10 {
            let full = (1000u64 << (attempt - 1)).min(60_000);
            let delay = backoff(&s, attempt).as_millis() as u64;
            assert!(delay >= full / 2 && delay <= full, "attempt {attempt}: {delay} vs {full}");
        }
        assert!(backoff(&s, 1000).as_millis() <= 60_000);
    }
}

/// A delivery that gave up.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct DeadDelivery {
    /// Event id (also sent as `Floodgate-Event-Id`).
    pub event_id: Uuid,
    /// Endpoint name.
    pub endpoint: String,
    /// Event type.
    pub event_type: String,
    /// Sale.
    pub sale_id: Option<String>,
    /// Tries made.
    pub attempts: i32,
    /// HTTP status of the last try, if any.
    pub last_status: Option<i32>,
    /// What went wrong last.
    pub last_error: Option<String>,
    /// When the event was written.
    pub created_at: DateTime<Utc>,
}

/// Dead-lettered deliveries, newest first, at most `limit`.
pub async fn dead_letters(db: &PgPool, limit: i64) -> AppResult<Vec<DeadDelivery>> {
    Ok(sqlx::query_as(
        "SELECT d.event_id, d.endpoint, o.event_type, o.sale_id, d.attempts, d.last_status, d.last_error, o.created_at \
         FROM webhook_deliveries d JOIN outbox_events o ON o.id = d.event_id \
         WHERE d.state = 'dead' ORDER BY o.seq DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Puts an event's dead deliveries back in line with fresh tries; how many.
/// 404 for an event that does not exist.
pub async fn replay_dead(db: &PgPool, event: Uuid) -> AppResult<u64> {
    let exists: Option<(Uuid,)> =
        sqlx::query_as("SELECT id FROM outbox_events WHERE id = $1").bind(event).fetch_optional(db).await?;
    if exists.is_none() {
        return Err(AppError::NotFound("event"));
    }
    Ok(sqlx::query(
        "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL \
         WHERE event_id = $1 AND state = 'dead'",
    )
    .bind(event)
    .execute(db)
    .await?
    .rows_affected())
}
