//! The one error type of the ingestion layer.

use std::path::PathBuf;

/// Errors of ingestion: parsing a payload, growing a table's schema, batching and the
/// write-ahead log. Messages are lowercase and name the workspace, table, line, file or offset at
/// fault; they never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The table name breaks the naming rules.
    #[error("table {table:?}: {reason}")]
    InvalidTable {
        /// The name given.
        table: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// An option is out of range.
    #[error("invalid ingestion option: {reason}")]
    InvalidOption {
        /// What is wrong.
        reason: String,
    },
    /// A record was malformed and the payload was refused as a whole
    /// ([`crate::ErrorPolicy::Refuse`]), or the payload cannot be read at all (a CSV header that is
    /// not valid, a JSON array whose framing is broken).
    #[error("table {table}: line {line}: {reason}; payload refused, nothing was written")]
    Refused {
        /// The table the payload was for.
        table: String,
        /// The 1-based line where the faulty record starts.
        line: u64,
        /// Why it was rejected.
        reason: String,
    },
    /// An Arrow batch given directly cannot be rows of the table.
    #[error("table {table}: {reason}; the batch was refused, nothing was written")]
    InvalidBatch {
        /// The table.
        table: String,
        /// What is wrong, naming the column.
        reason: String,
    },
    /// Reading the payload failed.
    #[error("table {table}: reading the payload failed at line {line}: {source}")]
    Read {
        /// The table the payload was for.
        table: String,
        /// The line being read.
        line: u64,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Arrow refused to build or convert a batch (a bug, or a schema arrow cannot represent).
    #[error("table {table}: building a batch failed: {reason}")]
    Arrow {
        /// The table.
        table: String,
        /// Arrow's reason.
        reason: String,
    },
    /// The segment sink failed to take a finished batch.
    #[error("table {table}: the segment sink failed: {reason}")]
    Sink {
        /// The table.
        table: String,
        /// The sink's reason.
        reason: String,
    },
    /// A file of the write-ahead log cannot be read or written.
    #[error("write-ahead log of workspace {workspace}: {path}: {source}")]
    WalIo {
        /// The workspace whose log it is.
        workspace: String,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A log file is damaged somewhere other than a torn final group of frames.
    #[error(
        "write-ahead log of workspace {workspace}: {path} is corrupt at offset {offset}: {reason}"
    )]
    WalCorrupt {
        /// The workspace whose log it is.
        workspace: String,
        /// The file.
        path: PathBuf,
        /// The byte offset of the faulty frame or header.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The key a frame is sealed under cannot be obtained, so the frame cannot be read.
    #[error("write-ahead log of workspace {workspace}: key {key} is unavailable: {reason}")]
    WalKeyUnavailable {
        /// The workspace whose log it is.
        workspace: String,
        /// The key reference recorded in the frame (scheme and account, never key material).
        key: String,
        /// Why the key cannot be obtained.
        reason: String,
    },
    /// Sealing a frame or encoding a record failed.
    #[error("write-ahead log of workspace {workspace}: {reason}")]
    WalEncode {
        /// The workspace whose log it is.
        workspace: String,
        /// What failed.
        reason: String,
    },
    /// The log stopped accepting appends: it was closed, or an earlier write or fsync failed (a
    /// failed fsync is never retried; reopen the log to recover from its files).
    #[error("write-ahead log of workspace {workspace} is closed: {reason}")]
    WalClosed {
        /// The workspace whose log it is.
        workspace: String,
        /// Why.
        reason: String,
    },
}

impl IngestError {
    pub(crate) fn arrow(table: &str, err: impl std::fmt::Display) -> Self {
        Self::Arrow {
            table: table.to_owned(),
            reason: err.to_string(),
        }
    }
}
