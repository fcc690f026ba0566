//! Operations endpoints: liveness, readiness, metrics and the OpenAPI document.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::AppError;
use crate::state::AppState;
use crate::store;

/// How long readiness waits for each dependency.
const READINESS_TIMEOUT: Duration = Duration::from_millis(400);

/// Readiness of each dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    pub postgres: &'static str,
    /// `ok` or `unavailable`.
    pub redis: &'static str,
}

/// Alive: the process answers. Touches no dependency.
#[utoipa::path(tag = "operations", responses((status = 200, description = "alive")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Ready: Postgres and Redis both answer, checked concurrently and each
/// within 400 ms, so a dead dependency is reported in well under a second.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness))
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let redis = async {
        tokio::time::timeout(READINESS_TIMEOUT, state.redis().ping())
            .await
            .unwrap_or_else(|_| Err(AppError::Unavailable("redis ping timed out".into())))
    };
    let (pg, redis) = tokio::join!(store::pg_ping(&state.db, READINESS_TIMEOUT), redis);
    let verdict = |r: &Result<(), AppError>| if r.is_ok() { "ok" } else { "unavailable" };
    let body = Readiness { postgres: verdict(&pg), redis: verdict(&redis) };
    if pg.is_ok() && redis.is_ok() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().insert_header((header::RETRY_AFTER, "2")).json(body)
    }
}

/// Prometheus text exposition.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Prometheus text format")))]
#[get("/metrics")]
pub async fn metrics_endpoint(state: web::Data<AppState>) -> HttpResponse {
    let pg = &state.db;
    let idle = pg.num_idle() as f64;
    ::metrics::gauge!(crate::metrics::PG_POOL, "state" => "idle").set(idle);
    ::metrics::gauge!(crate::metrics::PG_POOL, "state" => "in_use").set(f64::from(pg.size()) - idle);
    ::metrics::gauge!(crate::metrics::PG_POOL, "state" => "max")
        .set(f64::from(state.settings.database.max_connections));
    ::metrics::gauge!(crate::metrics::REDIS_POOL, "state" => "shared").set(state.redis().connection_count() as f64);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(crate::metrics::render())
}

/// The OpenAPI document of the whole API.
#[utoipa::path(tag = "operations", responses((status = 200, description = "This document")))]
#[get("/api/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(crate::openapi::document())
}

crate::domain_routes!(healthz, readyz, metrics_endpoint, openapi_json);
