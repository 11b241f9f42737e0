//! logvault on an Apache DataFusion Ballista cluster, as processes (issue 23, guide:
//! `docs/distributed.md`). The `logvault-cluster` binary runs a scheduler, an executor, or a
//! query API server (`logvault serve` with the distributed path on); this library is the
//! server's side of it: [`BallistaQueries`], the query API's distributed engine, which sends a
//! plan the server made to a scheduler.
//!
//! Ballista is kept out of the `logvault` binary (its build is the README's first command):
//! `logvault-server` knows distributed queries only through its [`DistributedQueries`] hook,
//! which this crate implements.

use async_trait::async_trait;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use logvault::query::WorkspaceSession;
use logvault_distributed::{DistributedError, distributed_context};
use logvault_server::{DistributedQueries, ServerError};

/// The query API's distributed engine: a Ballista scheduler at a `host:port`, whose executors
/// read the storage and unwrap account keys at the vault themselves.
#[derive(Debug, Clone)]
pub struct BallistaQueries {
    scheduler: String,
}

impl BallistaQueries {
    /// Queries sent to the scheduler at `scheduler` (`host:port`).
    pub fn new(scheduler: impl Into<String>) -> Self {
        Self {
            scheduler: scheduler.into(),
        }
    }

    /// The scheduler's address.
    pub fn scheduler(&self) -> &str {
        &self.scheduler
    }
}

#[async_trait]
impl DistributedQueries for BallistaQueries {
    fn describe(&self) -> String {
        format!("ballista scheduler at {}", self.scheduler)
    }

    async fn execute(
        &self,
        session: &WorkspaceSession,
        plan: LogicalPlan,
    ) -> Result<SendableRecordBatchStream, DataFusionError> {
        let ctx = distributed_context(session, &self.scheduler)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let stream = DataFrame::new(ctx.state(), plan)
            .execute_stream()
            .await
            .map_err(named)?;
        let schema = stream.schema();
        // The context lives as long as the stream that runs on it.
        let rows = stream.map(move |item| {
            let _ = &ctx;
            item.map_err(named)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, rows)))
    }
}

/// `e` with logvault's named error in place of the text Ballista carried it in: a key an
/// executor could not get becomes the server's [`ServerError::DistributedKeyUnavailable`] (answered as a local
/// query's key refusal), a function the cluster cannot rebuild its own message.
fn named(e: DataFusionError) -> DataFusionError {
    match DistributedError::from_remote(&e.to_string()) {
        Some(DistributedError::KeyUnavailable {
            executor,
            account,
            reason,
        }) => {
            let message = DistributedError::KeyUnavailable {
                executor,
                account: account.clone(),
                reason,
            }
            .to_string();
            DataFusionError::External(Box::new(ServerError::DistributedKeyUnavailable {
                account,
                message,
            }))
        }
        Some(other) => DataFusionError::Execution(other.to_string()),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_executor_s_key_refusal_becomes_the_server_s_key_error() {
        let sent = DistributedError::KeyUnavailable {
            executor: "executor-1".into(),
            account: "cluster-c1".into(),
            reason: "key kv/cmk is disabled".into(),
        };
        let e = named(DataFusionError::Execution(format!(
            "Job abc failed: External({sent:?})"
        )));
        match ServerError::distributed_key(&e) {
            Some(ServerError::DistributedKeyUnavailable { account, message }) => {
                assert_eq!(
                    (account.as_str(), message.clone()),
                    ("cluster-c1", sent.to_string())
                );
            }
            other => panic!("{other:?} from {e}"),
        }
        let sent = DistributedError::UnsupportedFunction {
            function: "hash_sha256".into(),
        };
        let e = named(DataFusionError::Execution(format!("Plan({sent:?})")));
        assert!(ServerError::distributed_key(&e).is_none());
        assert!(e.to_string().contains(&sent.to_string()), "{e}");
        let other = named(DataFusionError::Execution("executor lost".into()));
        assert_eq!(other.to_string(), "Execution error: executor lost");
    }
}
