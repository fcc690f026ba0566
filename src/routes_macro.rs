//! `domain_routes!`: a domain's HTTP routes declared once.
//!
//! A `routes.rs` ends with `crate::domain_routes!(handler_a, handler_b, ...)`,
//! which writes its `configure` (registering the handlers in that order: the
//! router tries them in order, so hot routes go first) and its `Api` (the
//! handlers' `#[utoipa::path]` documents). `startup` calls every domain's
//! `configure` and `openapi` merges every domain's `Api`, so a route cannot
//! be served without being documented, or documented without being served.

/// Declares `configure` and `Api` for the handlers listed (see the module doc).
#[macro_export]
macro_rules! domain_routes {
    ($($handler:ident),+ $(,)?) => {
        /// Registers this module's handlers, in the listed order.
        pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
            $( cfg.service($handler); )+
        }

        /// This module's part of the OpenAPI document.
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($handler),+))]
        pub struct Api;
    };
}
