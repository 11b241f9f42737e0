//! The hook through which the query API sends a query to a distributed engine (issue 23,
//! `docs/distributed.md`): `"distributed": true` in a query's body.
//!
//! The server does everything a local query does (the caller's rights, the workspace, the
//! key gate that admits every storage account, planning KQL or SQL with the same errors) and
//! then hands the logical plan to the hook instead of running it on its own threads. The hook
//! lives outside this crate (the `logvault-cluster` binary sets one that sends plans to an
//! Apache DataFusion Ballista scheduler), so that `logvault serve` does not build a distributed
//! engine: a server started without one answers a distributed query with 400
//! `DistributedQueriesUnavailable`.

use std::fmt;

use async_trait::async_trait;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::SendableRecordBatchStream;
use logvault::query::WorkspaceSession;

/// Where a query asked to run distributed runs.
#[async_trait]
pub trait DistributedQueries: fmt::Debug + Send + Sync {
    /// What the queries run on, for messages (`ballista scheduler at host:port`).
    fn describe(&self) -> String;

    /// Starts `plan`, planned on `session` (whose key gate admitted every storage account it
    /// reads), on the distributed engine. Errors are the engine's; a storage account whose key
    /// a worker of the engine could not get is reported as a [`DistributedKeyError`] inside
    /// [`DataFusionError::External`] (from this call or from the stream), so that the answer
    /// is the one a local query gets for it.
    async fn execute(
        &self,
        session: &WorkspaceSession,
        plan: LogicalPlan,
    ) -> Result<SendableRecordBatchStream, DataFusionError>;
}

/// A worker of a distributed engine could not get a storage account's key from the vault
/// (revoked, disabled, deleted, or the cluster's identity lost its permission).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DistributedKeyError {
    /// The storage account (`service`, `cluster-<name>`).
    pub account: String,
    /// The worker's message, naming itself, the account and the vault's answer.
    pub message: String,
}

impl DistributedKeyError {
    /// The key error inside `e`, if there is one (at any depth of DataFusion's wrappers).
    pub fn find(e: &DataFusionError) -> Option<&Self> {
        match e {
            DataFusionError::External(inner) => inner.downcast_ref::<Self>(),
            DataFusionError::Context(_, inner) => Self::find(inner),
            DataFusionError::Shared(inner) => Self::find(inner),
            DataFusionError::Diagnostic(_, inner) => Self::find(inner),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_error_is_found_through_datafusion_s_wrappers() {
        let key = DistributedKeyError {
            account: "cluster-c1".into(),
            message: "executor e1 cannot read storage account cluster-c1".into(),
        };
        let e = DataFusionError::Context(
            "running".into(),
            Box::new(DataFusionError::External(Box::new(key.clone()))),
        );
        assert_eq!(DistributedKeyError::find(&e), Some(&key));
        let other = DataFusionError::Execution("executor e1: no".into());
        assert_eq!(DistributedKeyError::find(&other), None);
    }
}
