//! Admin view of dead-lettered webhook deliveries, and their replay.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::extractor::Admin;
use crate::state::AppState;

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

/// Query of the dead-letter list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DeadQuery {
    /// Most rows to return (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// Dead-lettered deliveries, newest first.
#[utoipa::path(
    tag = "admin",
    params(DeadQuery),
    security(("admin_key" = [])),
    responses((status = 200, body = Vec<DeadDelivery>))
)]
#[get("/admin/v1/events/dead")]
#[tracing::instrument(name = "admin dead events", skip_all)]
pub async fn dead(_admin: Admin, state: web::Data<AppState>, query: web::Query<DeadQuery>) -> AppResult<HttpResponse> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let rows: Vec<DeadDelivery> = sqlx::query_as(
        "SELECT d.event_id, d.endpoint, o.event_type, o.sale_id, d.attempts, d.last_status, d.last_error, o.created_at \
         FROM webhook_deliveries d JOIN outbox_events o ON o.id = d.event_id \
         WHERE d.state = 'dead' ORDER BY o.seq DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&state.db)
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// Result of a replay.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    /// Deliveries put back in line.
    pub replayed: u64,
}

/// Puts an event's dead deliveries back in line, with fresh tries.
#[utoipa::path(
    tag = "admin",
    params(("event" = String, Path, description = "Event id")),
    security(("admin_key" = [])),
    responses((status = 200, body = Replayed), (status = 404, body = crate::error::ErrorBody))
)]
#[post("/admin/v1/events/{event}/replay")]
#[tracing::instrument(name = "admin replay event", skip_all, fields(event = %path))]
pub async fn replay(_admin: Admin, state: web::Data<AppState>, path: web::Path<String>) -> AppResult<HttpResponse> {
    let id = Uuid::parse_str(&path).map_err(|_| AppError::NotFound("event"))?;
    let exists: Option<(Uuid,)> =
        sqlx::query_as("SELECT id FROM outbox_events WHERE id = $1").bind(id).fetch_optional(&state.db).await?;
    if exists.is_none() {
        return Err(AppError::NotFound("event"));
    }
    let replayed = sqlx::query(
        "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL \
         WHERE event_id = $1 AND state = 'dead'",
    )
    .bind(id)
    .execute(&state.db)
    .await?
    .rows_affected();
    Ok(HttpResponse::Ok().json(Replayed { replayed }))
}
