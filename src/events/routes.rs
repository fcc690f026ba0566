//! Admin view of dead-lettered webhook deliveries, and their replay.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::delivery::{dead_letters, replay_dead, DeadDelivery};
use crate::error::{AppError, AppResult};
use crate::extractor::Admin;
use crate::state::AppState;

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
    Ok(HttpResponse::Ok().json(dead_letters(&state.db, limit).await?))
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
    let replayed = replay_dead(&state.db, id).await?;
    Ok(HttpResponse::Ok().json(Replayed { replayed }))
}

crate::domain_routes!(dead, replay);
