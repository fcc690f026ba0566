//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr};
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
        crate::sessions::routes::Api::openapi(),
        crate::lottery::routes::Api::openapi(),
        crate::events::routes::Api::openapi(),
        crate::payments::routes::Api::openapi(),
        crate::orders::routes::Api::openapi(),
    ] {
        doc.merge(part);
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        for operation in
            [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
        {
            standard_responses(path, operation);
        }
    }
    doc
}

/// The answers every operation of its kind can give, added where the
/// handler's annotation does not list them, so the document names every
/// status a client can meet: the extractors' 400/413/415/422 for a body or
/// a query, 401/403 for a token, 404 for an id in the path, the load
/// shedder's 429 and a dependency's 503 (both with `Retry-After`). Every
/// answer carries `X-Request-Id`.
fn standard_responses(path: &str, operation: &mut Operation) {
    let operations_endpoint = matches!(path, "/healthz" | "/readyz" | "/metrics" | "/api/openapi.json");
    let params = operation.parameters.as_deref().unwrap_or_default();
    let has = |place: ParameterIn| params.iter().any(|p| p.parameter_in == place);
    let security = serde_json::to_value(&operation.security).unwrap_or_default();
    let secured = security.as_array().is_some_and(|s| !s.is_empty());
    let token = ["queue_token", "admission_token", "hold_token"].iter().any(|t| security.to_string().contains(t));
    let mut wanted: Vec<(&str, &str)> = Vec::new();
    if operation.request_body.is_some() {
        wanted.extend([
            ("400", "Malformed JSON or not a JSON object"),
            ("413", "Body too large"),
            ("415", "Not application/json"),
            ("422", "Invalid values (the message names the field)"),
        ]);
    }
    if has(ParameterIn::Query) {
        wanted.extend([("400", "Malformed query"), ("422", "Invalid query values")]);
    }
    if has(ParameterIn::Path) {
        wanted.push(("404", "No such resource"));
    }
    if secured {
        wanted.push(("401", "Missing or invalid credentials"));
    }
    if token {
        wanted.push(("403", "A valid token of another sale or purpose, or a refused source"));
    }
    if !matches!(path, "/healthz" | "/readyz" | "/metrics") {
        wanted.push(("429", "Over a rate limit or this instance's capacity: retry after Retry-After"));
    }
    if !operations_endpoint || path == "/readyz" {
        wanted.push(("503", "Postgres or Redis unreachable: retry after Retry-After"));
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in wanted {
        responses.entry(status.to_owned()).or_insert_with(|| error_response(description).into());
    }
    answer_headers(responses);
}

/// `X-Request-Id` on every answer, `Retry-After` on 429 and 503.
fn answer_headers(responses: &mut std::collections::BTreeMap<String, RefOr<Response>>) {
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response {
            let request_id = Header::builder()
                .schema(Object::with_type(Type::String))
                .description(Some(
                    "The request's id: the client's X-Request-Id (or traceparent trace id), else one made up",
                ))
                .build();
            response.headers.insert("X-Request-Id".to_owned(), request_id);
            if status == "429" || status == "503" {
                let retry = Header::builder()
                    .schema(Object::with_type(Type::Integer))
                    .description(Some("Seconds to wait before trying again"))
                    .build();
                response.headers.insert("Retry-After".to_owned(), retry);
            }
        }
    }
}

/// An answer with the error body.
fn error_response(description: &str) -> Response {
    let body = Content::new(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))));
    ResponseBuilder::new().description(description).content("application/json", body).build()
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let bearer = || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["admin_key", "queue_token", "admission_token", "hold_token", "login_token"] {
            components.add_security_scheme(name, bearer());
        }
        let signature = ApiKey::Header(ApiKeyValue::with_description(
            "Floodgate-Signature",
            "t=<unix seconds>,v1=<hex HMAC-SHA256(webhook secret, \"<t>.<raw body>\")>, at most five minutes old",
        ));
        components.add_security_scheme("webhook_signature", SecurityScheme::ApiKey(signature));
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
