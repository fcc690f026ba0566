//! Public sale pages and the admin's sale endpoints.

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::create::{
    create_sale, validate_admission, validate_challenge, AdmissionSpec, ChallengeSpec, NewSale, ValidAdmission,
};
use super::{AdmissionMode, Availability, Sale, SaleAccess, SaleState, SALE_COLUMNS};
use crate::audit::{audit, AuditReport};
use crate::error::{AppError, AppResult};
use crate::extractor::Admin;
use crate::extractor::JsonBody;
use crate::gate::ChallengeSettings;
use crate::release::{release_next_stage, Released};
use crate::state::AppState;
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
    pub mode: String,
    /// `general` or `reserved`.
    pub seating: String,
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
    /// Units by state, total and per stage.
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
        id: sale.id.clone(),
        name: sale.name.clone(),
        state: sale.state,
        mode: sale.mode.clone(),
        seating: sale.seating.clone(),
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
    let ids: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM sales WHERE state <> 'closed' ORDER BY starts_at, id LIMIT 100")
            .fetch_all(&state.db)
            .await?;
    let mut views = Vec::with_capacity(ids.len());
    for (id,) in ids {
        let sale = state.sales.get(&state.db, &id).await?;
        views.push(view(&state, &sale, false).await?);
    }
    Ok(HttpResponse::Ok().json(views))
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

/// Full statistics of a sale (counts taken now, not cached).
#[utoipa::path(
    tag = "admin",
    params(("sale" = String, Path, description = "Sale id")),
    security(("admin_key" = [])),
    responses((status = 200, body = SaleView), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
#[get("/admin/v1/sales/{sale}")]
#[tracing::instrument(name = "admin get sale", skip_all, fields(sale = %path))]
pub async fn admin_get_sale(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let sale = Sale::load(&state.db, &path).await?;
    let mut body = serde_json::to_value(view(&state, &sale, true).await?).map_err(|e| AppError::Internal(e.into()))?;
    let holds: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM holds WHERE sale_id = $1 GROUP BY state")
            .bind(&sale.id)
            .fetch_all(&state.db)
            .await?;
    let orders: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM orders WHERE sale_id = $1 GROUP BY state")
            .bind(&sale.id)
            .fetch_all(&state.db)
            .await?;
    if sale.waiting_room {
        match state.waiting_room.gate_stats(&sale.id).await {
            Ok(gate) => body["gate"] = serde_json::to_value(gate).map_err(|e| AppError::Internal(e.into()))?,
            Err(e) => tracing::warn!(error = %e, "gate statistics unavailable"),
        }
    }
    body["holds"] = holds.into_iter().map(|(k, v)| (k, v.into())).collect::<serde_json::Map<_, _>>().into();
    body["orders"] = orders.into_iter().map(|(k, v)| (k, v.into())).collect::<serde_json::Map<_, _>>().into();
    Ok(HttpResponse::Ok().json(body))
}

/// `PATCH /admin/v1/sales/{sale}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaleUpdate {
    /// `pause`, `resume` or `close`.
    pub action: Option<String>,
    /// Admission settings to change live.
    pub admission: Option<AdmissionSpec>,
    /// Proof-of-work settings to change live (outstanding challenges keep
    /// the difficulty they were handed out with).
    pub challenge: Option<ChallengeSpec>,
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
#[tracing::instrument(name = "admin update sale", skip_all, fields(sale = %path))]
pub async fn admin_update_sale(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(body): JsonBody<SaleUpdate>,
) -> AppResult<HttpResponse> {
    let update = body;
    let mut tx = state.db.begin().await?;
    let sale = Sale::lock(&mut tx, &path).await?;
    let new_state = match update.action.as_deref() {
        None => sale.state,
        Some("pause") => match sale.state {
            SaleState::OnSale | SaleState::SoldOut | SaleState::Paused | SaleState::Scheduled => SaleState::Paused,
            SaleState::Closed => {
                return Err(AppError::conflict("invalid_transition", "a closed sale cannot be paused"))
            }
        },
        Some("resume") => match sale.state {
            SaleState::Paused if sale.starts_at > Utc::now() => SaleState::Scheduled,
            // The clock turns it sold_out again if nothing is left.
            SaleState::Paused | SaleState::OnSale => SaleState::OnSale,
            other => return Err(AppError::conflict("invalid_transition", format!("a {other} sale cannot be resumed"))),
        },
        Some("close") => SaleState::Closed,
        Some(other) => return Err(AppError::Invalid(format!("action must be pause, resume or close, got {other}"))),
    };
    let admission = match &update.admission {
        Some(spec) => validate_admission(spec, Some(ValidAdmission::of(&sale)))?,
        None => ValidAdmission::of(&sale),
    };
    let challenge = match &update.challenge {
        Some(spec) => validate_challenge(spec, (sale.challenge_bits, sale.challenge_max_bits))?,
        None => (sale.challenge_bits, sale.challenge_max_bits),
    };
    let sale = sqlx::query_as::<_, Sale>(sqlx::AssertSqlSafe(format!(
        "UPDATE sales SET state = $2, admit_per_second = $3, max_active = $4, admission_ttl_seconds = $5, \
         abandon_after_seconds = $6, admission_mode = $7, admit_ceiling = $8, hold_p99_target_ms = $9, \
         challenge_bits = $10, challenge_max_bits = $11, updated_at = now() WHERE id = $1 RETURNING {SALE_COLUMNS}"
    )))
    .bind(&sale.id)
    .bind(new_state.as_str())
    .bind(admission.admit_per_second)
    .bind(admission.max_active)
    .bind(admission.admission_ttl_seconds)
    .bind(admission.abandon_after_seconds)
    .bind(admission.mode.as_str())
    .bind(admission.ceiling)
    .bind(admission.hold_p99_target_ms)
    .bind(challenge.0)
    .bind(challenge.1)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(sale = %sale.id, state = %sale.state, "sale updated");
    sync_to_redis(&state, &sale).await;
    Ok(HttpResponse::Ok().json(view(&state, &sale, true).await?))
}

/// Releases the next stage now.
#[utoipa::path(
    tag = "admin",
    params(("sale" = String, Path, description = "Sale id")),
    security(("admin_key" = [])),
    responses((status = 200, body = Released), (status = 409, description = "no_more_stages", body = crate::error::ErrorBody))
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
            Ok(checks) => Some(crate::audit::WaitingRoomReport { ok: checks.iter().all(|c| c.ok), checks }),
            Err(e) => {
                tracing::warn!(error = %e, "waiting room comparison unavailable");
                None
            }
        };
    }
    Ok(HttpResponse::Ok().json(report))
}
