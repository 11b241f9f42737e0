//! `range` whose bounds are known only when the query runs (`toscalar` of a stored table): one
//! row holding the list of values, unnested by the planner. Longs (datetimes and timespans as
//! nanoseconds) or reals; at most [`MAX_ROWS`] values, an error beyond.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Builder, Int64Builder, ListBuilder};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The most values one `range` makes (as a range of constants).
pub(crate) const MAX_ROWS: u64 = 100_000_000;

#[derive(Debug, PartialEq, Eq, Hash)]
struct Range {
    real: bool,
    signature: Signature,
}

fn too_many(n: u64) -> DataFusionError {
    DataFusionError::Execution(format!(
        "range would produce {n} rows, more than {MAX_ROWS}"
    ))
}

/// The number of values from `from` to `to` (inclusive) by `step`; 0 when `to` lies behind.
fn count_i64(from: i64, to: i64, step: i64) -> Result<u64> {
    if step == 0 {
        return Err(DataFusionError::Execution(
            "the range step must not be 0".into(),
        ));
    }
    let span = i128::from(to) - i128::from(from);
    if (step > 0 && span < 0) || (step < 0 && span > 0) {
        return Ok(0);
    }
    let n = span / i128::from(step) + 1;
    u64::try_from(n).map_err(|_| too_many(u64::MAX))
}

fn count_f64(from: f64, to: f64, step: f64) -> Result<u64> {
    if step == 0.0 || !step.is_finite() || !from.is_finite() || !to.is_finite() {
        return Err(DataFusionError::Execution(
            "the range bounds must be finite and the step not 0".into(),
        ));
    }
    let n = ((to - from) / step).floor() + 1.0;
    if n <= 0.0 {
        return Ok(0);
    }
    if n > MAX_ROWS as f64 {
        return Err(too_many(n as u64));
    }
    Ok(n as u64)
}

impl ScalarUDFImpl for Range {
    fn name(&self) -> &str {
        if self.real {
            "kql_range_real"
        } else {
            "kql_range"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        let item = if self.real {
            DataType::Float64
        } else {
            DataType::Int64
        };
        Ok(DataType::List(Arc::new(Field::new("item", item, true))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<_>>()?;
        let [from, to, step] = arrays.as_slice() else {
            return Err(DataFusionError::Execution(
                "range takes three bounds".into(),
            ));
        };
        let valid = |i: usize| from.is_valid(i) && to.is_valid(i) && step.is_valid(i);
        if self.real {
            let (f, t, s) = (
                from.as_primitive::<Float64Type>(),
                to.as_primitive::<Float64Type>(),
                step.as_primitive::<Float64Type>(),
            );
            let mut out = ListBuilder::new(Float64Builder::new());
            for i in 0..rows {
                if valid(i) {
                    let (a, st) = (f.value(i), s.value(i));
                    for k in 0..count_f64(a, t.value(i), st)? {
                        out.values().append_value(a + st * k as f64);
                    }
                }
                out.append(true);
            }
            return Ok(ColumnarValue::Array(Arc::new(out.finish())));
        }
        let (f, t, s) = (
            from.as_primitive::<Int64Type>(),
            to.as_primitive::<Int64Type>(),
            step.as_primitive::<Int64Type>(),
        );
        let mut out = ListBuilder::new(Int64Builder::new());
        for i in 0..rows {
            if valid(i) {
                let (a, st) = (f.value(i), s.value(i));
                let n = count_i64(a, t.value(i), st)?;
                if n > MAX_ROWS {
                    return Err(too_many(n));
                }
                for k in 0..n {
                    // In range: a + st * k lies between from and to.
                    out.values()
                        .append_value(a.wrapping_add(st.wrapping_mul(k as i64)));
                }
            }
            out.append(true);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// The function making a range's values: `kql_range(from, to, step)` over longs, or over reals
/// (`real`).
pub(crate) fn range_udf(real: bool) -> Arc<ScalarUDF> {
    let t = if real {
        DataType::Float64
    } else {
        DataType::Int64
    };
    Arc::new(ScalarUDF::from(Range {
        real,
        signature: Signature::exact(vec![t.clone(), t.clone(), t], Volatility::Immutable),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_include_both_bounds_and_refuse_a_zero_step() {
        assert_eq!(count_i64(1, 9, 2).unwrap(), 5);
        assert_eq!(count_i64(9, 1, -2).unwrap(), 5);
        assert_eq!(count_i64(9, 1, 2).unwrap(), 0);
        assert!(count_i64(1, 9, 0).is_err());
        assert_eq!(count_f64(0.0, 1.0, 0.25).unwrap(), 5);
        assert!(count_f64(0.0, 1e12, 1e-3).is_err());
    }
}
