//! The group column of a string grouping read from segments as a dictionary.
//!
//! Parquet stores a column of few values (`Level`, `Host`, a result code) as a dictionary page
//! and, per row, an index into it. Read as string views, every row becomes a 16-byte view that
//! the grouping then looks up in its table. Read as an Arrow dictionary (`Int32` keys into the
//! chunk's values), the grouping looks each distinct value up once per column chunk and each row
//! costs an index ([`super::keys::StringGroups::intern_dictionary`]); no view is built.
//!
//! The type is visible only between the scan and the grouping: [`scan`] gives a copy of the
//! partial aggregation's Parquet scan whose group column is `Dictionary(Int32, Utf8)`, which
//! only [`super::StringGroupAggregateExec`] reads; every operator above it sees the aggregation's
//! output as before (string views). It needs each file's Arrow schema up front
//! (`PartitionedFile::arrow_schema`, which the segment provider sets from the catalog for the
//! scans its process runs): the copy asks the Parquet reader for the dictionary type through it.
//!
//! From the memory tier, which holds a column of few values as a dictionary beside its views
//! (`logvault_cache::HotSegment::reads_as_dictionary`), the copy is a memory source of those
//! dictionaries in the same partitions ([`HotScanExec::with_dictionary`]), under the filter
//! the scan had if that filter does not read the group column.
//!
//! A column of many values gains nothing from it: each chunk's dictionary holds about as many
//! values as the chunk has rows, and the reader builds a dictionary array of them (itself, by
//! hashing, for chunks the writer stored in plain pages past its dictionary limit). A distinct
//! count of the suite's `UserId` at 10M rows took 43-58 ms read as a dictionary against 39-42 as
//! views. So a partition whose probe finds many values starts again from the aggregation's own
//! input (views), dropping the one batch it probed ([`super::stream`], `read_as_views`).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::physical_plan::FileSource as _;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::union::UnionExec;

use crate::hot_scan::HotScanExec;

/// The type the group column is read as.
pub(crate) fn dictionary_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// `input` (a partial aggregation's input) with the column `group` reads read as a dictionary,
/// when `input` is a Parquet scan that can: a plain column of string views, not in the scan's
/// pushed-down predicate, every file's Arrow schema known, the encryption factory (if the scan
/// names one) registered in `runtime`. `None` otherwise: the grouping reads `input` as it is.
pub(crate) fn scan(
    input: &Arc<dyn ExecutionPlan>,
    group: &Arc<dyn PhysicalExpr>,
    runtime: &RuntimeEnv,
) -> Option<Arc<dyn ExecutionPlan>> {
    if let Some(union) = input.downcast_ref::<UnionExec>() {
        // The union's partitions are its inputs' in turn: a copy of each keeps them in place.
        let copies = union
            .inputs()
            .iter()
            .map(|i| scan(i, group, runtime))
            .collect::<Option<Vec<_>>>()?;
        return UnionExec::try_new(copies).ok();
    }
    let output = group.downcast_ref::<Column>()?.index();
    if let Some(copy) = hot(input, output) {
        return Some(copy);
    }
    let exec = input.downcast_ref::<DataSourceExec>()?;
    let (config, parquet) = exec.downcast_to_file_source::<ParquetSource>()?;
    let table = parquet.table_schema();
    if !table.table_partition_cols().is_empty() {
        return None;
    }
    let projection = parquet.projection()?;
    let column = projection
        .iter()
        .nth(output)?
        .expr
        .downcast_ref::<Column>()?
        .index();
    let schema = table.table_schema();
    let field = schema.fields().get(column)?;
    if field.data_type() != &DataType::Utf8View {
        return None;
    }
    let name = field.name();
    let predicate = parquet.filter();
    if let Some(predicate) = &predicate
        && collect_columns(predicate).iter().any(|c| c.name() == name)
    {
        return None;
    }
    let mut groups = Vec::with_capacity(config.file_groups.len());
    for group in &config.file_groups {
        let mut files = Vec::with_capacity(group.len());
        for file in group.iter() {
            let mut file = file.clone();
            file.arrow_schema = Some(as_dictionary(file.arrow_schema.as_ref()?, name)?);
            files.push(file);
        }
        let mut copy = FileGroup::new(files);
        if let Some(statistics) = group.file_statistics(None) {
            copy = copy.with_statistics(Arc::new(statistics.clone()));
        }
        groups.push(copy);
    }
    let options = parquet.table_parquet_options().clone();
    let encryption = match &options.crypto.factory_id {
        Some(id) => Some(runtime.parquet_encryption_factory(id).ok()?),
        None => None,
    };
    let read = with_dictionary_at(schema, column)?;
    let mut source = ParquetSource::new(read).with_table_parquet_options(options);
    if let Some(factory) = encryption {
        source = source.with_encryption_factory(factory);
    }
    if let Some(readers) = parquet.parquet_file_reader_factory() {
        source = source.with_parquet_file_reader_factory(Arc::clone(readers));
    }
    if let Some(predicate) = &predicate {
        source = source.with_predicate(Arc::clone(predicate));
    }
    let source = source.try_pushdown_projection(projection).ok()??;
    let copy = FileScanConfigBuilder::from(config.clone())
        .with_source(source)
        .with_file_groups(groups)
        .build();
    let copy: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(copy);
    let read_as = copy.schema().fields().get(output)?.data_type().clone();
    (read_as == dictionary_type() && copy.schema().fields().len() == input.schema().fields().len())
        .then_some(copy)
}

/// `plan` (a partial aggregation's input) set to keep each partition's own rows in order
/// (`ExecutionPlan::with_preserve_order`), through a union of the memory tier's scan and the
/// segments' (which DataFusion's union does not pass on); `None` if a part cannot.
pub(crate) fn preserve_order(plan: &Arc<dyn ExecutionPlan>) -> Option<Arc<dyn ExecutionPlan>> {
    let Some(union) = plan.downcast_ref::<UnionExec>() else {
        return plan.with_preserve_order(true);
    };
    let inputs = union
        .inputs()
        .iter()
        .map(preserve_order)
        .collect::<Option<Vec<_>>>()?;
    UnionExec::try_new(inputs).ok()
}

/// `input` (a scan of the memory tier, or a filter right above one that does not read the
/// group column) with the column at `output` read as the dictionary the tier holds of it
/// ([`HotScanExec::with_dictionary`]); `None` otherwise.
fn hot(input: &Arc<dyn ExecutionPlan>, output: usize) -> Option<Arc<dyn ExecutionPlan>> {
    if let Some(scan) = input.downcast_ref::<HotScanExec>() {
        return scan.with_dictionary(output, &with_dictionary_at(&scan.schema(), output)?);
    }
    let filter = input.downcast_ref::<FilterExec>()?;
    let scan = filter.input().downcast_ref::<HotScanExec>()?;
    let column = match filter.projection() {
        Some(projection) => *projection.get(output)?,
        None => output,
    };
    if collect_columns(filter.predicate())
        .iter()
        .any(|c| c.index() == column)
    {
        return None;
    }
    let copy = scan.with_dictionary(column, &with_dictionary_at(&scan.schema(), column)?)?;
    Arc::clone(input)
        .replace_children(
            vec![copy],
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
        .ok()
}

/// `schema` (a file's) with its string column `name` as a dictionary; `schema` itself when it
/// has no such column; `None` when the column is not a string.
fn as_dictionary(schema: &SchemaRef, name: &str) -> Option<SchemaRef> {
    let Ok(index) = schema.index_of(name) else {
        return Some(Arc::clone(schema));
    };
    match schema.field(index).data_type() {
        DataType::Utf8 | DataType::Utf8View => with_dictionary_at(schema, index),
        // Read as a dictionary already, for a filter (`crate::view_eq::dictionary`).
        t if t == &dictionary_type() => Some(Arc::clone(schema)),
        _ => None,
    }
}

/// `schema` with its field `index` typed [`dictionary_type`].
fn with_dictionary_at(schema: &SchemaRef, index: usize) -> Option<SchemaRef> {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let slot = fields.get_mut(index)?;
    *slot = slot.clone().with_data_type(dictionary_type());
    Some(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}
