//! The API server as a process of its own, configured from the environment exactly like
//! `api`, for tests that run several instances or signal one (`tests/src/cluster.rs`). It
//! prints `listening on <address>` on stdout once bound, so tests can use port 0.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = api::Cli::parse().serve;
    api::init_telemetry(config.log_format);
    let app = api::Application::build(config).await?;
    println!("listening on {}", app.local_addr());
    app.run_until_stopped().await
}
