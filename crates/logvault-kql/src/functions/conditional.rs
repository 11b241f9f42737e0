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
];

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
