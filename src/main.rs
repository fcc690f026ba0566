//! The floodgate server: read settings, build, serve until SIGTERM/Ctrl-C.

use std::process::ExitCode;

use floodgate::configuration::{get_configuration, json_logs_before_settings};
use floodgate::startup::Application;

// glibc's malloc and free were a tenth of a join's CPU (loadtest/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> ExitCode {
    let settings = match get_configuration() {
        Ok(settings) => settings,
        Err(e) => {
            // Even a refused configuration is reported in the log format
            // the operator's collector expects.
            floodgate::telemetry::init(json_logs_before_settings());
            tracing::error!(error = %format!("{e:#}"), "configuration refused");
            return ExitCode::FAILURE;
        }
    };
    floodgate::telemetry::init(settings.server.json_logs);
    let _ = floodgate::metrics::handle();
    if let Err(e) = serve(settings).await {
        tracing::error!(error = %format!("{e:#}"), "floodgate stopped with an error");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn serve(settings: floodgate::configuration::Settings) -> anyhow::Result<()> {
    let application = Application::build(settings).await?;
    tracing::info!(port = application.port(), "floodgate listening");
    application.run_until_stopped().await?;
    tracing::info!("floodgate stopped");
    Ok(())
}
