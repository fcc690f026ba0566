//! The calendar of a sale's sessions and the admin's session controls.

use actix_web::{get, patch, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{act, local, page, Session, SessionAction, SessionState};
use crate::error::{AppError, AppResult};
use crate::extractor::{Admin, JsonBody};
use crate::sales::{Availability, CategoryAvailability, UnitCounts};
use crate::state::AppState;

/// Sessions a page holds at most.
const MAX_PAGE: i64 = 500;

/// The calendar's filters and page.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CalendarQuery {
    /// Sessions starting at or after this (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Sessions starting before this (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// The `next` of the previous page.
    #[param(pattern = "^[0-9]{1,9}$")]
    pub after: Option<String>,
    /// Sessions per page, 1 to 500 (100 when omitted).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// A session with its availability.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Id (what a hold's `session` names).
    pub id: String,
    /// Start (UTC).
    pub starts_at: DateTime<Utc>,
    /// End (UTC).
    pub ends_at: DateTime<Utc>,
    /// Start in the sale's time zone, with its offset.
    pub starts_at_local: Option<String>,
    /// End in the sale's time zone, with its offset.
    pub ends_at_local: Option<String>,
    /// `on_sale`, `paused`, `closed` or `cancelled`.
    pub state: SessionState,
    /// Units in it.
    pub capacity: i32,
    /// Units by state (a second old at most).
    #[serde(flatten)]
    pub counts: UnitCounts,
    /// Per price category with units in this session (empty: no prices).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<CategoryAvailability>,
}

/// One page of the calendar.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsPage {
    /// The sale.
    pub sale_id: String,
    /// Its IANA time zone.
    pub time_zone: Option<String>,
    /// Sessions in time order.
    pub sessions: Vec<SessionView>,
    /// Pass as `after` for the next page; `null` on the last.
    pub next: Option<String>,
}

/// A session with its counts, overall and per price category, from a count
/// of the sale's units.
fn session_view(session: Session, time_zone: Option<&str>, availability: &Availability) -> SessionView {
    let counts = availability.sessions.get(&session.code).cloned().unwrap_or_default();
    let categories = availability
        .categories
        .iter()
        .zip(1i16..)
        .filter_map(|(category, code)| {
            let counts = availability.session_categories.get(&(session.code, code))?.clone();
            let units = counts.available + counts.held + counts.sold + counts.unreleased + counts.withdrawn;
            Some(CategoryAvailability { name: category.name.clone(), amount: category.amount, units, counts })
        })
        .collect();
    SessionView {
        id: session.code.to_string(),
        starts_at: session.starts_at,
        ends_at: session.ends_at,
        starts_at_local: time_zone.and_then(|tz| local(session.starts_at, tz)),
        ends_at_local: time_zone.and_then(|tz| local(session.ends_at, tz)),
        state: session.state,
        capacity: session.capacity,
        counts,
        categories,
    }
}

/// The sale's sessions with availability, in time order, a page at a time.
#[utoipa::path(
    tag = "sales",
    params(("sale" = String, Path, description = "Sale id"), CalendarQuery),
    responses((status = 200, body = SessionsPage), (status = 404, body = crate::error::ErrorBody))
)]
#[get("/api/v1/sales/{sale}/sessions")]
#[tracing::instrument(name = "sessions", skip_all, fields(sale = %path))]
pub async fn list_sessions(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<CalendarQuery>,
) -> AppResult<HttpResponse> {
    let query = query.into_inner();
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::Invalid(format!("limit must be between 1 and {MAX_PAGE}")));
    }
    let after = match query.after.as_deref().map(str::parse::<i32>) {
        None => 0,
        Some(Ok(after)) if after >= 0 => after,
        Some(_) => return Err(AppError::Invalid("after must be the next of a previous page".into())),
    };
    let sale = state.sales.get(&state.db, &path).await?;
    let availability = state.availability.get(&state.db, &sale).await?;
    let sessions = page(&state.db, &sale.id, query.from, query.to, after, limit + 1).await?;
    let next = (sessions.len() as i64 > limit).then(|| sessions[limit as usize - 1].code.to_string());
    let views = sessions
        .into_iter()
        .take(limit as usize)
        .map(|s| session_view(s, sale.time_zone.as_deref(), &availability))
        .collect();
    Ok(HttpResponse::Ok().json(SessionsPage {
        sale_id: sale.id.clone(),
        time_zone: sale.time_zone.clone(),
        sessions: views,
        next,
    }))
}

/// `PATCH /admin/v1/sales/{sale}/sessions/{session}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionUpdate {
    /// `pause`, `resume`, `close` or `cancel`.
    pub action: SessionAction,
}

/// Pauses, resumes, closes or cancels one session (cancelling releases its
/// holds and cancels its orders with `order.cancelled` and
/// `order.refund_due`; its units never return to stock).
#[utoipa::path(
    tag = "admin",
    params(("sale" = String, Path, description = "Sale id"), ("session" = String, Path, description = "Session id")),
    request_body = SessionUpdate,
    security(("admin_key" = [])),
    responses(
        (status = 200, body = SessionView),
        (status = 409, description = "invalid_transition", body = crate::error::ErrorBody)
    )
)]
#[patch("/admin/v1/sales/{sale}/sessions/{session}")]
#[tracing::instrument(name = "admin session", skip_all, fields(sale = %path.0, session = %path.1))]
pub async fn admin_update_session(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    JsonBody(body): JsonBody<SessionUpdate>,
) -> AppResult<HttpResponse> {
    let (sale_id, session) = path.into_inner();
    let code = session.parse::<i32>().map_err(|_| AppError::NotFound("session"))?;
    let sale = state.sales.get(&state.db, &sale_id).await?;
    let session = act(&state.db, &sale.id, code, body.action).await?;
    state.availability.invalidate(&sale.id);
    let availability = crate::sales::count_units(&state.db, &sale).await?;
    Ok(HttpResponse::Ok().json(session_view(session, sale.time_zone.as_deref(), &availability)))
}

crate::domain_routes!(list_sessions, admin_update_session);
