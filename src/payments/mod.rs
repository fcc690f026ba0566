//! Payments: verifying the provider's signed webhook and turning a paid hold
//! into an order — exactly once per event and per payment (I5), committed
//! before the 2xx (I6), and never by selling a unit twice (I7).

pub mod routes;

use actix_web::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::events;
use crate::inventory::{reserve_allowance, return_hold, Hold, HoldState, UsedAdmission};
use crate::orders::Order;

/// The provider's webhook body.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentEvent {
    /// The provider's unique event id (replays carry the same one).
    pub event_id: String,
    /// The hold being paid.
    pub hold_id: String,
    /// The provider's payment reference.
    pub payment_reference: String,
    /// `succeeded` or `failed`.
    #[schema(schema_with = payment_status_schema)]
    pub status: String,
    /// What the provider captured, in minor units; a succeeded payment of
    /// a priced hold must carry it and confirms only with the hold's exact
    /// total.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100_000_000_000_000_i64)]
    pub amount: Option<i64>,
    /// ISO 4217 code of `amount`.
    #[serde(default)]
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
}

fn payment_status_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["succeeded", "failed"]))
        .build()
}

impl PaymentEvent {
    fn validate(&self) -> AppResult<Uuid> {
        for (name, value) in [("event_id", &self.event_id), ("payment_reference", &self.payment_reference)] {
            if value.is_empty() || value.len() > 200 {
                return Err(AppError::Invalid(format!("{name} must be 1 to 200 characters")));
            }
            crate::error::plain_text(name, value)?;
        }
        if self.status != "succeeded" && self.status != "failed" {
            return Err(AppError::Invalid("status must be succeeded or failed".into()));
        }
        if self.amount.is_some_and(|a| !(0..=100_000_000_000_000).contains(&a)) {
            return Err(AppError::Invalid("amount must be a non-negative number of minor units".into()));
        }
        if let Some(currency) = &self.currency {
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(AppError::Invalid("currency must be an ISO 4217 code of three capital letters".into()));
            }
        }
        if self.amount.is_some() != self.currency.is_some() {
            return Err(AppError::Invalid("amount and currency go together".into()));
        }
        Uuid::parse_str(&self.hold_id).map_err(|_| AppError::Invalid("hold_id is not a hold id".into()))
    }
}

/// What processing a payment event produced.
pub struct Processed {
    /// Status of the answer.
    pub status: StatusCode,
    /// Body of the answer.
    pub body: Value,
    /// The admission of the hold, when the hold finished (to free its slot).
    pub finished: Option<UsedAdmission>,
}

fn refund_body(message: &str) -> Value {
    json!({ "error": { "code": "refund_required", "message": message } })
}

/// The payment the dev checkout makes: the hold's exact total, succeeded.
pub async fn dev_payment(db: &PgPool, hold_id: Uuid) -> AppResult<PaymentEvent> {
    let hold = crate::store::with_pg(db, "dev_payment", async |conn| Hold::load(conn, hold_id, false).await).await?;
    let total = hold.total();
    Ok(PaymentEvent {
        event_id: format!("dev_{}", Uuid::new_v4().simple()),
        hold_id: hold_id.to_string(),
        payment_reference: format!("dev_{}", hold_id.simple()),
        status: "succeeded".into(),
        amount: total.as_ref().map(|t| t.amount),
        currency: total.map(|t| t.currency),
    })
}

/// Applies a payment event in one transaction and stores its answer under
/// the event id, so a replay returns the same answer and changes nothing.
pub async fn process(db: &PgPool, event: &PaymentEvent) -> AppResult<Processed> {
    let hold_id = event.validate()?;
    if event.status == "succeeded" {
        if let Some(processed) = confirm_at_once(db, event, hold_id).await? {
            return Ok(processed);
        }
    }
    crate::store::with_pg(db, "payment", async |conn| process_on(conn, event, hold_id).await).await
}

/// The common case, a new payment of an active hold's exact total, in one
/// statement (`confirm_payment`, migrations/0011) instead of a dozen round
/// trips. `None` when the payment needs the general path: the function then
/// raised FG100 and nothing of it was kept.
async fn confirm_at_once(db: &PgPool, event: &PaymentEvent, hold_id: Uuid) -> AppResult<Option<Processed>> {
    let order_id = Uuid::new_v4();
    // fetch_all, not fetch_one: the answer is read to the end, past the
    // statement's own commit, before anything is answered (I6).
    let result: Result<Vec<(Value, String, Option<i64>)>, sqlx::Error> =
        crate::store::with_pg(db, "confirm_payment", async |conn| {
            sqlx::query_as("SELECT body, sale_id, queue_number FROM confirm_payment($1, $2, $3, $4, $5, $6)")
                .bind(&event.event_id)
                .bind(hold_id)
                .bind(&event.payment_reference)
                .bind(event.amount)
                .bind(event.currency.as_deref())
                .bind(order_id)
                .fetch_all(conn)
                .await
        })
        .await;
    let row = match result {
        Ok(rows) => rows.into_iter().next(),
        Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("FG100") => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some((body, sale_id, queue_number)) = row else {
        return Err(AppError::Internal(anyhow::anyhow!("confirm_payment answered no row")));
    };
    ::metrics::counter!(crate::metrics::ORDERS, "sale" => sale_id.clone(), "outcome" => "confirmed").increment(1);
    let finished = UsedAdmission { sale_id, queue_number, hold: hold_id };
    Ok(Some(Processed { status: StatusCode::OK, body, finished: Some(finished) }))
}

async fn process_on(conn: &mut PgConnection, event: &PaymentEvent, hold_id: Uuid) -> AppResult<Processed> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let inserted = sqlx::query(
        "INSERT INTO payment_events (event_id, hold_id, payment_reference, status, amount, currency) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&event.event_id)
    .bind(hold_id)
    .bind(&event.payment_reference)
    .bind(&event.status)
    .bind(event.amount)
    .bind(event.currency.as_deref())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        let (status, body): (Option<i16>, Option<Value>) =
            sqlx::query_as("SELECT response_status, response_body FROM payment_events WHERE event_id = $1")
                .bind(&event.event_id)
                .fetch_one(&mut *tx)
                .await?;
        let status = status.and_then(|s| StatusCode::from_u16(s as u16).ok()).unwrap_or(StatusCode::OK);
        return Ok(Processed { status, body: body.unwrap_or(Value::Null), finished: None });
    }

    let hold = Hold::load(&mut tx, hold_id, true).await?;
    let processed =
        if event.status == "failed" { fail(&mut tx, hold).await? } else { succeed(&mut tx, hold, event).await? };
    sqlx::query("UPDATE payment_events SET response_status = $2, response_body = $3 WHERE event_id = $1")
        .bind(&event.event_id)
        .bind(processed.status.as_u16() as i16)
        .bind(&processed.body)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(processed)
}

async fn fail(tx: &mut PgConnection, hold: Hold) -> AppResult<Processed> {
    let finished = if hold.state == HoldState::Active {
        return_hold(tx, &hold, HoldState::Released, events::kind::HOLD_RELEASED).await?;
        true
    } else {
        false
    };
    let hold = Hold::load(tx, hold.id, false).await?;
    let view = hold.view(tx).await?;
    Ok(Processed {
        status: StatusCode::OK,
        body: json!({ "order": null, "hold": view }),
        finished: finished.then(|| hold.admission()),
    })
}

async fn succeed(tx: &mut PgConnection, hold: Hold, event: &PaymentEvent) -> AppResult<Processed> {
    if let Some(total) = hold.total() {
        let Some(paid) = event.amount.zip(event.currency.clone()) else {
            // Undone with the transaction: the provider sends it again with
            // the amount, nothing was recorded.
            return Err(AppError::Invalid("a payment of a priced hold carries amount and currency".into()));
        };
        if (paid.0, paid.1.as_str()) != (total.amount, total.currency.as_str()) {
            // Nothing confirmed and nothing released early: the buyer may
            // still pay the right amount before the hold expires.
            let why = format!("paid {} {}, the hold's total is {} {}", paid.0, paid.1, total.amount, total.currency);
            return refund(tx, &hold, event, Refund::AmountMismatch, &why).await;
        }
    }
    match hold.state {
        HoldState::Confirmed => {
            let order = Order::for_hold(tx, hold.id).await?;
            if order.payment_reference == event.payment_reference {
                // The same payment again under a new event id: same order.
                return Ok(Processed {
                    status: StatusCode::OK,
                    body: json!({ "order": order.view(tx).await? }),
                    finished: None,
                });
            }
            return refund(tx, &hold, event, Refund::AlreadyPaid, "this hold was already paid by another payment")
                .await;
        }
        HoldState::Active if hold.expires_at > chrono::Utc::now() => {}
        HoldState::Active => {
            // Past its deadline but not yet swept: expire it here, then treat
            // the payment as late like any other.
            return_hold(tx, &hold, HoldState::Expired, events::kind::HOLD_EXPIRED).await?;
            return reclaim(tx, hold, event).await;
        }
        _ => return reclaim(tx, hold, event).await,
    }
    confirm(tx, hold, event).await
}

/// A payment for an expired or released hold takes back the same units if
/// they are all still free (and the buyer's limit allows); otherwise nothing
/// is sold and the payment must be refunded (I7).
async fn reclaim(tx: &mut PgConnection, hold: Hold, event: &PaymentEvent) -> AppResult<Processed> {
    let sale: (i32, String) = sqlx::query_as("SELECT per_user_limit, state FROM sales WHERE id = $1")
        .bind(&hold.sale_id)
        .fetch_one(&mut *tx)
        .await?;
    if sale.1 == crate::sales::state::CLOSED {
        return refund(tx, &hold, event, Refund::SaleClosed, "the hold expired and the sale is closed").await;
    }
    sqlx::query("SAVEPOINT reclaim").execute(&mut *tx).await?;
    let allowed = match reserve_allowance(tx, &hold.sale_id, hold.allowance_key(), hold.quantity, sale.0).await {
        Ok(()) => true,
        Err(AppError::Conflict { code: "limit_exceeded", .. }) => false,
        Err(other) => return Err(other),
    };
    let taken = if allowed {
        sqlx::query(
            "UPDATE units SET status = 'held', hold_id = $3 \
             WHERE sale_id = $1 AND id = ANY($2) AND status = 'available'",
        )
        .bind(&hold.sale_id)
        .bind(&hold.unit_ids)
        .bind(hold.id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
    } else {
        0
    };
    // The buyer may hold an overlapping session by now.
    let booked = taken == hold.unit_ids.len() as u64 && crate::sessions::rebook(tx, hold.id).await?;
    if !booked {
        sqlx::query("ROLLBACK TO SAVEPOINT reclaim").execute(&mut *tx).await?;
        let (reason, why) = if !allowed {
            (Refund::LimitExceeded, "the hold expired and re-claiming it would pass the buyer's limit")
        } else if taken == hold.unit_ids.len() as u64 {
            (Refund::Overlap, "the hold expired and the buyer now holds an overlapping session")
        } else {
            (Refund::UnitsSold, "the hold expired and its units were sold to someone else (or its session is over)")
        };
        return refund(tx, &hold, event, reason, why).await;
    }
    sqlx::query("RELEASE SAVEPOINT reclaim").execute(&mut *tx).await?;
    sqlx::query("UPDATE holds SET state = 'active', updated_at = now() WHERE id = $1")
        .bind(hold.id)
        .execute(&mut *tx)
        .await?;
    confirm(tx, hold, event).await
}

crate::text_enum! {
    /// Why a payment must be refunded (`reason` of `payment.refund_required`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Refund {
        /// The amount or currency captured is not the hold's total.
        AmountMismatch => "amount_mismatch",
        /// The hold was confirmed by another payment.
        AlreadyPaid => "already_paid",
        /// Late: the hold expired and the sale has closed.
        SaleClosed => "hold_expired_sale_closed",
        /// Late: the hold expired and its units were sold to someone else.
        UnitsSold => "hold_expired_units_sold",
        /// Late: re-claiming the units would pass the buyer's limit.
        LimitExceeded => "hold_expired_limit_exceeded",
        /// Late: the buyer holds an overlapping session by now.
        Overlap => "hold_expired_session_overlap",
    }
}

async fn refund(
    tx: &mut PgConnection,
    hold: &Hold,
    event: &PaymentEvent,
    reason: Refund,
    why: &str,
) -> AppResult<Processed> {
    events::record(
        tx,
        events::kind::PAYMENT_REFUND_REQUIRED,
        &hold.sale_id,
        &hold.id.to_string(),
        json!({
            "hold_id": hold.id, "sale_id": hold.sale_id, "visitor_id": hold.visitor_id,
            "payment_reference": event.payment_reference, "event_id": event.event_id,
            "amount": event.amount, "currency": event.currency, "reason": reason.as_str(), "message": why,
        }),
    )
    .await?;
    ::metrics::counter!(crate::metrics::ORDERS, "sale" => hold.sale_id.clone(), "outcome" => "refund_required")
        .increment(1);
    Ok(Processed { status: StatusCode::CONFLICT, body: refund_body(why), finished: None })
}

/// Turns an active hold into a confirmed order: its units become sold.
async fn confirm(tx: &mut PgConnection, hold: Hold, event: &PaymentEvent) -> AppResult<Processed> {
    let order_id = Uuid::new_v4();
    let sold = sqlx::query("UPDATE units SET status = 'sold', order_id = $2 WHERE hold_id = $1 AND status = 'held'")
        .bind(hold.id)
        .bind(order_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if sold != hold.quantity as u64 {
        return Err(AppError::Internal(anyhow::anyhow!(
            "hold {} has {sold} held units, expected {}",
            hold.id,
            hold.quantity
        )));
    }
    let duplicate_reference: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM orders WHERE payment_reference = $1")
        .bind(&event.payment_reference)
        .fetch_optional(&mut *tx)
        .await?;
    if duplicate_reference.is_some() {
        return Err(AppError::conflict(
            "payment_reference_reused",
            "this payment reference already confirmed another order",
        ));
    }
    sqlx::query(
        "INSERT INTO orders (id, sale_id, hold_id, visitor_id, payment_reference, quantity, unit_ids, state, \
         amount, currency, session) VALUES ($1, $2, $3, $4, $5, $6, $7, 'confirmed', $8, $9, $10)",
    )
    .bind(order_id)
    .bind(&hold.sale_id)
    .bind(hold.id)
    .bind(&hold.visitor_id)
    .bind(&event.payment_reference)
    .bind(hold.quantity)
    .bind(&hold.unit_ids)
    .bind(hold.amount)
    .bind(hold.currency.as_deref())
    .bind(hold.session)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE holds SET state = 'confirmed', updated_at = now() WHERE id = $1")
        .bind(hold.id)
        .execute(&mut *tx)
        .await?;
    events::record_order_confirmed(tx, order_id).await?;
    ::metrics::counter!(crate::metrics::ORDERS, "sale" => hold.sale_id.clone(), "outcome" => "confirmed").increment(1);
    let order = Order::load(tx, order_id, false).await?;
    Ok(Processed {
        status: StatusCode::OK,
        body: json!({ "order": order.view(tx).await? }),
        finished: Some(hold.admission()),
    })
}
