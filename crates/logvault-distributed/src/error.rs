//! The crate's one error enum.

use datafusion::error::DataFusionError;

/// Errors of distributed queries. Messages are lowercase and name the workspace, table,
/// storage account or function at fault; they never hold key material.
#[derive(Debug, thiserror::Error)]
pub enum DistributedError {
    /// An executor could not get a storage account's key from the vault: the key is revoked,
    /// disabled or deleted, or the cluster's identity lost its permission. Nothing of the
    /// account was read on that executor.
    #[error(
        "executor {executor} cannot read storage account {account}: its key is unavailable ({reason})"
    )]
    KeyUnavailable {
        /// The executor (its id in the cluster, or `in-process`).
        executor: String,
        /// The storage account (`service`, `cluster-<name>`).
        account: String,
        /// The vault's answer, naming the vault, key and principal.
        reason: String,
    },
    /// A scan names a file that is not a logvault segment, or a storage account that does not
    /// open on the executor.
    #[error("executor {executor} cannot open segment {path}: {reason}")]
    Segment {
        /// The executor.
        executor: String,
        /// The file's path in the account router's namespace.
        path: String,
        /// Why.
        reason: String,
    },
    /// A plan holds a function that the cluster cannot rebuild from its name (most of KQL's
    /// function library is planned with per-call state that is not serialisable yet).
    #[error(
        "function {function} cannot run on a Ballista cluster yet: run the query on one node (distributed: false)"
    )]
    UnsupportedFunction {
        /// The function's name.
        function: String,
    },
    /// A serialised logvault scan or table could not be read: another logvault version, or
    /// damaged bytes.
    #[error("distributed plan of {what} cannot be read: {reason}")]
    Codec {
        /// What was being decoded (a table, a scan).
        what: String,
        /// Why.
        reason: String,
    },
    /// The cluster (scheduler or executor) could not be started or reached.
    #[error("ballista cluster at {address}: {reason}")]
    Cluster {
        /// The scheduler's address, or `in-process`.
        address: String,
        /// Ballista's message.
        reason: String,
    },
    /// An executor's encrypted shuffle could not write, serve or read a stage's output, or was
    /// asked for a shuffle it does not support.
    #[error("executor {executor}: encrypted shuffle: {reason}")]
    Shuffle {
        /// The executor.
        executor: String,
        /// What failed, naming the job, stage, partition and file where there is one.
        reason: String,
    },
    /// Planning or running the query failed (DataFusion's or Ballista's message).
    #[error("distributed query failed: {message}")]
    Query {
        /// What failed.
        message: String,
    },
}

impl DistributedError {
    /// As a DataFusion error, for the traits that return one.
    pub(crate) fn into_df(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }
}

impl From<DataFusionError> for DistributedError {
    fn from(e: DataFusionError) -> Self {
        Self::Query {
            message: e.strip_backtrace(),
        }
    }
}
