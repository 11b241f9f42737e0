//! The scalar side of Kusto's sketches: `hll()` and `tdigest()` (aggregations, in
//! `aggregate.rs`) give a dynamic value that these functions read and merge.
//!
//! logvault's sketches are exact: an `hll` value is the set of distinct values seen, a
//! `tdigest` value the list of values. `dcount_hll` and `percentile_tdigest` therefore give
//! exact answers (within Kusto's error bounds by construction), at the cost of a size that
//! grows with the distinct values (see docs/kql.md).

use serde_json::Value;

use super::{FnCall, Impl, a0, at};
use crate::error::KqlError;
use crate::plan::TExpr;
use crate::types::KustoType;
use crate::udf::value::Val;

pub(crate) const FUNCTIONS: &[(&str, Impl)] = &[
    ("dcount_hll", dcount_hll),
    ("hll_merge", hll_merge),
    ("merge_tdigest", merge_tdigest),
    ("tdigest_merge", merge_tdigest),
    ("percentile_tdigest", percentile_tdigest),
    ("percentiles_array_tdigest", percentiles_array_tdigest),
    ("rank_tdigest", rank_tdigest),
    ("percentrank_tdigest", percentrank_tdigest),
];

fn items(v: &Val) -> Vec<Value> {
    match v.as_dynamic() {
        Value::Array(a) => a,
        _ => Vec::new(),
    }
}

fn sorted_numbers(v: &Val) -> Vec<f64> {
    let mut xs: Vec<f64> = items(v).iter().filter_map(Value::as_f64).collect();
    xs.sort_by(f64::total_cmp);
    xs
}

/// The nearest-rank percentile `p` of sorted values (Kusto's `percentile`).
pub(crate) fn nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

fn dcount_hll(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(c.row(KustoType::Long, |v| {
        if a0(v).is_null() {
            return Val::Null;
        }
        Val::Long(items(a0(v)).len() as i64)
    }))
}

fn hll_merge(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 64)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        let mut out: Vec<Value> = Vec::new();
        for x in v {
            for i in items(x) {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        Val::Dynamic(Value::Array(out))
    }))
}

fn merge_tdigest(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 64)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        Val::Dynamic(Value::Array(v.iter().flat_map(items).collect()))
    }))
}

fn result_type(c: &FnCall<'_>, at_arg: usize) -> KustoType {
    c.args
        .get(at_arg)
        .and_then(TExpr::literal_str)
        .and_then(|t| t.parse().ok())
        .unwrap_or(KustoType::Real)
}

fn number(x: f64, ty: KustoType) -> Val {
    match ty {
        KustoType::Long | KustoType::Int => Val::Long(x as i64),
        KustoType::DateTime => Val::DateTime(x as i64),
        KustoType::Timespan => Val::Timespan(x as i64),
        _ => Val::Real(x),
    }
}

fn percentile_tdigest(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 3)?;
    let ty = result_type(c, 2);
    let ret = if ty == KustoType::Int {
        KustoType::Long
    } else {
        ty
    };
    let f: crate::udf::rowfn::RowFnPtr = match ret {
        KustoType::Long => |v| pct(v, KustoType::Long),
        KustoType::DateTime => |v| pct(v, KustoType::DateTime),
        KustoType::Timespan => |v| pct(v, KustoType::Timespan),
        _ => |v| pct(v, KustoType::Real),
    };
    let args = c.args[..2].to_vec();
    Ok(c.row_with(args, ret, f))
}

fn pct(v: &[Val], ty: KustoType) -> Val {
    let Some(p) = at(v, 1).as_f64() else {
        return Val::Null;
    };
    nearest_rank(&sorted_numbers(a0(v)), p).map_or(Val::Null, |x| number(x, ty))
}

fn percentiles_array_tdigest(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 64)?;
    Ok(c.row(KustoType::Dynamic, |v| {
        let xs = sorted_numbers(a0(v));
        let ps: Vec<f64> = if let Val::Dynamic(Value::Array(a)) = at(v, 1) {
            a.iter().filter_map(Value::as_f64).collect()
        } else {
            v[1..].iter().filter_map(Val::as_f64).collect()
        };
        Val::Dynamic(Value::Array(
            ps.iter()
                .map(|p| nearest_rank(&xs, *p).map_or(Value::Null, |x| Val::Real(x).to_json()))
                .collect(),
        ))
    }))
}

fn rank_tdigest(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    Ok(c.row(KustoType::Long, |v| {
        let Some(x) = at(v, 1).as_f64() else {
            return Val::Null;
        };
        Val::Long(sorted_numbers(a0(v)).iter().filter(|y| **y <= x).count() as i64)
    }))
}

fn percentrank_tdigest(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    Ok(c.row(KustoType::Real, |v| {
        let Some(x) = at(v, 1).as_f64() else {
            return Val::Null;
        };
        let xs = sorted_numbers(a0(v));
        if xs.is_empty() {
            return Val::Null;
        }
        Val::Real(100.0 * xs.iter().filter(|y| **y <= x).count() as f64 / xs.len() as f64)
    }))
}
