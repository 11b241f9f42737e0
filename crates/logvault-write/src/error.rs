//! Errors of the write path.

/// Why a write failed. Rows dropped because of a revoked key are not errors: they are reported
/// in [`crate::PayloadReport`].
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Another process holds the workspace's write-ahead log, or it cannot be locked.
    #[error("workspace {workspace}: {reason}")]
    Busy {
        /// The workspace.
        workspace: String,
        /// Why.
        reason: String,
    },
    /// Parsing, the write-ahead log or the batcher failed.
    #[error(transparent)]
    Ingest(#[from] logvault_ingest::IngestError),
    /// The store or the catalog failed.
    #[error(transparent)]
    Store(#[from] logvault_store::StoreError),
    /// The key of a storage account could not be had (from [`crate::KeySource`]).
    #[error(
        "workspace {workspace}: the key of storage account {account} is not available: {reason}"
    )]
    Key {
        /// The workspace being written.
        workspace: String,
        /// The account.
        account: String,
        /// Why.
        reason: String,
    },
    /// The caller's gate failed to record dropped rows.
    #[error("workspace {workspace}: {reason}")]
    Gate {
        /// The workspace.
        workspace: String,
        /// Why.
        reason: String,
    },
    /// Storing acknowledged rows into segments stopped after an error; they stay in the
    /// write-ahead log, and the next open of the writer stores them.
    #[error(
        "workspace {workspace}: storing acknowledged rows into segments stopped ({reason}); the write-ahead log keeps them for the next open"
    )]
    Stopped {
        /// The workspace.
        workspace: String,
        /// Why.
        reason: String,
    },
    /// A background thread of the write path stopped unexpectedly.
    #[error("workspace {workspace}: {reason}")]
    Internal {
        /// The workspace.
        workspace: String,
        /// What stopped.
        reason: String,
    },
}
