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
