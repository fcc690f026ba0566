//! The payment provider's webhook and the dev-only checkout.

use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::Utc;
use secrecy::ExposeSecret;

use super::{dev_payment, process, PaymentEvent};
use crate::error::{AppError, AppResult};
use crate::extractor::HoldBearer;
use crate::extractor::RawBody;
use crate::inventory::{free_admission, hold_of};
use crate::signature::{verify_signature, SIGNATURE_HEADER};
use crate::state::AppState;

async fn apply(state: &AppState, event: PaymentEvent) -> AppResult<HttpResponse> {
    let processed = process(&state.db, &event).await?;
    if let Some(used) = &processed.finished {
        free_admission(&state.db, &state.waiting_room, used).await;
    }
    Ok(HttpResponse::build(processed.status).json(processed.body))
}

/// The answer to a payment: the confirmed order, or (for a failed payment)
/// no order and the released hold.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: `process` builds the body
pub struct PaymentAnswer {
    /// The order a successful payment confirmed; `null` for a failed one.
    order: Option<crate::orders::OrderView>,
    /// The hold a failed payment released.
    #[schema(nullable = false)]
    hold: Option<crate::inventory::HoldView>,
}

/// The payment provider reports a payment. Signed with
/// `Floodgate-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
/// `succeeded` confirms the hold into an order; `failed` releases it. A
/// replay (same event id) returns the first answer and changes nothing.
#[utoipa::path(
    tag = "payments",
    request_body = PaymentEvent,
    security(("webhook_signature" = [])),
    responses(
        (status = 200, description = "The order, or for a failed payment the released hold", body = PaymentAnswer),
        (status = 401, description = "bad or stale signature", body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "refund_required: the hold expired and its units are gone", body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)
    )
)]
#[post("/api/v1/payments/webhook")]
#[tracing::instrument(name = "payment webhook", skip_all)]
pub async fn webhook(state: web::Data<AppState>, req: HttpRequest, RawBody(body): RawBody) -> AppResult<HttpResponse> {
    let secret = state.settings.payments.webhook_secret.as_ref().map(|s| s.expose_secret()).unwrap_or_default();
    let header = req
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| AppError::Unauthorized("missing Floodgate-Signature".into()))?;
    verify_signature(
        secret,
        header,
        &body,
        Utc::now().timestamp(),
        state.settings.payments.signature_tolerance_seconds,
    )?;
    let event: PaymentEvent =
        crate::error::parse_json(&body)?.ok_or_else(|| AppError::BadRequest("the payment event is empty".into()))?;
    tracing::info!(event_id = %event.event_id, hold_id = %event.hold_id, status = %event.status, "payment event");
    apply(&state, event).await
}

/// Dev only (`payments.dev_checkout`): the hold's owner pays without a
/// provider, through the same code path as the webhook.
#[utoipa::path(
    tag = "payments",
    params(("hold" = String, Path, description = "Hold id")),
    security(("hold_token" = [])),
    responses(
        (status = 200, description = "The confirmed order", body = PaymentAnswer),
        (status = 404, description = "dev checkout disabled", body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)
    )
)]
#[post("/api/v1/holds/{hold}/dev-checkout")]
#[tracing::instrument(name = "dev checkout", skip_all, fields(hold = %path))]
pub async fn dev_checkout(
    HoldBearer(claims): HoldBearer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    if !state.settings.payments.dev_checkout {
        return Err(AppError::NotFound("dev checkout"));
    }
    let hold_id = hold_of(&claims, &path)?;
    let event = dev_payment(&state.db, hold_id).await?;
    apply(&state, event).await
}

crate::domain_routes!(webhook, dev_checkout);
