//! Dynamic arrays and sets: `array_*` (length, concat, slice, index, sort, reverse, sum, iff,
//! split, rotate, shift), `set_*`, `jaccard_index`, `zip`, `range`, `repeat`, `strcat_array`.

use serde_json::Value;

use super::dynamic::{arr, dynv};
use super::{FnCall, Impl, a0, at};
use crate::error::KqlError;
use crate::plan::TExpr;
use crate::types::KustoType;
use crate::udf::value::Val;

pub(crate) const FUNCTIONS: &[(&str, Impl)] = &[
    ("array_length", array_length),
    ("array_concat", array_concat),
    ("array_slice", array_slice),
    ("array_index_of", array_index_of),
    ("array_sort_asc", array_sort_asc),
    ("array_sort_desc", array_sort_desc),
    ("array_reverse", array_reverse),
    ("array_sum", array_sum),
    ("array_iff", array_iff),
    ("array_iif", array_iff),
    ("array_split", array_split),
    ("array_rotate_left", array_rotate_left),
    ("array_rotate_right", array_rotate_right),
    ("array_shift_left", array_shift_left),
    ("array_shift_right", array_shift_right),
    ("set_union", set_union),
    ("set_intersect", set_intersect),
    ("set_difference", set_difference),
    ("set_has_element", set_has_element),
    ("jaccard_index", jaccard_index),
    ("zip", zip),
    ("range", range),
    ("repeat", repeat),
    ("strcat_array", strcat_array),
];

fn array_length(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(c.row(KustoType::Long, |v| {
        arr(a0(v)).map_or(Val::Null, |a| Val::Long(a.len() as i64))
    }))
}

fn array_concat(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 64)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        let mut out = Vec::new();
        for x in v {
            match arr(x) {
                Some(a) => out.extend(a),
                None => return Val::Null,
            }
        }
        dynv(out)
    }))
}

pub(super) fn norm_index(i: i64, n: usize) -> i64 {
    if i < 0 { n as i64 + i } else { i }
}

fn array_slice(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(3, 3)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        let (Some(a), Some(s), Some(e)) = (arr(a0(v)), at(v, 1).as_i64(), at(v, 2).as_i64()) else {
            return Val::Null;
        };
        let n = a.len();
        let s = norm_index(s, n).max(0);
        let e = norm_index(e, n).min(n as i64 - 1);
        if s > e || n == 0 {
            return dynv(vec![]);
        }
        dynv(a[s as usize..=e as usize].to_vec())
    }))
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn array_index_of(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 5)?;
    Ok(c.row(KustoType::Long, |v| {
        let Some(a) = arr(a0(v)) else {
            return Val::Null;
        };
        let needle = at(v, 1).to_json();
        let n = a.len();
        let start = if v.len() > 2 {
            norm_index(at(v, 2).as_i64().unwrap_or(0), n).max(0) as usize
        } else {
            0
        };
        let len = if v.len() > 3 {
            at(v, 3).as_i64().unwrap_or(-1)
        } else {
            -1
        };
        let end = if len < 0 {
            n
        } else {
            (start + len as usize).min(n)
        };
        let occurrence = if v.len() > 4 {
            at(v, 4).as_i64().unwrap_or(1)
        } else {
            1
        };
        let mut seen = 0;
        for (i, x) in a.iter().enumerate().take(end).skip(start) {
            if json_eq(x, &needle) {
                seen += 1;
                if seen == occurrence {
                    return Val::Long(i as i64);
                }
            }
        }
        Val::Long(-1)
    }))
}

fn cmp_json(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(f64::NAN)
            .total_cmp(&y.as_f64().unwrap_or(f64::NAN)),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        _ => a.to_string().cmp(&b.to_string()),
    }
}

fn sort_impl(v: &[Val], asc: bool) -> Val {
    let Some(mut a) = arr(a0(v)) else {
        return Val::Null;
    };
    let nulls_last = if v.len() > 1 {
        at(v, 1).as_bool().unwrap_or(true)
    } else {
        true
    };
    let (mut nulls, mut rest): (Vec<Value>, Vec<Value>) = a.drain(..).partition(Value::is_null);
    rest.sort_by(|x, y| if asc { cmp_json(x, y) } else { cmp_json(y, x) });
    if nulls_last {
        rest.append(&mut nulls);
        dynv(rest)
    } else {
        nulls.append(&mut rest);
        dynv(nulls)
    }
}

/// Whether a sort call has several arrays (then it returns one array per input array, as a
/// dynamic array of them; `expand_multi` makes them columns).
fn several_arrays(c: &FnCall<'_>) -> bool {
    c.args.len() > 1 && c.args[1].ty == KustoType::Dynamic
}

fn array_sort_asc(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 64)?;
    if several_arrays(c) {
        return Ok(c.row(KustoType::Dynamic, |v| sort_many(v, true)));
    }
    c.arity(1, 2)?;
    Ok(c.row(KustoType::Dynamic, |v| sort_impl(v, true)))
}

fn array_sort_desc(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 64)?;
    if several_arrays(c) {
        return Ok(c.row(KustoType::Dynamic, |v| sort_many(v, false)));
    }
    c.arity(1, 2)?;
    Ok(c.row(KustoType::Dynamic, |v| sort_impl(v, false)))
}

/// The first array sorted, the others in the same order (null for one of another length).
fn sort_many(v: &[Val], asc: bool) -> Val {
    let (arrays, nulls_last) = match v.last() {
        Some(Val::Bool(b)) => (&v[..v.len() - 1], *b),
        _ => (v, true),
    };
    let Some(first) = arrays.first().and_then(arr) else {
        return Val::Null;
    };
    let mut order: Vec<usize> = (0..first.len()).collect();
    order.sort_by(|&i, &j| {
        let (x, y) = (&first[i], &first[j]);
        match (x.is_null(), y.is_null()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) if nulls_last => std::cmp::Ordering::Greater,
            (true, false) => std::cmp::Ordering::Less,
            (false, true) if nulls_last => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            _ if asc => cmp_json(x, y),
            _ => cmp_json(y, x),
        }
    });
    dynv(
        arrays
            .iter()
            .map(|a| match arr(a) {
                Some(a) if a.len() == first.len() => {
                    Value::Array(order.iter().map(|&i| a[i].clone()).collect())
                }
                _ => Value::Null,
            })
            .collect(),
    )
}

fn array_reverse(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        arr(a0(v)).map_or(Val::Null, |mut a| {
            a.reverse();
            dynv(a)
        })
    }))
}

fn array_sum(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(c.row(KustoType::Real, |v| {
        arr(a0(v)).map_or(Val::Null, |a| {
            let nums: Option<Vec<f64>> = a.iter().map(Value::as_f64).collect();
            nums.map_or(Val::Null, |n| Val::Real(n.iter().sum()))
        })
    }))
}

fn array_iff(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(3, 3)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        let (Some(cond), Some(x), Some(y)) = (arr(a0(v)), arr(at(v, 1)), arr(at(v, 2))) else {
            return Val::Null;
        };
        dynv(
            cond.iter()
                .enumerate()
                .map(|(i, c)| {
                    let pick = match c {
                        Value::Bool(b) => Some(*b),
                        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
                        _ => None,
                    };
                    match pick {
                        Some(true) => x.get(i).cloned().unwrap_or(Value::Null),
                        Some(false) => y.get(i).cloned().unwrap_or(Value::Null),
                        None => Value::Null,
                    }
                })
                .collect(),
        )
    }))
}

fn array_split(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        let Some(a) = arr(a0(v)) else {
            return Val::Null;
        };
        let n = a.len() as i64;
        let mut idx: Vec<i64> = match at(v, 1).as_dynamic() {
            Value::Array(xs) => xs.iter().filter_map(Value::as_i64).collect(),
            other => other.as_i64().into_iter().collect(),
        };
        idx = idx
            .into_iter()
            .map(|i| norm_index(i, a.len()).clamp(0, n))
            .collect();
        let mut out = Vec::new();
        let mut prev = 0usize;
        for i in idx {
            let i = (i as usize).max(prev);
            out.push(Value::Array(a[prev..i].to_vec()));
            prev = i;
        }
        out.push(Value::Array(a[prev..].to_vec()));
        dynv(out)
    }))
}

fn rotate(v: &[Val], left: bool) -> Val {
    let (Some(mut a), Some(k)) = (arr(a0(v)), at(v, 1).as_i64()) else {
        return Val::Null;
    };
    if a.is_empty() {
        return dynv(a);
    }
    let n = a.len() as i64;
    let k = (if left { k } else { -k }).rem_euclid(n) as usize;
    a.rotate_left(k);
    dynv(a)
}

fn array_rotate_left(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    Ok(c.row(KustoType::Dynamic, |v| rotate(v, true)))
}

fn array_rotate_right(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    Ok(c.row(KustoType::Dynamic, |v| rotate(v, false)))
}

fn shift(v: &[Val], left: bool) -> Val {
    let (Some(a), Some(k)) = (arr(a0(v)), at(v, 1).as_i64()) else {
        return Val::Null;
    };
    let fill = if v.len() > 2 {
        at(v, 2).to_json()
    } else {
        Value::Null
    };
    let n = a.len();
    let k = if left { k } else { -k };
    let out = (0..n as i64)
        .map(|i| {
            let j = i + k;
            if (0..n as i64).contains(&j) {
                a[j as usize].clone()
            } else {
                fill.clone()
            }
        })
        .collect();
    dynv(out)
}

fn array_shift_left(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 3)?;
    Ok(c.row(KustoType::Dynamic, |v| shift(v, true)))
}

fn array_shift_right(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 3)?;
    Ok(c.row(KustoType::Dynamic, |v| shift(v, false)))
}

pub(super) fn distinct(items: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for x in items {
        if !out.iter().any(|y| json_eq(y, &x)) {
            out.push(x);
        }
    }
    out
}

fn set_union(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 64)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        let mut all = Vec::new();
        for x in v {
            match arr(x) {
                Some(a) => all.extend(a),
                None => return Val::Null,
            }
        }
        dynv(distinct(all))
    }))
}

fn set_intersect(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 64)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        let Some(first) = arr(a0(v)) else {
            return Val::Null;
        };
        let mut out = distinct(first);
        for x in &v[1..] {
            let Some(a) = arr(x) else { return Val::Null };
            out.retain(|y| a.iter().any(|z| json_eq(y, z)));
        }
        dynv(out)
    }))
}

fn set_difference(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 64)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        let Some(first) = arr(a0(v)) else {
            return Val::Null;
        };
        let mut out = distinct(first);
        for x in &v[1..] {
            let Some(a) = arr(x) else { return Val::Null };
            out.retain(|y| !a.iter().any(|z| json_eq(y, z)));
        }
        dynv(out)
    }))
}

fn set_has_element(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    Ok(c.row(KustoType::Bool, |v| {
        let needle = at(v, 1).to_json();
        arr(a0(v)).map_or(Val::Null, |a| {
            Val::Bool(a.iter().any(|x| json_eq(x, &needle)))
        })
    }))
}

fn jaccard_index(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    Ok(c.row(KustoType::Real, |v| {
        let (Some(a), Some(b)) = (arr(a0(v)), arr(at(v, 1))) else {
            return Val::Null;
        };
        let (a, b) = (distinct(a), distinct(b));
        let inter = a.iter().filter(|x| b.iter().any(|y| json_eq(x, y))).count();
        let union = a.len() + b.len() - inter;
        if union == 0 {
            Val::Real(f64::NAN)
        } else {
            Val::Real(inter as f64 / union as f64)
        }
    }))
}

fn zip(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 16)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        let arrays: Option<Vec<Vec<Value>>> = v.iter().map(arr).collect();
        let Some(arrays) = arrays else {
            return Val::Null;
        };
        let n = arrays.iter().map(Vec::len).max().unwrap_or(0);
        dynv(
            (0..n)
                .map(|i| {
                    Value::Array(
                        arrays
                            .iter()
                            .map(|a| a.get(i).cloned().unwrap_or(Value::Null))
                            .collect(),
                    )
                })
                .collect(),
        )
    }))
}

fn range(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 3)?;
    if c.args.len() == 2 {
        let one = match c.args[0].ty {
            KustoType::DateTime | KustoType::Timespan => TExpr::lit(
                datafusion::common::ScalarValue::DurationNanosecond(Some(3_600_000_000_000)),
                KustoType::Timespan,
            ),
            _ => TExpr::long(1),
        };
        c.args.push(one);
    }
    Ok(c.row(KustoType::Dynamic, |v| {
        let (start, stop, step) = (a0(v), at(v, 1), at(v, 2));
        let mut out = Vec::new();
        match (start, stop, step) {
            (Val::DateTime(s), Val::DateTime(e), Val::Timespan(st)) if *st != 0 => {
                let mut t = *s;
                while (*st > 0 && t <= *e) || (*st < 0 && t >= *e) {
                    out.push(Val::DateTime(t).to_json());
                    t += st;
                    if out.len() > 1_048_576 {
                        break;
                    }
                }
            }
            (Val::Timespan(s), Val::Timespan(e), Val::Timespan(st)) if *st != 0 => {
                let mut t = *s;
                while (*st > 0 && t <= *e) || (*st < 0 && t >= *e) {
                    out.push(Val::Timespan(t).to_json());
                    t += st;
                    if out.len() > 1_048_576 {
                        break;
                    }
                }
            }
            _ => {
                let integral = [start, stop, step]
                    .iter()
                    .all(|x| matches!(x, Val::Int(_) | Val::Long(_)));
                let (Some(s), Some(e), Some(st)) = (start.as_f64(), stop.as_f64(), step.as_f64())
                else {
                    return Val::Null;
                };
                if st == 0.0 {
                    return Val::Null;
                }
                let mut i = 0u64;
                loop {
                    let x = s + st * i as f64;
                    if (st > 0.0 && x > e) || (st < 0.0 && x < e) || i > 1_048_576 {
                        break;
                    }
                    out.push(if integral {
                        Value::from(x as i64)
                    } else {
                        crate::udf::value::real_json(x)
                    });
                    i += 1;
                }
            }
        }
        dynv(out)
    }))
}

fn repeat(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        let Some(n) = at(v, 1).as_i64() else {
            return Val::Null;
        };
        dynv(vec![a0(v).to_json(); n.clamp(0, 1_048_576) as usize])
    }))
}

fn strcat_array(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    Ok(c.row(KustoType::String, |v| {
        let Some(a) = arr(a0(v)) else {
            return Val::Null;
        };
        let parts: Vec<String> = a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .collect();
        Val::Str(parts.join(&at(v, 1).to_text()))
    }))
}
