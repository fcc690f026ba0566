//! The buyer-facing pages: plain HTML, CSS and JavaScript from `web/`,
//! embedded in the binary so running the server needs no build step.
//!
//! `/` lists the sales, `/s/{sale}` is the waiting room and checkout; both
//! load `/static/js/main.js`, a native ES module that picks the page's module
//! (`index.js` or `sale.js`, which use `api.js`, `format.js` and `dom.js`) and
//! talks to the public API. Before a fresh join, `sale.js` solves the sale's
//! proof-of-work challenge (SPEC §4a) in `pow-worker.js`, a module Web Worker
//! started by `pow-client.js`, both on `pow.js`. `/s/{sale}/verify`
//! recomputes a sale's shuffle or lottery from its revealed seed
//! (`verify.js` on `fairness.js`, the port of `src/fairness.rs`, and
//! `verify-entry.js`). `/admin` is the admins' live console (`admin.js` and
//! its `admin-*.js` modules), which talks to `/admin/v1` with the admin key
//! the admin types in; the page itself is public and holds no secret. Every `.js` file of
//! `web/js/` is listed in [`JS_MODULES`] and served under `/static/js/` (a
//! test checks the list is complete; the `*.test.mjs` node unit tests and
//! `package.json` are not served). Answers are compressed when the browser
//! accepts it and carry a Content-Security-Policy that allows only this
//! origin (`default-src 'self'` covers the same-origin worker): the pages
//! load nothing from elsewhere.

use actix_web::dev::HttpServiceFactory;
use actix_web::middleware::Compress;
use actix_web::{web, HttpResponse};

const INDEX_HTML: &str = include_str!("../web/index.html");
const SALE_HTML: &str = include_str!("../web/sale.html");
const VERIFY_HTML: &str = include_str!("../web/verify.html");
const ADMIN_HTML: &str = include_str!("../web/admin.html");
const STYLE_CSS: &str = include_str!("../web/style.css");

/// The modules of `web/js/`, served as `/static/js/<name>`.
pub const JS_MODULES: &[(&str, &str)] = &[
    ("main.js", include_str!("../web/js/main.js")),
    ("api.js", include_str!("../web/js/api.js")),
    ("format.js", include_str!("../web/js/format.js")),
    ("dom.js", include_str!("../web/js/dom.js")),
    ("index.js", include_str!("../web/js/index.js")),
    ("sale.js", include_str!("../web/js/sale.js")),
    ("pow.js", include_str!("../web/js/pow.js")),
    ("pow-client.js", include_str!("../web/js/pow-client.js")),
    ("pow-worker.js", include_str!("../web/js/pow-worker.js")),
    ("fairness.js", include_str!("../web/js/fairness.js")),
    ("verify.js", include_str!("../web/js/verify.js")),
    ("verify-entry.js", include_str!("../web/js/verify-entry.js")),
    ("admin.js", include_str!("../web/js/admin.js")),
    ("admin-api.js", include_str!("../web/js/admin-api.js")),
    ("admin-format.js", include_str!("../web/js/admin-format.js")),
    ("admin-chart.js", include_str!("../web/js/admin-chart.js")),
    ("admin-confirm.js", include_str!("../web/js/admin-confirm.js")),
    ("admin-sale.js", include_str!("../web/js/admin-sale.js")),
    ("admin-create.js", include_str!("../web/js/admin-create.js")),
    ("admin-dead.js", include_str!("../web/js/admin-dead.js")),
    ("calendar.js", include_str!("../web/js/calendar.js")),
    ("sale-sessions.js", include_str!("../web/js/sale-sessions.js")),
    ("admin-sessions.js", include_str!("../web/js/admin-sessions.js")),
];

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
    cfg.service(resource("/", HTML, INDEX_HTML));
    cfg.service(resource("/s/{sale}", HTML, SALE_HTML));
    cfg.service(resource("/s/{sale}/verify", HTML, VERIFY_HTML));
    cfg.service(resource("/admin", HTML, ADMIN_HTML));
    cfg.service(resource("/static/style.css", CSS, STYLE_CSS));
    for (name, body) in JS_MODULES {
        cfg.service(resource(&format!("/static/js/{name}"), JS, body));
    }
}

#[cfg(test)]
mod tests {
    use super::JS_MODULES;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Every module in `web/js/` (but the node unit tests) is served, and
    /// nothing else is listed.
    #[test]
    fn every_module_of_web_js_is_served() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/js");
        let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
            .expect("web/js is readable")
            .map(|entry| entry.expect("a directory entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".js"))
            .collect();
        let served: BTreeSet<String> = JS_MODULES.iter().map(|(name, _)| (*name).to_owned()).collect();
        assert_eq!(on_disk, served, "web/js/*.js and JS_MODULES differ");
        assert_eq!(served.len(), JS_MODULES.len(), "a module is listed twice");
    }

    /// Every relative import of a served module names a served module.
    #[test]
    fn imports_resolve_to_served_modules() {
        let served: BTreeSet<&str> = JS_MODULES.iter().map(|(name, _)| *name).collect();
        for (name, body) in JS_MODULES {
            for part in body.split("'./").skip(1) {
                let target = part.split('\'').next().unwrap_or_default();
                assert!(served.contains(target), "{name} imports ./{target}, which is not served");
            }
        }
    }
}
