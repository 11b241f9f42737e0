//! Arrow record batches from an embedder, made into rows a logvault table holds.
//!
//! A table holds booleans, 64-bit integers and floats, UTF-8 strings (plain or dynamic) and UTC
//! timestamps in microseconds (`ColumnKind`). [`conform_batch`] casts what converts without
//! loss of meaning (narrower integers, `f32`, string views and large strings, dictionary
//! strings, timestamps of any unit or zone, dates) and refuses the rest with the column's name.
//! `TimeGenerated` is required and may not be null; `_TimeReceived` is set to the time received.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, TimestampMicrosecondArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::{DateTime, Utc};

use crate::IngestError;
use crate::kind::{TIME_GENERATED, TIME_RECEIVED, system_time_field, timestamp_type};

fn refused(table: &str, reason: String) -> IngestError {
    IngestError::InvalidBatch {
        table: table.to_owned(),
        reason,
    }
}

/// The type a column of `data_type` is stored as, if a table can hold it.
fn stored_type(data_type: &DataType) -> Option<DataType> {
    Some(match data_type {
        DataType::Null => DataType::Null,
        DataType::Boolean => DataType::Boolean,
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => DataType::Int64,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => DataType::Float64,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::Dictionary(_, value) if stored_type(value) == Some(DataType::Utf8) => {
            DataType::Utf8
        }
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => timestamp_type(),
        _ => return None,
    })
}

/// Makes `batch` rows of `table`: every column cast to the type a table stores it as,
/// `TimeGenerated` required and non-null, `_TimeReceived` set to `received`.
///
/// # Errors
/// [`IngestError::InvalidBatch`] naming the column: a missing or null `TimeGenerated`, a column name
/// that is empty, a type a table cannot hold, a value that does not fit (a `u64` over
/// `i64::MAX`).
pub fn conform_batch(
    table: &str,
    batch: &RecordBatch,
    received: DateTime<Utc>,
) -> Result<RecordBatch, IngestError> {
    let schema = batch.schema();
    if schema.index_of(TIME_GENERATED).is_err() {
        return Err(refused(
            table,
            format!("the batch has no {TIME_GENERATED} column"),
        ));
    }
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    let mut fields = Vec::with_capacity(schema.fields().len() + 1);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len() + 1);
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let name = field.name();
        if name == TIME_RECEIVED {
            continue;
        }
        if name.is_empty() {
            return Err(refused(table, "a column has an empty name".into()));
        }
        let Some(target) = stored_type(field.data_type()) else {
            return Err(refused(
                table,
                format!(
                    "column {name} has type {}, which a logvault table cannot hold (booleans, \
                     integers, floats, strings and timestamps)",
                    field.data_type()
                ),
            ));
        };
        let cast = cast_with_options(column, &target, &options)
            .map_err(|e| refused(table, format!("column {name}: {e}")))?;
        if name == TIME_GENERATED {
            if cast.null_count() > 0 {
                return Err(refused(
                    table,
                    format!("{TIME_GENERATED} is null in {} rows", cast.null_count()),
                ));
            }
            fields.push(system_time_field(TIME_GENERATED));
        } else {
            fields.push(Field::new(name, target, true).with_metadata(field.metadata().clone()));
        }
        columns.push(cast);
    }
    let received =
        TimestampMicrosecondArray::from(vec![received.timestamp_micros(); batch.num_rows()])
            .with_timezone("UTC");
    fields.push(system_time_field(TIME_RECEIVED));
    columns.push(Arc::new(received));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| IngestError::Arrow {
        table: table.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float32Array, Int32Array, ListArray, StringViewArray, UInt64Array};
    use arrow::datatypes::{Int32Type, TimeUnit};
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
    }

    fn time_ns(values: Vec<Option<i64>>) -> (Field, ArrayRef) {
        let array = arrow::array::TimestampNanosecondArray::from(values);
        (
            Field::new(
                TIME_GENERATED,
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                true,
            ),
            Arc::new(array),
        )
    }

    #[test]
    fn narrower_types_are_widened_and_time_received_is_set() {
        let (tf, tc) = time_ns(vec![Some(1_700_000_000_000_000_000), Some(1)]);
        let schema = Schema::new(vec![
            tf,
            Field::new("Count", DataType::Int32, true),
            Field::new("Ratio", DataType::Float32, true),
            Field::new("Host", DataType::Utf8View, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                tc,
                Arc::new(Int32Array::from(vec![Some(1), None])),
                Arc::new(Float32Array::from(vec![0.5, 1.5])),
                Arc::new(StringViewArray::from(vec!["a", "b"])),
            ],
        )
        .unwrap();
        let out = conform_batch("App", &batch, at()).unwrap();
        let types: Vec<DataType> = out
            .schema()
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        assert_eq!(
            types,
            vec![
                timestamp_type(),
                DataType::Int64,
                DataType::Float64,
                DataType::Utf8,
                timestamp_type()
            ]
        );
        let received = out
            .column(4)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(received.value(1), at().timestamp_micros());
        let time = out
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(time.value(0), 1_700_000_000_000_000);
    }

    #[test]
    fn what_a_table_cannot_hold_is_refused_naming_the_column() {
        let (tf, tc) = time_ns(vec![Some(1)]);
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1)])]);
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                tf.clone(),
                Field::new("Tags", list.data_type().clone(), true),
            ])),
            vec![tc.clone(), Arc::new(list)],
        )
        .unwrap();
        let err = conform_batch("App", &batch, at()).unwrap_err().to_string();
        assert!(
            err.contains("column Tags") && err.contains("cannot hold"),
            "{err}"
        );

        let too_big = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                tf,
                Field::new("Bytes", DataType::UInt64, true),
            ])),
            vec![tc, Arc::new(UInt64Array::from(vec![u64::MAX]))],
        )
        .unwrap();
        let err = conform_batch("App", &too_big, at())
            .unwrap_err()
            .to_string();
        assert!(err.contains("column Bytes"), "{err}");

        let (tf, tc) = time_ns(vec![Some(1), None]);
        let null_time = RecordBatch::try_new(Arc::new(Schema::new(vec![tf])), vec![tc]).unwrap();
        let err = conform_batch("App", &null_time, at())
            .unwrap_err()
            .to_string();
        assert!(err.contains("TimeGenerated is null in 1 rows"), "{err}");

        let no_time = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("Host", DataType::Utf8, true)])),
            vec![Arc::new(arrow::array::StringArray::from(vec!["a"]))],
        )
        .unwrap();
        let err = conform_batch("App", &no_time, at())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no TimeGenerated column"), "{err}");
    }
}
