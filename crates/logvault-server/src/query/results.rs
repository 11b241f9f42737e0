//! A query's result as the query API's JSON, written batch by batch:
//! `{"tables":[{"name":"PrimaryResult","columns":[{"name","type"}],"rows":[[...],...]}]` then,
//! once the rows end, `"statistics"`, `"render"` and, for a partial result, `"error"`.
//! Because the error comes last, a result cut by the row limit, the time limit or a failure
//! while reading is still one valid document.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use logvault::kql_lang::format::column_json;
use logvault::kql_lang::{KustoColumn, KustoType};
use serde_json::{Value, json};

/// How a column's values are written.
#[derive(Debug, Clone)]
enum Writer {
    /// Through the KQL value conventions of its Kusto type.
    Kusto(KustoType),
    /// As text (a SQL result's type with no Kusto equivalent).
    Text,
}

/// The columns of a result and how each is written.
#[derive(Debug, Clone)]
pub(crate) struct ResultColumns {
    pub(crate) columns: Vec<KustoColumn>,
    writers: Vec<Writer>,
}

impl ResultColumns {
    /// A KQL result's columns.
    pub(crate) fn kusto(columns: Vec<KustoColumn>) -> Self {
        let writers = columns.iter().map(|c| Writer::Kusto(c.ty)).collect();
        Self { columns, writers }
    }

    /// A SQL result's columns, typed from their Arrow fields.
    pub(crate) fn of_fields(fields: &[Arc<Field>]) -> Self {
        let mut columns = Vec::with_capacity(fields.len());
        let mut writers = Vec::with_capacity(fields.len());
        for f in fields {
            let nested = matches!(
                f.data_type(),
                DataType::List(_)
                    | DataType::LargeList(_)
                    | DataType::FixedSizeList(..)
                    | DataType::Struct(_)
                    | DataType::Map(..)
            );
            let ty = KustoType::of_field(f).filter(|_| !nested);
            let (ty, writer) = match ty {
                Some(ty) => (ty, Writer::Kusto(ty)),
                None => (KustoType::String, Writer::Text),
            };
            columns.push(KustoColumn {
                name: f.name().clone(),
                ty,
            });
            writers.push(writer);
        }
        Self { columns, writers }
    }

    /// The head of the document, up to the first row.
    pub(crate) fn head(&self) -> String {
        let columns = serde_json::to_string(&self.columns).unwrap_or_else(|_| "[]".into());
        format!(r#"{{"tables":[{{"name":"PrimaryResult","columns":{columns},"rows":["#)
    }

    fn column_values(&self, i: usize, array: &ArrayRef) -> Result<Vec<Value>, String> {
        match &self.writers[i] {
            Writer::Kusto(ty) => column_json(array, *ty).map_err(|e| e.to_string()),
            Writer::Text => {
                let options = FormatOptions::default().with_null("");
                let formatter =
                    ArrayFormatter::try_new(array.as_ref(), &options).map_err(|e| e.to_string())?;
                Ok((0..array.len())
                    .map(|r| Value::String(formatter.value(r).to_string()))
                    .collect())
            }
        }
    }

    /// Appends at most `max_rows` rows of `batch` to `out` (each preceded by a comma unless it
    /// is the first row of the result); returns how many.
    pub(crate) fn write_rows(
        &self,
        batch: &RecordBatch,
        first_row: bool,
        max_rows: usize,
        out: &mut String,
    ) -> Result<usize, String> {
        let n = batch.num_rows().min(max_rows);
        if n == 0 {
            return Ok(0);
        }
        let batch = batch.slice(0, n);
        let mut columns = Vec::with_capacity(self.columns.len());
        for (i, array) in batch.columns().iter().enumerate().take(self.columns.len()) {
            columns.push(self.column_values(i, array)?);
        }
        for r in 0..n {
            if r > 0 || !first_row {
                out.push(',');
            }
            out.push('[');
            for (c, values) in columns.iter().enumerate() {
                if c > 0 {
                    out.push(',');
                }
                out.push_str(&values.get(r).unwrap_or(&Value::Null).to_string());
            }
            out.push(']');
        }
        Ok(n)
    }
}

/// Why a result is partial.
#[derive(Debug, Clone)]
pub(crate) enum Cut {
    /// The row limit.
    Rows(usize),
    /// The result's size limit.
    Bytes(usize),
    /// The time limit, in seconds.
    Time(u64),
    /// Reading failed after some rows were sent.
    Failed(String),
}

/// The `error` object of a partial result (its top code is `PartialError`, which the SDKs turn
/// into `LogsQueryPartialResult`).
pub(crate) fn partial_error(cut: &Cut) -> Value {
    let (code, inner_code, message) = match cut {
        Cut::Rows(n) => (
            "EngineError",
            "E_QUERY_RESULT_SET_TOO_LARGE",
            format!(
                "Query result set has exceeded the internal record count limit {n} records; \
                 the first {n} rows are returned (reduce the result with summarize, project or \
                 take)"
            ),
        ),
        Cut::Bytes(n) => (
            "EngineError",
            "E_QUERY_RESULT_SET_TOO_LARGE",
            format!(
                "Query result set has exceeded the internal data size limit {n} bytes; the rows \
                 before it are returned"
            ),
        ),
        Cut::Time(s) => (
            "EngineError",
            "E_QUERY_TIMEOUT",
            format!(
                "Query execution has exceeded the allowed time limit of {s} seconds; the rows \
                 read until then are returned (ask for more time with Prefer: wait=N, up to 600)"
            ),
        ),
        Cut::Failed(e) => ("EngineError", "E_QUERY_EXECUTION_FAILED", e.clone()),
    };
    json!({
        "code": "PartialError",
        "message": "There were some errors when processing your query.",
        "details": [{
            "code": code,
            "message": message,
            "innererror": { "code": inner_code, "message": message },
        }],
    })
}

/// The end of the document after the rows: the table closes, then statistics, render and the
/// partial error, each if present.
pub(crate) fn tail(
    statistics: Option<Value>,
    render: Option<Value>,
    error: Option<Value>,
) -> String {
    let mut out = String::from("]}]");
    for (key, value) in [
        ("statistics", statistics),
        ("render", render),
        ("error", error),
    ] {
        if let Some(v) = value {
            out.push_str(&format!(",\"{key}\":{v}"));
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow::array::{Int64Array, ListArray, StringArray};
    use arrow::datatypes::{Int32Type, Schema};

    #[test]
    fn a_cut_result_is_still_one_document_the_sdk_reads_as_partial() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new(
                "l",
                DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true))),
                true,
            ),
        ]));
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1)]),
            None,
            Some(vec![]),
        ]);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("c\"")])),
                Arc::new(list),
            ],
        )
        .unwrap();
        let cols = ResultColumns::of_fields(schema.fields());
        assert_eq!(cols.columns[2].ty, KustoType::String);
        let mut doc = cols.head();
        let n = cols.write_rows(&batch, true, 2, &mut doc).unwrap();
        assert_eq!(n, 2);
        doc.push_str(&tail(None, None, Some(partial_error(&Cut::Rows(2)))));
        let v: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(
            v["tables"][0]["columns"][0],
            json!({"name": "n", "type": "long"})
        );
        assert_eq!(
            v["tables"][0]["rows"],
            json!([[1, "a", "[1]"], [null, "", ""]])
        );
        assert_eq!(v["error"]["code"], "PartialError");
        assert_eq!(
            v["error"]["details"][0]["innererror"]["code"],
            "E_QUERY_RESULT_SET_TOO_LARGE"
        );
    }
}
