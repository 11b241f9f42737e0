//! Rows of a table with a declared schema (`logvault table create --schema`).
//!
//! A table without one takes the columns and kinds its rows bring (the schema grows, see
//! [`crate::TableSchema`]). A table with one keeps the declared columns and types: before rows
//! are logged, [`conform_to_declared`] converts each declared column of a batch to its declared
//! Arrow type, makes a value that does not convert null (and counts it), and leaves out the
//! columns the declaration does not name (and names them), as Log Analytics does for a custom
//! table's undeclared columns. The system columns (`TimeGenerated`, `_TimeReceived`) are kept.
//!
//! The declared types are Arrow types with field metadata (the facade builds them from Kusto
//! types): `bool`, `int` (`Int32`), `long`, `real`, `decimal` (`Decimal128`), `string`,
//! `datetime` (UTC microseconds), `timespan` (`Duration`), `dynamic` (JSON text, marked
//! `logvault.kind = dynamic`) and `guid` (text, marked `kusto.type = guid`).
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
//! use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
//! use logvault_ingest::conform_to_declared;
//!
//! let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
//! let declared = Schema::new(vec![
//!     Field::new("TimeGenerated", ts.clone(), false),
//!     Field::new("Code", DataType::Int32, true),
//! ]);
//! let batch = RecordBatch::try_new(
//!     Arc::new(Schema::new(vec![
//!         Field::new("TimeGenerated", ts, false),
//!         Field::new("Code", DataType::Utf8, true),
//!         Field::new("Extra", DataType::Int64, true),
//!     ])),
//!     vec![
//!         Arc::new(TimestampMicrosecondArray::from(vec![1, 2]).with_timezone("UTC")),
//!         Arc::new(StringArray::from(vec!["404", "not a number"])),
//!         Arc::new(Int64Array::from(vec![1, 2])),
//!     ],
//! )?;
//! let (rows, report) = conform_to_declared("App", &batch, &declared)?;
//! let code = rows.column_by_name("Code").unwrap();
//! let code = code.as_any().downcast_ref::<Int32Array>().unwrap();
//! assert_eq!((code.value(0), code.is_null(1)), (404, true));
//! assert_eq!(report.nulled, 1);
//! assert_eq!(report.undeclared, ["Extra"]);
//! assert!(rows.column_by_name("Extra").is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, DurationNanosecondArray, Int64Array, RecordBatch, StringArray,
};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit};

use crate::IngestError;
#[cfg(test)]
use crate::kind::{DYNAMIC_KIND, KIND_METADATA_KEY};
use crate::kind::{TIME_GENERATED, TIME_RECEIVED, is_dynamic};

/// Field metadata key naming a column's Kusto type (as the KQL crate reads it).
pub const KUSTO_TYPE_METADATA_KEY: &str = "kusto.type";

/// What conforming batches to a declared schema changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConformReport {
    /// Values that did not convert to their column's declared type and were stored as null.
    pub nulled: u64,
    /// Columns the declaration does not name, left out (sorted, each once).
    pub undeclared: Vec<String>,
}

impl ConformReport {
    /// Adds `other`'s counts and names to this one.
    pub fn absorb(&mut self, other: &ConformReport) {
        self.nulled += other.nulled;
        let names: BTreeSet<String> = self
            .undeclared
            .drain(..)
            .chain(other.undeclared.iter().cloned())
            .collect();
        self.undeclared = names.into_iter().collect();
    }

    /// Whether nothing was changed.
    pub fn is_empty(&self) -> bool {
        self.nulled == 0 && self.undeclared.is_empty()
    }
}

/// How a declared column's values are made from what arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Arrow's cast (safe: a value that does not convert becomes null).
    Cast,
    /// JSON text: strings are quoted, numbers and booleans kept, dynamic values as they are.
    Dynamic,
    /// A GUID in its canonical lower-case form.
    Guid,
    /// A timespan from Kusto's text form (`[-][d.]hh:mm:ss[.fffffff]`) or 100 ns ticks.
    Timespan,
}

fn target_of(field: &Field) -> Target {
    let meta = field.metadata();
    match (
        field.data_type(),
        meta.get(KUSTO_TYPE_METADATA_KEY).map(String::as_str),
    ) {
        (DataType::Utf8, Some("guid")) => Target::Guid,
        (DataType::Utf8, Some("dynamic")) => Target::Dynamic,
        (DataType::Utf8, _) if is_dynamic(field) => Target::Dynamic,
        (DataType::Duration(TimeUnit::Nanosecond), _) => Target::Timespan,
        _ => Target::Cast,
    }
}

/// Conforms `batch` of `table` to the `declared` schema (see the module documentation): the
/// declared columns it has, converted, in declared order, then `_TimeReceived`; the report
/// counts values made null and names the columns left out.
///
/// # Errors
/// [`IngestError::InvalidBatch`] when `TimeGenerated` is missing or does not convert (every row
/// needs its time), or a column cannot be converted at all.
pub fn conform_to_declared(
    table: &str,
    batch: &RecordBatch,
    declared: &Schema,
) -> Result<(RecordBatch, ConformReport), IngestError> {
    let refused = |reason: String| IngestError::InvalidBatch {
        table: table.to_owned(),
        reason,
    };
    let schema = batch.schema();
    let mut report = ConformReport::default();
    let mut fields: Vec<Field> = Vec::with_capacity(declared.fields().len() + 1);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(declared.fields().len() + 1);
    for target in declared.fields() {
        let Ok(i) = schema.index_of(target.name()) else {
            continue;
        };
        let (source_field, source) = (schema.field(i), batch.column(i));
        if target.name() == TIME_RECEIVED {
            // Set at receipt, below, whatever the declaration says.
            continue;
        }
        if target.name() == TIME_GENERATED {
            // The parser made it a UTC timestamp already; keep the batch's field (non-null).
            fields.push(source_field.clone());
            columns.push(Arc::clone(source));
            continue;
        }
        let converted = convert(source_field, source, target).map_err(|e| {
            refused(format!(
                "column {} ({}) cannot be made {}: {e}",
                target.name(),
                source.data_type(),
                declared_name(target)
            ))
        })?;
        report.nulled += converted.null_count().saturating_sub(source.null_count()) as u64;
        fields.push(target.as_ref().clone().with_nullable(true));
        columns.push(converted);
    }
    if !fields.iter().any(|f| f.name() == TIME_GENERATED) {
        return Err(refused(format!("the rows have no {TIME_GENERATED} column")));
    }
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if field.name() == TIME_RECEIVED {
            fields.push(field.as_ref().clone());
            columns.push(Arc::clone(column));
        } else if declared.index_of(field.name()).is_err() && column.null_count() < column.len() {
            report.undeclared.push(field.name().clone());
        }
    }
    report.undeclared.sort();
    report.undeclared.dedup();
    let rows = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| refused(e.to_string()))?;
    Ok((rows, report))
}

fn declared_name(field: &Field) -> String {
    field
        .metadata()
        .get(KUSTO_TYPE_METADATA_KEY)
        .cloned()
        .unwrap_or_else(|| field.data_type().to_string())
}

fn convert(source_field: &Field, source: &ArrayRef, target: &Field) -> Result<ArrayRef, String> {
    let safe = CastOptions {
        safe: true,
        ..CastOptions::default()
    };
    let text = || -> Result<ArrayRef, String> {
        cast_with_options(source, &DataType::Utf8, &safe).map_err(|e| e.to_string())
    };
    Ok(match target_of(target) {
        Target::Cast => match (source.data_type(), target.data_type()) {
            // A date-time is text or a timestamp; a number is not a date-time.
            (s, DataType::Timestamp(..))
                if !matches!(s, DataType::Utf8 | DataType::Timestamp(..)) =>
            {
                arrow::array::new_null_array(target.data_type(), source.len())
            }
            _ => cast_with_options(source, target.data_type(), &safe).map_err(|e| e.to_string())?,
        },
        Target::Dynamic => {
            if is_dynamic(source_field) {
                Arc::clone(source)
            } else if matches!(source.data_type(), DataType::Utf8 | DataType::Timestamp(..)) {
                let strings = text()?;
                let strings = strings.as_string::<i32>();
                // A column that mixed objects and strings in one batch holds the objects as
                // their JSON text: text that is a JSON object or array stays JSON; other text
                // becomes a JSON string.
                Arc::new(
                    strings
                        .iter()
                        .map(|v| {
                            v.and_then(|v| {
                                let t = v.trim_start();
                                if (t.starts_with('{') || t.starts_with('['))
                                    && serde_json::from_str::<serde::de::IgnoredAny>(v).is_ok()
                                {
                                    Some(v.to_owned())
                                } else {
                                    serde_json::to_string(v).ok()
                                }
                            })
                        })
                        .collect::<StringArray>(),
                )
            } else {
                // Numbers and booleans: their text is their JSON (a non-finite float is not).
                let strings = text()?;
                let strings = strings.as_string::<i32>();
                Arc::new(
                    strings
                        .iter()
                        .map(|v| v.filter(|v| serde_json::from_str::<serde_json::Value>(v).is_ok()))
                        .collect::<StringArray>(),
                )
            }
        }
        Target::Guid => {
            if source.data_type() != &DataType::Utf8 {
                arrow::array::new_null_array(&DataType::Utf8, source.len())
            } else {
                Arc::new(
                    source
                        .as_string::<i32>()
                        .iter()
                        .map(|v| v.and_then(canonical_guid))
                        .collect::<StringArray>(),
                )
            }
        }
        Target::Timespan => match source.data_type() {
            DataType::Utf8 => Arc::new(
                source
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.and_then(parse_timespan))
                    .collect::<DurationNanosecondArray>(),
            ),
            DataType::Int64 => {
                let ticks: &Int64Array = source.as_primitive::<Int64Type>();
                Arc::new(
                    ticks
                        .iter()
                        .map(|v| v.and_then(|t| t.checked_mul(100)))
                        .collect::<DurationNanosecondArray>(),
                )
            }
            _ => arrow::array::new_null_array(target.data_type(), source.len()),
        },
    })
}

/// A GUID (`8-4-4-4-12` hex digits, optionally in braces) in lower case, or `None`.
fn canonical_guid(text: &str) -> Option<String> {
    let t = text.trim();
    let t = t
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(t);
    let groups: Vec<&str> = t.split('-').collect();
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then(|| t.to_ascii_lowercase())
}

/// Kusto's text form of a timespan, `[-][d.]hh:mm:ss[.fffffff]`, in nanoseconds; `None` if it
/// is not one or does not fit.
fn parse_timespan(text: &str) -> Option<i64> {
    let t = text.trim();
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (days, clock) = match t.split_once(':') {
        Some((head, _)) => match head.split_once('.') {
            Some((d, _)) => (d.parse::<i64>().ok()?, &t[d.len() + 1..]),
            None => (0, t),
        },
        None => return None,
    };
    let mut parts = clock.split(':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let seconds_text = parts.next()?;
    if parts.next().is_some() || hours > 23 || minutes > 59 {
        return None;
    }
    let (whole, fraction) = seconds_text.split_once('.').unwrap_or((seconds_text, ""));
    let seconds: i64 = whole.parse().ok()?;
    if seconds > 59
        || fraction.len() > 9
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || whole.starts_with(['+', '-'])
    {
        return None;
    }
    let nanos: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    let total = days
        .checked_mul(86_400)?
        .checked_add(hours * 3_600 + minutes * 60 + seconds)?
        .checked_mul(1_000_000_000)?
        .checked_add(nanos)?;
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BooleanArray, Float64Array, Int32Array, TimestampMicrosecondArray};

    fn ts() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    }

    fn tagged(name: &str, dt: DataType, key: &str, value: &str) -> Field {
        Field::new(name, dt, true).with_metadata([(key.to_owned(), value.to_owned())].into())
    }

    fn batch(fields: Vec<Field>, columns: Vec<ArrayRef>) -> RecordBatch {
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    #[test]
    fn timespans_in_kusto_text_form() {
        assert_eq!(parse_timespan("00:00:01"), Some(1_000_000_000));
        assert_eq!(
            parse_timespan("1.02:03:04.5"),
            Some(((86_400 + 7_384) * 1_000_000_000) + 500_000_000)
        );
        assert_eq!(parse_timespan("-00:01:00"), Some(-60_000_000_000));
        assert_eq!(parse_timespan("00:00:00.0000001"), Some(100));
        for bad in [
            "",
            "1h",
            "24:00:00",
            "00:60:00",
            "00:00:60",
            "a.00:00:00",
            "00:00:01.x",
            "1:2",
        ] {
            assert_eq!(parse_timespan(bad), None, "{bad}");
        }
        assert_eq!(parse_timespan("99999999999.00:00:00"), None);
    }

    #[test]
    fn guids_are_checked_and_lower_cased() {
        assert_eq!(
            canonical_guid("{74BE27DE-1E4E-49D9-B579-FE0B331D3642}").as_deref(),
            Some("74be27de-1e4e-49d9-b579-fe0b331d3642")
        );
        assert_eq!(canonical_guid("74be27de-1e4e-49d9-b579-fe0b331d364"), None);
        assert_eq!(canonical_guid("not-a-guid"), None);
    }

    #[test]
    fn every_declared_type_converts_and_counts_what_does_not() {
        let declared = Schema::new(vec![
            Field::new("TimeGenerated", ts(), false),
            tagged("Code", DataType::Int32, KUSTO_TYPE_METADATA_KEY, "int"),
            Field::new("Ok", DataType::Boolean, true),
            Field::new("Latency", DataType::Float64, true),
            Field::new("Name", DataType::Utf8, true),
            Field::new("When", ts(), true),
            tagged("Props", DataType::Utf8, KIND_METADATA_KEY, DYNAMIC_KIND),
            tagged("Id", DataType::Utf8, KUSTO_TYPE_METADATA_KEY, "guid"),
            Field::new("Took", DataType::Duration(TimeUnit::Nanosecond), true),
            tagged(
                "Amount",
                DataType::Decimal128(38, 18),
                KUSTO_TYPE_METADATA_KEY,
                "decimal",
            ),
        ]);
        let rows = batch(
            vec![
                Field::new("TimeGenerated", ts(), false),
                Field::new("_TimeReceived", ts(), false),
                Field::new("Code", DataType::Int64, true),
                Field::new("Ok", DataType::Utf8, true),
                Field::new("Latency", DataType::Int64, true),
                Field::new("Name", DataType::Int64, true),
                Field::new("When", DataType::Int64, true),
                Field::new("Props", DataType::Utf8, true),
                Field::new("Id", DataType::Utf8, true),
                Field::new("Took", DataType::Utf8, true),
                Field::new("Amount", DataType::Utf8, true),
                Field::new("Extra", DataType::Utf8, true),
                Field::new("AllNull", DataType::Utf8, true),
            ],
            vec![
                Arc::new(TimestampMicrosecondArray::from(vec![1, 2]).with_timezone("UTC")),
                Arc::new(TimestampMicrosecondArray::from(vec![3, 4]).with_timezone("UTC")),
                Arc::new(Int64Array::from(vec![Some(200), Some(1 << 40)])),
                Arc::new(StringArray::from(vec!["true", "maybe"])),
                Arc::new(Int64Array::from(vec![Some(12), None])),
                Arc::new(Int64Array::from(vec![7, 8])),
                Arc::new(Int64Array::from(vec![7, 8])),
                Arc::new(StringArray::from(vec!["plain", "with \"quote\""])),
                Arc::new(StringArray::from(vec![
                    "74BE27DE-1E4E-49D9-B579-FE0B331D3642",
                    "x",
                ])),
                Arc::new(StringArray::from(vec!["00:00:02", "2 seconds"])),
                Arc::new(StringArray::from(vec!["1.25", "lots"])),
                Arc::new(StringArray::from(vec![Some("e"), None])),
                Arc::new(StringArray::from(vec![None::<&str>, None])),
            ],
        );
        let (out, report) = conform_to_declared("App", &rows, &declared).unwrap();
        // Code overflow, Ok "maybe", When x2 (numbers), Id "x", Took "2 seconds", Amount "lots".
        assert_eq!(report.nulled, 7);
        assert_eq!(report.undeclared, ["Extra"]);
        let out_schema = out.schema();
        let names: Vec<&str> = out_schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(
            names,
            [
                "TimeGenerated",
                "Code",
                "Ok",
                "Latency",
                "Name",
                "When",
                "Props",
                "Id",
                "Took",
                "Amount",
                "_TimeReceived"
            ]
        );
        let col = |n: &str| out.column_by_name(n).unwrap().clone();
        let code = col("Code");
        let code = code.as_any().downcast_ref::<Int32Array>().unwrap();
        assert_eq!((code.value(0), code.is_null(1)), (200, true));
        let ok = col("Ok");
        let ok = ok.as_any().downcast_ref::<BooleanArray>().unwrap();
        assert!(ok.value(0) && ok.is_null(1));
        let latency = col("Latency");
        let latency = latency.as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(latency.value(0), 12.0);
        assert_eq!(col("Name").as_string::<i32>().value(1), "8");
        assert_eq!(col("When").null_count(), 2);
        let props = col("Props");
        let props = props.as_string::<i32>();
        assert_eq!(props.value(0), "\"plain\"");
        assert_eq!(props.value(1), r#""with \"quote\"""#);
        assert_eq!(
            col("Id").as_string::<i32>().value(0),
            "74be27de-1e4e-49d9-b579-fe0b331d3642"
        );
        let took = col("Took");
        let took = took
            .as_any()
            .downcast_ref::<DurationNanosecondArray>()
            .unwrap();
        assert_eq!((took.value(0), took.is_null(1)), (2_000_000_000, true));
        assert_eq!(col("Amount").null_count(), 1);
        assert_eq!(
            out.schema().field_with_name("Code").unwrap().metadata()[KUSTO_TYPE_METADATA_KEY],
            "int"
        );
    }

    #[test]
    fn dynamic_source_values_are_kept_and_rows_need_their_time() {
        let declared = Schema::new(vec![
            Field::new("TimeGenerated", ts(), false),
            tagged("Props", DataType::Utf8, KIND_METADATA_KEY, DYNAMIC_KIND),
        ]);
        let rows = batch(
            vec![
                Field::new("TimeGenerated", ts(), false),
                tagged("Props", DataType::Utf8, KIND_METADATA_KEY, DYNAMIC_KIND),
            ],
            vec![
                Arc::new(TimestampMicrosecondArray::from(vec![1]).with_timezone("UTC")),
                Arc::new(StringArray::from(vec![r#"{"a":1}"#])),
            ],
        );
        let (out, report) = conform_to_declared("App", &rows, &declared).unwrap();
        assert!(report.is_empty());
        assert_eq!(out.column(1).as_string::<i32>().value(0), r#"{"a":1}"#);
        let no_time = batch(
            vec![Field::new("Props", DataType::Utf8, true)],
            vec![Arc::new(StringArray::from(vec!["x"]))],
        );
        let err = conform_to_declared("App", &no_time, &declared).unwrap_err();
        assert!(err.to_string().contains("TimeGenerated"), "{err}");
    }

    #[test]
    fn reports_absorb_counts_and_names_once() {
        let mut a = ConformReport {
            nulled: 1,
            undeclared: vec!["B".into()],
        };
        a.absorb(&ConformReport {
            nulled: 2,
            undeclared: vec!["A".into(), "B".into()],
        });
        assert_eq!(
            a,
            ConformReport {
                nulled: 3,
                undeclared: vec!["A".into(), "B".into()]
            }
        );
    }
}
