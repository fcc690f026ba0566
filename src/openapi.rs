//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// floodgate's API: the title and security schemes here, the paths from
/// each domain's `Api` (see [`document`]).
#[derive(OpenApi)]
#[openapi(
    info(title = "floodgate", description = "Flash-sale ticketing with a virtual waiting room"),
    modifiers(&Security)
)]
pub struct ApiDoc;

/// The whole OpenAPI document: [`ApiDoc`] with every domain's routes
/// (each declared once with `domain_routes!`).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    for part in [
        crate::waiting_room::routes::Api::openapi(),
        crate::inventory::routes::Api::openapi(),
        crate::gate::routes::Api::openapi(),
        crate::ops::Api::openapi(),
        crate::sales::routes::Api::openapi(),
        crate::lottery::routes::Api::openapi(),
        crate::events::routes::Api::openapi(),
        crate::payments::routes::Api::openapi(),
        crate::orders::routes::Api::openapi(),
    ] {
        doc.merge(part);
    }
    doc
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let bearer = || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["admin_key", "queue_token", "admission_token", "hold_token"] {
            components.add_security_scheme(name, bearer());
        }
    }
}

/// The methods the API answers at `path` (as an `Allow` header value), from
/// the paths of the OpenAPI document, or `None` for a path it does not have.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    static ROUTES: std::sync::OnceLock<Vec<(Vec<String>, String)>> = std::sync::OnceLock::new();
    let routes = ROUTES.get_or_init(|| {
        document()
            .paths
            .paths
            .iter()
            .map(|(template, item)| {
                let methods: Vec<&str> = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(m, present)| present.then_some(m))
                .collect();
                (template.split('/').map(str::to_owned).collect(), methods.join(", "))
            })
            .collect()
    });
    let segments: Vec<&str> = path.split('/').collect();
    routes
        .iter()
        .find(|(template, _)| {
            template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
        })
        .map(|(_, methods)| methods.as_str())
}

/// Where the docs UI lives; `/api/docs` without the slash redirects here.
pub const DOCS_PATH: &str = "/api/docs/";

/// The API docs UI: Swagger UI (its files are compiled into the binary by
/// `utoipa-swagger-ui`'s `vendored` feature, so it needs no network), reading
/// the document from `/api/openapi.json`. "Try it out" talks to this server.
pub fn docs_ui(cfg: &mut actix_web::web::ServiceConfig) {
    use actix_web::{http::header, web, HttpResponse};
    use utoipa_swagger_ui::{Config, SwaggerUi};
    cfg.route(
        "/api/docs",
        web::get()
            .to(|| async { HttpResponse::PermanentRedirect().insert_header((header::LOCATION, DOCS_PATH)).finish() }),
    );
    // No validator: Swagger UI would send the document to validator.swagger.io.
    let config = Config::new(["/api/openapi.json"]).validator_url("none").try_it_out_enabled(true);
    cfg.service(SwaggerUi::new(format!("{DOCS_PATH}{{_:.*}}")).config(config));
}
