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
    /// a worker of the engine could not get is reported as a
    /// [`ServerError::DistributedKeyUnavailable`](crate::ServerError) inside
    /// [`DataFusionError::External`] (from this call or from the stream), so that the answer
    /// is the one a local query gets for it.
    async fn execute(
        &self,
        session: &WorkspaceSession,
        plan: LogicalPlan,
    ) -> Result<SendableRecordBatchStream, DataFusionError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerError;

    #[test]
    fn a_key_error_is_found_through_datafusion_s_wrappers() {
        let key = || ServerError::DistributedKeyUnavailable {
            account: "cluster-c1".into(),
            message: "executor e1 cannot read storage account cluster-c1".into(),
        };
        let e = DataFusionError::Context(
            "running".into(),
            Box::new(DataFusionError::External(Box::new(key()))),
        );
        assert_eq!(
            ServerError::distributed_key(&e).map(ToString::to_string),
            Some(key().to_string())
        );
        let other = DataFusionError::Execution("executor e1: no".into());
        assert!(ServerError::distributed_key(&other).is_none());
        let not_a_key = DataFusionError::External(Box::new(ServerError::Tls("no".into())));
        assert!(ServerError::distributed_key(&not_a_key).is_none());
    }
}
