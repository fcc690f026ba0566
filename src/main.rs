//! The floodgate server: read settings, build, serve until SIGTERM/Ctrl-C.

use floodgate::configuration::get_configuration;
use floodgate::startup::Application;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = get_configuration()?;
    floodgate::telemetry::init(settings.server.json_logs);
    let _ = floodgate::metrics::handle();
    let application = Application::build(settings).await?;
    tracing::info!(port = application.port(), "floodgate listening");
    application.run_until_stopped().await?;
    tracing::info!("floodgate stopped");
    Ok(())
}
