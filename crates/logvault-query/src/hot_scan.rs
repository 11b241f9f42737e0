//! The scan of a table's hot segments: a DataFusion memory source over the batches the hot
//! cache's memory tier holds (their projected columns, shared with the cache, not copied), in a
//! node of its own so that the string grouping can ask it for a copy reading a group column as
//! the dictionary the tier holds of it ([`HotScanExec::with_dictionary`]), as it asks a Parquet
//! scan (`grouping::dictionary`).
//!
//! Architecture Invariant: the node runs nothing of its own; everything but the copy is the
//! memory source's (partitions, statistics, execution). It is a leaf that DataFusion's rules
//! see as opaque: none pushes a projection, a limit or a filter into it (the provider's scan
//! has applied the projection and the limit already, and filters are applied above it as
//! above the Parquet scan).

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, Statistics, internal_err};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::ReplaceChildrenOptions;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
    StatisticsArgs,
};
use logvault_cache::HotSegment;

use crate::provider::ScanStats;
use crate::prune::TimeBounds;

/// A memory source over hot segments' batches, spread over partitions (see the module).
#[derive(Debug, Clone)]
pub(crate) struct HotScanExec {
    /// The memory source.
    inner: Arc<dyn ExecutionPlan>,
    /// The segments read, not held: a plan keeps the batches it reads alive, as the memory
    /// source alone did, not whole segments the tier may evict meanwhile.
    segments: Vec<Weak<HotSegment>>,
    projected: SchemaRef,
    bounds: TimeBounds,
    limit: Option<usize>,
    partitions: usize,
    /// Rows of the batches read.
    rows: usize,
}

impl HotScanExec {
    /// The `projected` columns of the hot `segments`' batches inside the query's time `bounds`,
    /// spread over `partitions`; with a `limit`, it stops taking segments once enough rows are
    /// there. Counts the batches skipped in `stats`.
    pub(crate) fn try_new(
        segments: Vec<Arc<HotSegment>>,
        projected: &SchemaRef,
        bounds: TimeBounds,
        limit: Option<usize>,
        partitions: usize,
        stats: &ScanStats,
    ) -> Result<Self> {
        let (batches, skipped) = read(&segments, projected, bounds, limit)?;
        stats
            .memory_batches_pruned
            .fetch_add(skipped, Ordering::Relaxed);
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        Ok(Self {
            rows,
            inner: source(batches, projected, partitions)?,
            segments: segments.iter().map(Arc::downgrade).collect(),
            projected: Arc::clone(projected),
            bounds,
            limit,
            partitions,
        })
    }

    /// A memory source like this one (the same batches in the same partitions) in `read_as`:
    /// this scan's schema with the column at `column` a dictionary of strings; when every
    /// segment holds one of it (`HotSegment::reads_as_dictionary`: the column has few values)
    /// or lacks the column. `None` otherwise (a cast of the views would cost what the dictionary
    /// saves), or if the tier let a segment go since the scan was planned.
    pub(crate) fn with_dictionary(
        &self,
        column: usize,
        read_as: &SchemaRef,
    ) -> Option<Arc<dyn ExecutionPlan>> {
        let field = self.projected.fields().get(column)?;
        let segments: Vec<Arc<HotSegment>> = self
            .segments
            .iter()
            .map(Weak::upgrade)
            .collect::<Option<_>>()?;
        if field.data_type() != &DataType::Utf8View
            || !segments.iter().all(|s| s.reads_as_dictionary(field.name()))
        {
            return None;
        }
        let (batches, _) = read(&segments, read_as, self.bounds, self.limit).ok()?;
        source(batches, read_as, self.partitions).ok()
    }
}

/// The batches of `segments` in `schema` (the scan's projection, perhaps with a column as a
/// dictionary) inside the time `bounds`, up to the segment that reaches `limit` rows; and how
/// many batches the bounds skipped.
fn read(
    segments: &[Arc<HotSegment>],
    schema: &SchemaRef,
    bounds: TimeBounds,
    limit: Option<usize>,
) -> Result<(Vec<RecordBatch>, usize)> {
    let mut batches: Vec<RecordBatch> = Vec::new();
    let mut rows = 0usize;
    let mut skipped = 0usize;
    for seg in segments {
        if limit.is_some_and(|l| rows >= l) {
            break;
        }
        let read = seg
            .read_as(schema, |lo, hi| bounds.overlaps(lo, hi))
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        skipped += seg.batch_count().saturating_sub(read.len());
        rows += read.iter().map(RecordBatch::num_rows).sum::<usize>();
        batches.extend(read);
    }
    Ok((batches, skipped))
}

/// A memory source of `batches`, dealt round to (at most) `partitions` partitions.
fn source(
    batches: Vec<RecordBatch>,
    schema: &SchemaRef,
    partitions: usize,
) -> Result<Arc<dyn ExecutionPlan>> {
    let n = partitions.min(batches.len()).max(1);
    let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); n];
    for (i, b) in batches.into_iter().enumerate() {
        parts[i % n].push(b);
    }
    let exec: Arc<dyn ExecutionPlan> =
        MemorySourceConfig::try_new_exec(&parts, Arc::clone(schema), None)?;
    Ok(exec)
}

impl DisplayAs for HotScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                let segments = self.segments.len();
                write!(f, "HotScanExec: segments={segments}, rows={}, ", self.rows)?;
                self.inner.fmt_as(t, f)
            }
            DisplayFormatType::TreeRender => self.inner.fmt_as(t, f),
        }
    }
}

impl ExecutionPlan for HotScanExec {
    fn name(&self) -> &str {
        "HotScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            internal_err!("HotScanExec has no children")
        }
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(
                datafusion::physical_plan::execution_plan::ChildrenPropertiesMode::Recompute,
            ),
        )
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }

    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        let mut scan = self.as_ref().clone();
        scan.inner = Arc::clone(&self.inner).reset_state()?;
        Ok(Arc::new(scan))
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

    // Older callers ask a node for its statistics this way: the memory source's, as for the
    // new way below (its exact row count, by which a join builds on its smaller side).
    #[expect(deprecated, reason = "answered as the memory source answers it")]
    fn partition_statistics(&self, partition: Option<usize>) -> Result<Arc<Statistics>> {
        self.inner.partition_statistics(partition)
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        self.inner.statistics_from_inputs(input_stats, args)
    }

    // Its partitions are fixed lists of batches: a partition never reads another's (no shared
    // queue of work, as file scans have), whatever the order asked.
    fn with_preserve_order(&self, _: bool) -> Option<Arc<dyn ExecutionPlan>> {
        Some(Arc::new(self.clone()))
    }
}
