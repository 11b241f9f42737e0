//! The partial aggregation of one partition, grouped by one string column.
//!
//! It first reads [`PROBE_ROWS`] rows. When they hold at most one distinct value in
//! [`FEW_PER_ROWS`], the column is one of few values: every row is grouped here, through the
//! direct-mapped table. When they hold more, mostly strings a view holds whole (at most one group
//! in [`LONG_AT_MOST_ONE_IN`] longer), the rows are grouped here by their views without the table,
//! until DataFusion's own check of whether a partial aggregation reduces the rows (after
//! `skip_partial_aggregation_probe_rows_threshold` rows, at most
//! `skip_partial_aggregation_probe_ratio_threshold` groups per row, the session's settings):
//! when it does not, the groups so far are emitted and the rest of the input goes to
//! DataFusion's partial aggregation, which then skips aggregating. Otherwise (many long strings)
//! the rows read go, with the rest of the input, to DataFusion's partial aggregation at once.
//! The groups' states are emitted at the end, or earlier, all of them, when the memory pool
//! refuses more (a partial aggregation may emit a group more than once: the final one merges
//! them).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, RecordBatch, StringViewArray,
};
use arrow::datatypes::{Int32Type, SchemaRef};
use datafusion::common::{DataFusionError, Result, internal_datafusion_err, internal_err};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, aggregate_expressions};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::metrics::{BaselineMetrics, Count};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use futures::StreamExt;

use super::by_key::{self, Keyed};
use super::keys::{GroupError, KeyRows, StringGroups};
use super::row_count::{self, RowCount};

/// Rows read before deciding whether the column has few values.
pub(crate) const PROBE_ROWS: usize = 8192;
/// At most one distinct value in this many probed rows for the column to count as one of few.
pub(crate) const FEW_PER_ROWS: usize = 16;
/// A column of many values is grouped here when at most one group in this many is a string
/// longer than a view holds.
pub(crate) const LONG_AT_MOST_ONE_IN: usize = 4;

/// DataFusion's test of whether a partial aggregation reduces the rows (the session's settings).
#[derive(Clone, Copy)]
struct ReduceCheck {
    /// Rows read before the check.
    rows: usize,
    /// Groups per row at and above which the aggregation does not reduce enough.
    ratio: f64,
}

/// What the stream needs of the plan.
pub(crate) struct Plan {
    /// The replaced [`AggregateExec`].
    pub(crate) inner: Arc<dyn ExecutionPlan>,
    /// What it reads: the aggregation's input, or the same scan with the group column read as
    /// a dictionary ([`super::dictionary`]).
    pub(crate) input: Arc<dyn ExecutionPlan>,
    pub(crate) partition: usize,
    pub(crate) context: Arc<TaskContext>,
    pub(crate) metrics: BaselineMetrics,
    /// Partitions handed back to DataFusion's aggregation (`handed_back` in `EXPLAIN ANALYZE`).
    pub(crate) handed_back: Count,
    /// The aggregation's own input when `input` reads the group column as a dictionary: a
    /// partition whose probe finds many values reads it instead (from its start).
    pub(crate) views: Option<Arc<dyn ExecutionPlan>>,
    /// Partitions that went back to reading views (`read_as_views` in `EXPLAIN ANALYZE`).
    pub(crate) read_as_views: Count,
    /// Rows aggregated by their dictionary key, without a group id each (`rows_counted_by_key`).
    pub(crate) counted_by_key: Count,
}

/// The partition's output stream.
pub(crate) fn execute(plan: Plan) -> Result<SendableRecordBatchStream> {
    let Some(aggregate) = plan.inner.downcast_ref::<AggregateExec>() else {
        return internal_err!("StringGroupAggregateExec wraps {}", plan.inner.name());
    };
    let input = plan
        .input
        .execute(plan.partition, Arc::clone(&plan.context))?;
    let group = aggregate
        .group_expr()
        .expr()
        .first()
        .map(|(expr, _)| Arc::clone(expr))
        .ok_or_else(|| internal_datafusion_err!("a string grouping without a group column"))?;
    let mut arguments = aggregate_expressions(
        aggregate.aggr_expr(),
        aggregate.mode(),
        aggregate.group_expr().num_group_exprs(),
    )?;
    // A row count needs no argument evaluated: it counts its own way (`row_count`).
    let input_schema = aggregate.input().schema();
    let mut accumulators = Vec::new();
    for ((expr, filter), arguments) in aggregate
        .aggr_expr()
        .iter()
        .zip(aggregate.filter_expr())
        .zip(arguments.iter_mut())
    {
        if row_count::counts_rows(expr, filter.as_ref()) {
            arguments.clear();
            accumulators.push(Accumulator::Rows(RowCount::default()));
        } else if let Some(kind) = by_key::kind_of(expr, filter.as_ref(), &input_schema) {
            let inner = expr.create_groups_accumulator()?;
            accumulators.push(Accumulator::Keyed(Keyed::new(kind, inner)));
        } else {
            accumulators.push(Accumulator::Other(expr.create_groups_accumulator()?));
        }
    }
    let reservation = MemoryConsumer::new(format!("StringGroupAggregate[{}]", plan.partition))
        .register(plan.context.memory_pool());
    let schema = aggregate.schema();
    let execution = &plan.context.session_config().options().execution;
    let reduce_check = ReduceCheck {
        rows: execution.skip_partial_aggregation_probe_rows_threshold,
        ratio: execution.skip_partial_aggregation_probe_ratio_threshold,
    };
    let state = State {
        phase: Phase::Probe(Vec::new()),
        input: Some(input),
        group,
        arguments,
        filters: aggregate.filter_expr().to_vec(),
        accumulators,
        groups: StringGroups::default(),
        ids: Vec::new(),
        counted: Vec::new(),
        reservation,
        batch_size: plan.context.session_config().batch_size().max(1),
        reduce_check,
        pending_check: false,
        rows_read: 0,
        groups_emitted: 0,
        output: VecDeque::new(),
        schema: Arc::clone(&schema),
        plan,
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        let item = state.next().await;
        if item.as_ref().is_some_and(Result::is_err) {
            state.phase = Phase::Done;
        }
        item.map(|item| (item, state))
    });
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
}

enum Phase {
    /// Reading the first rows, kept with their group ids.
    Probe(Vec<(RecordBatch, Vec<usize>)>),
    /// Grouping the rows here.
    Aggregate,
    /// Handed to DataFusion's aggregation.
    Delegated(SendableRecordBatchStream),
    Done,
}

struct State {
    phase: Phase,
    input: Option<SendableRecordBatchStream>,
    group: Arc<dyn PhysicalExpr>,
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    accumulators: Vec<Accumulator>,
    groups: StringGroups,
    ids: Vec<usize>,
    /// The keys of a batch aggregated by key, with their groups and rows
    /// ([`StringGroups::count_dictionary`]).
    counted: Vec<KeyRows>,
    reservation: MemoryReservation,
    batch_size: usize,
    reduce_check: ReduceCheck,
    /// Whether [`ReduceCheck`] is still to be made (a column of many values).
    pending_check: bool,
    /// Rows grouped here.
    rows_read: usize,
    /// Groups emitted before the current ones.
    groups_emitted: usize,
    output: VecDeque<RecordBatch>,
    schema: SchemaRef,
    plan: Plan,
}

impl State {
    async fn next(&mut self) -> Option<Result<RecordBatch>> {
        loop {
            if let Some(batch) = self.output.pop_front() {
                self.plan.metrics.record_output(batch.num_rows());
                return Some(Ok(batch));
            }
            match &mut self.phase {
                Phase::Done => {
                    self.plan.metrics.done();
                    return None;
                }
                Phase::Delegated(stream) => {
                    let item = stream.next().await;
                    match &item {
                        Some(Ok(batch)) => self.plan.metrics.record_output(batch.num_rows()),
                        Some(Err(_)) => {}
                        None => self.plan.metrics.done(),
                    }
                    return item;
                }
                Phase::Probe(_) | Phase::Aggregate => {}
            }
            let next = match self.input.as_mut() {
                Some(input) => input.next().await,
                None => None,
            };
            if let Err(e) = self.step(next) {
                return Some(Err(e));
            }
        }
    }

    /// Takes the input's next item (`None`: the input has ended).
    fn step(&mut self, next: Option<Result<RecordBatch>>) -> Result<()> {
        let time = self.plan.metrics.elapsed_compute().clone();
        let timer = time.timer();
        let result = match next {
            Some(batch) => batch.and_then(|batch| self.take(batch)),
            None => self.end(),
        };
        timer.done();
        result
    }

    fn take(&mut self, batch: RecordBatch) -> Result<()> {
        if !matches!(self.phase, Phase::Probe(_) | Phase::Aggregate) {
            return Ok(());
        }
        let column = group_values(&self.group, &batch)?;
        if let GroupColumn::Dictionary(values) = &column
            && self.aggregate_by_key(&batch, values)?
        {
            self.plan.counted_by_key.add(batch.num_rows());
            return self.aggregated(batch.num_rows());
        }
        let mut ids = std::mem::take(&mut self.ids);
        match column {
            GroupColumn::Views(values) => self.groups.intern(&values, &mut ids),
            GroupColumn::Dictionary(values) => self.groups.intern_dictionary(&values, &mut ids),
        }
        .map_err(group_error)?;
        if let Phase::Probe(probed) = &mut self.phase {
            probed.push((batch, ids));
            let rows: usize = probed.iter().map(|(b, _)| b.num_rows()).sum();
            return if rows >= PROBE_ROWS {
                self.decide()
            } else {
                Ok(())
            };
        }
        let updated = self.update(&batch, &ids);
        self.ids = ids;
        updated?;
        self.aggregated(batch.num_rows())
    }

    /// When every aggregate is a row count or one [`by_key`] takes, and the probe is over:
    /// aggregates the batch (whose group column is `values`) by key, without a group id per
    /// row. `false` (nothing aggregated) when the batch does not lend itself to it (an argument
    /// with nulls, [`StringGroups::count_dictionary`]'s cases): it takes the ids' way.
    fn aggregate_by_key(
        &mut self,
        batch: &RecordBatch,
        values: &DictionaryArray<Int32Type>,
    ) -> Result<bool> {
        if !matches!(self.phase, Phase::Aggregate)
            || !StringGroups::counts_by_key(values)
            || !self
                .accumulators
                .iter()
                .all(|a| matches!(a, Accumulator::Rows(_) | Accumulator::Keyed(_)))
        {
            return Ok(false);
        }
        // Every argument first: a batch one aggregate cannot take is left whole to the ids.
        let mut arguments = Vec::with_capacity(self.accumulators.len());
        for (accumulator, expressions) in self.accumulators.iter().zip(&self.arguments) {
            let Accumulator::Keyed(keyed) = accumulator else {
                arguments.push(None);
                continue;
            };
            let [expression] = expressions.as_slice() else {
                return internal_err!("an aggregate by key with {} arguments", expressions.len());
            };
            let argument = expression.evaluate(batch)?.into_array(batch.num_rows())?;
            if !keyed.takes(argument.as_ref()) {
                return Ok(false);
            }
            arguments.push(Some(argument));
        }
        if !self
            .groups
            .count_dictionary(values, &mut self.counted)
            .map_err(group_error)?
        {
            return Ok(false);
        }
        let total = self.groups.len();
        let keys = values.keys().values();
        let dictionary_len = values.values().len();
        for (accumulator, argument) in self.accumulators.iter_mut().zip(arguments) {
            match (accumulator, argument) {
                (Accumulator::Rows(rows), _) => rows.add_counts(&self.counted, total)?,
                (Accumulator::Keyed(keyed), Some(argument)) => {
                    keyed.add(
                        argument.as_ref(),
                        keys,
                        dictionary_len,
                        &self.counted,
                        total,
                    )?;
                }
                _ => return internal_err!("an aggregate by key without its argument"),
            }
        }
        Ok(true)
    }

    /// After `rows` more rows were aggregated: the check that grouping reduces the rows, and
    /// the memory the groups hold.
    fn aggregated(&mut self, rows: usize) -> Result<()> {
        self.rows_read += rows;
        if self.pending_check && self.rows_read >= self.reduce_check.rows {
            self.pending_check = false;
            let groups = self.groups_emitted + self.groups.len();
            if groups as f64 >= self.reduce_check.ratio * self.rows_read as f64 {
                return self.hand_back_the_rest();
            }
        }
        self.fit_memory()
    }

    fn end(&mut self) -> Result<()> {
        if matches!(self.phase, Phase::Probe(_)) {
            self.decide()?;
        }
        if matches!(self.phase, Phase::Aggregate) {
            self.emit()?;
            self.phase = Phase::Done;
        }
        Ok(())
    }

    /// After the probe: group here, or hand the rows read and the rest to DataFusion.
    fn decide(&mut self) -> Result<()> {
        let Phase::Probe(probed) = std::mem::replace(&mut self.phase, Phase::Aggregate) else {
            return Ok(());
        };
        let rows: usize = probed.iter().map(|(b, _)| b.num_rows()).sum();
        let groups = self.groups.len();
        let few = groups * FEW_PER_ROWS <= rows.max(FEW_PER_ROWS);
        if !few && let Some(views) = self.plan.views.take() {
            // A column of many values gains nothing from its dictionary (each chunk's holds
            // about as many values as rows) and costs building it: this partition starts again
            // from the aggregation's own input, its probed rows dropped unaggregated.
            self.input = Some(views.execute(self.plan.partition, Arc::clone(&self.plan.context))?);
            self.groups = StringGroups::default();
            self.phase = Phase::Probe(Vec::new());
            self.plan.read_as_views.add(1);
            return Ok(());
        }
        if few || self.groups.long_len() * LONG_AT_MOST_ONE_IN <= groups {
            if !few {
                self.groups.skip_table();
                self.pending_check = true;
            }
            // The ids were all given before any is aggregated: the groups may start afresh
            // (`fit_memory`) only once every probed row is in.
            for (batch, ids) in &probed {
                self.update(batch, ids)?;
            }
            self.rows_read = rows;
            return self.fit_memory();
        }
        self.groups = StringGroups::default();
        self.hand_back(|input| {
            let schema = input.schema();
            let batches = probed.into_iter().map(|(batch, _)| Ok(batch));
            let replay = futures::stream::iter(batches).chain(input);
            Box::pin(RecordBatchStreamAdapter::new(schema, replay))
        })
    }

    /// The groups so far into the output, and the rest of the input to DataFusion's partial
    /// aggregation (which will find, as here, that aggregating does not reduce the rows).
    fn hand_back_the_rest(&mut self) -> Result<()> {
        self.emit()?;
        self.hand_back(|input| input)
    }

    /// The rest of the input (as `replay` makes it) to DataFusion's partial aggregation.
    fn hand_back(
        &mut self,
        replay: impl FnOnce(SendableRecordBatchStream) -> SendableRecordBatchStream,
    ) -> Result<()> {
        let input = self
            .input
            .take()
            .ok_or_else(|| internal_datafusion_err!("a string grouping's input taken twice"))?;
        let rows = as_aggregated(&self.plan, replay(input))?;
        self.phase = Phase::Delegated(delegate(&self.plan, rows)?);
        self.plan.handed_back.add(1);
        Ok(())
    }

    fn update(&mut self, batch: &RecordBatch, ids: &[usize]) -> Result<()> {
        let total = self.groups.len();
        for ((accumulator, arguments), filter) in self
            .accumulators
            .iter_mut()
            .map(Accumulator::as_dyn)
            .zip(&self.arguments)
            .zip(&self.filters)
        {
            let values = arguments
                .iter()
                .map(|expr| expr.evaluate(batch)?.into_array(batch.num_rows()))
                .collect::<Result<Vec<ArrayRef>>>()?;
            let filter = filter
                .as_ref()
                .map(|expr| expr.evaluate(batch)?.into_array(batch.num_rows()))
                .transpose()?;
            let filter: Option<&BooleanArray> = filter.as_ref().map(|f| f.as_boolean());
            accumulator.update_batch(&values, ids, filter, total)?;
        }
        Ok(())
    }

    /// Emits every group when the memory pool refuses what they hold (a partial aggregation
    /// may emit early: the final one merges the states). The group ids start afresh then, so
    /// no id given before may be aggregated after.
    fn fit_memory(&mut self) -> Result<()> {
        let size = self.groups.size()
            + self
                .accumulators
                .iter_mut()
                .map(Accumulator::size)
                .sum::<usize>();
        if self.reservation.try_resize(size).is_err() {
            self.emit()?;
        }
        Ok(())
    }

    /// Every group's state into the output, and a fresh start.
    fn emit(&mut self) -> Result<()> {
        if self.groups.len() == 0 {
            return Ok(());
        }
        self.groups_emitted += self.groups.len();
        let mut columns: Vec<ArrayRef> = vec![Arc::new(self.groups.take())];
        for accumulator in &mut self.accumulators {
            columns.extend(accumulator.as_dyn().state(EmitTo::All)?);
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = self.batch_size.min(batch.num_rows() - offset);
            self.output.push_back(batch.slice(offset, len));
            offset += len;
        }
        self.reservation.try_resize(0)?;
        Ok(())
    }
}

/// An aggregate's accumulator; a row count is kept as itself, and an aggregate [`by_key`]
/// takes with what that needs, so that a batch read as a dictionary can be aggregated by key.
enum Accumulator {
    Rows(RowCount),
    Keyed(Keyed),
    Other(Box<dyn GroupsAccumulator>),
}

impl Accumulator {
    fn as_dyn(&mut self) -> &mut dyn GroupsAccumulator {
        match self {
            Self::Rows(rows) => rows,
            Self::Keyed(keyed) => keyed.inner(),
            Self::Other(other) => other.as_mut(),
        }
    }

    /// The memory it holds.
    fn size(&mut self) -> usize {
        match self {
            Self::Keyed(keyed) => keyed.size(),
            other => other.as_dyn().size(),
        }
    }
}

/// A batch's group column: string views, or a dictionary of strings.
enum GroupColumn {
    Views(StringViewArray),
    Dictionary(DictionaryArray<Int32Type>),
}

fn group_values(group: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Result<GroupColumn> {
    let array = group.evaluate(batch)?.into_array(batch.num_rows())?;
    if let Some(views) = array.as_string_view_opt() {
        return Ok(GroupColumn::Views(views.clone()));
    }
    if let Some(dictionary) = array.as_dictionary_opt::<Int32Type>() {
        return Ok(GroupColumn::Dictionary(dictionary.clone()));
    }
    internal_err!(
        "group column is {}, not Utf8View or a dictionary",
        array.data_type()
    )
}

fn group_error(e: GroupError) -> DataFusionError {
    match e {
        GroupError::TooMany => DataFusionError::ResourcesExhausted(
            "more than 4294967295 groups in one partition".into(),
        ),
        GroupError::BadKey => internal_datafusion_err!("a dictionary key outside its dictionary"),
        GroupError::NotStrings => internal_datafusion_err!("a dictionary of other than strings"),
    }
}

/// `rows` in the schema of the replaced aggregation's input: a group column read as a
/// dictionary is cast back to string views (what DataFusion's aggregation was planned for).
fn as_aggregated(
    plan: &Plan,
    rows: SendableRecordBatchStream,
) -> Result<SendableRecordBatchStream> {
    let Some(aggregate) = plan.inner.downcast_ref::<AggregateExec>() else {
        return internal_err!("StringGroupAggregateExec wraps {}", plan.inner.name());
    };
    let schema = aggregate.input().schema();
    if rows.schema().fields() == schema.fields() {
        return Ok(rows);
    }
    let target = Arc::clone(&schema);
    let cast = rows.map(move |batch| {
        let batch = batch?;
        let columns = batch
            .columns()
            .iter()
            .zip(target.fields())
            .map(|(column, field)| {
                if column.data_type() == field.data_type() {
                    Ok(Arc::clone(column))
                } else {
                    arrow::compute::cast(column, field.data_type())
                }
            })
            .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
        Ok(RecordBatch::try_new(Arc::clone(&target), columns)?)
    });
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, cast)))
}

/// DataFusion's partial aggregation of `input` (this partition's rows not aggregated here).
fn delegate(plan: &Plan, input: SendableRecordBatchStream) -> Result<SendableRecordBatchStream> {
    let source = StreamingTableExec::try_new(
        input.schema(),
        vec![Arc::new(OneShot {
            schema: input.schema(),
            stream: Mutex::new(Some(input)),
        })],
        None,
        Vec::new(),
        false,
        None,
    )?;
    let aggregate = Arc::clone(&plan.inner).replace_children(
        vec![Arc::new(source)],
        ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
    )?;
    aggregate.execute(0, Arc::clone(&plan.context))
}

/// A partition stream that can be executed once: the replayed input of a delegated aggregation.
struct OneShot {
    schema: SchemaRef,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl std::fmt::Debug for OneShot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneShot")
    }
}

impl PartitionStream for OneShot {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self.stream.lock().ok().and_then(|mut s| s.take());
        match taken {
            Some(stream) => stream,
            None => {
                let error = internal_datafusion_err!("a string grouping's input executed twice");
                Box::pin(RecordBatchStreamAdapter::new(
                    Arc::clone(&self.schema),
                    futures::stream::once(async move { Err(error) }),
                ))
            }
        }
    }
}
