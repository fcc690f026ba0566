//! Orders: confirmed purchases, and their cancellation.

pub mod routes;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::inventory::{unit_views, UnitView};

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
    "id, sale_id, hold_id, visitor_id, payment_reference, quantity, unit_ids, state, created_at, cancelled_at";

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
        })
    }
}
