mod error;
pub mod journal;
pub mod store;
mod types;
pub use error::LogError;
pub use journal::JournalRetention;
pub use types::{typ, Batch, BatchResponse, NodeId, TypeConfig};
