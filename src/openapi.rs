//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// floodgate's API.
#[derive(OpenApi)]
#[openapi(
    info(title = "floodgate", description = "Flash-sale ticketing with a virtual waiting room"),
    paths(
        crate::ops::healthz,
        crate::ops::readyz,
        crate::ops::metrics_endpoint,
        crate::sales::routes::list_sales,
        crate::sales::routes::get_sale,
        crate::sales::routes::admin_create_sale,
        crate::sales::routes::admin_get_sale,
        crate::sales::routes::admin_update_sale,
        crate::sales::routes::admin_next_stage,
        crate::sales::routes::admin_audit,
        crate::waiting_room::routes::join,
        crate::waiting_room::routes::status,
        crate::waiting_room::routes::admit,
        crate::waiting_room::routes::remove,
        crate::gate::routes::challenge,
        crate::gate::routes::get_global,
        crate::gate::routes::put_global,
        crate::gate::routes::get_sale,
        crate::gate::routes::put_sale,
        crate::lottery::draw,
        crate::events::routes::dead,
        crate::events::routes::replay,
        crate::inventory::routes::create_hold,
        crate::inventory::routes::get_hold,
        crate::inventory::routes::release_hold,
        crate::payments::routes::webhook,
        crate::payments::routes::dev_checkout,
        crate::orders::routes::get_order,
        crate::orders::routes::cancel_order,
    ),
    modifiers(&Security)
)]
pub struct ApiDoc;

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
        ApiDoc::openapi()
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
