//! Series functions over dynamic arrays: element-wise math and comparisons, fills, and
//! statistics.

use serde_json::{Number, Value, json};

use super::{FnCall, Impl, a0, at};
use crate::error::KqlError;
use crate::plan::TExpr;
use crate::types::KustoType;
use crate::udf::value::{Val, real_json};

pub(crate) const FUNCTIONS: &[(&str, Impl)] = &[
    ("series_abs", series_abs),
    ("series_acos", series_acos),
    ("series_asin", series_asin),
    ("series_atan", series_atan),
    ("series_ceiling", series_ceiling),
    ("series_cos", series_cos),
    ("series_exp", series_exp),
    ("series_floor", series_floor),
    ("series_log", series_log),
    ("series_sign", series_sign),
    ("series_sin", series_sin),
    ("series_sqrt", series_sqrt),
    ("series_tan", series_tan),
    ("series_add", series_add),
    ("series_subtract", series_subtract),
    ("series_multiply", series_multiply),
    ("series_divide", series_divide),
    ("series_pow", series_pow),
    ("series_greater", series_greater),
    ("series_greater_equals", series_greater_equals),
    ("series_less", series_less),
    ("series_less_equals", series_less_equals),
    ("series_equals", series_equals),
    ("series_not_equals", series_not_equals),
    ("series_sum", series_sum),
    ("series_product", series_product),
    ("series_magnitude", series_magnitude),
    ("series_stats_dynamic", series_stats_dynamic),
    ("series_fill_backward", series_fill_backward),
    ("series_fill_forward", series_fill_forward),
    ("series_fill_const", series_fill_const),
];

/// The elements of a series as numbers (`None` for nulls and non-numbers).
fn nums(v: &Val) -> Option<Vec<Option<f64>>> {
    match v.as_dynamic() {
        Value::Array(a) => Some(a.iter().map(Value::as_f64).collect()),
        _ => None,
    }
}

fn all_integral(v: &Val) -> bool {
    matches!(v.as_dynamic(), Value::Array(a) if a.iter().all(|x| x.is_i64() || x.is_null()))
}

fn unary(v: &[Val], f: fn(f64) -> f64) -> Val {
    nums(a0(v)).map_or(Val::Null, |xs| {
        Val::Dynamic(Value::Array(
            xs.into_iter()
                .map(|x| x.map_or(Value::Null, |x| real_json_keep(f(x))))
                .collect(),
        ))
    })
}

/// A real result kept a real in JSON (`1.0`, not `1`), as Kusto prints series.
fn real_json_keep(x: f64) -> Value {
    if x.is_finite() {
        Number::from_f64(x).map_or(Value::Null, Value::Number)
    } else {
        real_json(x)
    }
}

macro_rules! unary_fn {
    ($name:ident, $f:expr) => {
        fn $name(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
            c.arity(1, 1)?;
            Ok(c.row(KustoType::Dynamic, |v| unary(v, $f)))
        }
    };
}

unary_fn!(series_abs, f64::abs);
unary_fn!(series_acos, f64::acos);
unary_fn!(series_asin, f64::asin);
unary_fn!(series_atan, f64::atan);
unary_fn!(series_ceiling, f64::ceil);
unary_fn!(series_cos, f64::cos);
unary_fn!(series_exp, f64::exp);
unary_fn!(series_floor, f64::floor);
unary_fn!(series_log, f64::ln);
unary_fn!(series_sin, f64::sin);
unary_fn!(series_sqrt, f64::sqrt);
unary_fn!(series_tan, f64::tan);

fn series_sign(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        nums(a0(v)).map_or(Val::Null, |xs| {
            Val::Dynamic(Value::Array(
                xs.into_iter()
                    .map(|x| {
                        x.map_or(Value::Null, |x| {
                            Value::from(if x > 0.0 {
                                1
                            } else if x < 0.0 {
                                -1
                            } else {
                                0
                            })
                        })
                    })
                    .collect(),
            ))
        })
    }))
}

/// The second operand of a binary series function: a series, or a scalar broadcast.
fn operand(v: &Val, n: usize) -> Option<Vec<Option<f64>>> {
    match v.as_dynamic() {
        Value::Array(_) => nums(v),
        other => other.as_f64().map(|x| vec![Some(x); n]),
    }
}

fn binary(v: &[Val], f: fn(f64, f64) -> Value, integral_ok: bool) -> Val {
    let Some(a) = nums(a0(v)) else {
        return Val::Null;
    };
    let Some(b) = operand(at(v, 1), a.len()) else {
        return Val::Null;
    };
    let ints = integral_ok
        && all_integral(a0(v))
        && (all_integral(at(v, 1)) || at(v, 1).as_i64().is_some());
    let n = a.len().max(b.len());
    Val::Dynamic(Value::Array(
        (0..n)
            .map(
                |i| match (a.get(i).copied().flatten(), b.get(i).copied().flatten()) {
                    (Some(x), Some(y)) => {
                        let r = f(x, y);
                        match (&r, ints) {
                            (Value::Number(num), true) => num
                                .as_f64()
                                .filter(|f| f.fract() == 0.0)
                                .map_or(r.clone(), |f| Value::from(f as i64)),
                            _ => r,
                        }
                    }
                    _ => Value::Null,
                },
            )
            .collect(),
    ))
}

macro_rules! binary_fn {
    ($name:ident, $f:expr, $ints:expr) => {
        fn $name(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
            c.arity(2, 2)?;
            Ok(c.row(KustoType::Dynamic, |v| binary(v, $f, $ints)))
        }
    };
}

binary_fn!(series_add, |x, y| real_json_keep(x + y), true);
binary_fn!(series_subtract, |x, y| real_json_keep(x - y), true);
binary_fn!(series_multiply, |x, y| real_json_keep(x * y), true);
binary_fn!(series_divide, |x, y| real_json_keep(x / y), false);
binary_fn!(series_pow, |x, y| real_json_keep(x.powf(y)), false);
binary_fn!(series_greater, |x, y| Value::Bool(x > y), false);
binary_fn!(series_greater_equals, |x, y| Value::Bool(x >= y), false);
binary_fn!(series_less, |x, y| Value::Bool(x < y), false);
binary_fn!(series_less_equals, |x, y| Value::Bool(x <= y), false);
binary_fn!(series_equals, |x, y| Value::Bool(x == y), false);
binary_fn!(series_not_equals, |x, y| Value::Bool(x != y), false);

fn series_sum(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(c.row(KustoType::Real, |v| {
        nums(a0(v)).map_or(Val::Null, |xs| Val::Real(xs.into_iter().flatten().sum()))
    }))
}

fn series_product(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(c.row(KustoType::Real, |v| {
        nums(a0(v)).map_or(Val::Null, |xs| {
            Val::Real(xs.into_iter().flatten().product())
        })
    }))
}

fn series_magnitude(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(c.row(KustoType::Real, |v| {
        nums(a0(v)).map_or(Val::Null, |xs| {
            Val::Real(xs.into_iter().flatten().map(|x| x * x).sum::<f64>().sqrt())
        })
    }))
}

fn series_stats_dynamic(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 2)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        let Some(xs) = nums(a0(v)) else {
            return Val::Null;
        };
        let vals: Vec<(usize, f64)> = xs
            .iter()
            .enumerate()
            .filter_map(|(i, x)| x.map(|x| (i, x)))
            .collect();
        let n = vals.len();
        if n == 0 {
            return Val::Dynamic(json!({"min": null, "min_idx": null, "max": null, "max_idx": null, "avg": null, "stdev": null, "variance": null, "sum": null, "len": 0}));
        }
        let (mut min_i, mut max_i) = (vals[0], vals[0]);
        for &(i, x) in &vals {
            if x < min_i.1 {
                min_i = (i, x);
            }
            if x > max_i.1 {
                max_i = (i, x);
            }
        }
        let sum: f64 = vals.iter().map(|(_, x)| x).sum();
        let avg = sum / n as f64;
        let variance = if n > 1 {
            vals.iter().map(|(_, x)| (x - avg).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Val::Dynamic(json!({
            "min": min_i.1, "min_idx": min_i.0, "max": max_i.1, "max_idx": max_i.0,
            "avg": avg, "stdev": variance.sqrt(), "variance": variance, "sum": sum, "len": xs.len(),
        }))
    }))
}

fn array(v: &Val) -> Option<Vec<Value>> {
    match v.as_dynamic() {
        Value::Array(a) => Some(a),
        _ => None,
    }
}

fn series_fill_forward(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 2)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        array(a0(v)).map_or(Val::Null, |mut a| {
            let mut last = Value::Null;
            for x in &mut a {
                if x.is_null() {
                    *x = last.clone();
                } else {
                    last = x.clone();
                }
            }
            Val::Dynamic(Value::Array(a))
        })
    }))
}

fn series_fill_backward(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 2)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        array(a0(v)).map_or(Val::Null, |mut a| {
            let mut next = Value::Null;
            for x in a.iter_mut().rev() {
                if x.is_null() {
                    *x = next.clone();
                } else {
                    next = x.clone();
                }
            }
            Val::Dynamic(Value::Array(a))
        })
    }))
}

fn series_fill_const(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 3)?;
    if c.args.len() == 1 {
        c.args.push(TExpr::long(0));
    }
    Ok(c.row(KustoType::Dynamic, |v| {
        let fill = at(v, 1).to_json();
        array(a0(v)).map_or(Val::Null, |a| {
            Val::Dynamic(Value::Array(
                a.into_iter()
                    .map(|x| if x.is_null() { fill.clone() } else { x })
                    .collect(),
            ))
        })
    }))
}
