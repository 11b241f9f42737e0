//! The options of planning ([`PlanOptions`]: the query's start time and its time range).

/// Options of planning.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    /// The query's start time, in 100 ns ticks since the Unix epoch: what `now()` and `ago()`
    /// read (the same value for every row).
    pub now_ticks: i64,
    /// The query API's `timespan`: every table that has a `TimeGenerated` column is read only
    /// in `[start, end)`, as Log Analytics applies it (the filter reaches the scan, so
    /// segments outside are pruned). `None`: no restriction.
    pub time_range: Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)>,
}

impl PlanOptions {
    /// Options with the query starting at `now`.
    pub fn at(now: chrono::DateTime<chrono::Utc>) -> Self {
        let ticks = now.timestamp() * crate::literal::TICKS_PER_SECOND
            + i64::from(now.timestamp_subsec_nanos() / 100);
        Self {
            now_ticks: ticks,
            time_range: None,
        }
    }

    /// These options with tables restricted to `[start, end)` on `TimeGenerated`.
    #[must_use]
    pub fn within(
        mut self,
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        self.time_range = Some((start, end));
        self
    }
}

/// `t` as a literal of the timestamp type `data_type` (its unit and time zone), if it is one.
pub(super) fn timestamp_literal(
    data_type: &datafusion::arrow::datatypes::DataType,
    t: chrono::DateTime<chrono::Utc>,
) -> Option<datafusion::logical_expr::Expr> {
    use datafusion::arrow::datatypes::{DataType, TimeUnit};
    use datafusion::scalar::ScalarValue;
    let DataType::Timestamp(unit, tz) = data_type else {
        return None;
    };
    let tz = tz.clone();
    let value = match unit {
        TimeUnit::Second => ScalarValue::TimestampSecond(Some(t.timestamp()), tz),
        TimeUnit::Millisecond => ScalarValue::TimestampMillisecond(Some(t.timestamp_millis()), tz),
        TimeUnit::Microsecond => ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), tz),
        TimeUnit::Nanosecond => {
            ScalarValue::TimestampNanosecond(Some(t.timestamp_nanos_opt()?), tz)
        }
    };
    Some(datafusion::logical_expr::lit(value))
}
