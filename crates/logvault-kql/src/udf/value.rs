//! One Kusto value, for functions computed row by row, and its conversion from and to Arrow.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Decimal128Builder, DurationNanosecondBuilder,
    Float64Builder, Int32Builder, Int64Builder, StringBuilder, TimestampNanosecondBuilder,
};
use arrow::compute::cast;
use arrow::datatypes::{
    Decimal128Type, DurationNanosecondType, Float64Type, Int32Type, Int64Type,
    TimestampNanosecondType,
};
use datafusion::error::Result;
use serde_json::{Number, Value};

use crate::literal::{format_datetime, format_timespan, parse_datetime, parse_timespan};
use crate::types::KustoType;

/// A Kusto value. Datetimes and timespans are in 100 ns ticks.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// null.
    Null,
    /// `bool`.
    Bool(bool),
    /// `int`.
    Int(i32),
    /// `long`.
    Long(i64),
    /// `real`.
    Real(f64),
    /// `decimal` (held as a float).
    Decimal(f64),
    /// `string`.
    Str(String),
    /// `datetime`, ticks since the epoch.
    DateTime(i64),
    /// `timespan`, ticks.
    Timespan(i64),
    /// `dynamic`.
    Dynamic(Value),
    /// `guid`.
    Guid(String),
}

impl Val {
    /// Whether the value is null (a dynamic null included).
    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null | Val::Dynamic(Value::Null))
    }

    /// The value as a float, if it is a number (or a dynamic number, or numeric text).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Int(v) => Some(f64::from(*v)),
            Val::Long(v) => Some(*v as f64),
            Val::Real(v) | Val::Decimal(v) => Some(*v),
            Val::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Val::DateTime(t) | Val::Timespan(t) => Some(*t as f64),
            Val::Dynamic(Value::Number(n)) => n.as_f64(),
            Val::Dynamic(Value::Bool(b)) => Some(if *b { 1.0 } else { 0.0 }),
            Val::Dynamic(Value::String(s)) | Val::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as an integer (reals truncated), if it is a number.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Val::Int(v) => Some(i64::from(*v)),
            Val::Long(v) | Val::DateTime(v) | Val::Timespan(v) => Some(*v),
            Val::Real(v) | Val::Decimal(v) => {
                if v.is_finite() {
                    Some(v.trunc() as i64)
                } else {
                    None
                }
            }
            Val::Bool(b) => Some(i64::from(*b)),
            Val::Dynamic(Value::Number(n)) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.trunc() as i64)
            }),
            Val::Dynamic(Value::Bool(b)) => Some(i64::from(*b)),
            Val::Dynamic(Value::String(s)) | Val::Str(s) => {
                let t = s.trim();
                t.parse().ok().or_else(|| {
                    t.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .map(|f| f.trunc() as i64)
                })
            }
            _ => None,
        }
    }

    /// The value's text as `tostring` gives it (null gives the empty string).
    pub fn to_text(&self) -> String {
        match self {
            Val::Null => String::new(),
            Val::Bool(b) => b.to_string(),
            Val::Int(v) => v.to_string(),
            Val::Long(v) => v.to_string(),
            Val::Real(v) | Val::Decimal(v) => format_real(*v),
            Val::Str(s) | Val::Guid(s) => s.clone(),
            Val::DateTime(t) => format_datetime(*t),
            Val::Timespan(t) => format_timespan(*t),
            Val::Dynamic(Value::Null) => String::new(),
            Val::Dynamic(Value::String(s)) => s.clone(),
            Val::Dynamic(v) => dynamic_text(v),
        }
    }

    /// The value as a string slice when it is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) | Val::Guid(s) | Val::Dynamic(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The value as JSON (for dynamic results): datetimes and timespans as their text.
    pub fn to_json(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(*b),
            Val::Int(v) => Value::Number((*v).into()),
            Val::Long(v) => Value::Number((*v).into()),
            Val::Real(v) | Val::Decimal(v) => real_json(*v),
            Val::Str(s) | Val::Guid(s) => Value::String(s.clone()),
            Val::DateTime(t) => Value::String(format_datetime(*t)),
            Val::Timespan(t) => Value::String(format_timespan(*t)),
            Val::Dynamic(v) => v.clone(),
        }
    }

    /// The value as a datetime (ticks), converting text and dynamic text.
    pub fn as_datetime(&self) -> Option<i64> {
        match self {
            Val::DateTime(t) => Some(*t),
            Val::Str(s) | Val::Dynamic(Value::String(s)) => parse_datetime(s),
            _ => None,
        }
    }

    /// The value as a timespan (ticks), converting text and dynamic text.
    pub fn as_timespan(&self) -> Option<i64> {
        match self {
            Val::Timespan(t) => Some(*t),
            Val::Str(s) | Val::Dynamic(Value::String(s)) => parse_timespan(s),
            Val::Long(v) => Some(*v),
            Val::Int(v) => Some(i64::from(*v)),
            Val::Dynamic(Value::Number(n)) => n.as_i64(),
            _ => None,
        }
    }

    /// The value as a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Val::Bool(b) | Val::Dynamic(Value::Bool(b)) => Some(*b),
            Val::Int(v) => Some(*v != 0),
            Val::Long(v) => Some(*v != 0),
            Val::Real(v) => Some(*v != 0.0),
            Val::Str(s) | Val::Dynamic(Value::String(s)) => {
                match s.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" => Some(true),
                    "false" | "0" => Some(false),
                    _ => None,
                }
            }
            Val::Dynamic(Value::Number(n)) => n.as_f64().map(|f| f != 0.0),
            _ => None,
        }
    }

    /// The value as dynamic JSON (text parsed when it is JSON).
    pub fn as_dynamic(&self) -> Value {
        match self {
            Val::Dynamic(v) => v.clone(),
            Val::Str(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
            other => other.to_json(),
        }
    }
}

/// JSON text of a dynamic value, as Kusto prints it (compact).
pub fn dynamic_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A real as a JSON number (NaN and infinities as the strings Kusto uses).
pub fn real_json(v: f64) -> Value {
    if v.is_finite() {
        if v == v.trunc() && v.abs() < 1e15 {
            // Keep integral reals integral in JSON, as Kusto prints them.
            return Number::from_f64(v).map_or(Value::Null, Value::Number);
        }
        Number::from_f64(v).map_or(Value::Null, Value::Number)
    } else if v.is_nan() {
        Value::String("NaN".into())
    } else if v > 0.0 {
        Value::String("Infinity".into())
    } else {
        Value::String("-Infinity".into())
    }
}

/// A real's text as Kusto's `tostring` gives it.
pub fn format_real(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v}");
        if s.contains('e') { format!("{v:E}") } else { s }
    }
}

/// Reads every row of `array` (of Kusto type `ty`) as values.
///
/// # Errors
/// When the array cannot be cast to the type's Arrow representation.
pub fn read_column(array: &ArrayRef, ty: KustoType) -> Result<Vec<Val>> {
    let n = array.len();
    let array = if array.data_type() == &ty.arrow() {
        Arc::clone(array)
    } else {
        cast(array, &ty.arrow())?
    };
    let mut out = Vec::with_capacity(n);
    match ty {
        KustoType::Bool => {
            let a = array.as_boolean();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Val::Null
                } else {
                    Val::Bool(a.value(i))
                });
            }
        }
        KustoType::Int => {
            let a = array.as_primitive::<Int32Type>();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Val::Null
                } else {
                    Val::Int(a.value(i))
                });
            }
        }
        KustoType::Long => {
            let a = array.as_primitive::<Int64Type>();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Val::Null
                } else {
                    Val::Long(a.value(i))
                });
            }
        }
        KustoType::Real => {
            let a = array.as_primitive::<Float64Type>();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Val::Null
                } else {
                    Val::Real(a.value(i))
                });
            }
        }
        KustoType::Decimal => {
            let a = array.as_primitive::<Decimal128Type>();
            let scale = 10f64.powi(i32::from(a.scale()));
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Val::Null
                } else {
                    Val::Decimal(a.value(i) as f64 / scale)
                });
            }
        }
        KustoType::String | KustoType::Guid => {
            let a = array.as_string::<i32>();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Val::Null
                } else if ty == KustoType::Guid {
                    Val::Guid(a.value(i).to_owned())
                } else {
                    Val::Str(a.value(i).to_owned())
                });
            }
        }
        KustoType::Dynamic => {
            let a = array.as_string::<i32>();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Val::Null
                } else {
                    Val::Dynamic(parse_dynamic_text(a.value(i)))
                });
            }
        }
        KustoType::DateTime => {
            let a = array.as_primitive::<TimestampNanosecondType>();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Val::Null
                } else {
                    Val::DateTime(a.value(i).div_euclid(100))
                });
            }
        }
        KustoType::Timespan => {
            let a = array.as_primitive::<DurationNanosecondType>();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Val::Null
                } else {
                    Val::Timespan(a.value(i).div_euclid(100))
                });
            }
        }
    }
    Ok(out)
}

/// The JSON in a dynamic column's text (text that is not JSON is a JSON string).
pub fn parse_dynamic_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// Builds an Arrow array of Kusto type `ty` from values (converting where needed; a value
/// that does not convert is null).
pub fn build_column(values: &[Val], ty: KustoType) -> ArrayRef {
    match ty {
        KustoType::Bool => {
            let mut b = BooleanBuilder::with_capacity(values.len());
            for v in values {
                b.append_option(if v.is_null() { None } else { v.as_bool() });
            }
            Arc::new(b.finish())
        }
        KustoType::Int => {
            let mut b = Int32Builder::with_capacity(values.len());
            for v in values {
                b.append_option(if v.is_null() {
                    None
                } else {
                    v.as_i64().map(|x| x as i32)
                });
            }
            Arc::new(b.finish())
        }
        KustoType::Long => {
            let mut b = Int64Builder::with_capacity(values.len());
            for v in values {
                b.append_option(if v.is_null() { None } else { v.as_i64() });
            }
            Arc::new(b.finish())
        }
        KustoType::Real => {
            let mut b = Float64Builder::with_capacity(values.len());
            for v in values {
                b.append_option(match v {
                    Val::Null | Val::Dynamic(Value::Null) => None,
                    Val::Dynamic(Value::String(s)) if s == "NaN" => Some(f64::NAN),
                    other => other.as_f64(),
                });
            }
            Arc::new(b.finish())
        }
        KustoType::Decimal => {
            let mut b = Decimal128Builder::with_capacity(values.len());
            for v in values {
                b.append_option(
                    v.as_f64()
                        .filter(|f| f.is_finite())
                        .map(|f| (f * 1e18).round() as i128),
                );
            }
            match b.finish().with_precision_and_scale(38, 18) {
                Ok(a) => Arc::new(a),
                Err(_) => arrow::array::new_null_array(&ty.arrow(), values.len()),
            }
        }
        KustoType::String | KustoType::Guid => {
            let mut b = StringBuilder::with_capacity(values.len(), values.len() * 8);
            for v in values {
                match v {
                    Val::Null => b.append_null(),
                    other => b.append_value(other.to_text()),
                }
            }
            Arc::new(b.finish())
        }
        KustoType::Dynamic => {
            let mut b = StringBuilder::with_capacity(values.len(), values.len() * 8);
            for v in values {
                match v {
                    Val::Null | Val::Dynamic(Value::Null) => b.append_null(),
                    other => b.append_value(dynamic_text(&other.as_dynamic_out())),
                }
            }
            Arc::new(b.finish())
        }
        KustoType::DateTime => {
            let mut b =
                TimestampNanosecondBuilder::with_capacity(values.len()).with_timezone("UTC");
            for v in values {
                b.append_option(v.as_datetime().and_then(|t| t.checked_mul(100)));
            }
            Arc::new(b.finish())
        }
        KustoType::Timespan => {
            let mut b = DurationNanosecondBuilder::with_capacity(values.len());
            for v in values {
                b.append_option(match v {
                    Val::Timespan(t) => t.checked_mul(100),
                    Val::Str(_) | Val::Dynamic(Value::String(_)) => {
                        v.as_timespan().and_then(|t| t.checked_mul(100))
                    }
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
    }
}

impl Val {
    /// A value written into a dynamic column: text stays text (not re-parsed).
    fn as_dynamic_out(&self) -> Value {
        match self {
            Val::Dynamic(v) => v.clone(),
            other => other.to_json(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_every_type() {
        let cases = [
            (KustoType::Bool, Val::Bool(true)),
            (KustoType::Int, Val::Int(-3)),
            (KustoType::Long, Val::Long(1 << 40)),
            (KustoType::Real, Val::Real(2.5)),
            (KustoType::String, Val::Str("x".into())),
            (KustoType::DateTime, Val::DateTime(15_000_000_000_000_001)),
            (KustoType::Timespan, Val::Timespan(-7)),
            (
                KustoType::Dynamic,
                Val::Dynamic(serde_json::json!({"a": [1, "b"]})),
            ),
            (KustoType::Guid, Val::Guid("0a".into())),
        ];
        for (ty, v) in cases {
            let a = build_column(&[v.clone(), Val::Null], ty);
            let back = read_column(&a, ty).unwrap();
            assert_eq!(back, vec![v, Val::Null], "{ty}");
        }
    }

    #[test]
    fn text_forms() {
        assert_eq!(Val::Real(1.0).to_text(), "1");
        assert_eq!(Val::Real(0.5).to_text(), "0.5");
        assert_eq!(Val::Dynamic(serde_json::json!("s")).to_text(), "s");
        assert_eq!(Val::Dynamic(serde_json::json!([1, 2])).to_text(), "[1,2]");
        assert_eq!(Val::Null.to_text(), "");
    }
}
