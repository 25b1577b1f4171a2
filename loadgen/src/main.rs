//! `loadgen`: parses the command line and runs the chosen bench (see the library docs).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    loadgen::run(loadgen::Cli::parse()).await
}
