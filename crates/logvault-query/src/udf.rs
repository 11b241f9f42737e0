//! The helpers log analysts reach for, as DataFusion scalar functions:
//!
//! | function | meaning |
//! | --- | --- |
//! | `now()` | the query's start time (replaces DataFusion's, so that it can be pinned) |
//! | `ago('1h')` | the query's start time minus a duration (`d`, `h`, `m`, `s`, `ms`, `us`; decimals allowed) |
//! | `bin(TimeGenerated, '5m')` | a timestamp rounded down to a multiple of the duration since the epoch |
//! | `bin(x, 10)` | a number rounded down to a multiple of the step |
//! | `json_extract(col, '$.a.b[0]')` | a value from JSON text (a dynamic column): strings unquoted, objects and arrays as JSON text, null when absent |
//! | `icontains(haystack, needle)` | case-insensitive substring test (KQL's `contains`) |
//! | `date_trunc('hour', TimeGenerated)` | DataFusion's, with UTC timestamps truncated to the hour or day by arithmetic |
//!
//! The query's start time is fixed when the session is created, so `ago` is the same for every
//! row and can be pinned (the CLI's `--now`).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Float64Array, Int64Array, StringBuilder,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit};
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Every helper function, for a session whose query starts at `now_micros` (UTC).
pub fn all(now_micros: i64) -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(Ago::new(now_micros)),
        ScalarUDF::from(Now::new(now_micros)),
        ScalarUDF::from(Bin::new()),
        ScalarUDF::from(JsonExtract::new()),
        ScalarUDF::from(IContains::new()),
        ScalarUDF::from(crate::date_trunc::UtcDateTrunc::new()),
    ]
}

/// The query start time a `now` or `ago` function of [`all`] is pinned to; `None` for any other
/// function. A plan sent to other processes carries it, so they compute the same times.
pub fn pinned_now_micros(udf: &ScalarUDF) -> Option<i64> {
    let inner = udf.inner();
    inner
        .downcast_ref::<Now>()
        .map(|f| f.now_micros)
        .or_else(|| inner.downcast_ref::<Ago>().map(|f| f.now_micros))
}

/// Parses a KQL-style duration (`1d`, `1.5h`, `30m`, `10s`, `250ms`, `5us`) into microseconds.
///
/// # Errors
/// A plan error naming the text if it is not a positive duration.
pub fn parse_duration_micros(text: &str) -> Result<i64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        DataFusionError::Plan(format!(
            "invalid duration {text:?}: expected a number and a unit (d, h, m, s, ms, us)"
        ))
    })?;
    let unit_micros = match unit.trim() {
        "d" | "day" | "days" => 86_400e6,
        "h" | "hr" | "hour" | "hours" => 3_600e6,
        "m" | "min" | "minute" | "minutes" => 60e6,
        "s" | "sec" | "second" | "seconds" => 1e6,
        "ms" | "millisecond" | "milliseconds" => 1e3,
        "us" | "microsecond" | "microseconds" => 1.0,
        other => {
            return plan_err!(
                "invalid duration {text:?}: unknown unit {other:?} (use d, h, m, s, ms or us)"
            );
        }
    };
    let micros = value * unit_micros;
    if !micros.is_finite() || micros <= 0.0 || micros > i64::MAX as f64 {
        return plan_err!("invalid duration {text:?}: must be positive");
    }
    Ok(micros.round() as i64)
}

fn scalar_text(arg: &ColumnarValue, function: &str) -> Result<String> {
    match arg {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
        ) => Ok(s.clone()),
        _ => exec_err!("{function}: the duration must be a constant string such as '1h'"),
    }
}

/// `ago(duration)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Ago {
    now_micros: i64,
    signature: Signature,
}

impl Ago {
    fn new(now_micros: i64) -> Self {
        Self {
            now_micros,
            signature: Signature::string(1, Volatility::Stable),
        }
    }
}

/// The type of `ago()` and `now()`: a UTC timestamp in microseconds, as `TimeGenerated`.
fn utc_micros_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// A constant UTC timestamp of `micros` since the epoch.
fn utc_micros(micros: i64) -> ColumnarValue {
    ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(
        Some(micros),
        Some("UTC".into()),
    ))
}

impl ScalarUDFImpl for Ago {
    fn name(&self) -> &str {
        "ago"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(utc_micros_type())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("ago takes one argument");
        };
        let micros = parse_duration_micros(&scalar_text(arg, "ago")?)?;
        Ok(utc_micros(self.now_micros - micros))
    }
}

/// `now()`, pinned to the query's start time.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Now {
    now_micros: i64,
    signature: Signature,
}

impl Now {
    fn new(now_micros: i64) -> Self {
        Self {
            now_micros,
            signature: Signature::nullary(Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for Now {
    fn name(&self) -> &str {
        "now"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(utc_micros_type())
    }
    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(utc_micros(self.now_micros))
    }
}

/// `bin(value, step)` for timestamps and numbers.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Bin {
    signature: Signature,
}

impl Bin {
    fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

fn unit_micros(unit: TimeUnit) -> (i64, i64) {
    // (multiplier to convert micros into the unit, divisor)
    match unit {
        TimeUnit::Second => (1, 1_000_000),
        TimeUnit::Millisecond => (1, 1_000),
        TimeUnit::Microsecond => (1, 1),
        TimeUnit::Nanosecond => (1_000, 1),
    }
}

impl ScalarUDFImpl for Bin {
    fn name(&self) -> &str {
        "bin"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [t @ DataType::Timestamp(_, _), _] => Ok(t.clone()),
            [a, b] if a.is_integer() && b.is_integer() => Ok(DataType::Int64),
            [a, b] if a.is_numeric() && b.is_numeric() => Ok(DataType::Float64),
            [DataType::Null, _] => Ok(DataType::Null),
            _ => plan_err!(
                "bin takes (timestamp, 'duration') or (number, number), got {arg_types:?}"
            ),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [value, step] = args.args.as_slice() else {
            return exec_err!("bin takes two arguments");
        };
        let rows = args.number_rows;
        let out_type = args.return_type().clone();
        let values = value.to_array(rows)?;
        let result: ArrayRef = match &out_type {
            DataType::Timestamp(unit, _) => {
                let step = parse_duration_micros(&scalar_text(step, "bin")?)?;
                let (mul, div) = unit_micros(*unit);
                let step_in_unit = (step * mul / div).max(1);
                let ints = cast(&values, &DataType::Int64)?;
                let binned: Int64Array = ints
                    .as_primitive::<Int64Type>()
                    .unary(|v| v.div_euclid(step_in_unit) * step_in_unit);
                cast(&binned, &out_type)?
            }
            DataType::Int64 => {
                let step = match step
                    .to_array(1)
                    .and_then(|a| Ok(cast(&a, &DataType::Int64)?))
                {
                    Ok(a) if !a.is_null(0) => a.as_primitive::<Int64Type>().value(0),
                    _ => return exec_err!("bin: the step must be a non-null number"),
                };
                if step <= 0 {
                    return exec_err!("bin: the step must be positive, got {step}");
                }
                let ints = cast(&values, &DataType::Int64)?;
                Arc::new(
                    ints.as_primitive::<Int64Type>()
                        .unary::<_, Int64Type>(|v| v.div_euclid(step) * step),
                )
            }
            DataType::Float64 => {
                let step = match step
                    .to_array(1)
                    .and_then(|a| Ok(cast(&a, &DataType::Float64)?))
                {
                    Ok(a) if !a.is_null(0) => a.as_primitive::<Float64Type>().value(0),
                    _ => return exec_err!("bin: the step must be a non-null number"),
                };
                if step.is_nan() || step <= 0.0 {
                    return exec_err!("bin: the step must be positive, got {step}");
                }
                let floats = cast(&values, &DataType::Float64)?;
                let binned: Float64Array = floats
                    .as_primitive::<Float64Type>()
                    .unary(|v| (v / step).floor() * step);
                Arc::new(binned)
            }
            _ => return Ok(ColumnarValue::Scalar(ScalarValue::Null)),
        };
        Ok(ColumnarValue::Array(result))
    }
}

/// `json_extract(text, path)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonExtract {
    signature: Signature,
}

impl JsonExtract {
    fn new() -> Self {
        Self {
            signature: Signature::string(2, Volatility::Immutable),
        }
    }
}

/// One step of a JSON path.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Result<Vec<Step>> {
    let p = path.trim();
    let p = p.strip_prefix('$').unwrap_or(p);
    let mut steps = Vec::new();
    let mut rest = p;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return plan_err!("json_extract: empty key in path {path:?}");
            }
            steps.push(Step::Key(r[..end].to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| {
                DataFusionError::Plan(format!("json_extract: unclosed [ in {path:?}"))
            })?;
            let inner = r[..end].trim();
            if let Ok(i) = inner.parse::<usize>() {
                steps.push(Step::Index(i));
            } else {
                let key = inner.trim_matches(|c| c == '\'' || c == '"');
                steps.push(Step::Key(key.to_owned()));
            }
            rest = &r[end + 1..];
        } else if steps.is_empty() {
            // a bare first key: `a.b`
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            steps.push(Step::Key(rest[..end].to_owned()));
            rest = &rest[end..];
        } else {
            return plan_err!("json_extract: cannot parse path {path:?} at {rest:?}");
        }
    }
    Ok(steps)
}

fn extract(doc: &str, steps: &[Step]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(doc).ok()?;
    let mut cur = &value;
    for step in steps {
        cur = match step {
            Step::Key(k) => cur.get(k.as_str())?,
            Step::Index(i) => cur.get(*i)?,
        };
    }
    match cur {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl ScalarUDFImpl for JsonExtract {
    fn name(&self) -> &str {
        "json_extract"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [doc, path] = args.args.as_slice() else {
            return exec_err!("json_extract takes two arguments");
        };
        let steps = parse_path(&scalar_text(path, "json_extract")?)?;
        let docs = cast(&doc.to_array(args.number_rows)?, &DataType::Utf8)?;
        let docs = docs.as_string::<i32>();
        let mut out = StringBuilder::with_capacity(docs.len(), docs.len() * 8);
        for i in 0..docs.len() {
            match docs
                .is_valid(i)
                .then(|| extract(docs.value(i), &steps))
                .flatten()
            {
                Some(v) => out.append_value(v),
                None => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `icontains(haystack, needle)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct IContains {
    signature: Signature,
}

impl IContains {
    fn new() -> Self {
        Self {
            signature: Signature::string(2, Volatility::Immutable),
        }
    }
}

/// Case-insensitive substring test; ASCII fast path, full Unicode lowercasing otherwise.
pub fn icontains(haystack: &str, needle_lower: &str) -> bool {
    if needle_lower.is_empty() {
        return true;
    }
    if haystack.is_ascii() && needle_lower.is_ascii() {
        let (h, n) = (haystack.as_bytes(), needle_lower.as_bytes());
        return h.len() >= n.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    haystack.to_lowercase().contains(needle_lower)
}

impl ScalarUDFImpl for IContains {
    fn name(&self) -> &str {
        "icontains"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [hay, needle] = args.args.as_slice() else {
            return exec_err!("icontains takes two arguments");
        };
        let rows = args.number_rows;
        let hay = cast(&hay.to_array(rows)?, &DataType::Utf8)?;
        let needle = cast(&needle.to_array(rows)?, &DataType::Utf8)?;
        let (hay, needle) = (hay.as_string::<i32>(), needle.as_string::<i32>());
        let mut out = BooleanBuilder::with_capacity(rows);
        let constant = (needle.len() == 1 || rows <= 1) && needle.is_valid(0);
        let lowered = constant.then(|| needle.value(0).to_lowercase());
        for i in 0..hay.len() {
            let n = if needle.len() == 1 { 0 } else { i };
            if hay.is_null(i) || needle.is_null(n) {
                out.append_null();
                continue;
            }
            let found = match &lowered {
                Some(l) => icontains(hay.value(i), l),
                None => icontains(hay.value(i), &needle.value(n).to_lowercase()),
            };
            out.append_value(found);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_micros("1h").unwrap(), 3_600_000_000);
        assert_eq!(parse_duration_micros("1.5m").unwrap(), 90_000_000);
        assert_eq!(parse_duration_micros("250ms").unwrap(), 250_000);
        assert_eq!(parse_duration_micros(" 7d ").unwrap(), 7 * 86_400_000_000);
        for bad in ["", "h", "1y", "-1h", "0s", "1e400d"] {
            assert!(parse_duration_micros(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_paths() {
        let doc = r#"{"a":{"b":[10,{"c":"x"}]},"s":"str","n":null}"#;
        let get = |p: &str| extract(doc, &parse_path(p).unwrap());
        assert_eq!(get("$.a.b[0]").as_deref(), Some("10"));
        assert_eq!(get("$.a.b[1].c").as_deref(), Some("x"));
        assert_eq!(get("a.b[1]").as_deref(), Some(r#"{"c":"x"}"#));
        assert_eq!(get("$['s']").as_deref(), Some("str"));
        assert_eq!(get("$.n"), None);
        assert_eq!(get("$.missing.deeper"), None);
        assert_eq!(extract("not json", &parse_path("$.a").unwrap()), None);
        assert!(parse_path("$.a[1").is_err());
    }

    #[test]
    fn case_insensitive_contains() {
        assert!(icontains("Failed LOGON for Admin", "logon"));
        assert!(!icontains("Failed", "failure"));
        assert!(icontains("ÜBER straße", "über"));
        assert!(icontains("anything", ""));
    }
}
