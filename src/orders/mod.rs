//! Orders: confirmed purchases, and their cancellation.

pub mod routes;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::events;
use crate::inventory::{give_back_allowance, unit_views, UnitView};
use crate::prices::Money;
use crate::sessions::SessionRef;
use crate::tokens::Claims;

/// An order as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Order {
    /// Order id.
    pub id: Uuid,
    /// Sale.
    pub sale_id: String,
    /// The hold it came from.
    pub hold_id: Uuid,
    /// Buyer.
    pub visitor_id: String,
    /// Provider's payment reference.
    pub payment_reference: String,
    /// Units bought.
    pub quantity: i32,
    /// The units.
    pub unit_ids: Vec<i32>,
    /// Confirmed or cancelled.
    #[sqlx(try_from = "String")]
    pub state: OrderState,
    /// Confirmation time.
    pub created_at: DateTime<Utc>,
    /// Cancellation time.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// What was paid, in minor units (`None`: the sale has no prices).
    pub amount: Option<i64>,
    /// Its currency.
    pub currency: Option<String>,
    /// The session it is for (`None`: the sale has none).
    pub session: Option<i32>,
}

impl Order {
    /// What the order was confirmed for, if the sale has prices.
    pub fn total(&self) -> Option<Money> {
        Some(Money { amount: self.amount?, currency: self.currency.clone()? })
    }
}

crate::text_enum! {
    /// Where an order is in its life (`orders.state`, migrations/0002).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum OrderState {
        /// Paid; its units are sold.
        Confirmed => "confirmed",
        /// Cancelled by its buyer; its units went back on sale.
        Cancelled => "cancelled",
    }
}

const ORDER_COLUMNS: &str =
    "id, sale_id, hold_id, visitor_id, payment_reference, quantity, unit_ids, state, created_at, cancelled_at, \
     amount, currency, session";

/// An order in an answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderView {
    /// Order id.
    pub id: String,
    /// Sale.
    pub sale_id: String,
    /// The hold it came from.
    pub hold_id: String,
    /// `confirmed` or `cancelled`.
    pub state: OrderState,
    /// Units bought.
    pub quantity: i32,
    /// The units.
    pub units: Vec<UnitView>,
    /// Provider's payment reference.
    pub payment_reference: String,
    /// Confirmation time.
    pub created_at: DateTime<Utc>,
    /// Cancellation time.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// What it was confirmed for (when the sale has prices); never changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<Money>,
    /// The session it is for, with its times (when the sale has sessions).
    #[serde(flatten)]
    pub session: SessionRef,
}

impl Order {
    /// Loads an order; 404 when unknown.
    pub async fn load(conn: &mut PgConnection, id: Uuid, for_update: bool) -> AppResult<Order> {
        let lock = if for_update { " FOR UPDATE" } else { "" };
        sqlx::query_as::<_, Order>(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1{lock}"
        )))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(AppError::NotFound("order"))
    }

    /// The order of a confirmed hold.
    pub async fn for_hold(conn: &mut PgConnection, hold_id: Uuid) -> AppResult<Order> {
        sqlx::query_as::<_, Order>(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE hold_id = $1"
        )))
        .bind(hold_id)
        .fetch_optional(conn)
        .await?
        .ok_or(AppError::NotFound("order"))
    }

    /// The answer for this order.
    pub async fn view(&self, conn: &mut PgConnection) -> AppResult<OrderView> {
        let session = SessionRef::load(conn, &self.sale_id, self.session).await?;
        Ok(OrderView {
            id: self.id.to_string(),
            sale_id: self.sale_id.clone(),
            hold_id: self.hold_id.to_string(),
            state: self.state,
            quantity: self.quantity,
            units: unit_views(conn, &self.sale_id, &self.unit_ids).await?,
            payment_reference: self.payment_reference.clone(),
            created_at: self.created_at,
            cancelled_at: self.cancelled_at,
            total: self.total(),
            session,
        })
    }
}

impl Order {
    /// The order, if `claims` (a hold token) belong to its buyer; 403 else.
    pub async fn owned(conn: &mut PgConnection, id: Uuid, claims: &Claims, for_update: bool) -> AppResult<Order> {
        let order = Order::load(conn, id, for_update).await?;
        if order.visitor_id != claims.sub || order.sale_id != claims.sale {
            return Err(AppError::Forbidden("this order belongs to someone else".into()));
        }
        Ok(order)
    }
}

/// Cancels an order of the buyer `claims` names, in one transaction (see
/// [`cancel_in`]). Cancelling twice changes nothing.
#[tracing::instrument(name = "cancel order", skip_all, fields(order = %id))]
pub async fn cancel(db: &sqlx::PgPool, id: Uuid, claims: &Claims) -> AppResult<OrderView> {
    let mut tx = db.begin().await?;
    let order = Order::owned(&mut tx, id, claims, true).await?;
    cancel_in(&mut tx, order.id, "order_cancelled").await?;
    let order = Order::load(&mut tx, order.id, false).await?;
    let view = order.view(&mut tx).await?;
    tx.commit().await?;
    Ok(view)
}

/// Cancels a confirmed order inside `tx`: its units go back on sale (or are
/// withdrawn, when its session is over), the buyer's allowance is given
/// back, and `order.cancelled` and `order.refund_due` (with the amount paid
/// and `reason`) are written. An order cancelled already is left alone.
pub async fn cancel_in(tx: &mut PgConnection, id: Uuid, reason: &str) -> AppResult<()> {
    let order = Order::load(tx, id, true).await?;
    if order.state != OrderState::Confirmed {
        return Ok(());
    }
    sqlx::query(
        "UPDATE units SET status = unit_return_status(sale_id, session), hold_id = NULL, order_id = NULL \
         WHERE order_id = $1 AND status = 'sold'",
    )
    .bind(order.id)
    .execute(&mut *tx)
    .await?;
    let (key,): (String,) = sqlx::query_as("SELECT coalesce(allowance_key, visitor_id) FROM holds WHERE id = $1")
        .bind(order.hold_id)
        .fetch_one(&mut *tx)
        .await?;
    give_back_allowance(tx, &order.sale_id, &key, order.quantity).await?;
    crate::sessions::unbook(tx, order.hold_id).await?;
    sqlx::query("UPDATE orders SET state = 'cancelled', cancelled_at = now() WHERE id = $1")
        .bind(order.id)
        .execute(&mut *tx)
        .await?;
    events::record(
        tx,
        events::kind::ORDER_CANCELLED,
        &order.sale_id,
        &order.id.to_string(),
        serde_json::json!({
            "order_id": order.id, "hold_id": order.hold_id, "sale_id": order.sale_id,
            "visitor_id": order.visitor_id, "payment_reference": order.payment_reference,
            "quantity": order.quantity, "unit_ids": order.unit_ids, "reason": reason,
        }),
    )
    .await?;
    events::record(
        tx,
        events::kind::ORDER_REFUND_DUE,
        &order.sale_id,
        &order.id.to_string(),
        serde_json::json!({
            "order_id": order.id, "sale_id": order.sale_id, "visitor_id": order.visitor_id,
            "payment_reference": order.payment_reference, "amount": order.amount, "currency": order.currency,
            "reason": reason,
        }),
    )
    .await?;
    ::metrics::counter!(crate::metrics::ORDERS, "sale" => order.sale_id.clone(), "outcome" => "cancelled").increment(1);
    Ok(())
}

/// Cancels every confirmed order of session `code` inside `tx` (see
/// [`cancel_in`]).
pub async fn cancel_session_orders(tx: &mut PgConnection, sale_id: &str, code: i32, reason: &str) -> AppResult<()> {
    let orders: Vec<(Uuid,)> =
        sqlx::query_as("SELECT id FROM orders WHERE sale_id = $1 AND session = $2 AND state = 'confirmed'")
            .bind(sale_id)
            .bind(code)
            .fetch_all(&mut *tx)
            .await?;
    for (order,) in orders {
        cancel_in(tx, order, reason).await?;
    }
    Ok(())
}

/// A sale's orders by state.
pub async fn count_by_state(db: &sqlx::PgPool, sale: &str) -> AppResult<Vec<(String, i64)>> {
    Ok(sqlx::query_as("SELECT state, count(*) FROM orders WHERE sale_id = $1 GROUP BY state")
        .bind(sale)
        .fetch_all(db)
        .await?)
}
