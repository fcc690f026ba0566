//! Building and running the application: pools, migrations, routes,
//! middleware, background jobs and graceful shutdown.

use std::net::{TcpListener, ToSocketAddrs};

use actix_web::dev::Server;
use actix_web::error::{PathError, QueryPayloadError};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpRequest, HttpServer};
use tokio::net::TcpSocket;
use tokio::sync::watch;

use crate::adaptive::HoldHealth;
use crate::configuration::{ServerSettings, Settings};
use crate::error::{error_response, AppError};
use crate::gate::access::AccessRules;
use crate::gate::challenge::Challenger;
use crate::inventory::{ClaimHints, HoldBatches};
use crate::rate_limit::RateLimits;
use crate::sales::{AvailabilityCache, SaleCache};
use crate::state::AppState;
use crate::store::{self, Redis};
use crate::tokens::{LoginVerifier, TokenSigner};
use crate::waiting_room::WaitingRoom;
use crate::{events, gate, inventory, jobs, lottery, ops, orders, payments, sales, sessions, waiting_room, web_pages};

/// A built application, bound to its port, not yet serving.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    stop_jobs: watch::Sender<bool>,
    jobs: tokio::task::JoinSet<()>,
}

impl Application {
    /// Connects the pools, applies migrations, binds the listener (port 0
    /// picks a free port) and starts the background jobs.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // Install the recorder before anything records.
        let _ = crate::metrics::handle();
        let options = store::pg_connect_options(&settings.database)?;
        let db = store::pg_pool(&settings.database, options);
        sqlx::migrate!("./migrations").run(&db).await?;
        let redis = Redis::new(&settings.redis)?;
        let state = web::Data::new(AppState {
            tokens: TokenSigner::new(&settings.tokens.keys)?,
            challenges: Challenger::new(&settings.tokens.keys)?,
            access: AccessRules::new(&settings.access)?,
            login: LoginVerifier::from_settings(&settings.identity)?,
            limits: RateLimits::new(&settings.rate_limits),
            waiting_room: WaitingRoom::new(redis),
            sales: SaleCache::new(),
            availability: AvailabilityCache::new(),
            claim_hints: ClaimHints::default(),
            hold_batches: HoldBatches::new(db.clone(), settings.database.max_connections, workers(&settings.server)),
            hold_health: HoldHealth::default(),
            db,
            settings,
        });
        if state.settings.demo.seed {
            crate::demo::seed(&state).await?;
        }

        let listener = bind(&state.settings.server)?;
        let port = listener.local_addr()?.port();
        let server = run(listener, state.clone())?;
        let (stop_jobs, stopped) = watch::channel(false);
        let jobs = jobs::spawn_all(state.clone().into_inner(), stopped);
        Ok(Application { port, server, state, stop_jobs, jobs })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Shared state, for tests and tools that drive the jobs directly.
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until SIGTERM or Ctrl-C, letting in-flight requests finish,
    /// then stops the background jobs and waits for them (bounded).
    pub async fn run_until_stopped(mut self) -> std::io::Result<()> {
        let result = self.server.await;
        let _ = self.stop_jobs.send(true);
        // Background loops end at their next pause; a step stuck on a dead
        // dependency is not waited for longer than the shutdown grace.
        let grace = std::time::Duration::from_secs(self.state.settings.server.shutdown_timeout_seconds.max(1));
        let drained = tokio::time::timeout(grace, async { while self.jobs.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!("background jobs still running after the shutdown grace; stopping them");
            self.jobs.abort_all();
        }
        result
    }
}

/// Binds the listening socket with the configured backlog (the standard
/// library's bind always listens with 128).
fn bind(settings: &ServerSettings) -> anyhow::Result<TcpListener> {
    let address = (settings.host.as_str(), settings.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| anyhow::anyhow!("server.host {} resolves to no address", settings.host))?;
    let listen = || -> std::io::Result<TcpListener> {
        let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        socket.bind(address)?;
        socket.listen(settings.backlog.max(1))?.into_std()
    };
    listen().map_err(|e| anyhow::anyhow!("could not listen on {address}: {e}"))
}

fn run(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    let settings = state.settings.server.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(settings.max_body_bytes))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .wrap(from_fn(crate::rate_limit::admit_request))
            .wrap(from_fn(crate::telemetry::observe))
            .configure(routes)
            .default_service(web::to(not_found))
    })
    .backlog(settings.backlog)
    .listen(listener)?
    .shutdown_timeout(settings.shutdown_timeout_seconds);
    if settings.workers > 0 {
        server = server.workers(settings.workers);
    }
    Ok(server.run())
}

/// HTTP worker threads: the configured number, else one per CPU (actix's
/// default).
fn workers(settings: &ServerSettings) -> usize {
    match settings.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Every route of the service.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // The router tries routes in this order (a regex each), and so does the
    // route-template lookup of the request metrics: the hot paths first.
    cfg.configure(waiting_room::routes::configure)
        .configure(inventory::routes::configure)
        .configure(gate::routes::configure)
        .configure(ops::configure)
        .configure(sales::routes::configure)
        .configure(sessions::routes::configure)
        .configure(lottery::routes::configure)
        .configure(events::routes::configure)
        .configure(payments::routes::configure)
        .configure(orders::routes::configure)
        .configure(web_pages::routes)
        .configure(crate::openapi::docs_ui);
}

/// No route took the request: 405 with `Allow` when the path is one of the
/// API's with another method, else 404.
async fn not_found(req: HttpRequest) -> actix_web::HttpResponse {
    match crate::openapi::allowed_methods(req.path()) {
        Some(allow) => {
            let mut response = error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                &format!("{} is not allowed here; allowed: {allow}", req.method()),
            );
            if let Ok(value) = header::HeaderValue::from_str(allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            response
        }
        None => error_response(StatusCode::NOT_FOUND, "not_found", "no such resource"),
    }
}

fn path_error(_error: PathError, _req: &HttpRequest) -> actix_web::Error {
    AppError::NotFound("resource").into()
}

fn query_error(error: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    AppError::BadRequest(format!("bad query string: {error}")).into()
}
