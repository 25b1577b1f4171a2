//! `loadgen`: load and measurement for Scoreline.
//!
//! - `loadgen ws`: WebSocket subscription fan-out (N subscribers, K updates at rate R):
//!   delivery latency, fan-out completion, loss, server RSS per connection, and the CPU time of
//!   the server and of the load generator itself (they share the machine).
//! - `loadgen http`: query throughput over keep-alive HTTP/1.1 (the score screen's `match(id)`
//!   by default, POST or GET), with an optional write mix whose answered versions no later read
//!   may predate (stale reads), and the same load against a bare HTTP server as its floor.
//! - `loadgen slow`: clients that subscribe and stop reading: the server's peak RSS, and what
//!   of it comes back when they leave.
//! - `loadgen chaos`: the production shape (DynamoDB Local, the stream-handler's poller, three
//!   API instances, Redis) under writes and subscribers while Redis, an instance, the poller
//!   and DynamoDB Local fail in turn: every event exactly once and in order, or it fails.
//! - `loadgen floor`: the cost of writing a 120-byte frame to a loopback socket with no server
//!   at all, measured on the same machine at the same time: the floor for the server's cost
//!   per delivered message.
//!
//! By default each run spawns a fresh release server (`target/release/api`) on a free loopback
//! port with a random HS256 secret the tool also signs its admin token with.
//!
//! # Layout
//! - `target`: spawning or reaching the server, the admin token, the GraphQL seeding calls.
//! - `ws`, `http`, `slow`, `chaos`, `floor`: the benches (and their children: `floor`'s reader,
//!   `floor-sink`, and `http`'s floor server, `http-floor-serve`).
//! - `rawws`: the minimal WebSocket client `ws` subscribers use by default; `rawsse`: the
//!   graphql-sse subscriber of `ws --protocol sse`.
//! - `stats`: percentiles, medians, version-sequence accounting.
//! - `procfs`: RSS and CPU time from `/proc` and `getrusage`.
//! - `report`: metrics as a table with per-run columns and medians, and as JSON lines.

pub mod chaos;
pub mod floor;
pub mod http;
pub mod procfs;
pub mod rawsse;
pub mod rawws;
pub mod report;
pub mod slow;
pub mod stats;
pub mod target;
pub mod ws;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "Load and measurement for Scoreline (build first: cargo build --release -p api -p loadgen)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// WebSocket fan-out: N subscribers, K updates at R per second.
    Ws(ws::WsArgs),
    /// A query over HTTP: C keep-alive connections for D seconds, optional writes, the floor.
    Http(http::HttpArgs),
    /// Slow clients: S never-reading sockets with large subscriptions; peak and after RSS.
    Slow(slow::SlowArgs),
    /// Faults on the production shape (DynamoDB Local, poller, API instances, Redis): every
    /// event exactly once and in order, every state rising to the final one.
    Chaos(chaos::ChaosArgs),
    /// The floor: one 120-byte frame to each of N loopback sockets, K rounds, no server.
    Floor(floor::FloorArgs),
    /// The reading side of `floor`, run by it as a child process.
    #[command(hide = true)]
    FloorSink(floor::SinkArgs),
    /// The bare HTTP server of `http`'s floor, run by it as a child process.
    #[command(hide = true)]
    HttpFloorServe(http::FloorServeArgs),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Ws(args) => ws::run(args).await,
        Command::Http(args) => http::run(args).await,
        Command::Slow(args) => slow::run(args).await,
        Command::Chaos(args) => chaos::run(args).await,
        Command::Floor(args) => floor::run(args).await,
        Command::FloorSink(args) => floor::sink(args).await,
        Command::HttpFloorServe(args) => http::floor_serve(args).await,
    }
}
