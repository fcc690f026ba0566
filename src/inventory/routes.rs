//! Holding units, seeing a hold and releasing it.

use std::time::Instant;

use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{free_admission, hold_of, place_hold, return_hold, Hold, HoldAsk, HoldOutcome, HoldState, HoldView, Want};
use crate::error::{AppError, AppResult};
use crate::extractor::{AdmissionBearer, HoldBearer, HoldQuota, JsonBody};
use crate::idempotency;
use crate::state::AppState;
use crate::{events, metrics};

/// `POST /api/v1/sales/{sale}/holds` body: exactly one of the two (read
/// as this struct, so a body with both or neither gets a message that says
/// so; documented as [`HoldChoice`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// Best available units, this many.
    pub quantity: Option<i64>,
    /// Named seats, `section/row/seat`.
    pub seats: Option<Vec<String>>,
    /// With `quantity`: the best available of this price category only.
    pub category: Option<String>,
    /// The session to hold in (a sale with sessions needs one).
    pub session: Option<String>,
}

/// What to hold: best available units, or named seats.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documentation only: the body is read as `HoldRequest`
pub enum HoldChoice {
    /// The best available units, all or nothing.
    Best(BestUnits),
    /// These seats, all or nothing.
    Seats(NamedSeats),
}

/// The best available units, all or nothing.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documentation only
pub struct BestUnits {
    /// How many.
    #[schema(minimum = 1, maximum = 1000)]
    quantity: i64,
    /// Only units of this price category (its name).
    #[schema(min_length = 1, max_length = 32)]
    category: Option<String>,
    /// The session to hold in (its id), for a sale with sessions.
    #[schema(pattern = "^[0-9]{1,9}$")]
    session: Option<String>,
}

/// These seats, all or nothing.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documentation only
pub struct NamedSeats {
    /// Labels `section/row/seat`, each once.
    #[schema(min_items = 1, max_items = 1000)]
    seats: Vec<String>,
}

/// A session id: its number in the sale.
fn parse_session(session: Option<&str>) -> AppResult<Option<i32>> {
    session
        .map(|s| match s.trim().parse::<i32>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(AppError::Invalid("session must be a session id of this sale".into())),
        })
        .transpose()
}

fn parse_want(body: HoldRequest) -> AppResult<Want> {
    match (body.quantity, body.seats) {
        (Some(quantity), None) => {
            if !(1..=1000).contains(&quantity) {
                return Err(AppError::Invalid("quantity must be between 1 and 1000".into()));
            }
            match body.category {
                None => Ok(Want::Best(quantity as i32)),
                Some(category) => {
                    let category = category.trim().to_owned();
                    if category.is_empty() || category.chars().count() > 32 {
                        return Err(AppError::Invalid("category must be a price category's name".into()));
                    }
                    Ok(Want::InCategory(quantity as i32, category))
                }
            }
        }
        (None, Some(_)) if body.category.is_some() => {
            Err(AppError::Invalid("category goes with quantity; named seats have their own".into()))
        }
        (None, Some(seats)) => {
            if seats.is_empty() || seats.len() > 1000 {
                return Err(AppError::Invalid("seats must list 1 to 1000 seats".into()));
            }
            let mut seen = std::collections::HashSet::new();
            for seat in &seats {
                if seat.is_empty() || seat.len() > 100 {
                    return Err(AppError::Invalid("each seat is a section/row/seat label".into()));
                }
                crate::error::plain_text("seats", seat)?;
                if !seen.insert(seat.as_str()) {
                    return Err(AppError::Invalid(format!("seat {seat} is listed twice")));
                }
            }
            Ok(Want::Seats(seats))
        }
        _ => Err(AppError::Invalid("send exactly one of quantity or seats".into())),
    }
}

/// Holds units for an admitted visitor: the best available `quantity`, or the
/// named `seats`, all or nothing. Send an `Idempotency-Key` so a retry gets
/// the first answer instead of a second hold.
#[utoipa::path(
    tag = "inventory",
    params(
        ("sale" = String, Path, description = "Sale id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry key")
    ),
    request_body = HoldChoice,
    security(("admission_token" = [])),
    responses(
        (status = 201, body = HoldView),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, description = "a token of another purpose or sale, `access_denied`, `place_removed`", body = crate::error::ErrorBody),
        (status = 409, description = "insufficient_stock, seat_taken, limit_exceeded, idempotency_key_reused, sale_paused", body = crate::error::ErrorBody),
        (status = 410, description = "sold_out, sale_closed", body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)
    )
)]
#[post("/api/v1/sales/{sale}/holds")]
pub async fn create_hold(
    _quota: HoldQuota,
    AdmissionBearer(claims): AdmissionBearer,
    state: web::Data<AppState>,
    req: HttpRequest,
    JsonBody(body): JsonBody<HoldRequest>,
) -> AppResult<HttpResponse> {
    let key = idempotency::key(&req)?;
    let session = parse_session(body.session.as_deref())?;
    let want = parse_want(body)?;
    let started = Instant::now();
    let sale = state.sales.get(&state.db, &claims.sale).await?;
    if sale.waiting_room && state.waiting_room.is_removed(&sale.id, &claims.sub).await? {
        return Err(AppError::forbidden("place_removed", "an admin removed your place in this sale's line"));
    }
    let ask = HoldAsk { want, buyer: &claims, key, session };
    let result = place_hold(&state.db, &state.hold_batches, &state.claim_hints, &state.tokens, &sale, ask).await;
    let outcome = match &result {
        Ok(HoldOutcome::Created(..)) => "created",
        Ok(HoldOutcome::Replayed(..)) => "replayed",
        Err(e) => e.code(),
    };
    let elapsed = started.elapsed();
    state.hold_health.record(elapsed, matches!(result, Err(AppError::Unavailable(_))));
    ::metrics::histogram!(metrics::HOLD_CLAIM_DURATION).record(elapsed.as_secs_f64());
    ::metrics::counter!(metrics::HOLDS, "sale" => sale.id.clone(), "outcome" => outcome).increment(1);
    match result? {
        HoldOutcome::Replayed(status, body) => Ok(HttpResponse::build(status).json(body)),
        HoldOutcome::Created(body, expires_at) => {
            // The admission slot now lasts as long as the hold; losing this
            // update only means the slot frees a little early.
            if let Some(n) = claims.n.filter(|_| sale.waiting_room) {
                if let Err(e) = state.waiting_room.finish(&sale.id, n, Some(expires_at.timestamp_millis())).await {
                    tracing::warn!(error = %e, "could not extend admission slot");
                }
            }
            Ok(HttpResponse::Created().json(body))
        }
    }
}

/// A hold and its units.
#[utoipa::path(
    tag = "inventory",
    params(("hold" = String, Path, description = "Hold id")),
    security(("hold_token" = [])),
    responses((status = 200, body = HoldView), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
#[get("/api/v1/holds/{hold}")]
#[tracing::instrument(name = "get hold", skip_all, fields(hold = %path))]
pub async fn get_hold(
    HoldBearer(claims): HoldBearer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = hold_of(&claims, &path)?;
    let mut conn = state.db.acquire().await?;
    let hold = Hold::load(&mut conn, id, false).await?;
    Ok(HttpResponse::Ok().json(hold.view(&mut conn).await?))
}

/// Releases a hold: its units go back on sale at once.
#[utoipa::path(
    tag = "inventory",
    params(("hold" = String, Path, description = "Hold id")),
    security(("hold_token" = [])),
    responses(
        (status = 200, body = HoldView),
        (status = 409, description = "hold_confirmed: cancel the order instead", body = crate::error::ErrorBody),
        (status = 410, description = "hold_expired", body = crate::error::ErrorBody)
    )
)]
#[delete("/api/v1/holds/{hold}")]
#[tracing::instrument(name = "release hold", skip_all, fields(hold = %path))]
pub async fn release_hold(
    HoldBearer(claims): HoldBearer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = hold_of(&claims, &path)?;
    let mut tx = state.db.begin().await?;
    let hold = Hold::load(&mut tx, id, true).await?;
    match hold.state {
        HoldState::Active if hold.expires_at > Utc::now() => {
            return_hold(&mut tx, &hold, HoldState::Released, events::kind::HOLD_RELEASED).await?;
            state.claim_hints.returned(&hold.sale_id);
        }
        HoldState::Released => {}
        HoldState::Confirmed => {
            return Err(AppError::conflict("hold_confirmed", "this hold was paid; cancel the order instead"))
        }
        _ => return Err(AppError::gone("hold_expired", "this hold has expired")),
    }
    let hold = Hold::load(&mut tx, id, false).await?;
    let view = hold.view(&mut tx).await?;
    tx.commit().await?;
    free_admission(&state.db, &state.waiting_room, &hold.admission()).await;
    Ok(HttpResponse::Ok().json(view))
}

crate::domain_routes!(create_hold, get_hold, release_hold);

#[cfg(test)]
mod tests {
    use super::*;

    fn want(quantity: Option<i64>, seats: Option<&[&str]>) -> AppResult<Want> {
        parse_want(HoldRequest {
            quantity,
            seats: seats.map(|s| s.iter().map(|s| s.to_string()).collect()),
            category: None,
            session: None,
        })
    }

    #[test]
    fn a_hold_asks_for_a_quantity_or_for_seats() {
        assert!(matches!(want(Some(2), None), Ok(Want::Best(2))));
        let in_category =
            parse_want(HoldRequest { quantity: Some(2), seats: None, category: Some("A".into()), session: None });
        assert!(matches!(in_category, Ok(Want::InCategory(2, c)) if c == "A"));
        let seats_in_category = parse_want(HoldRequest {
            quantity: None,
            seats: Some(vec!["A/1/1".into()]),
            category: Some("A".into()),
            session: None,
        });
        assert!(matches!(seats_in_category, Err(AppError::Invalid(_))));
        assert!(matches!(want(None, Some(&["A/1/1", "A/1/2"])), Ok(Want::Seats(s)) if s.len() == 2));
        for refused in [
            want(Some(0), None),
            want(Some(1001), None),
            want(None, Some(&[])),
            want(None, Some(&["A/1/1", "A/1/1"])),
            want(None, Some(&[""])),
            want(None, Some(&["A/1/\u{0}"])),
            want(Some(1), Some(&["A/1/1"])),
            want(None, None),
        ] {
            assert!(matches!(refused, Err(AppError::Invalid(_))), "{refused:?}");
        }
    }
}
