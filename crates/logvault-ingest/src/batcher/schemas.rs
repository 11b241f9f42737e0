//! The schema of a segment made of batches parsed at different times: the union of their
//! columns, each of the widest kind (a column that was `Int` and is now `Float` is `Float`);
//! batches aligned to it (cast, and null where a batch lacks a column).
//!
//! A column of a type outside the kinds (a declared schema's `Int32`, `Decimal128`, `Duration`)
//! keeps its field, and must have the same type in every batch that has it.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, new_null_array};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{Field, Schema, SchemaRef};

use crate::IngestError;
use crate::kind::{ColumnKind, SOURCE_TIME_ZONE_METADATA_KEY};
use crate::schema::column_field;

enum Column {
    Kind(ColumnKind, Option<String>),
    Fixed(Field),
}

/// The union of `schemas` (see the module documentation), columns in first-seen order.
///
/// # Errors
/// [`IngestError::Arrow`] for a column whose types cannot be joined.
pub(crate) fn union<'a>(
    table: &str,
    schemas: impl IntoIterator<Item = &'a SchemaRef>,
) -> Result<SchemaRef, IngestError> {
    let mut order: Vec<String> = Vec::new();
    let mut columns: BTreeMap<String, Column> = BTreeMap::new();
    for schema in schemas {
        for field in schema.fields() {
            let seen = match ColumnKind::of_field(field) {
                Some(kind) => Column::Kind(
                    kind,
                    field.metadata().get(SOURCE_TIME_ZONE_METADATA_KEY).cloned(),
                ),
                None => Column::Fixed(field.as_ref().clone()),
            };
            match (columns.get_mut(field.name()), seen) {
                (Some(Column::Kind(k, z)), Column::Kind(kind, zone)) => {
                    *k = k.widen(kind);
                    if z.is_none() {
                        *z = zone;
                    }
                }
                (Some(Column::Fixed(a)), Column::Fixed(b)) if a.data_type() == b.data_type() => {}
                (Some(_), _) => {
                    return Err(IngestError::arrow(
                        table,
                        format!(
                            "column {} has type {} in one batch and another type in another",
                            field.name(),
                            field.data_type()
                        ),
                    ));
                }
                (None, seen) => {
                    order.push(field.name().clone());
                    columns.insert(field.name().clone(), seen);
                }
            }
        }
    }
    let fields: Vec<Field> = order
        .iter()
        .filter_map(|name| {
            Some(match columns.get(name)? {
                Column::Kind(kind, zone) => column_field(name, *kind, zone.as_deref()),
                Column::Fixed(field) => field.clone(),
            })
        })
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

/// Whether rows of `part` can be written to a segment of `schema` as they are or aligned
/// (every column of `part` is in `schema`, with the same type or one it widens to).
pub(crate) fn fits(table: &str, schema: &SchemaRef, part: &SchemaRef) -> bool {
    union(table, [schema, part]).is_ok_and(|u| same_columns(&u, schema))
}

/// The same column names and types, in the same order (metadata aside).
pub(crate) fn same_columns(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

/// `batch` as rows of `schema`: columns cast to its types, missing ones null.
///
/// # Errors
/// [`IngestError::Arrow`] naming the table if a column does not cast.
pub(crate) fn align(
    table: &str,
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, IngestError> {
    if batch.schema() == *schema {
        return Ok(batch.clone());
    }
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(Arc::clone(c)),
            Some(c) => cast(c, f.data_type()),
            None => Ok(new_null_array(f.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<ArrayRef>, _>>()
        .map_err(|e| IngestError::arrow(table, e))?;
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| IngestError::arrow(table, e))
}

/// Concatenates batches whose schemas differ by growth and widening into one batch of their
/// union.
///
/// # Errors
/// As [`union`] and [`align`].
pub(crate) fn merge_batches(
    table: &str,
    batches: &[RecordBatch],
) -> Result<RecordBatch, IngestError> {
    if let Some(first) = batches.first()
        && batches.iter().all(|b| b.schema() == first.schema())
    {
        return concat_batches(&first.schema(), batches).map_err(|e| IngestError::arrow(table, e));
    }
    let schemas: Vec<SchemaRef> = batches.iter().map(RecordBatch::schema).collect();
    let schema = union(table, &schemas)?;
    let aligned = batches
        .iter()
        .map(|b| align(table, b, &schema))
        .collect::<Result<Vec<_>, _>>()?;
    concat_batches(&schema, &aligned).map_err(|e| IngestError::arrow(table, e))
}
