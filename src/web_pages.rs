//! The buyer-facing pages: plain HTML, CSS and JavaScript from `web/`,
//! embedded in the binary so running the server needs no build step.
//!
//! `/` lists the sales, `/s/{sale}` is the waiting room and checkout; both
//! talk to the public API from `/static/app.js`. Answers are compressed when
//! the browser accepts it (the script is ~40 kB, ~11 kB gzipped) and carry a
//! Content-Security-Policy that allows only this origin: the pages load
//! nothing from elsewhere.

use actix_web::dev::HttpServiceFactory;
use actix_web::middleware::Compress;
use actix_web::{web, HttpResponse};

const INDEX_HTML: &str = include_str!("../web/index.html");
const SALE_HTML: &str = include_str!("../web/sale.html");
const APP_JS: &str = include_str!("../web/app.js");
const STYLE_CSS: &str = include_str!("../web/style.css");

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Same-origin only; `data:` images for the empty favicon.
const CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'";

fn page(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "public, max-age=60"))
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(body)
}

fn resource(path: &str, content_type: &'static str, body: &'static str) -> impl HttpServiceFactory {
    web::resource(path).wrap(Compress::default()).route(web::get().to(move || async move { page(content_type, body) }))
}

/// Routes of the pages.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/", HTML, INDEX_HTML))
        .service(resource("/s/{sale}", HTML, SALE_HTML))
        .service(resource("/static/app.js", JS, APP_JS))
        .service(resource("/static/style.css", CSS, STYLE_CSS));
}
