//! Seeing and cancelling an order, with the hold token of its hold.

use actix_web::{get, post, web, HttpResponse};
use serde_json::json;
use uuid::Uuid;

use super::{Order, OrderState, OrderView};
use crate::error::{AppError, AppResult};
use crate::events;
use crate::extractor::HoldBearer;
use crate::inventory::give_back_allowance;
use crate::state::AppState;
use crate::tokens::Claims;

/// The order, if the bearer's hold token belongs to its buyer.
async fn authorize_order(
    claims: &Claims,
    path_id: &str,
    conn: &mut sqlx::PgConnection,
    for_update: bool,
) -> AppResult<Order> {
    let id = Uuid::parse_str(path_id).map_err(|_| AppError::NotFound("order"))?;
    let order = Order::load(conn, id, for_update).await?;
    if order.visitor_id != claims.sub || order.sale_id != claims.sale {
        return Err(AppError::Forbidden("this order belongs to someone else".into()));
    }
    Ok(order)
}

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
    let mut conn = state.db.acquire().await?;
    let order = authorize_order(&claims, &path, &mut conn, false).await?;
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
#[tracing::instrument(name = "cancel order", skip_all, fields(order = %path))]
pub async fn cancel_order(
    HoldBearer(claims): HoldBearer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let mut tx = state.db.begin().await?;
    let order = authorize_order(&claims, &path, &mut tx, true).await?;
    if order.state == OrderState::Confirmed {
        sqlx::query(
            "UPDATE units SET status = 'available', hold_id = NULL, order_id = NULL \
             WHERE order_id = $1 AND status = 'sold'",
        )
        .bind(order.id)
        .execute(&mut *tx)
        .await?;
        give_back_allowance(&mut tx, &order.sale_id, &order.visitor_id, order.quantity).await?;
        sqlx::query("UPDATE orders SET state = 'cancelled', cancelled_at = now() WHERE id = $1")
            .bind(order.id)
            .execute(&mut *tx)
            .await?;
        events::record(
            &mut tx,
            events::kind::ORDER_CANCELLED,
            &order.sale_id,
            &order.id.to_string(),
            json!({
                "order_id": order.id, "hold_id": order.hold_id, "sale_id": order.sale_id,
                "visitor_id": order.visitor_id, "payment_reference": order.payment_reference,
                "quantity": order.quantity, "unit_ids": order.unit_ids,
            }),
        )
        .await?;
        ::metrics::counter!(crate::metrics::ORDERS, "outcome" => "cancelled").increment(1);
    }
    let order = Order::load(&mut tx, order.id, false).await?;
    let view = order.view(&mut tx).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(view))
}
