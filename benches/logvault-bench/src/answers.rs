//! Query answers in a form every system can produce, and their comparison.
//!
//! An answer is its column names and rows of [`Cell`]s. DataFusion's Arrow batches and DuckDB's
//! JSON rows are both turned into it, so that the harness can check that every system gave the
//! same answer before it compares their speed. Numbers compare by value (an `Int64` count equals
//! a `BIGINT` count, a float average equals another within a relative 1e-9, because summation
//! order differs between engines); everything else compares exactly.

use std::fmt;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type};

/// Relative tolerance for floating-point cells.
pub const FLOAT_TOLERANCE: f64 = 1e-9;

/// One value of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number (also decimals).
    Float(f64),
    /// Text (also any type without a better mapping, as Arrow formats it).
    Str(String),
}

impl Cell {
    fn number(&self) -> Option<f64> {
        match self {
            Self::Int(i) => Some(*i as f64),
            Self::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Whether two cells hold the same value (numbers within [`FLOAT_TOLERANCE`]).
    pub fn same(&self, other: &Cell) -> bool {
        match (self, other) {
            (Self::Int(a), Self::Int(b)) => a == b,
            (a, b) => match (a.number(), b.number()) {
                (Some(x), Some(y)) => {
                    x == y || (x - y).abs() <= FLOAT_TOLERANCE * x.abs().max(y.abs()).max(1.0)
                }
                _ => a == b,
            },
        }
    }

    /// A cell from a JSON value (DuckDB's runner prints rows as JSON).
    pub fn from_json(value: &serde_json::Value) -> Self {
        use serde_json::Value;
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Self::Int(i),
                None => Self::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => Self::Str(s.clone()),
            other => Self::Str(other.to_string()),
        }
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("NULL"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// A query's answer: column names and rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, in the query's order.
    pub rows: Vec<Vec<Cell>>,
}

impl Answer {
    /// The answer held by Arrow record batches.
    ///
    /// # Errors
    /// If a column cannot be read as any [`Cell`] (a cast to text fails).
    pub fn from_batches(batches: &[RecordBatch]) -> anyhow::Result<Self> {
        let mut answer = Self::default();
        let Some(first) = batches.first() else {
            return Ok(answer);
        };
        answer.columns = first
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for batch in batches {
            let columns: Vec<Vec<Cell>> = batch
                .columns()
                .iter()
                .map(|c| column_cells(c.as_ref()))
                .collect::<anyhow::Result<_>>()?;
            for row in 0..batch.num_rows() {
                answer
                    .rows
                    .push(columns.iter().map(|c| c[row].clone()).collect());
            }
        }
        Ok(answer)
    }

    /// The answer in DuckDB runner's JSON: `{"columns": [...], "rows": [[...], ...]}`.
    ///
    /// # Errors
    /// If the JSON lacks `columns` or `rows`.
    pub fn from_json(value: &serde_json::Value) -> anyhow::Result<Self> {
        let columns = value["columns"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("answer without columns: {value}"))?
            .iter()
            .map(|c| c.as_str().unwrap_or_default().to_owned())
            .collect();
        let rows = value["rows"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("answer without rows: {value}"))?
            .iter()
            .map(|r| {
                r.as_array()
                    .map(|cells| cells.iter().map(Cell::from_json).collect())
                    .unwrap_or_default()
            })
            .collect();
        Ok(Self { columns, rows })
    }

    /// How this answer differs from `expected`, or `None` if they are the same.
    pub fn difference(&self, expected: &Answer) -> Option<String> {
        if self.columns != expected.columns {
            return Some(format!(
                "columns {:?}, expected {:?}",
                self.columns, expected.columns
            ));
        }
        if self.rows.len() != expected.rows.len() {
            return Some(format!(
                "{} rows, expected {} (first row {}, expected {})",
                self.rows.len(),
                expected.rows.len(),
                show_row(self.rows.first()),
                show_row(expected.rows.first())
            ));
        }
        for (i, (got, want)) in self.rows.iter().zip(&expected.rows).enumerate() {
            let same = got.len() == want.len() && got.iter().zip(want).all(|(a, b)| a.same(b));
            if !same {
                return Some(format!(
                    "row {i} is {}, expected {}",
                    show_row(Some(got)),
                    show_row(Some(want))
                ));
            }
        }
        None
    }
}

fn show_row(row: Option<&Vec<Cell>>) -> String {
    match row {
        None => "(none)".into(),
        Some(cells) => {
            let parts: Vec<String> = cells.iter().map(ToString::to_string).collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

/// The cells of one Arrow column.
fn column_cells(array: &dyn Array) -> anyhow::Result<Vec<Cell>> {
    let cell_at = |i: usize, f: &dyn Fn(usize) -> Cell| {
        if array.is_null(i) { Cell::Null } else { f(i) }
    };
    let n = array.len();
    let cells = match array.data_type() {
        DataType::Boolean => {
            let a = array.as_boolean();
            (0..n)
                .map(|i| cell_at(i, &|i| Cell::Bool(a.value(i))))
                .collect()
        }
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => {
            let cast = arrow::compute::cast(array, &DataType::Int64)?;
            let a = cast.as_primitive::<Int64Type>();
            (0..n)
                .map(|i| cell_at(i, &|i| Cell::Int(a.value(i))))
                .collect()
        }
        DataType::UInt64
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => {
            let cast = arrow::compute::cast(array, &DataType::Float64)?;
            let a = cast.as_primitive::<Float64Type>();
            (0..n)
                .map(|i| cell_at(i, &|i| Cell::Float(a.value(i))))
                .collect()
        }
        _ => {
            let cast = arrow::compute::cast(array, &DataType::Utf8)?;
            let a = cast.as_string::<i32>();
            (0..n)
                .map(|i| cell_at(i, &|i| Cell::Str(a.value(i).to_owned())))
                .collect()
        }
    };
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray, UInt64Array};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("Level", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
            Field::new("avg", DataType::Float64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("ERROR"), None])),
                Arc::new(Int64Array::from(vec![3, 4])),
                Arc::new(Float64Array::from(vec![1.0 / 3.0, 2.5])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn arrow_and_json_answers_compare_equal() {
        let arrow = Answer::from_batches(&[batch()]).unwrap();
        let json = serde_json::json!({
            "columns": ["Level", "n", "avg"],
            "rows": [["ERROR", 3, 0.33333333333333337], [null, 4, 2.5]],
        });
        let duck = Answer::from_json(&json).unwrap();
        assert_eq!(arrow.rows[1][0], Cell::Null);
        assert_eq!(duck.difference(&arrow), None);
    }

    #[test]
    fn differences_are_found_and_described() {
        let arrow = Answer::from_batches(&[batch()]).unwrap();
        let mut other = arrow.clone();
        other.rows[0][1] = Cell::Int(4);
        let diff = other.difference(&arrow).unwrap();
        assert!(diff.contains("row 0"), "{diff}");

        let mut other = arrow.clone();
        other.rows.pop();
        assert!(
            other
                .difference(&arrow)
                .unwrap()
                .contains("1 rows, expected 2")
        );

        let mut other = arrow.clone();
        other.columns[1] = "count".into();
        assert!(other.difference(&arrow).unwrap().contains("columns"));

        let mut other = arrow.clone();
        other.rows[0][2] = Cell::Float(0.3334);
        assert!(other.difference(&arrow).is_some(), "beyond the tolerance");
        other.rows[0][2] = Cell::Float(1.0 / 3.0 + 1e-13);
        assert_eq!(other.difference(&arrow), None, "within the tolerance");
    }

    #[test]
    fn numbers_compare_across_kinds_but_not_with_text() {
        assert!(Cell::Int(7).same(&Cell::Float(7.0)));
        assert!(!Cell::Int(7).same(&Cell::Int(8)));
        assert!(!Cell::Int(7).same(&Cell::Str("7".into())));
        assert!(Cell::Null.same(&Cell::Null));
        assert!(!Cell::Null.same(&Cell::Int(0)));
        // Unsigned 64-bit counts (DuckDB's count is signed, DataFusion's approx counts are not).
        let a = UInt64Array::from(vec![5u64]);
        assert!(column_cells(&a).unwrap()[0].same(&Cell::Int(5)));
    }
}
