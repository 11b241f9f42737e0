//! Partial aggregation grouped by one string column.
//!
//! Log queries group by a column of a few distinct strings more than by anything else
//! (`summarize count() by Level`, by category, by result code). DataFusion's partial aggregation
//! hashes every row's string and looks it up in a table of string views; most of such a query's
//! time went there (a profile of `GROUP BY "Level"` over 10M rows: 45% in that lookup and
//! its hashes, against 25% reading the Parquet). [`StringGroupAggregation`], a physical optimizer
//! rule, puts a [`StringGroupAggregateExec`] in place of such a partial aggregation: it groups
//! the strings a view holds whole (up to 12 bytes) by the view's bits, through a direct-mapped
//! table in front of a hash map ([`keys`]), and feeds DataFusion's own accumulators with the
//! group ids, so every aggregate function computes what it computes under DataFusion; a row
//! count (`COUNT(*)`, `COUNT` of a constant) is counted by [`row_count`] instead, in four lanes
//! per group, into `COUNT`'s own state; a batch whose group column was read as a dictionary is
//! aggregated by key when its aggregates allow ([`by_key`]). A column
//! of many short values (user ids, `COUNT(DISTINCT ...)`, which DataFusion plans as a grouping)
//! is grouped by the views' bits in the map alone, the rows of a mostly null one by their set
//! validity bits; a column of many long values goes back to DataFusion's aggregation after its
//! first rows, and so does one whose aggregation does not reduce the rows, at DataFusion's own
//! check ([`stream`]).
//!
//! ```
//! # use std::sync::Arc;
//! # use datafusion::arrow::array::{Int64Array, StringViewArray};
//! # use datafusion::arrow::datatypes::{DataType, Field, Schema};
//! # use datafusion::arrow::record_batch::RecordBatch;
//! # use datafusion::prelude::SessionContext;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> datafusion::common::Result<()> {
//! let options = logvault_query::SessionOptions::at(chrono::Utc::now());
//! let ctx = logvault_query::new_session(&options, Arc::default());
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("Level", DataType::Utf8View, false),
//!     Field::new("Latency", DataType::Int64, false),
//! ]));
//! let batch = RecordBatch::try_new(
//!     schema,
//!     vec![
//!         Arc::new(StringViewArray::from(vec!["INFO", "ERROR", "INFO"])),
//!         Arc::new(Int64Array::from(vec![3, 10, 5])),
//!     ],
//! )?;
//! ctx.register_batch("logs", batch)?;
//! let sql = r#"SELECT "Level", SUM("Latency") AS s FROM logs GROUP BY "Level" ORDER BY s"#;
//! let plan = ctx.sql(&format!("EXPLAIN {sql}")).await?.collect().await?;
//! let plan = datafusion::arrow::util::pretty::pretty_format_batches(&plan)?.to_string();
//! assert!(plan.contains("StringGroupAggregateExec"), "{plan}");
//! let rows = ctx.sql(sql).await?.collect().await?;
//! let text = datafusion::arrow::util::pretty::pretty_format_batches(&rows)?.to_string();
//! assert!(text.contains("| INFO  | 8  |") && text.contains("| ERROR | 10 |"), "{text}");
//! # Ok(())
//! # }
//! ```

mod by_key;
mod dictionary;
pub(crate) mod keys;
mod row_count;
mod stream;

pub(crate) use dictionary::dictionary_type;

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, internal_datafusion_err, internal_err};
use datafusion::execution::TaskContext;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode, PlanProperties,
    SendableRecordBatchStream,
};

/// The rule: every partial aggregation it can take becomes a [`StringGroupAggregateExec`],
/// reading its group column as a dictionary when its input is a Parquet scan that can
/// ([`dictionary`]; the scan's encryption factory is looked up in `runtime`).
#[derive(Debug)]
pub struct StringGroupAggregation {
    runtime: Arc<RuntimeEnv>,
}

impl StringGroupAggregation {
    /// The rule of a session whose runtime is `runtime`.
    pub fn new(runtime: Arc<RuntimeEnv>) -> Self {
        Self { runtime }
    }
}

impl PhysicalOptimizerRule for StringGroupAggregation {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            if !takes(aggregate)? {
                return Ok(Transformed::no(node));
            }
            // A partition that reads its group column again as views (`stream`) executes the
            // aggregation's own scan for itself alone: both scans must read each partition's
            // own files, not take their siblings' (DataFusion's file streams share one queue of
            // files between a scan's partitions by default). The copy inherits it.
            let scans = aggregate
                .group_expr()
                .expr()
                .first()
                .and_then(|(group, _)| {
                    let views = dictionary::preserve_order(aggregate.input())?;
                    let copy = dictionary::scan(&views, group, &self.runtime)?;
                    let node = Arc::clone(&node)
                        .replace_children(
                            vec![views],
                            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
                        )
                        .ok()?;
                    Some((node, copy))
                });
            let own = Arc::clone(aggregate.input());
            let (node, input) = scans.unwrap_or((node, own));
            Ok(Transformed::yes(Arc::new(StringGroupAggregateExec::new(
                node, input,
            ))))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "string_group_aggregation"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether the rule takes `aggregate`: a partial aggregation by one string view column, without
/// grouping sets, a limit, an ordered input or a dynamic filter, whose aggregates all have group
/// accumulators.
fn takes(aggregate: &AggregateExec) -> Result<bool> {
    let group_by = aggregate.group_expr();
    let [(group, _)] = group_by.expr() else {
        return Ok(false);
    };
    Ok(matches!(aggregate.mode(), AggregateMode::Partial)
        && group_by.is_single()
        && group_by.groups().len() == 1
        && aggregate.limit_options().is_none()
        && aggregate.dynamic_expressions_produced().is_empty()
        && matches!(aggregate.input_order_mode(), InputOrderMode::Linear)
        && group.data_type(&aggregate.input_schema())? == DataType::Utf8View
        && aggregate
            .aggr_expr()
            .iter()
            .all(|a| a.groups_accumulator_supported()))
}

/// A partial aggregation by one string column (the [`AggregateExec`] it replaces, run by
/// [`stream`]); its output is that aggregation's, in the same schema.
#[derive(Debug)]
pub struct StringGroupAggregateExec {
    /// The replaced aggregation (an [`AggregateExec`]): its expressions, schema and input.
    inner: Arc<dyn ExecutionPlan>,
    /// Its child: the aggregation's input, or that scan reading the group column as a
    /// dictionary.
    input: Arc<dyn ExecutionPlan>,
    metrics: ExecutionPlanMetricsSet,
}

impl StringGroupAggregateExec {
    fn new(inner: Arc<dyn ExecutionPlan>, input: Arc<dyn ExecutionPlan>) -> Self {
        Self {
            inner,
            input,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The aggregation's own input (views) when the child reads the group column as a
    /// dictionary instead; `None` when the child is that input.
    fn views(&self) -> Option<&Arc<dyn ExecutionPlan>> {
        let own = self.inner.children().into_iter().next()?;
        (own.schema() != self.input.schema()).then_some(own)
    }

    fn rewrap(&self, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let [child] = children.as_slice() else {
            return internal_err!("StringGroupAggregateExec has one child");
        };
        // The same columns (the group column perhaps as a dictionary): the aggregation stays.
        let same_columns = |a: &SchemaRef, b: &SchemaRef| {
            a.fields().len() == b.fields().len()
                && a.fields()
                    .iter()
                    .zip(b.fields())
                    .all(|(x, y)| x.name() == y.name())
        };
        if let Some(aggregate) = self.inner.downcast_ref::<AggregateExec>()
            && same_columns(&child.schema(), &aggregate.input().schema())
        {
            return Ok(Arc::new(Self::new(
                Arc::clone(&self.inner),
                Arc::clone(child),
            )));
        }
        let inner = Arc::clone(&self.inner).replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )?;
        let input = inner
            .children()
            .first()
            .map(|c| Arc::clone(*c))
            .ok_or_else(|| internal_datafusion_err!("an aggregation without its input"))?;
        Ok(Arc::new(Self::new(inner, input)))
    }
}

impl DisplayAs for StringGroupAggregateExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                f.write_str("StringGroupAggregateExec: ")?;
                if self.views().is_some() {
                    f.write_str("group column read as a dictionary, ")?;
                }
                self.inner.fmt_as(t, f)
            }
            DisplayFormatType::TreeRender => self.inner.fmt_as(t, f),
        }
    }
}

impl ExecutionPlan for StringGroupAggregateExec {
    fn name(&self) -> &str {
        "StringGroupAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.rewrap(children)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.rewrap(children)
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        stream::execute(stream::Plan {
            inner: Arc::clone(&self.inner),
            input: Arc::clone(&self.input),
            partition,
            context,
            metrics: BaselineMetrics::new(&self.metrics, partition),
            handed_back: MetricBuilder::new(&self.metrics).counter("handed_back", partition),
            views: self.views().cloned(),
            read_as_views: MetricBuilder::new(&self.metrics).counter("read_as_views", partition),
            counted_by_key: MetricBuilder::new(&self.metrics)
                .counter("rows_counted_by_key", partition),
        })
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}
