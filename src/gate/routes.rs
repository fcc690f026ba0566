//! The gate's HTTP side: challenges for visitors, access rules for admins.

use actix_web::http::header;
use actix_web::{get, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::access::RuleLists;
use crate::error::{AppError, AppResult};
use crate::extractor::{Admin, JsonBody, StatusQuota};
use crate::sales::{valid_sale_id, Sale};
use crate::state::AppState;

/// A proof-of-work challenge (SPEC §4a).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengeView {
    /// The string to solve: find a `nonce` (1 to 32 printable ASCII
    /// characters) such that SHA-256(`challenge` ":" `nonce`) has at least
    /// `difficulty_bits` leading zero bits, then join with both.
    pub challenge: String,
    /// Leading zero bits asked for (0: any nonce will do).
    pub difficulty_bits: u8,
    /// The challenge cannot be used after this.
    pub expires_at: DateTime<Utc>,
}

/// A fresh challenge to join the sale with. Its difficulty grows with the
/// places the client's address and network took lately (README, "Proof of
/// work"); it is 0 when the sale asks for none or the client is allowed.
#[utoipa::path(
    tag = "waiting room",
    params(("sale" = String, Path, description = "Sale id")),
    responses(
        (status = 200, body = ChallengeView),
        (status = 403, description = "`access_denied`", body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)
    )
)]
#[get("/api/v1/sales/{sale}/challenge")]
pub async fn challenge(
    gate: StatusQuota,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let sale = state.sales.get(&state.db, &path).await?;
    let issued = super::hand_out(&state.challenges, &state.waiting_room, &sale, gate.ip, gate.verdict).await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(ChallengeView {
        challenge: issued.challenge,
        difficulty_bits: issued.difficulty_bits,
        expires_at: issued.expires_at,
    }))
}

/// Access rules of a scope as the admin API shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessView {
    /// The rules stored through the API (replaced by `PUT`).
    pub rules: RuleLists,
    /// Global scope only: the rules from the configuration, which apply
    /// too and change only with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configured: Option<RuleLists>,
}

fn access_view(state: &AppState, sale: Option<&str>) -> AccessView {
    let (rules, configured) = state.access.lists(sale);
    AccessView { rules, configured }
}

/// The global access rules.
#[utoipa::path(
    tag = "admin",
    security(("admin_key" = [])),
    responses((status = 200, body = AccessView), (status = 401, body = crate::error::ErrorBody))
)]
#[get("/admin/v1/access")]
pub async fn get_global(_admin: Admin, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(access_view(&state, None)))
}

/// Replaces the global access rules; every instance applies them within
/// about a second. The most specific matching rule wins, deny on a tie.
#[utoipa::path(
    tag = "admin",
    request_body = RuleLists,
    security(("admin_key" = [])),
    responses((status = 200, body = AccessView), (status = 401, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
#[put("/admin/v1/access")]
#[tracing::instrument(name = "admin access rules", skip_all)]
pub async fn put_global(
    _admin: Admin,
    state: web::Data<AppState>,
    JsonBody(rules): JsonBody<RuleLists>,
) -> AppResult<HttpResponse> {
    state.access.replace(&state.db, None, &rules).await?;
    tracing::info!(allow = rules.allow.len(), deny = rules.deny.len(), "global access rules replaced");
    Ok(HttpResponse::Ok().json(access_view(&state, None)))
}

/// A sale's own access rules (the global ones apply too).
#[utoipa::path(
    tag = "admin",
    params(("sale" = String, Path, description = "Sale id")),
    security(("admin_key" = [])),
    responses((status = 200, body = AccessView), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
#[get("/admin/v1/sales/{sale}/access")]
pub async fn get_sale(_admin: Admin, state: web::Data<AppState>, path: web::Path<String>) -> AppResult<HttpResponse> {
    let sale = Sale::load(&state.db, &path).await?;
    Ok(HttpResponse::Ok().json(access_view(&state, Some(&sale.id))))
}

/// Replaces a sale's access rules. Denied sources get 403 `access_denied`
/// on challenge, join, status and hold within about a second, so their
/// places stop polling and are abandoned.
#[utoipa::path(
    tag = "admin",
    params(("sale" = String, Path, description = "Sale id")),
    request_body = RuleLists,
    security(("admin_key" = [])),
    responses((status = 200, body = AccessView), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
#[put("/admin/v1/sales/{sale}/access")]
#[tracing::instrument(name = "admin sale access rules", skip_all, fields(sale = %path))]
pub async fn put_sale(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(rules): JsonBody<RuleLists>,
) -> AppResult<HttpResponse> {
    if !valid_sale_id(&path) {
        return Err(AppError::NotFound("sale"));
    }
    let sale = Sale::load(&state.db, &path).await?;
    state.access.replace(&state.db, Some(&sale.id), &rules).await?;
    tracing::info!(allow = rules.allow.len(), deny = rules.deny.len(), "sale access rules replaced");
    Ok(HttpResponse::Ok().json(access_view(&state, Some(&sale.id))))
}

crate::domain_routes!(challenge, get_global, put_global, get_sale, put_sale);
