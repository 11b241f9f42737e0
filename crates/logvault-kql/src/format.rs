//! Kusto values out of Arrow: JSON in the Log Analytics query API's conventions (datetime as
//! ISO 8601 UTC ending in `Z`, timespan as `[-][d.]hh:mm:ss[.fffffff]`, dynamic as JSON,
//! numbers as numbers, a missing string as `""`).

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};

use crate::error::KqlError;
use crate::types::{KustoColumn, KustoType};
use crate::udf::value::{Val, read_column, real_json};

/// The cells of one column as JSON values.
///
/// # Errors
/// When the column does not hold values of its Kusto type.
pub fn column_json(array: &ArrayRef, ty: KustoType) -> Result<Vec<Value>, KqlError> {
    Ok(read_column(array, ty)?
        .into_iter()
        .map(|v| value_json(&v, ty))
        .collect())
}

/// One value as the query API gives it.
pub fn value_json(v: &Val, ty: KustoType) -> Value {
    match (v, ty) {
        (Val::Null, KustoType::String) => Value::String(String::new()),
        (Val::Null, _) => Value::Null,
        (Val::Real(x), _) => real_json(*x),
        (Val::Dynamic(d), _) => d.clone(),
        (other, _) => other.to_json(),
    }
}

/// The rows of `batch` as JSON objects keyed by column name (`schema` gives the Kusto types,
/// in the batch's column order).
///
/// # Errors
/// As [`column_json`].
pub fn batch_rows(batch: &RecordBatch, schema: &[KustoColumn]) -> Result<Vec<Value>, KqlError> {
    let mut columns = Vec::with_capacity(schema.len());
    for (i, c) in schema.iter().enumerate() {
        columns.push(column_json(batch.column(i), c.ty)?);
    }
    let mut rows = Vec::with_capacity(batch.num_rows());
    for r in 0..batch.num_rows() {
        let mut obj = Map::new();
        for (c, col) in schema.iter().zip(&columns) {
            obj.insert(c.name.clone(), col.get(r).cloned().unwrap_or(Value::Null));
        }
        rows.push(Value::Object(obj));
    }
    Ok(rows)
}

/// One value as text for a table display (`tostring`'s form; null as empty).
pub fn value_text(v: &Val) -> String {
    v.to_text()
}

/// `batch` with every column as text in Kusto's display form (`tostring`), for tables and
/// CSV: datetimes `2024-01-01T00:00:00Z`, timespans `1.02:03:04`, dynamic values as JSON.
///
/// # Errors
/// As [`column_json`].
pub fn display_batch(batch: &RecordBatch, schema: &[KustoColumn]) -> Result<RecordBatch, KqlError> {
    use std::sync::Arc;

    use arrow::array::StringBuilder;
    use arrow::datatypes::{DataType, Field, Schema};

    let mut fields = Vec::with_capacity(schema.len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.len());
    for (i, c) in schema.iter().enumerate() {
        let values = read_column(batch.column(i), c.ty)?;
        let mut b = StringBuilder::with_capacity(values.len(), values.len() * 8);
        for v in &values {
            match v {
                Val::Null if c.ty != KustoType::String => b.append_null(),
                other => b.append_value(value_text(other)),
            }
        }
        fields.push(Field::new(c.name.clone(), DataType::Utf8, true));
        columns.push(Arc::new(b.finish()));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// The rows of `batch` as JSON object texts whose keys keep the result's column order.
///
/// # Errors
/// As [`column_json`].
pub fn batch_row_texts(
    batch: &RecordBatch,
    schema: &[KustoColumn],
) -> Result<Vec<String>, KqlError> {
    let mut columns = Vec::with_capacity(schema.len());
    for (i, c) in schema.iter().enumerate() {
        columns.push(column_json(batch.column(i), c.ty)?);
    }
    let keys: Vec<String> = schema
        .iter()
        .map(|c| Value::String(c.name.clone()).to_string())
        .collect();
    let mut rows = Vec::with_capacity(batch.num_rows());
    for r in 0..batch.num_rows() {
        let mut text = String::from("{");
        for (k, (key, col)) in keys.iter().zip(&columns).enumerate() {
            if k > 0 {
                text.push(',');
            }
            text.push_str(key);
            text.push(':');
            text.push_str(&col.get(r).unwrap_or(&Value::Null).to_string());
        }
        text.push('}');
        rows.push(text);
    }
    Ok(rows)
}
