//! Series filters and decomposition: `series_iir`, `series_fir`, `series_seasonal`.

use serde_json::{Number, Value};

use super::{FnCall, Impl, a0, at};
use crate::error::KqlError;
use crate::plan::TExpr;
use crate::types::KustoType;
use crate::udf::value::Val;

pub(crate) const FUNCTIONS: &[(&str, Impl)] = &[
    ("series_iir", series_iir),
    ("series_fir", series_fir),
    ("series_seasonal", series_seasonal),
];

/// The elements of a dynamic array as numbers (nulls and non-numbers as 0, as Kusto's
/// filters read them); `None` when the value is not an array.
fn numbers(v: &Val) -> Option<Vec<f64>> {
    match v.as_dynamic() {
        Value::Array(a) => Some(a.iter().map(|x| x.as_f64().unwrap_or(0.0)).collect()),
        _ => None,
    }
}

fn reals(xs: impl IntoIterator<Item = f64>) -> Val {
    Val::Dynamic(Value::Array(
        xs.into_iter()
            .map(|x| Number::from_f64(x).map_or(Value::Null, Value::Number))
            .collect(),
    ))
}

/// `series_iir(x, b, a)`: y[i] = (b0 x[i] + b1 x[i-1] + ... - a1 y[i-1] - ...) / a0.
fn iir(v: &[Val]) -> Val {
    let (Some(x), Some(b), Some(a)) = (numbers(a0(v)), numbers(at(v, 1)), numbers(at(v, 2))) else {
        return Val::Null;
    };
    let a0 = a.first().copied().unwrap_or(0.0);
    if a0 == 0.0 || b.is_empty() {
        return Val::Null;
    }
    let mut y: Vec<f64> = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        let mut s = 0.0;
        for (k, bk) in b.iter().enumerate() {
            if k <= i {
                s += bk * x[i - k];
            }
        }
        for (k, ak) in a.iter().enumerate().skip(1) {
            if k <= i {
                s -= ak * y[i - k];
            }
        }
        y.push(s / a0);
    }
    reals(y)
}

fn series_iir(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(3, 3)?;
    Ok(c.row(KustoType::Dynamic, iir))
}

/// `series_fir(x, filter [, normalize [, center]])`: y[i] = sum f[k] x[i-k] (the filter
/// divided by its sum when normalized, which is the default; centered: shifted by half the
/// filter's length).
fn fir(v: &[Val]) -> Val {
    let (Some(x), Some(mut f)) = (numbers(a0(v)), numbers(at(v, 1))) else {
        return Val::Null;
    };
    let normalize = match at(v, 2) {
        Val::Bool(b) => *b,
        Val::Null => true,
        other => other.as_i64().is_none_or(|n| n != 0),
    };
    let center = matches!(at(v, 3), Val::Bool(true));
    if normalize {
        let sum: f64 = f.iter().sum();
        if sum != 0.0 {
            f.iter_mut().for_each(|w| *w /= sum);
        }
    }
    let shift = if center { f.len() / 2 } else { 0 };
    let n = x.len() as i64;
    let y = (0..n).map(|i| {
        f.iter()
            .enumerate()
            .map(|(k, w)| {
                let j = i + shift as i64 - k as i64;
                if (0..n).contains(&j) {
                    w * x[j as usize]
                } else {
                    0.0
                }
            })
            .sum()
    });
    reals(y)
}

fn series_fir(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 4)?;
    Ok(c.row(KustoType::Dynamic, fir))
}

/// Pearson's correlation of `x[..n-lag]` with `x[lag..]`.
fn autocorrelation(x: &[f64], lag: usize) -> f64 {
    let (a, b) = (&x[..x.len() - lag], &x[lag..]);
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (p, q) in a.iter().zip(b) {
        cov += (p - ma) * (q - mb);
        va += (p - ma) * (p - ma);
        vb += (q - mb) * (q - mb);
    }
    if va == 0.0 || vb == 0.0 {
        return 0.0;
    }
    cov / (va * vb).sqrt()
}

/// The period of `x`: the lag of at least 4 bins, among those the series holds at least four
/// cycles of, with
/// the highest autocorrelation, when that is at least 0.7 (the threshold Kusto's
/// `series_seasonal` detects with).
fn detect_period(x: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for lag in 4..=x.len() / 4 {
        let score = autocorrelation(x, lag);
        if score >= 0.7 && best.is_none_or(|(_, s)| score > s + 1e-9) {
            best = Some((lag, score));
        }
    }
    best.map(|(p, _)| p)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `series_seasonal(x [, period])`: each bin's median over the cycles of the period
/// (detected when -1 or absent; zeros when there is none).
fn seasonal(v: &[Val]) -> Val {
    let Some(x) = numbers(a0(v)) else {
        return Val::Null;
    };
    let period = match at(v, 1).as_i64() {
        None | Some(-1) => detect_period(&x),
        Some(p) if p > 0 => Some(p as usize),
        Some(_) => None,
    };
    let Some(p) = period else {
        return reals(vec![0.0; x.len()]);
    };
    let phases: Vec<f64> = (0..p.min(x.len()))
        .map(|k| median(x.iter().skip(k).step_by(p).copied().collect()))
        .collect();
    reals((0..x.len()).map(|i| phases[i % p]))
}

fn series_seasonal(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 2)?;
    Ok(c.row(KustoType::Dynamic, seasonal))
}
