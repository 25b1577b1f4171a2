//! The Scoreline API server: GraphQL queries, mutations and subscriptions over HTTP and
//! WebSocket, on axum and async-graphql.
//!
//! # Layout
//! - `config`: flags and environment variables.
//! - `startup`: wiring and `Application` (`build`, `port`, `run_until_stopped`), `router`.
//! - `http`: GraphQL over HTTP, GraphiQL, health, readiness, `/internal/publish`.
//! - `ws`: GraphQL over WebSocket (`graphql-transport-ws` and legacy `graphql-ws`), liveness.
//! - `fanout`: per-connection outboxes with the slow-consumer policy, and shared executions of
//!   identical subscriptions.
//! - `metrics`: counters and gauges for `GET /metrics`.
//! - `graphql`: schema, resolvers, error codes.
//! - `auth`: JWT verification (HS256 secret, RS256 JWKS), roles, token minting.
//! - `store`: store backends (the port is in `scoreline-core`).
//! - `broker`: the broker port and its backends.
//! - `pipeline`: the intake that dedupes and fans out change batches; the embedded pipeline.
//! - [`demo`], [`simulate`]: demo data and the live-match simulator.
//! - `telemetry`: logging.

pub mod auth;
pub mod broker;
pub mod config;
pub mod demo;
pub mod fanout;
pub mod graphql;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod pipeline;
pub mod simulate;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod ws;

pub use config::Config;
pub use startup::{router, AppState, Application};
