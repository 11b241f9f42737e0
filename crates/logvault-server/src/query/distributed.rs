//! A query asked to run distributed (`"distributed": true`): planned here as a local query is
//! (rights, workspace, key gate, KQL or SQL with the same errors), then started on the
//! server's [`DistributedQueries`] engine. Its first batch is awaited here, so that a failure
//! before any row (an executor's vault refusing a key, a function the cluster cannot run) is an
//! error answer in the shape a local query's would have.

use std::sync::Arc;

use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use logvault::query::{QueryError, WorkspaceSession};
use serde_json::json;

use crate::http::Shared;
use crate::http::errors::{ApiError, engine_error};
use crate::{DistributedQueries, ServerError};

/// The server's distributed engine, or the answer of a server that has none.
pub(super) fn engine(state: &Shared) -> Result<Arc<dyn DistributedQueries>, ApiError> {
    state.distributed.clone().ok_or_else(|| {
        let message = "this server has no distributed engine: leave out \"distributed\" (or set \
                       it to false) to run the query here, or send it to a server started with \
                       `logvault-cluster serve --scheduler HOST:PORT`";
        ApiError::bad_request(message).with_inner(json!({
            "code": "DistributedQueriesUnavailable",
            "message": message,
        }))
    })
}

/// Where a query planned as `plan` runs: on the distributed engine when it asked for it
/// (`asked`: its `"distributed"`; an error when the server has none), here when it asked for
/// that, and otherwise there only when the server has an engine and a threshold
/// ([`crate::DistributeAbove`]) that the segments the plan scans exceed.
pub(super) fn choose(
    state: &Shared,
    asked: Option<bool>,
    plan: &LogicalPlan,
) -> Result<Option<Arc<dyn DistributedQueries>>, ApiError> {
    match asked {
        Some(true) => engine(state).map(Some),
        Some(false) => Ok(None),
        None => {
            let (Some(above), Some(engine)) = (&state.distribute_above, &state.distributed) else {
                return Ok(None);
            };
            let size = logvault::query::scan_size(plan);
            let send = above.exceeded_by(&size);
            tracing::debug!(
                rows = size.rows,
                bytes = size.bytes,
                segments = size.segments,
                distributed = send,
                "query size against the distributed threshold"
            );
            Ok(send.then(|| engine.clone()))
        }
    }
}

/// Starts `plan` (planned on `session`, of `workspace`) on `engine` and waits for its first
/// batch until `deadline`; the stream returned starts with that batch. When the deadline
/// passes first, the stream is returned as it is and the caller meets the deadline.
pub(super) async fn start(
    state: &Shared,
    engine: &dyn DistributedQueries,
    session: &WorkspaceSession,
    plan: LogicalPlan,
    workspace: &str,
    deadline: tokio::time::Instant,
) -> Result<SendableRecordBatchStream, ApiError> {
    let mut stream = engine
        .execute(session, plan)
        .await
        .map_err(|e| failure(state, engine, workspace, &e))?;
    let first = match tokio::time::timeout_at(deadline, stream.next()).await {
        Err(_) => return Ok(stream),
        Ok(None) => None,
        Ok(Some(Err(e))) => return Err(failure(state, engine, workspace, &e)),
        Ok(Some(Ok(batch))) => Some(Ok(batch)),
    };
    let schema = stream.schema();
    Ok(Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter(first).chain(stream),
    )))
}

/// The answer to a distributed query that failed before its first row: a key a worker could
/// not get is answered as a local query's key refusal (403 `CustomerManagedKeyRevoked` when the
/// key is revoked, else 503 `CustomerManagedKeyUnavailable`); anything else as a local query
/// that failed while it ran (400 with `QueryExecutionError` inside).
fn failure(
    state: &Shared,
    engine: &dyn DistributedQueries,
    workspace: &str,
    e: &DataFusionError,
) -> ApiError {
    if let Some(ServerError::DistributedKeyUnavailable { account, message }) =
        ServerError::distributed_key(e)
    {
        let refused = QueryError::KeyUnavailable {
            workspace: workspace.to_owned(),
            account: account.clone(),
            reason: message.clone(),
        };
        return engine_error(&state.engine, &logvault::EngineError::Query(refused));
    }
    tracing::debug!(engine = %engine.describe(), "a distributed query failed before its first row");
    ApiError::bad_request("The query failed while it ran").with_inner(json!({
        "code": "QueryExecutionError",
        "message": e.strip_backtrace(),
    }))
}
