//! The buyer-facing pages: plain HTML, CSS and JavaScript from `web/`,
//! embedded in the binary so running the server needs no build step.

use actix_web::{web, HttpResponse};

const INDEX_HTML: &str = include_str!("../web/index.html");
const SALE_HTML: &str = include_str!("../web/sale.html");
const APP_JS: &str = include_str!("../web/app.js");
const STYLE_CSS: &str = include_str!("../web/style.css");

fn page(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok().content_type(content_type).insert_header(("Cache-Control", "public, max-age=60")).body(body)
}

/// Routes of the pages.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(|| async { page("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/s/{sale}", web::get().to(|| async { page("text/html; charset=utf-8", SALE_HTML) }))
        .route("/static/app.js", web::get().to(|| async { page("text/javascript; charset=utf-8", APP_JS) }))
        .route("/static/style.css", web::get().to(|| async { page("text/css; charset=utf-8", STYLE_CSS) }));
}
