//! [`LogvaultScanExec`]: a Parquet scan of logvault segments, as one node of a plan that is
//! sent to executors.
//!
//! DataFusion 55's protobuf layer serialises a Parquet scan itself (`ParquetSource::
//! try_to_proto`) and drops the Parquet encryption settings of its table options (`crypto`:
//! the encryption factory's id and options), and it never carries the factory itself. A scan
//! sent as it is would reach an executor unable to decrypt. Wrapped in this node, the scan is
//! unknown to DataFusion's encoder, so the logvault codec serialises it
//! ([`crate::LogvaultPhysicalCodec`]): the inner scan in DataFusion's protobuf, plus the
//! encryption settings; on the executor, the scan is rebuilt with those settings and the
//! encryption factory registered in the executor's runtime under the settings' id.
//!
//! The node behaves as the scan it wraps for the optimizer (partitioning, statistics, limit,
//! projection and filter pushdown are the scan's, rewrapped), so a distributed query is pruned
//! and pushed down as a local one.

use std::fmt;
use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::physical_plan::{FileScanConfig, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::ReplaceChildrenOptions;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterPushdownPhase, FilterPushdownPropagation,
};
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
    Statistics, StatisticsArgs,
};

/// A logvault segment scan (a `DataSourceExec` over a `ParquetSource`), carried whole to
/// executors by the logvault codec.
#[derive(Debug, Clone)]
pub struct LogvaultScanExec {
    inner: Arc<dyn ExecutionPlan>,
}

impl LogvaultScanExec {
    /// Wraps `scan`.
    pub fn new(scan: Arc<dyn ExecutionPlan>) -> Self {
        Self { inner: scan }
    }

    /// The wrapped scan.
    pub fn inner(&self) -> &Arc<dyn ExecutionPlan> {
        &self.inner
    }

    /// The Parquet source of the wrapped scan, if it is one.
    pub fn parquet_source(&self) -> Option<&ParquetSource> {
        parquet_source(&self.inner)
    }

    fn wrap(plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        Arc::new(Self::new(plan))
    }
}

/// The Parquet source of a `DataSourceExec` scan, if `plan` is one.
pub(crate) fn parquet_source(plan: &Arc<dyn ExecutionPlan>) -> Option<&ParquetSource> {
    plan.downcast_ref::<DataSourceExec>()?
        .data_source()
        .downcast_ref::<FileScanConfig>()?
        .file_source()
        .downcast_ref::<ParquetSource>()
}

/// Wraps every Parquet scan of `plan` that reads through an encryption factory (its table
/// options name one) in a [`LogvaultScanExec`].
///
/// # Errors
/// DataFusion's, rebuilding a node with its new children.
pub fn wrap_encrypted_scans(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    plan.transform_up(|node| {
        let encrypted = parquet_source(&node)
            .is_some_and(|s| s.table_parquet_options().crypto.factory_id.is_some());
        Ok(if encrypted {
            Transformed::yes(LogvaultScanExec::wrap(node))
        } else {
            Transformed::no(node)
        })
    })
    .map(|t| t.data)
}

/// A [`LogvaultScanExec`] over the one child given (its scan, rewritten).
fn rewrap(children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
    match <[Arc<dyn ExecutionPlan>; 1]>::try_from(children) {
        Ok([inner]) => Ok(LogvaultScanExec::wrap(inner)),
        Err(children) => datafusion::common::internal_err!(
            "LogvaultScanExec takes one child (its scan), got {}",
            children.len()
        ),
    }
}

impl DisplayAs for LogvaultScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                f.write_str("LogvaultScanExec: ")?;
                self.inner.fmt_as(t, f)
            }
            DisplayFormatType::TreeRender => self.inner.fmt_as(t, f),
        }
    }
}

impl ExecutionPlan for LogvaultScanExec {
    fn name(&self) -> &str {
        "LogvaultScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    // The wrapped scan is this node's child, so that Ballista's scheduler sees it: it restricts
    // each task's plan to the task's partitions by rewriting the `DataSourceExec` leaves it
    // finds (`restrict_plan_to_partitions`, `ballista-scheduler` `src/state/task_builder.rs`).
    // As an opaque leaf, every task kept every file group and read the whole table, which
    // counted a table of n file groups n times.
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.inner]
    }

    // Nothing may be placed between this node and its scan (a repartition, a sort pushed
    // down): the codec sends the scan itself.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        rewrap(children)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        rewrap(children)
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }

    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Self::wrap(Arc::clone(&self.inner).reset_state()?))
    }

    fn repartitioned(
        &self,
        target_partitions: usize,
        config: &ConfigOptions,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        Ok(self
            .inner
            .repartitioned(target_partitions, config)?
            .map(Self::wrap))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.inner.execute(partition, context)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.inner.metrics()
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        self.inner.statistics_from_inputs(input_stats, args)
    }

    #[expect(deprecated)]
    fn partition_statistics(&self, partition: Option<usize>) -> Result<Arc<Statistics>> {
        self.inner.partition_statistics(partition)
    }

    fn supports_limit_pushdown(&self) -> bool {
        self.inner.supports_limit_pushdown()
    }

    fn with_fetch(&self, limit: Option<usize>) -> Option<Arc<dyn ExecutionPlan>> {
        self.inner.with_fetch(limit).map(Self::wrap)
    }

    fn fetch(&self) -> Option<usize> {
        self.inner.fetch()
    }

    fn try_swapping_with_projection(
        &self,
        projection: &ProjectionExec,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        Ok(self
            .inner
            .try_swapping_with_projection(projection)?
            .map(Self::wrap))
    }

    fn handle_child_pushdown_result(
        &self,
        phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        let result =
            self.inner
                .handle_child_pushdown_result(phase, child_pushdown_result, config)?;
        Ok(FilterPushdownPropagation {
            filters: result.filters,
            updated_node: result.updated_node.map(Self::wrap),
        })
    }

    fn with_preserve_order(&self, preserve_order: bool) -> Option<Arc<dyn ExecutionPlan>> {
        self.inner
            .with_preserve_order(preserve_order)
            .map(Self::wrap)
    }
}
