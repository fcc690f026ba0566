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
