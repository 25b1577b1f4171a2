//! GraphQL types: enums mirrored from the core, the `DateTime` scalar, output objects over core
//! records (catalogue, matches, the per-sport details union), and inputs.

pub mod catalog;
pub mod details;
pub mod enums;
pub mod inputs;
pub mod matches;
pub mod scalars;

pub use catalog::{CompetitionNode, TeamNode};
pub use enums::SportGql;
pub use matches::{MatchConnection, MatchEventNode, MatchNode};
