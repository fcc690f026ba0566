//! Joining the queue and polling one's place.

use actix_web::http::header;
use actix_web::{get, post, web, HttpRequest, HttpResponse, HttpResponseBuilder};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{estimated_wait, poll_after_ms, JoinOutcome, PlaceState, Polled, Standing};
use crate::error::{AppError, AppResult};
use crate::extractor::{Admin, JoinQuota, JsonBody, QueueBearer, RawBody, StatusQuota};
use crate::gate::challenge::{Refusal, Ticket};
use crate::sales::{state, Sale, SaleAccess, SaleMode, SaleState};
use crate::state::AppState;
use crate::tokens::{self, Purpose, TokenSigner};

/// A visitor's place: the answer to join and status.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueView {
    /// The token to poll with (`Authorization: Bearer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_token: Option<String>,
    /// The sale.
    pub sale_id: String,
    /// Where the visitor stands.
    pub state: VisitorState,
    /// Place in line (1 = next). In the pre-queue this is the join order
    /// until the start shuffles it.
    pub position: Option<u64>,
    /// The visitor's join number: the entry the pre-queue shuffle or the
    /// lottery draw permutes (`/s/{sale}/verify` shows where it landed).
    /// Absent for sales without a waiting room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<u64>,
    /// Visitors ahead.
    pub ahead: Option<u64>,
    /// Estimated seconds until admission, `null` when unknown.
    pub estimated_wait_seconds: Option<u64>,
    /// Poll again after this many milliseconds.
    pub poll_after_ms: u64,
    /// The visitor joined before the start; the order is drawn at the start.
    pub prequeue: bool,
    /// The sale is paused: the line does not move for now.
    pub paused: bool,
    /// Lets the visitor hold units, once admitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission_token: Option<String>,
    /// Until when the admission is valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission_expires_at: Option<DateTime<Utc>>,
}

/// What a visitor is told about their place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VisitorState {
    /// In line (or in the lottery, before the draw).
    Waiting,
    /// Admitted: may hold until `admission_expires_at`.
    Admitted,
    /// Won the lottery: may hold until `admission_expires_at`.
    Won,
    /// Lost the lottery: on the waitlist, in draw order.
    Lost,
    /// The admission (or the win) ran out, or the place was abandoned.
    Expired,
    /// Nothing left to sell.
    SoldOut,
    /// The sale is over.
    Closed,
    /// An admin took the place away.
    Removed,
}

impl QueueView {
    /// A waiting place in `sale`, to be filled in.
    fn new(sale: &str) -> Self {
        QueueView {
            queue_token: None,
            sale_id: sale.to_owned(),
            state: VisitorState::Waiting,
            position: None,
            entry: None,
            ahead: None,
            estimated_wait_seconds: None,
            poll_after_ms: 1000,
            prequeue: false,
            paused: false,
            admission_token: None,
            admission_expires_at: None,
        }
    }
}

/// Optional body of a join.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// A queue token from an earlier join (same as sending it as the bearer).
    pub queue_token: Option<String>,
    /// A challenge from `GET /api/v1/sales/{sale}/challenge`, when the sale
    /// asks for proof of work.
    pub challenge: Option<String>,
    /// The challenge's solution: SHA-256(`challenge` ":" `nonce`) has
    /// `difficulty_bits` leading zero bits; 1 to 32 printable ASCII characters.
    #[schema(pattern = r"^[!-~]{1,32}$")]
    pub nonce: Option<String>,
}

impl JoinRequest {
    fn solution(&self) -> Option<(&str, &str)> {
        Some((self.challenge.as_deref()?, self.nonce.as_deref()?))
    }
}

enum Identity {
    /// Re-join with a queue token of this sale.
    Returning { visitor: String, n: u64, token: String },
    /// Signed-in user of the site.
    User(String),
    /// New anonymous visitor.
    Anonymous,
}

fn identify(state: &AppState, req: &HttpRequest, body: &JoinRequest, sale: &Sale) -> AppResult<Identity> {
    let token = body.queue_token.as_deref().or_else(|| tokens::bearer(req));
    let Some(token) = token else {
        if sale.access == SaleAccess::Invite {
            return Err(AppError::Unauthorized(
                "this sale is invite-only: join with your login token (Authorization: Bearer)".into(),
            ));
        }
        return Ok(Identity::Anonymous);
    };
    if let Some(verified) = state.tokens.verify_any(token) {
        let claims = verified?;
        if claims.pur != Purpose::Queue || claims.sale != sale.id {
            return Err(AppError::Forbidden("this token is not a queue token of this sale".into()));
        }
        let n = claims.n.ok_or_else(|| AppError::Unauthorized("queue token without a place".into()))?;
        return Ok(Identity::Returning { visitor: claims.sub.clone(), n, token: token.to_owned() });
    }
    let Some(login) = &state.login else {
        return Err(AppError::Unauthorized("token refused: not a floodgate token".into()));
    };
    let login = login.verify(token)?;
    if sale.access == SaleAccess::Invite && login.sale.as_deref() != Some(sale.id.as_str()) {
        return Err(AppError::forbidden("not_invited", "your login token does not invite you to this sale"));
    }
    Ok(Identity::User(login.user_id))
}

/// Joins a sale's queue (or its lottery). Joining again with the queue token,
/// or as the same signed-in user, returns the same place.
#[utoipa::path(
    tag = "waiting room",
    params(("sale" = String, Path, description = "Sale id")),
    request_body(content = Option<JoinRequest>, content_type = "application/json", description = "Optional: `null` or no body is the same as `{}`"),
    security((), ("queue_token" = []), ("login_token" = [])),
    responses(
        (status = 201, description = "New place", body = QueueView),
        (status = 200, description = "The same place as before", body = QueueView),
        (status = 401, description = "Invalid token, or no login token for an invite-only sale", body = crate::error::ErrorBody),
        (status = 403, description = "`challenge_required`, `challenge_failed`, `challenge_expired` (also another sale's), `access_denied`, `not_invited`", body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "`challenge_reused`", body = crate::error::ErrorBody),
        (status = 410, description = "Sold out or closed", body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)
    )
)]
#[post("/api/v1/sales/{sale}/queue")]
pub async fn join(
    gate: JoinQuota,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    RawBody(body): RawBody,
) -> AppResult<HttpResponse> {
    let sale_id = path.into_inner();
    let body: JoinRequest = crate::error::parse_json(&body)?.unwrap_or_default();
    let sale = state.sales.get(&state.db, &sale_id).await?;
    let identity = identify(&state, &req, &body, &sale)?;

    match sale.state {
        SaleState::Closed => return Err(AppError::gone("sale_closed", "the sale is closed")),
        SaleState::SoldOut => return Err(AppError::gone("sold_out", "the sale is sold out")),
        _ => {}
    }
    // A returning visitor keeps their place; a new one pays at the gate.
    let ticket = match &identity {
        Identity::Returning { .. } => None,
        _ => match crate::gate::check_solution(&state.challenges, &sale, body.solution(), gate.verdict) {
            Ok(ticket) => ticket,
            Err(refusal) => return Err(crate::gate::refuse(&state.waiting_room, &sale.id, refusal).await),
        },
    };

    let (visitor, n, token, joined) = match identity {
        Identity::Returning { visitor, n, token } => (visitor, n, token, Joined::Again),
        Identity::User(user) => {
            let (n, standing) = join_redis(&state, &sale, Some(&user), ticket.as_ref()).await?;
            let token = queue_token(&state, &sale, &user, n)?;
            (user, n, token, standing)
        }
        Identity::Anonymous => {
            let visitor = tokens::new_visitor_id();
            let (n, standing) = join_redis(&state, &sale, None, ticket.as_ref()).await?;
            let token = queue_token(&state, &sale, &visitor, n)?;
            (visitor, n, token, standing)
        }
    };
    // A new place comes with its standing from the join script itself, so a
    // join is one Redis call: no second call can fail after the number is taken.
    let (created, standing) = match joined {
        Joined::Again => (false, None),
        Joined::New(standing) => (true, standing),
    };
    ::metrics::counter!(crate::metrics::QUEUE_JOINS, "sale" => sale.id.clone(), "outcome" => if created { "new" } else { "again" }).increment(1);
    let mut view = place(&state, &sale, &visitor, n, standing).await?;
    view.queue_token = Some(token);
    Ok(answer(if created { HttpResponse::Created() } else { HttpResponse::Ok() }, &view))
}

/// What a join did.
enum Joined {
    /// A new place; its standing when the waiting room is on.
    New(Option<Standing>),
    /// The visitor already had this place.
    Again,
}

async fn join_redis(
    state: &AppState,
    sale: &Sale,
    user: Option<&str>,
    ticket: Option<&Ticket>,
) -> AppResult<(u64, Joined)> {
    if !sale.waiting_room {
        // No waiting room: everyone is admitted; the number only orders joins.
        return Ok((0, Joined::New(None)));
    }
    let mut outcome = state.waiting_room.join(sale, user, ticket).await?;
    if let JoinOutcome::Unknown = outcome {
        // Fresh from Postgres, not the cached copy: the saved counters must
        // be the latest so restored numbering stays above every token.
        let fresh = Sale::load(&state.db, &sale.id).await?;
        state.waiting_room.sync_sale(&fresh).await?;
        outcome = state.waiting_room.join(&fresh, user, ticket).await?;
    }
    match outcome {
        JoinOutcome::ChallengeReused => Err(crate::gate::refuse(&state.waiting_room, &sale.id, Refusal::Reused).await),
        JoinOutcome::New(n, standing) => Ok((n, Joined::New(Some(standing)))),
        JoinOutcome::Unknown => Err(AppError::Unavailable("waiting room state missing after sync".into())),
        JoinOutcome::Again(n) => Ok((n, Joined::Again)),
        JoinOutcome::Refused(why) => match why.as_str() {
            "drawn" => Err(AppError::gone("lottery_drawn", "the lottery has been drawn; entries are closed")),
            state::SOLD_OUT => Err(AppError::gone("sold_out", "the sale is sold out")),
            _ => Err(AppError::gone("sale_closed", "the sale is closed")),
        },
    }
}

fn queue_token(state: &AppState, sale: &Sale, visitor: &str, n: u64) -> AppResult<String> {
    let lifetime = chrono::Duration::seconds(state.settings.tokens.queue_ttl_seconds);
    let expires = sale.ends_at.map(|end| end + chrono::Duration::hours(1)).unwrap_or(Utc::now() + lifetime);
    state.tokens.issue(Purpose::Queue, &sale.id, visitor, Some(n), None, expires.max(Utc::now() + lifetime))
}

/// `Retry-After: seconds`; the values up to a minute (a poll answers at most
/// 30) are made once (formatting one cost an allocation per poll).
fn retry_after(seconds: u64) -> header::HeaderValue {
    static MADE: std::sync::LazyLock<Vec<header::HeaderValue>> =
        std::sync::LazyLock::new(|| (0..=60u64).map(header::HeaderValue::from).collect());
    usize::try_from(seconds)
        .ok()
        .and_then(|s| MADE.get(s))
        .cloned()
        .unwrap_or_else(|| header::HeaderValue::from(seconds))
}

/// A join's or a poll's answer: the place as JSON, `Retry-After` from
/// `poll_after_ms`, never cached. The body is written into one buffer sized
/// for the largest view (both tokens): growing it from empty, as
/// `HttpResponseBuilder::json` does, reallocated it three times per poll.
fn answer(mut response: HttpResponseBuilder, view: &QueueView) -> HttpResponse {
    let mut body = Vec::with_capacity(768);
    if let Err(e) = serde_json::to_writer(&mut body, view) {
        return actix_web::ResponseError::error_response(&AppError::Internal(e.into()));
    }
    response
        .insert_header((header::RETRY_AFTER, retry_after(view.poll_after_ms.div_ceil(1000).max(1))))
        .insert_header((header::CACHE_CONTROL, header::HeaderValue::from_static("no-store")))
        .insert_header(header::ContentType::json())
        .body(body)
}

/// Where a visitor stands: the state answered by join and status; `known`
/// is a standing the caller already has (a new join's), else it is read.
async fn place(state: &AppState, sale: &Sale, visitor: &str, n: u64, known: Option<Standing>) -> AppResult<QueueView> {
    let mut view = QueueView::new(&sale.id);
    if !sale.waiting_room {
        return admitted_without_queue(state, sale, visitor, view);
    }
    // A new join knows its standing (and cannot have been removed); any
    // other answer polls.
    let standing = match known {
        Some(standing) => standing,
        None => match state.waiting_room.poll(&sale.id, visitor, n).await? {
            Polled::At(standing) => standing,
            Polled::Removed => {
                view.state = VisitorState::Removed;
                view.poll_after_ms = 30_000;
                return Ok(view);
            }
        },
    };
    describe(&state.tokens, sale, (visitor, n), &standing, view)
}

/// Fills in `view` from the place's standing; an admitted visitor gets an
/// admission token valid until their deadline.
fn describe(
    tokens: &TokenSigner,
    sale: &Sale,
    (visitor, n): (&str, u64),
    standing: &Standing,
    mut view: QueueView,
) -> AppResult<QueueView> {
    let sale_state = if standing.sale_state.is_empty() { sale.state.as_str() } else { standing.sale_state.as_str() };
    view.paused = sale_state == state::PAUSED;
    view.prequeue = standing.position.is_none() && standing.standing == PlaceState::Waiting;
    let position = standing.position.unwrap_or(n);
    view.entry = Some(n);
    let ahead = position.saturating_sub(standing.serving + 1);
    view.state = visitor_state(sale, sale_state, standing, position);
    match view.state {
        VisitorState::Waiting | VisitorState::Lost => {
            view.position = Some(ahead + 1);
            view.ahead = Some(ahead);
            // Until a rate has been measured, the configured one is the best
            // estimate of how fast the line moves.
            let rate = standing.rate.or_else(|| (sale.admit_per_second > 0).then(|| f64::from(sale.admit_per_second)));
            view.estimated_wait_seconds = if view.paused || view.prequeue { None } else { estimated_wait(ahead, rate) };
            view.poll_after_ms = poll_after_ms(ahead, rate, sale);
        }
        VisitorState::Admitted | VisitorState::Won => {
            view.position = Some(0);
            view.ahead = Some(0);
            view.estimated_wait_seconds = Some(0);
            view.poll_after_ms = 5000;
            if let Some(deadline) = standing.deadline_ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single()) {
                view.admission_token =
                    Some(tokens.issue(Purpose::Admission, &sale.id, visitor, Some(n), None, deadline)?);
                view.admission_expires_at = Some(deadline);
            }
        }
        _ => view.poll_after_ms = 30_000,
    }
    Ok(view)
}

fn visitor_state(sale: &Sale, sale_state: &str, standing: &Standing, position: u64) -> VisitorState {
    match (sale_state, standing.standing) {
        (state::CLOSED, _) => return VisitorState::Closed,
        (state::SOLD_OUT, _) => return VisitorState::SoldOut,
        (_, PlaceState::Abandoned) | (_, PlaceState::Expired) => return VisitorState::Expired,
        _ => {}
    }
    let admitted = standing.standing == PlaceState::Admitted;
    if sale.mode == SaleMode::Lottery {
        return match standing.drawn {
            None => VisitorState::Waiting,
            Some(winners) if position <= winners => {
                if admitted {
                    VisitorState::Won
                } else {
                    VisitorState::Expired
                }
            }
            Some(_) if admitted => VisitorState::Admitted,
            Some(_) => VisitorState::Lost,
        };
    }
    if admitted {
        VisitorState::Admitted
    } else {
        VisitorState::Waiting
    }
}

fn admitted_without_queue(state: &AppState, sale: &Sale, visitor: &str, mut view: QueueView) -> AppResult<QueueView> {
    if sale.state == SaleState::Scheduled {
        view.prequeue = true;
        view.position = Some(1);
        view.ahead = Some(0);
        view.poll_after_ms = 1000;
        return Ok(view);
    }
    let expires = Utc::now() + chrono::Duration::seconds(i64::from(sale.admission_ttl_seconds));
    view.state = VisitorState::Admitted;
    view.position = Some(0);
    view.ahead = Some(0);
    view.estimated_wait_seconds = Some(0);
    view.poll_after_ms = 5000;
    view.admission_token = Some(state.tokens.issue(Purpose::Admission, &sale.id, visitor, Some(0), None, expires)?);
    view.admission_expires_at = Some(expires);
    Ok(view)
}

/// A visitor's place, state and (once admitted) admission token. Needs no
/// Postgres: the sale comes from the in-process snapshot and the place from
/// one Redis script.
#[utoipa::path(
    tag = "waiting room",
    params(("sale" = String, Path, description = "Sale id")),
    security(("queue_token" = [])),
    responses(
        (status = 200, body = QueueView),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, description = "a token of another purpose or sale, `access_denied`", body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)
    )
)]
#[get("/api/v1/sales/{sale}/queue/status")]
pub async fn status(
    _quota: StatusQuota,
    QueueBearer(claims): QueueBearer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let n = claims.n.ok_or_else(|| AppError::Unauthorized("queue token without a place".into()))?;
    let sale = state.sales.get(&state.db, &path).await?;
    let view = place(&state, &sale, &claims.sub, n, None).await?;
    Ok(answer(HttpResponse::Ok(), &view))
}

/// `POST /admin/v1/sales/{sale}/queue/remove` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveRequest {
    /// Visitor ids (the `sub` of their queue tokens; `u:<user>` for
    /// signed-in users). Together with `user_ids`: 1 to 10,000 ids.
    #[serde(default)]
    #[schema(max_items = 10_000)]
    pub visitor_ids: Vec<String>,
    /// User ids of the site (the `sub` of its login tokens).
    #[serde(default)]
    #[schema(max_items = 10_000)]
    pub user_ids: Vec<String>,
}

/// What a removal did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemoveResult {
    /// Visitors newly removed (a repeated id counts once).
    pub removed: u64,
    /// Places freed at once (signed-in users'); an anonymous visitor's place
    /// is freed at their next poll, or abandoned when they stop polling.
    pub places_freed: u64,
}

/// Takes places away: the visitors' status says `removed`, their joins and
/// holds are refused, and their places do not count toward `max_active`.
#[utoipa::path(
    tag = "admin",
    params(("sale" = String, Path, description = "Sale id")),
    request_body = RemoveRequest,
    security(("admin_key" = [])),
    responses((status = 200, body = RemoveResult), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
#[post("/admin/v1/sales/{sale}/queue/remove")]
#[tracing::instrument(name = "admin remove places", skip_all, fields(sale = %path))]
pub async fn remove(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(body): JsonBody<RemoveRequest>,
) -> AppResult<HttpResponse> {
    if body.user_ids.iter().any(String::is_empty) {
        return Err(AppError::Invalid("user ids are 1 to 200 characters".into()));
    }
    let visitors: Vec<String> =
        body.visitor_ids.into_iter().chain(body.user_ids.into_iter().map(|user| format!("u:{user}"))).collect();
    if visitors.is_empty() || visitors.len() > 10_000 {
        return Err(AppError::Invalid("name 1 to 10000 visitor_ids or user_ids".into()));
    }
    if visitors.iter().any(|v| v.is_empty() || v.len() > 210) {
        return Err(AppError::Invalid("visitor and user ids are 1 to 200 characters".into()));
    }
    for visitor in &visitors {
        crate::error::plain_text("visitor id", visitor)?;
    }
    let sale = state.sales.get(&state.db, &path).await?;
    if !sale.waiting_room {
        return Err(AppError::conflict("no_waiting_room", "this sale admits everyone at once"));
    }
    let (removed, places_freed) = state.waiting_room.remove(&sale.id, &visitors).await?;
    tracing::info!(removed, places_freed, "places removed");
    Ok(HttpResponse::Ok().json(RemoveResult { removed, places_freed }))
}

/// `POST /admin/v1/sales/{sale}/admit` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdmitRequest {
    /// Visitors to admit now.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub count: i64,
}

/// Admits the next `count` waiting visitors now, beyond the regular rate.
#[utoipa::path(
    tag = "admin",
    params(("sale" = String, Path, description = "Sale id")),
    request_body = AdmitRequest,
    security(("admin_key" = [])),
    responses((status = 200, body = super::AdmitResult), (status = 401, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
#[post("/admin/v1/sales/{sale}/admit")]
#[tracing::instrument(name = "admin admit", skip_all, fields(sale = %path))]
pub async fn admit(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(body): JsonBody<AdmitRequest>,
) -> AppResult<HttpResponse> {
    if !(1..=1_000_000).contains(&body.count) {
        return Err(AppError::Invalid("count must be between 1 and 1000000".into()));
    }
    let sale = state.sales.get(&state.db, &path).await?;
    if !sale.waiting_room {
        return Err(AppError::conflict("no_waiting_room", "this sale admits everyone at once"));
    }
    let result = state.waiting_room.admit(&sale.id, Some(body.count as u64)).await?;
    if !result.ready {
        return Err(AppError::NotYet {
            code: "prequeue_not_ready",
            message: "the pre-queue's order is being drawn; nobody was admitted, try again shortly".into(),
            retry_after_seconds: 1,
        });
    }
    // The admission is done (in Redis); its events follow, now or with the
    // ticker's next flush if Postgres does not answer.
    if let Err(e) = crate::events::flush_admissions(&state.db, &state.waiting_room, &sale.id).await {
        tracing::warn!(sale = %sale.id, error = %e, "queue.admitted events not written yet");
    }
    ::metrics::counter!(crate::metrics::ADMISSIONS, "sale" => sale.id.clone(), "how" => "manual")
        .increment(result.admitted);
    Ok(HttpResponse::Ok().json(result))
}

crate::domain_routes!(status, join, admit, remove);

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(place: PlaceState, drawn: Option<u64>) -> Standing {
        Standing {
            sale_state: state::ON_SALE.into(),
            serving: 10,
            position: Some(5),
            standing: place,
            deadline_ms: None,
            rate: None,
            drawn,
        }
    }

    #[test]
    fn a_visitor_state_follows_the_sale_first_then_the_place() {
        let fifo = Sale::example();
        let waiting = standing(PlaceState::Waiting, None);
        assert_eq!(visitor_state(&fifo, state::ON_SALE, &waiting, 5), VisitorState::Waiting);
        assert_eq!(visitor_state(&fifo, state::CLOSED, &standing(PlaceState::Admitted, None), 5), VisitorState::Closed);
        assert_eq!(visitor_state(&fifo, state::SOLD_OUT, &waiting, 5), VisitorState::SoldOut);
        assert_eq!(
            visitor_state(&fifo, state::ON_SALE, &standing(PlaceState::Admitted, None), 5),
            VisitorState::Admitted
        );
        assert_eq!(
            visitor_state(&fifo, state::ON_SALE, &standing(PlaceState::Abandoned, None), 5),
            VisitorState::Expired
        );
        assert_eq!(visitor_state(&fifo, state::PAUSED, &standing(PlaceState::Expired, None), 5), VisitorState::Expired);
    }

    #[test]
    fn a_lottery_entry_waits_then_wins_or_loses() {
        let lottery = Sale { mode: SaleMode::Lottery, ..Sale::example() };
        assert_eq!(
            visitor_state(&lottery, state::ON_SALE, &standing(PlaceState::Waiting, None), 5),
            VisitorState::Waiting
        );
        let admitted = standing(PlaceState::Admitted, Some(8));
        assert_eq!(visitor_state(&lottery, state::ON_SALE, &admitted, 5), VisitorState::Won);
        assert_eq!(
            visitor_state(&lottery, state::ON_SALE, &standing(PlaceState::Waiting, Some(8)), 5),
            VisitorState::Expired
        );
        assert_eq!(
            visitor_state(&lottery, state::ON_SALE, &standing(PlaceState::Waiting, Some(3)), 5),
            VisitorState::Lost
        );
        assert_eq!(
            visitor_state(&lottery, state::ON_SALE, &standing(PlaceState::Admitted, Some(3)), 5),
            VisitorState::Admitted
        );
    }
}
