//! Store backends. The port itself is `scoreline_core::store::Store`; this module holds the
//! implementations the API can run on.

pub mod dynamodb;
pub mod memory;

pub use dynamodb::{DynamoConfig, DynamoStore};
pub use memory::{MemoryOptions, MemoryStore};
