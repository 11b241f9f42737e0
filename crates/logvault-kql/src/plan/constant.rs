//! Plans that read only the query's own constants, run while planning.
//!
//! A table built by the query itself (`datatable`, `print`, `range`, `getschema`) is known when
//! the query is planned, and so is everything computed from such tables alone. Where KQL needs
//! a value of the data to *shape* the plan (a `range` bound given by `toscalar`, the columns of
//! `evaluate pivot`, the branches of `partition`, the merged schema of `schema_merge`), the
//! planner runs the sub-plan then, on its own thread with a one-thread runtime, and builds the
//! rest of the plan from the answer. A plan that reads a stored table is never run here: it
//! would read data before the key gate and the query's own execution.

use arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};

use super::Planner;
use super::rel::Rel;
use crate::error::{KqlError, Span};

/// The most rows a plan run at plan time may return.
pub(crate) const MAX_CONSTANT_ROWS: usize = 1_000_000;

impl Planner<'_> {
    /// Whether every table `plan` reads (its subqueries' included) was built from constants.
    pub(crate) fn is_constant(&self, plan: &LogicalPlan) -> bool {
        let mut constant = true;
        let visited = plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && !self.constants.contains_key(scan.table_name.table())
            {
                constant = false;
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        constant && visited.is_ok()
    }

    /// The rows of `rel`, computed now, if it reads only constants (`None` if it reads a
    /// stored table). The batches come in the plan's order: a union's inputs one after the
    /// other.
    ///
    /// # Errors
    /// When the plan fails, or returns more than [`MAX_CONSTANT_ROWS`] rows (`what` names the
    /// construct that asked, at `span`).
    pub(crate) fn constant_rows_of(
        &self,
        rel: &Rel,
        what: &str,
        span: Span,
    ) -> Result<Option<Vec<RecordBatch>>, KqlError> {
        if !self.is_constant(&rel.plan) {
            return Ok(None);
        }
        let batches = run(rel.plan.clone(), what, span)?;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows > MAX_CONSTANT_ROWS {
            return Err(KqlError::unsupported(
                format!(
                    "{what} over more than {MAX_CONSTANT_ROWS} rows computed while planning ({rows})"
                ),
                span,
            ));
        }
        Ok(Some(batches))
    }
}

/// Runs `plan` to completion on a thread of its own (the planner is synchronous and may be
/// called from inside an async runtime, which cannot be blocked on).
fn run(plan: LogicalPlan, what: &str, span: Span) -> Result<Vec<RecordBatch>, KqlError> {
    let failed = |e: String| KqlError::semantic(format!("{what}: {e}"), span);
    let worker = std::thread::Builder::new()
        .name("kql-constant".into())
        .spawn(move || -> Result<Vec<RecordBatch>, String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a runtime: {e}"))?;
            runtime.block_on(async move {
                let config = SessionConfig::new().with_target_partitions(1);
                let ctx = SessionContext::new_with_config(config);
                let df = DataFrame::new(ctx.state(), plan);
                let parts = df.collect_partitioned().await.map_err(|e| e.to_string())?;
                Ok(parts.into_iter().flatten().collect())
            })
        })
        .map_err(|e| failed(format!("cannot start a thread: {e}")))?;
    match worker.join() {
        Ok(result) => result.map_err(failed),
        Err(_) => Err(failed("the computation panicked".into())),
    }
}
