//! Seeing and cancelling an order, with the hold token of its hold.

use actix_web::{get, post, web, HttpResponse};
use uuid::Uuid;

use super::{Order, OrderView};
use crate::error::{AppError, AppResult};
use crate::extractor::HoldBearer;
use crate::state::AppState;

/// An order and its units.
#[utoipa::path(
    tag = "orders",
    params(("order" = String, Path, description = "Order id")),
    security(("hold_token" = [])),
    responses((status = 200, body = OrderView), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
#[get("/api/v1/orders/{order}")]
#[tracing::instrument(name = "get order", skip_all, fields(order = %path))]
pub async fn get_order(
    HoldBearer(claims): HoldBearer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = Uuid::parse_str(&path).map_err(|_| AppError::NotFound("order"))?;
    let mut conn = state.db.acquire().await?;
    let order = Order::owned(&mut conn, id, &claims, false).await?;
    Ok(HttpResponse::Ok().json(order.view(&mut conn).await?))
}

/// Cancels an order: its units go back on sale (refunding is the site's
/// job, told by the `order.cancelled` event). Cancelling twice is a no-op.
#[utoipa::path(
    tag = "orders",
    params(("order" = String, Path, description = "Order id")),
    security(("hold_token" = [])),
    responses((status = 200, body = OrderView), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
#[post("/api/v1/orders/{order}/cancel")]
pub async fn cancel_order(
    HoldBearer(claims): HoldBearer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = Uuid::parse_str(&path).map_err(|_| AppError::NotFound("order"))?;
    let view = super::cancel(&state.db, id, &claims).await?;
    Ok(HttpResponse::Ok().json(view))
}

crate::domain_routes!(get_order, cancel_order);
