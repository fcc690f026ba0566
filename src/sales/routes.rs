//! Public sale pages and the admin's sale endpoints.

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

use super::create::{create_sale, NewSale};
use super::lifecycle::SaleUpdate;
use super::{AdmissionMode, Availability, Sale, SaleAccess, SaleMode, SaleState, Seating};
use crate::error::{AppError, AppResult};
use crate::events::Activity;
use crate::extractor::Admin;
use crate::extractor::JsonBody;
use crate::gate::ChallengeSettings;
use crate::inventory::audit::{audit, AuditReport};
use crate::release::{release_next_stage, Released};
use crate::state::AppState;
use crate::waiting_room::sources::GateStats;
use crate::waiting_room::QueueSummary;

/// Admission settings in an answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdmissionView {
    /// Visitors admitted per second.
    pub admit_per_second: i32,
    /// Admitted-but-unfinished cap.
    pub max_active: i32,
    /// Time an admitted visitor has to hold.
    pub admission_ttl_seconds: i32,
    /// Silence after which a waiting visitor loses their place.
    pub abandon_after_seconds: i32,
    /// `fixed` or `adaptive`.
    pub mode: AdmissionMode,
    /// Ceiling of an adaptive rate, if any.
    pub max_admit_per_second: Option<i32>,
    /// Hold p99 an adaptive rate keeps under.
    pub hold_p99_target_ms: i32,
    /// The rate in force now (adaptive: the controller's), when known.
    pub effective_admit_per_second: Option<f64>,
}

/// A sale with live availability.
#[derive(Debug, Serialize, ToSchema)]
pub struct SaleView {
    /// Sale id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `scheduled`, `on_sale`, `paused`, `sold_out`, `closed`.
    pub state: SaleState,
    /// `fifo` or `lottery`.
    pub mode: SaleMode,
    /// `general` or `reserved`.
    pub seating: Seating,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End, if any.
    pub ends_at: Option<DateTime<Utc>>,
    /// Units one buyer may hold or own.
    pub per_user_limit: i32,
    /// Hold lifetime.
    pub hold_ttl_seconds: i32,
    /// Pre-queue shuffled at the start.
    pub shuffle_prequeue: bool,
    /// Joins go through the waiting room.
    pub waiting_room: bool,
    /// Admission settings.
    pub admission: AdmissionView,
    /// Proof of work asked of a new place (`difficulty_bits` 0: none).
    pub challenge: ChallengeSettings,
    /// `public` or `invite`.
    pub access: SaleAccess,
    /// Sessions of the sale (0: one show; the calendar lists them at
    /// `/api/v1/sales/{sale}/sessions`).
    pub session_count: i32,
    /// IANA time zone of its sessions (`null`: no sessions).
    pub time_zone: Option<String>,
    /// The per-user limit counts per session (not across the sale).
    pub limit_per_session: bool,
    /// A buyer cannot hold two sessions whose times overlap.
    pub no_overlap: bool,
    /// ISO 4217 code of the sale's prices (`null`: no prices); the
    /// categories and their prices are in `availability.categories`.
    pub currency: Option<String>,
    /// Units by state: total, per stage and per price category.
    pub availability: Availability,
    /// Queue figures; `null` while Redis cannot be reached.
    pub queue: Option<QueueSummary>,
    /// Estimated wait for someone joining now.
    pub estimated_wait_seconds: Option<u64>,
    /// `sha256(seed)`, published before any draw (I8).
    pub seed_commitment: String,
    /// The seed, once the shuffle or draw used it.
    pub seed: Option<String>,
    /// When the lottery was drawn.
    pub lottery_drawn_at: Option<DateTime<Utc>>,
    /// Winners drawn.
    pub lottery_winners: Option<i32>,
}

async fn view(state: &AppState, sale: &Sale, fresh: bool) -> AppResult<SaleView> {
    let availability = if fresh {
        super::count_units(&state.db, sale).await?
    } else {
        (*state.availability.get(&state.db, sale).await?).clone()
    };
    let queue = if sale.waiting_room {
        match state.waiting_room.summary(&sale.id).await {
            Ok(summary) => Some(summary),
            Err(e) => {
                tracing::warn!(error = %e, "queue summary unavailable");
                None
            }
        }
    } else {
        None
    };
    Ok(SaleView {
        session_count: sale.session_count,
        time_zone: sale.time_zone.clone(),
        limit_per_session: sale.limit_per_session,
        no_overlap: sale.no_overlap,
        currency: sale.currency.clone(),
        id: sale.id.clone(),
        name: sale.name.clone(),
        state: sale.state,
        mode: sale.mode,
        seating: sale.seating,
        starts_at: sale.starts_at,
        ends_at: sale.ends_at,
        per_user_limit: sale.per_user_limit,
        hold_ttl_seconds: sale.hold_ttl_seconds,
        shuffle_prequeue: sale.shuffle_prequeue,
        waiting_room: sale.waiting_room,
        admission: AdmissionView {
            admit_per_second: sale.admit_per_second,
            max_active: sale.max_active,
            admission_ttl_seconds: sale.admission_ttl_seconds,
            abandon_after_seconds: sale.abandon_after_seconds,
            mode: sale.admission_mode,
            max_admit_per_second: sale.admit_ceiling,
            hold_p99_target_ms: sale.hold_p99_target_ms,
            effective_admit_per_second: queue.as_ref().and_then(|q| q.effective_admit_per_second),
        },
        challenge: ChallengeSettings::of(sale),
        access: sale.access,
        availability,
        estimated_wait_seconds: queue.as_ref().and_then(|q| q.estimated_wait_seconds),
        queue,
        seed_commitment: sale.seed_commitment.clone(),
        seed: sale.revealed_seed().map(str::to_owned),
        lottery_drawn_at: sale.lottery_drawn_at,
        lottery_winners: sale.lottery_winners,
    })
}

/// Sales on offer (not closed), soonest first.
#[utoipa::path(tag = "sales", responses((status = 200, body = Vec<SaleView>)))]
#[get("/api/v1/sales")]
#[tracing::instrument(name = "list sales", skip_all)]
pub async fn list_sales(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let ids = super::lifecycle::on_offer(&state.db).await?;
    Ok(HttpResponse::Ok().json(views(&state, ids).await?))
}

/// The public views of `ids`, in order (availability from the snapshot).
async fn views(state: &AppState, ids: Vec<String>) -> AppResult<Vec<SaleView>> {
    let mut views = Vec::with_capacity(ids.len());
    for id in ids {
        let sale = state.sales.get(&state.db, &id).await?;
        views.push(view(state, &sale, false).await?);
    }
    Ok(views)
}

/// A sale with live availability (at most about a second old).
#[utoipa::path(
    tag = "sales",
    params(("sale" = String, Path, description = "Sale id")),
    responses((status = 200, body = SaleView), (status = 404, body = crate::error::ErrorBody))
)]
#[get("/api/v1/sales/{sale}")]
#[tracing::instrument(name = "get sale", skip_all, fields(sale = %path))]
pub async fn get_sale(state: web::Data<AppState>, path: web::Path<String>) -> AppResult<HttpResponse> {
    let sale = state.sales.get(&state.db, &path).await?;
    Ok(HttpResponse::Ok().json(view(&state, &sale, false).await?))
}

/// Creates a sale with all its units.
#[utoipa::path(
    tag = "admin",
    request_body = NewSale,
    security(("admin_key" = [])),
    responses(
        (status = 201, body = SaleView),
        (status = 401, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)
    )
)]
#[post("/admin/v1/sales")]
#[tracing::instrument(name = "admin create sale", skip_all)]
pub async fn admin_create_sale(
    _admin: Admin,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<NewSale>,
) -> AppResult<HttpResponse> {
    if body.access == Some(SaleAccess::Invite) && state.login.is_none() {
        return Err(AppError::Invalid(
            "access invite needs the site's login configured ([identity] jwt_hs256_secret or jwt_public_key_pem)"
                .into(),
        ));
    }
    let sale = create_sale(&state.db, body).await?;
    tracing::info!(sale = %sale.id, units = sale.total_units, "sale created");
    sync_to_redis(&state, &sale).await;
    Ok(HttpResponse::Created().json(view(&state, &sale, true).await?))
}

async fn sync_to_redis(state: &AppState, sale: &Sale) {
    state.sales.invalidate(&sale.id);
    state.availability.invalidate(&sale.id);
    state.claim_hints.returned(&sale.id);
    // The sale clock repeats this every tick, so a Redis outage now only
    // delays the waiting room's view of the change.
    if let Err(e) = state.waiting_room.sync_sale(sale).await {
        tracing::warn!(sale = %sale.id, error = %e, "could not copy sale to Redis yet");
    }
}

/// A sale as the admin sees it: the public view with counts taken now, the
/// holds and orders by state, the gate's work and the recent activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminSaleView {
    /// The public view (availability counted now, not cached).
    #[serde(flatten)]
    pub sale: SaleView,
    /// Holds by state (`active`, `confirmed`, `expired`, `released`).
    pub holds: BTreeMap<String, i64>,
    /// Orders by state (`confirmed`, `cancelled`).
    pub orders: BTreeMap<String, i64>,
    /// Proof of work and refusals; absent without a waiting room or while
    /// Redis cannot be reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateStats>,
    /// Holds, orders and expiries of the last minute; refunds and dead
    /// letters so far.
    pub activity: Activity,
}

/// How far back the admin view's activity counts reach.
const ACTIVITY_WINDOW_SECONDS: i64 = 60;

async fn admin_view(state: &AppState, sale: &Sale) -> AppResult<AdminSaleView> {
    let gate = if sale.waiting_room {
        state
            .waiting_room
            .gate_stats(&sale.id)
            .await
            .map_err(|e| tracing::warn!(error = %e, "gate statistics unavailable"))
            .ok()
    } else {
        None
    };
    Ok(AdminSaleView {
        sale: view(state, sale, true).await?,
        holds: crate::inventory::count_by_state(&state.db, &sale.id).await?.into_iter().collect(),
        orders: crate::orders::count_by_state(&state.db, &sale.id).await?.into_iter().collect(),
        gate,
        activity: crate::events::activity(&state.db, &sale.id, ACTIVITY_WINDOW_SECONDS).await?,
    })
}

/// Every sale, closed ones too, newest first (at most 200), as the public
/// view: units from the availability snapshot (at most about a second old)
/// and the queue figures. Cheap enough for a console to poll every second
/// during a flash sale; one sale's holds, orders and activity are at
/// `GET /admin/v1/sales/{sale}`.
#[utoipa::path(
    tag = "admin",
    security(("admin_key" = [])),
    responses((status = 200, body = Vec<SaleView>), (status = 401, body = crate::error::ErrorBody))
)]
#[get("/admin/v1/sales")]
#[tracing::instrument(name = "admin list sales", skip_all)]
pub async fn admin_list_sales(_admin: Admin, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let ids = super::lifecycle::all(&state.db).await?;
    Ok(HttpResponse::Ok().json(views(&state, ids).await?))
}

/// Full statistics of a sale (counts taken now, not cached).
#[utoipa::path(
    tag = "admin",
    params(("sale" = String, Path, description = "Sale id")),
    security(("admin_key" = [])),
    responses((status = 200, body = AdminSaleView), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
#[get("/admin/v1/sales/{sale}")]
#[tracing::instrument(name = "admin get sale", skip_all, fields(sale = %path))]
pub async fn admin_get_sale(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let sale = Sale::load(&state.db, &path).await?;
    Ok(HttpResponse::Ok().json(admin_view(&state, &sale).await?))
}

/// Pauses, resumes or closes a sale, and changes admission settings live.
#[utoipa::path(
    tag = "admin",
    params(("sale" = String, Path, description = "Sale id")),
    request_body = SaleUpdate,
    security(("admin_key" = [])),
    responses((status = 200, body = SaleView), (status = 409, description = "invalid_transition", body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
#[patch("/admin/v1/sales/{sale}")]
pub async fn admin_update_sale(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(body): JsonBody<SaleUpdate>,
) -> AppResult<HttpResponse> {
    let sale = super::lifecycle::update(&state.db, &path, &body).await?;
    sync_to_redis(&state, &sale).await;
    Ok(HttpResponse::Ok().json(view(&state, &sale, true).await?))
}

/// Releases the next stage now.
#[utoipa::path(
    tag = "admin",
    params(("sale" = String, Path, description = "Sale id")),
    security(("admin_key" = [])),
    responses(
        (status = 200, body = Released),
        (status = 409, description = "`no_more_stages`", body = crate::error::ErrorBody),
        (status = 410, description = "`sale_closed`", body = crate::error::ErrorBody)
    )
)]
#[post("/admin/v1/sales/{sale}/stages/next")]
#[tracing::instrument(name = "admin next stage", skip_all, fields(sale = %path))]
pub async fn admin_next_stage(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    if !super::valid_sale_id(&path) {
        return Err(AppError::NotFound("sale"));
    }
    let released = release_next_stage(&state.db, &path, false).await?.ok_or(AppError::NotFound("stage"))?;
    let sale = Sale::load(&state.db, &path).await?;
    sync_to_redis(&state, &sale).await;
    Ok(HttpResponse::Ok().json(released))
}

/// Recomputes invariants I1–I3 from the rows and reports what it found.
#[utoipa::path(
    tag = "admin",
    params(("sale" = String, Path, description = "Sale id")),
    security(("admin_key" = [])),
    responses((status = 200, body = AuditReport), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
#[get("/admin/v1/sales/{sale}/audit")]
#[tracing::instrument(name = "admin audit", skip_all, fields(sale = %path))]
pub async fn admin_audit(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let sale = Sale::load(&state.db, &path).await?;
    let mut report = audit(&state.db, &sale).await?;
    if sale.waiting_room {
        // Redis may be down; the invariants are still worth reporting.
        report.waiting_room = match crate::waiting_room::reconcile::compare(&state.db, &state.waiting_room, &sale).await
        {
            Ok(checks) => Some(crate::inventory::audit::WaitingRoomReport { ok: checks.iter().all(|c| c.ok), checks }),
            Err(e) => {
                tracing::warn!(error = %e, "waiting room comparison unavailable");
                None
            }
        };
    }
    Ok(HttpResponse::Ok().json(report))
}

crate::domain_routes!(
    list_sales,
    get_sale,
    admin_list_sales,
    admin_create_sale,
    admin_get_sale,
    admin_update_sale,
    admin_next_stage,
    admin_audit
);
