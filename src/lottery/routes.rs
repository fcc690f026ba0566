//! The admin's lottery draw.

use actix_web::{post, web, HttpResponse};

use super::{draw_lottery, DrawRequest, DrawResult};
use crate::error::AppResult;
use crate::extractor::{Admin, RawBody};
use crate::state::AppState;

/// Draws the lottery once: reveals the seed, admits the winners for the
/// purchase window, tells every entry whether it won (outbox events), and
/// leaves the losers as a waitlist in draw order. A second draw is 409.
#[utoipa::path(
    tag = "admin",
    params(("sale" = String, Path, description = "Sale id")),
    request_body(content = Option<DrawRequest>, content_type = "application/json"),
    security(("admin_key" = [])),
    responses(
        (status = 200, body = DrawResult),
        (status = 409, description = "already_drawn or not_a_lottery", body = crate::error::ErrorBody)
    )
)]
#[post("/admin/v1/sales/{sale}/lottery/draw")]
#[tracing::instrument(name = "lottery draw", skip_all, fields(sale = %path))]
pub async fn draw(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    RawBody(body): RawBody,
) -> AppResult<HttpResponse> {
    let request: DrawRequest = crate::error::parse_json(&body)?.unwrap_or_default();
    let result = draw_lottery(&state.db, &state.waiting_room, &path, &request).await?;
    state.sales.invalidate(&result.sale_id);
    Ok(HttpResponse::Ok().json(result))
}

crate::domain_routes!(draw);
