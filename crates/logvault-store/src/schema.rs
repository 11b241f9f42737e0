//! A table's schema across its segments.
//!
//! Segments written before a table's schema grew have fewer columns, or a column of a narrower
//! type. The table's schema is the union of its segments' columns, in the order they first
//! appear; a column whose type differs between segments takes the type both widen to (the same
//! rule as ingestion: integers and floats widen to Float64, anything else to Utf8). Every column
//! is nullable, since older segments lack newer columns. DataFusion's Parquet reader fills missing
//! columns with nulls and casts narrower types when it reads an older segment.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{RecordBatch, new_null_array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The type two segments' columns widen to.
pub fn widen(a: &DataType, b: &DataType) -> DataType {
    use DataType as T;
    match (a, b) {
        _ if a == b => a.clone(),
        (T::Null, other) | (other, T::Null) => other.clone(),
        (x, y) if x.is_integer() && y.is_integer() => T::Int64,
        (x, y) if x.is_numeric() && y.is_numeric() => T::Float64,
        (T::Timestamp(_, _), T::Timestamp(_, _)) => {
            T::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        _ => T::Utf8,
    }
}

/// The union of `schemas`, with conflicting types widened.
pub fn merge<'a>(schemas: impl IntoIterator<Item = &'a SchemaRef>) -> SchemaRef {
    let mut order: Vec<String> = Vec::new();
    let mut fields: HashMap<String, (DataType, HashMap<String, String>)> = HashMap::new();
    for schema in schemas {
        for f in schema.fields() {
            match fields.get_mut(f.name()) {
                Some((t, _)) => *t = widen(t, f.data_type()),
                None => {
                    order.push(f.name().clone());
                    fields.insert(
                        f.name().clone(),
                        (f.data_type().clone(), f.metadata().clone()),
                    );
                }
            }
        }
    }
    Arc::new(Schema::new(
        order
            .into_iter()
            .filter_map(|name| {
                fields
                    .remove(&name)
                    .map(|(t, metadata)| Field::new(name, t, true).with_metadata(metadata))
            })
            .collect::<Vec<_>>(),
    ))
}

/// `batch` with `schema`'s columns (a segment's rows as a wider schema, such as a merge's): a
/// column it lacks is null, one of another type is cast (to the type both widen to).
///
/// # Errors
/// A column that does not cast.
pub fn conform(
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(Arc::clone(c)),
            Some(c) => arrow::compute::cast(c, f.data_type()),
            None => Ok(new_null_array(f.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns)
}

/// `schema` as queries see it: string columns as string views (`Utf8View`), DataFusion's own
/// choice for Parquet. The Parquet reader builds views straight from the pages, and grouping
/// and comparing short strings is faster on views; segments keep `Utf8` on disk.
pub fn view_types(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 => {
                f.as_ref().clone().with_data_type(DataType::Utf8View)
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_keeps_first_order_and_widens() {
        let a = Arc::new(Schema::new(vec![
            Field::new(
                "TimeGenerated",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("Count", DataType::Int64, false),
            Field::new("Code", DataType::Int64, true),
        ]));
        let b = Arc::new(Schema::new(vec![
            Field::new(
                "TimeGenerated",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("Extra", DataType::Boolean, true),
            Field::new("Count", DataType::Float64, true),
            Field::new("Code", DataType::Utf8, true),
        ]));
        let m = merge([&a, &b]);
        let names: Vec<_> = m.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["TimeGenerated", "Count", "Code", "Extra"]);
        assert_eq!(m.field(1).data_type(), &DataType::Float64);
        assert_eq!(m.field(2).data_type(), &DataType::Utf8);
        assert!(m.fields().iter().all(|f| f.is_nullable()));
    }

    #[test]
    fn view_types_turn_only_strings_into_views() {
        let a = Arc::new(Schema::new(vec![
            Field::new("Message", DataType::Utf8, true),
            Field::new("Big", DataType::LargeUtf8, true),
            Field::new("Count", DataType::Int64, true),
        ]));
        let v = view_types(&a);
        assert_eq!(v.field(0).data_type(), &DataType::Utf8View);
        assert_eq!(v.field(1).data_type(), &DataType::Utf8View);
        assert_eq!(v.field(2).data_type(), &DataType::Int64);
        assert_eq!(v.field(0).name(), "Message");
    }
}
