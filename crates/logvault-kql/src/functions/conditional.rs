//! Conditional functions and null tests: `iff`, `case`, `coalesce`, `isempty`, ...

use datafusion::functions::core::expr_fn as core;
use datafusion::logical_expr::{Expr, lit, when};

use super::{FnCall, Impl};
use crate::error::KqlError;
use crate::plan::{TExpr, convert_pub};
use crate::types::KustoType;

pub(crate) const FUNCTIONS: &[(&str, Impl)] = &[
    ("iff", iff),
    ("iif", iff),
    ("case", case),
    ("coalesce", coalesce),
    ("isnull", isnull),
    ("isnotnull", isnotnull),
    ("notnull", isnotnull),
    ("isempty", isempty),
    ("isnotempty", isnotempty),
    ("notempty", isnotempty),
    ("not", not),
    ("max_of", max_of),
    ("min_of", min_of),
    ("around", around),
    ("assert", assert),
    (
        "current_principal_is_member_of",
        current_principal_is_member_of,
    ),
];

/// `around(value, center, delta)`: whether `value` is within `delta` of `center` (bounds
/// included); numbers, datetimes and timespans.
fn around(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    use crate::ast::BinOp;
    c.arity(3, 3)?;
    let (v, center, delta) = (c.arg(0), c.arg(1), c.arg(2));
    let low = crate::plan::binary_pub(BinOp::Sub, center.clone(), delta.clone(), c.span)?;
    let high = crate::plan::binary_pub(BinOp::Add, center, delta, c.span)?;
    let ge = crate::plan::binary_pub(BinOp::GtEq, v.clone(), low, c.span)?;
    let le = crate::plan::binary_pub(BinOp::LtEq, v, high, c.span)?;
    crate::plan::binary_pub(BinOp::And, ge, le, c.span)
}

/// `assert(condition, message)`: the condition must be constant; true returns true, false
/// fails the query with the message.
fn assert(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(2, 2)?;
    let cond = convert_pub(c.arg(0), KustoType::Bool);
    let value = crate::plan::eval_pub(&cond, "assert()'s condition", c.span)?;
    let message = c
        .arg(1)
        .literal_str()
        .unwrap_or("assertion failed")
        .to_owned();
    match value {
        datafusion::common::ScalarValue::Boolean(Some(true)) => {
            Ok(TExpr::new(lit(true), KustoType::Bool))
        }
        _ => Err(c.err(format!("assertion failed: {message}"))),
    }
}

/// `current_principal_is_member_of(group, ...)`: logvault has no Microsoft Entra principal,
/// so the one running a query is a member of no Entra user, group or app: false.
fn current_principal_is_member_of(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, usize::MAX)?;
    Ok(TExpr::new(lit(false), KustoType::Bool))
}

/// The common type of branch values (numbers widened; otherwise the first non-dynamic type).
pub(crate) fn common_type(types: &[KustoType]) -> KustoType {
    let mut t: Option<KustoType> = None;
    for x in types {
        t = Some(match t {
            None => *x,
            Some(a) if a == *x => a,
            Some(a) if a.is_numeric() && x.is_numeric() => KustoType::numeric_join(a, *x),
            Some(KustoType::Dynamic) => *x,
            Some(a) => a,
        });
    }
    t.unwrap_or(KustoType::Dynamic)
}

fn cond(t: TExpr) -> Expr {
    if t.ty == KustoType::Bool {
        t.expr
    } else {
        convert_pub(t, KustoType::Bool).expr
    }
}

fn iff(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(3, 3)?;
    let ty = common_type(&[c.args[1].ty, c.args[2].ty]);
    let (a, b) = (convert_pub(c.arg(1), ty), convert_pub(c.arg(2), ty));
    let e = when(cond(c.arg(0)), a.expr).otherwise(b.expr)?;
    Ok(TExpr::new(e, ty))
}

fn case(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    if c.args.len() < 3 || c.args.len().is_multiple_of(2) {
        return Err(c.err("takes pairs of predicate and value, then an else value"));
    }
    let values: Vec<KustoType> = c
        .args
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 1 || *i == c.args.len() - 1)
        .map(|(_, a)| a.ty)
        .collect();
    let ty = common_type(&values);
    let n = c.args.len();
    let mut b = when(cond(c.arg(0)), convert_pub(c.arg(1), ty).expr);
    let mut i = 2;
    while i + 1 < n {
        b = b.when(cond(c.arg(i)), convert_pub(c.arg(i + 1), ty).expr);
        i += 2;
    }
    let e = b.otherwise(convert_pub(c.arg(n - 1), ty).expr)?;
    Ok(TExpr::new(e, ty))
}

fn coalesce(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 64)?;
    let ty = common_type(&c.args.iter().map(|a| a.ty).collect::<Vec<_>>());
    let args: Vec<Expr> = c
        .args
        .iter()
        .map(|a| {
            let e = convert_pub(a.clone(), ty).expr;
            // Kusto's coalesce skips empty strings too.
            if ty == KustoType::String {
                core::nullif(e, lit(""))
            } else {
                e
            }
        })
        .collect();
    Ok(TExpr::new(core::coalesce(args), ty))
}

fn null_test(t: TExpr) -> Expr {
    match t.ty {
        // A string is never null in Kusto: isnull("") is false.
        KustoType::String => lit(false),
        _ => t.expr.is_null(),
    }
}

fn isnull(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    let a = c.arg(0);
    if a.ty == KustoType::String && a.literal().is_none() {
        return Ok(TExpr::bool(false));
    }
    Ok(TExpr::new(null_test(a), KustoType::Bool))
}

fn isnotnull(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    let a = c.arg(0);
    Ok(TExpr::new(
        Expr::Not(Box::new(null_test(a))),
        KustoType::Bool,
    ))
}

fn empty_test(t: TExpr) -> Expr {
    match t.ty {
        KustoType::String | KustoType::Guid => t.expr.clone().is_null().or(t.expr.eq(lit(""))),
        KustoType::Dynamic => {
            let s = convert_pub(t, KustoType::String).expr;
            s.clone().is_null().or(s.eq(lit("")))
        }
        _ => t.expr.is_null(),
    }
}

fn isempty(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(TExpr::new(empty_test(c.arg(0)), KustoType::Bool))
}

fn isnotempty(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(TExpr::new(
        Expr::Not(Box::new(empty_test(c.arg(0)))),
        KustoType::Bool,
    ))
}

fn not(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    c.arity(1, 1)?;
    Ok(TExpr::new(
        Expr::Not(Box::new(cond(c.arg(0)))),
        KustoType::Bool,
    ))
}

fn extreme(c: &mut FnCall<'_>, greatest: bool) -> Result<TExpr, KqlError> {
    c.arity(1, 64)?;
    let ty = common_type(&c.args.iter().map(|a| a.ty).collect::<Vec<_>>());
    let args: Vec<Expr> = c
        .args
        .iter()
        .map(|a| convert_pub(a.clone(), ty).expr)
        .collect();
    let e = if greatest {
        core::greatest(args)
    } else {
        core::least(args)
    };
    Ok(TExpr::new(e, ty))
}

fn max_of(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    extreme(c, true)
}

fn min_of(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
    extreme(c, false)
}
