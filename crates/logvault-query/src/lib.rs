//! The query engine of logvault: SQL over a workspace's tables with DataFusion.
//!
//! This crate owns the query session ([`session`]: identifiers keep their case, the helper
//! functions of [`udf`] are registered), and the result writers ([`output`]: table, JSON, CSV,
//! streamed, with a row limit and a timeout).
//!
//! It must never: wait on the vault while reading files (account keys are resolved before a
//! query is planned), write to storage, or print.

mod date_trunc;
mod error;
pub mod grouping;
mod guard;
mod hot_scan;
pub mod output;
pub mod provider;
pub mod prune;
pub mod session;
mod size;
pub mod udf;
pub mod view_eq;
/// The schema of a table across its segments (the store's merge and widening rule).
pub use logvault_store::schema;
pub mod workspace;

pub use error::QueryError;
pub use output::{OutputLimits, OutputSummary, ResultFormat, write_results};
pub use session::{SessionOptions, new_session};
pub use size::{ScanSize, scan_size};
pub use workspace::{KeyGate, KeyringGate, WorkspaceSession};
