//! `date_trunc` that truncates UTC timestamps to the hour or the day by arithmetic.
//!
//! Every log table's `TimeGenerated` is `Timestamp(Microsecond, "UTC")`. DataFusion's
//! `date_trunc` truncates a timestamp with a time zone to the hour or the day through the zone's
//! calendar, row by row (parse, convert to local time, truncate, convert back), even when the
//! zone is UTC; only a timestamp without a zone takes its arithmetic path. UTC has no offset
//! changes, so truncating to an hour or a day of UTC is rounding the number down to a multiple of
//! 3,600 or 86,400 seconds, which is what this function does for those cases. Every other case
//! (another zone, a coarser or finer unit, a scalar, a time of day) is DataFusion's function's,
//! which this one wraps: the name, signature, return type and ordering are its.
//!
//! The errors-per-hour query of the benchmark spent about a tenth of its time in the calendar
//! path (docs/bench/journal.md).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::datatypes::{
    ArrowTimestampType, DataType, FieldRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};

/// DataFusion's `date_trunc`, with UTC timestamps truncated to the hour or day by arithmetic.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct UtcDateTrunc {
    inner: Arc<ScalarUDF>,
}

impl UtcDateTrunc {
    pub(crate) fn new() -> Self {
        Self {
            inner: datafusion::functions::datetime::date_trunc(),
        }
    }
}

/// Seconds in the unit a granularity names, for the ones UTC truncates by arithmetic.
fn unit_seconds(granularity: &ColumnarValue) -> Option<i64> {
    let text = match granularity {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(Some(t))
            | ScalarValue::Utf8View(Some(t))
            | ScalarValue::LargeUtf8(Some(t)),
        ) => t,
        _ => return None,
    };
    if text.eq_ignore_ascii_case("hour") {
        Some(3_600)
    } else if text.eq_ignore_ascii_case("day") {
        Some(86_400)
    } else {
        None
    }
}

/// A time zone that is UTC under every name arrow accepts for it.
fn is_utc(zone: &str) -> bool {
    ["UTC", "Etc/UTC", "Z", "+00:00", "+0000", "+00"]
        .iter()
        .any(|z| zone.eq_ignore_ascii_case(z))
}

/// `array`'s values rounded down to multiples of `step`; nulls and time zone kept.
fn truncate<T: ArrowTimestampType>(array: &dyn Array, step: i64) -> ArrayRef {
    let array: &PrimitiveArray<T> = array.as_primitive::<T>();
    let zone = match array.data_type() {
        DataType::Timestamp(_, zone) => zone.clone(),
        _ => None,
    };
    Arc::new(
        array
            .unary::<_, T>(|v| v - v.rem_euclid(step))
            .with_timezone_opt(zone),
    )
}

impl ScalarUDFImpl for UtcDateTrunc {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let [granularity, ColumnarValue::Array(array)] = args.args.as_slice()
            && let Some(seconds) = unit_seconds(granularity)
            && let DataType::Timestamp(unit, Some(zone)) = array.data_type()
            && is_utc(zone)
        {
            let out = match unit {
                TimeUnit::Second => truncate::<TimestampSecondType>(array, seconds),
                TimeUnit::Millisecond => {
                    truncate::<TimestampMillisecondType>(array, seconds * 1_000)
                }
                TimeUnit::Microsecond => {
                    truncate::<TimestampMicrosecondType>(array, seconds * 1_000_000)
                }
                TimeUnit::Nanosecond => {
                    truncate::<TimestampNanosecondType>(array, seconds * 1_000_000_000)
                }
            };
            return Ok(ColumnarValue::Array(out));
        }
        self.inner.invoke_with_args(args)
    }
    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(inputs)
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, AsArray, TimestampMicrosecondArray, TimestampSecondArray};
    use arrow::datatypes::{DataType, Field, TimeUnit, TimestampMicrosecondType};
    use datafusion::common::ScalarValue;
    use datafusion::config::ConfigOptions;
    use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};

    use super::UtcDateTrunc;

    fn call(udf: &ScalarUDF, granularity: &str, array: Arc<dyn Array>) -> Arc<dyn Array> {
        let rows = array.len();
        let fields = vec![
            Arc::new(Field::new("g", DataType::Utf8, false)),
            Arc::new(Field::new("t", array.data_type().clone(), true)),
        ];
        let return_field = Arc::new(Field::new("out", array.data_type().clone(), true));
        let args = ScalarFunctionArgs {
            args: vec![
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(granularity.into()))),
                ColumnarValue::Array(array),
            ],
            arg_fields: fields,
            number_rows: rows,
            return_field,
            config_options: Arc::new(ConfigOptions::default()),
        };
        match udf.invoke_with_args(args).expect("date_trunc runs") {
            ColumnarValue::Array(a) => a,
            ColumnarValue::Scalar(s) => s.to_array_of_size(rows).expect("an array"),
        }
    }

    /// Microseconds around the epoch, before it, on a day's and an hour's edges, and nulls.
    fn micros() -> Vec<Option<i64>> {
        let hour = 3_600_000_000_i64;
        let day = 24 * hour;
        vec![
            Some(0),
            Some(-1),
            Some(1),
            Some(hour - 1),
            Some(hour),
            None,
            Some(day - 1),
            Some(-day - 1),
            Some(1_764_979_199_999_999),
            Some(1_764_979_200_000_000),
            Some(1_765_000_123_456_789),
            None,
        ]
    }

    #[test]
    fn utc_hours_and_days_equal_datafusions_calendar_path() {
        let ours = ScalarUDF::from(UtcDateTrunc::new());
        let datafusion = datafusion::functions::datetime::date_trunc();
        for zone in ["UTC", "+00:00", "Etc/UTC"] {
            let array: Arc<dyn Array> =
                Arc::new(TimestampMicrosecondArray::from(micros()).with_timezone(zone));
            for granularity in ["hour", "day", "HOUR", "month", "minute", "week"] {
                let got = call(&ours, granularity, Arc::clone(&array));
                let want = call(&datafusion, granularity, Arc::clone(&array));
                assert_eq!(got.data_type(), want.data_type(), "{zone} {granularity}");
                assert_eq!(
                    got.as_primitive::<TimestampMicrosecondType>(),
                    want.as_primitive::<TimestampMicrosecondType>(),
                    "{zone} {granularity}"
                );
            }
        }
    }

    #[test]
    fn utc_hours_are_multiples_of_an_hour_with_nulls_kept() {
        let ours = ScalarUDF::from(UtcDateTrunc::new());
        let array: Arc<dyn Array> =
            Arc::new(TimestampMicrosecondArray::from(micros()).with_timezone("UTC"));
        let got = call(&ours, "hour", array);
        let got = got.as_primitive::<TimestampMicrosecondType>();
        let hour = 3_600_000_000_i64;
        assert_eq!(
            got.value(1),
            -hour,
            "a microsecond before the epoch is in the hour before"
        );
        assert_eq!(got.value(4), hour);
        assert!(got.is_null(5) && got.is_null(11));
        assert_eq!(got.value(9), 1_764_979_200_000_000);
        assert_eq!(got.value(8), 1_764_979_200_000_000 - hour);
    }

    /// DataFusion's calendar path counts in nanoseconds and refuses a time outside 1677-2262;
    /// its path for timestamps without a zone, like this one, does not.
    #[test]
    fn a_utc_time_outside_the_nanosecond_range_is_truncated() {
        let ours = ScalarUDF::from(UtcDateTrunc::new());
        let year_one = -62_135_596_800_000_000_i64;
        let array: Arc<dyn Array> = Arc::new(
            TimestampMicrosecondArray::from(vec![Some(year_one + 3_599_999_999)])
                .with_timezone("UTC"),
        );
        let got = call(&ours, "hour", array);
        assert_eq!(
            got.as_primitive::<TimestampMicrosecondType>().value(0),
            year_one
        );
        let naive: Arc<dyn Array> = Arc::new(TimestampMicrosecondArray::from(vec![Some(
            year_one + 3_599_999_999,
        )]));
        let datafusion = datafusion::functions::datetime::date_trunc();
        let want = call(&datafusion, "hour", naive);
        assert_eq!(
            want.as_primitive::<TimestampMicrosecondType>().value(0),
            year_one
        );
    }

    #[test]
    fn other_zones_and_units_are_datafusions() {
        let ours = ScalarUDF::from(UtcDateTrunc::new());
        let datafusion = datafusion::functions::datetime::date_trunc();
        // Kathmandu is UTC+05:45: its hours do not start on UTC's.
        let array: Arc<dyn Array> = Arc::new(
            TimestampSecondArray::from(vec![Some(1_765_000_000), None, Some(0)])
                .with_timezone("Asia/Kathmandu"),
        );
        let got = call(&ours, "hour", Arc::clone(&array));
        let want = call(&datafusion, "hour", array);
        assert_eq!(got.as_ref(), want.as_ref());
        assert_eq!(
            got.data_type(),
            &DataType::Timestamp(TimeUnit::Second, Some("Asia/Kathmandu".into()))
        );
        assert_ne!(
            got.as_primitive::<arrow::datatypes::TimestampSecondType>()
                .value(0)
                % 3_600,
            0
        );
    }
}
