//! Scoreline's core: the domain of live sports scores, free of any transport or runtime.
//!
//! # Layout
//! - [`ids`], [`text`]: parsed identifiers and bounded strings.
//! - `sport`: sports, event types, default points, period labels.
//! - `model`: competitions, teams, matches, timeline events.
//! - `command`: match-day commands and the rules that apply them.
//! - `store`: the store port, filters, pages, cursors.
//! - `service`: use cases over the store: creation rules, optimistic concurrency, idempotency.
//! - `item`: the DynamoDB item layout (shared by every store).
//! - `stream`: DynamoDB stream records: decoding into changes, and building them.
//! - `change`: the `Change` type, the publish wire format and the Redis channel names.
//! - `publish`: the publisher port change batches are delivered through, and request signing.
//! - `secret`: a string that never prints itself.

pub mod change;
pub mod command;
pub mod error;
pub mod ids;
pub mod item;
pub mod model;
pub mod publish;
pub mod secret;
pub mod service;
pub mod sport;
pub mod store;
pub mod stream;
pub mod text;

pub use change::{Change, ChangeBatch};
pub use error::{BoxError, ValidationError};
pub use ids::{ClientMutationId, CompetitionId, MatchId, TeamId};
pub use model::{Competition, Match, MatchEvent, MatchStatus, Side, Team};
pub use secret::Secret;
pub use sport::{EventType, Sport};
