//! The GraphQL API: schema, resolvers, and the mapping of errors to `extensions.code`.

pub mod documents;
pub mod error;
pub mod guard;
pub mod limits;
pub mod loader;
pub mod mutation;
pub mod persisted;
pub mod query;
pub mod response_cache;
pub mod schema;
pub mod subscription;
pub mod types;
pub mod variables;

pub use schema::{build_schema, sdl, SchemaLimits, ScorelineSchema};
