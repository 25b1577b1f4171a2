//! Store backends. The port itself is `scoreline_core::store::Store`; this module holds the
//! implementations the API can run on.

pub mod memory;

pub use memory::MemoryStore;
