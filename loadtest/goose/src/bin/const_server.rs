//! The ceiling for floodgate's HTTP paths: the same actix-web build answering
//! every request (any method, any path) with one constant JSON document of
//! about the size of a queue status answer. No middleware, no I/O.
//!
//! Usage: const_server [--port 18090] [--workers 2]
//! Binds 127.0.0.1 only.

use actix_web::{web, App, HttpResponse, HttpServer};
use floodgate_loadtest::args::Args;

// The server's allocator too, so the ceiling is the same component.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BODY: &str = r#"{"sale_id":"bench-constant","state":"waiting","position":1234,"ahead":1233,"estimated_wait_seconds":12,"poll_after_ms":1200,"prequeue":false,"paused":false}"#;

async fn constant() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").insert_header(("cache-control", "no-store")).body(BODY)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse(std::env::args().skip(1));
    let port: u16 = args.num("port", 18090)?;
    let workers: usize = args.num("workers", 2)?;
    actix_web::rt::System::new().block_on(async move {
        eprintln!("const_server: 127.0.0.1:{port}, {workers} workers");
        HttpServer::new(|| App::new().default_service(web::to(constant)))
            .workers(workers)
            .bind(("127.0.0.1", port))?
            .run()
            .await
    })?;
    Ok(())
}
