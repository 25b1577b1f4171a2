//! The Scoreline API server: GraphQL queries, mutations and subscriptions over HTTP and
//! WebSocket, on axum and async-graphql.
//!
//! # Layout
//! - `config`: flags and environment variables.
//! - `server`: the accept loop (connection bound, header timeout, graceful stop).
//! - `admission`: client addresses, stream bounds, rate limits.
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
//! - `recent`: a bounded memory of matches (what was last seen of each) for dedupe.
//! - `demo`, `simulate`: demo data and the live-match simulator.
//! - `telemetry`: logging.

mod admission;
mod auth;
mod broker;
mod config;
mod demo;
mod fanout;
mod graphql;
mod http;
mod ids;
mod metrics;
mod pipeline;
mod recent;
mod server;
mod simulate;
mod startup;
mod store;
mod telemetry;
#[cfg(test)]
mod test_support;
mod ws;

// The surface `main.rs` and the tests use; everything else stays inside the crate.
pub use auth::{parse_ttl, AuthConfig, Authenticator, Role};
pub use broker::{
    Broker, BrokerError, BrokerSubscription, Received, RedisBroker, RedisBrokerConfig, Topic,
};
pub use config::{BrokerKind, Cli, Command, Config, LogFormat, StoreKind, StreamStart, TokenArgs};
pub use graphql::persisted::Required as PersistedDocumentsRequired;
pub use graphql::sdl;
pub use startup::{router, AppState, Application, RouterOptions};
pub use store::{DynamoConfig, DynamoStore, MemoryOptions, MemoryStore};
pub use telemetry::init as init_telemetry;

/// The parsers a WebSocket client's messages go through, for the fuzz targets in `fuzz/`; not
/// part of the server's interface.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::auth::{token_from_init_message, token_from_init_payload, AuthError};

    /// A client message as the connection loop reads it: `(type, id, payload)`, or `None` for
    /// a message it closes with 4400.
    pub fn client_message(
        text: &str,
    ) -> Option<(String, Option<String>, Option<serde_json::Value>)> {
        let message: crate::ws::ClientMessage = serde_json::from_str(text).ok()?;
        Some((message.kind, message.id, message.payload))
    }
}
