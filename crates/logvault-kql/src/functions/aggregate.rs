//! Aggregation functions (in `summarize`): DataFusion's where Kusto agrees, collecting UDAFs
//! otherwise, and the implicit names Kusto gives their columns (`count_`, `sum_x`, `list_x`).

use arrow::datatypes::DataType;
use datafusion::functions_aggregate::expr_fn as af;
use datafusion::functions_aggregate::{
    average::avg_udaf, bit_and_or_xor, count::count_udaf, covariance, min_max, stddev,
    sum::sum_udaf, variance,
};
use datafusion::logical_expr::{AggregateUDF, Expr, cast, lit};
use std::sync::Arc;

use crate::error::{KqlError, Span};
use crate::plan::{TExpr, convert_pub};
use crate::types::KustoType;
use crate::udf::aggregate::{self as collect, CollectKind};

/// Every aggregation's name.
pub(crate) const NAMES: &[&str] = &[
    "count",
    "countif",
    "dcount",
    "dcountif",
    "count_distinct",
    "count_distinctif",
    "sum",
    "sumif",
    "avg",
    "avgif",
    "min",
    "minif",
    "max",
    "maxif",
    "take_any",
    "any",
    "take_anyif",
    "anyif",
    "make_list",
    "make_list_if",
    "make_list_with_nulls",
    "make_set",
    "make_set_if",
    "make_bag",
    "make_bag_if",
    "list",
    "set",
    "percentile",
    "percentiles",
    "percentiles_array",
    "stdev",
    "stdevif",
    "stdevp",
    "stdevpif",
    "variance",
    "varianceif",
    "variancep",
    "variancepif",
    "arg_max",
    "arg_min",
    "binary_all_and",
    "binary_all_or",
    "binary_all_xor",
    "covariance",
    "covarianceif",
    "covariancep",
    "covariancepif",
    "hll",
    "hll_if",
    "tdigest",
    "buildschema",
];

/// Whether `name` is an aggregation.
pub(crate) fn is_aggregate(name: &str) -> bool {
    NAMES.contains(&name)
}

/// The prefix of the implicit column name of `name(x)` (`make_list` gives `list_x`).
pub(crate) fn implicit_prefix(name: &str) -> &str {
    match name {
        "make_list" | "make_list_if" | "make_list_with_nulls" => "list",
        "make_set" | "make_set_if" => "set",
        "make_bag" | "make_bag_if" => "bag",
        "take_any" | "any" => "any",
        "take_anyif" | "anyif" => "anyif",
        "buildschema" => "schema",
        "hll_if" => "hll",
        other => other,
    }
}

/// The implicit column name of `name(args)`, given the name of its first argument.
pub(crate) fn implicit_name(name: &str, first_arg: Option<&str>) -> String {
    match name {
        "count" if first_arg.is_none() => "count_".into(),
        "countif" => "countif_".into(),
        _ => format!("{}_{}", implicit_prefix(name), first_arg.unwrap_or("")),
    }
}

fn err(name: &str, msg: impl std::fmt::Display, span: Span) -> KqlError {
    KqlError::semantic(format!("{name}(): {msg}"), span)
}

fn arity(name: &str, args: &[TExpr], min: usize, max: usize, span: Span) -> Result<(), KqlError> {
    if args.len() < min || args.len() > max {
        return Err(err(
            name,
            format!("takes {min} to {max} arguments, {} given", args.len()),
            span,
        ));
    }
    Ok(())
}

fn with_filter(
    udaf: Arc<AggregateUDF>,
    args: Vec<Expr>,
    filter: Option<Expr>,
    distinct: bool,
) -> Result<Expr, KqlError> {
    Ok(Expr::AggregateFunction(
        datafusion::logical_expr::expr::AggregateFunction::new_udf(
            udaf,
            args,
            distinct,
            filter.map(Box::new),
            vec![],
            None,
        ),
    ))
}

fn predicate(t: TExpr) -> Expr {
    if t.ty == KustoType::Bool {
        t.expr
    } else {
        convert_pub(t, KustoType::Bool).expr
    }
}

fn numeric(t: TExpr) -> TExpr {
    if t.ty.is_numeric() || t.ty == KustoType::Timespan || t.ty == KustoType::DateTime {
        t
    } else {
        convert_pub(t, KustoType::Real)
    }
}

/// An aggregation's expression and result type. Multi-column aggregations (`arg_max`,
/// `percentiles`) are planned by `summarize` itself.
pub(crate) fn build(name: &str, mut args: Vec<TExpr>, span: Span) -> Result<TExpr, KqlError> {
    let if_variant = name.ends_with("if") && !matches!(name, "dcountif" | "countif");
    let _ = if_variant;
    let take = |args: &mut Vec<TExpr>, i: usize| args.get(i).cloned();
    let a0 = take(&mut args, 0);
    let first = || {
        a0.clone()
            .ok_or_else(|| err(name, "needs an argument", span))
    };
    Ok(match name {
        "count" => {
            arity(name, &args, 0, 1, span)?;
            // Kusto's count counts rows: `count(x)` counts the rows where x is null too.
            let e = with_filter(count_udaf(), vec![lit(1i64)], None, false)?;
            TExpr::new(e, KustoType::Long)
        }
        "countif" => {
            arity(name, &args, 1, 1, span)?;
            let p = predicate(first()?);
            TExpr::new(
                with_filter(count_udaf(), vec![lit(1i64)], Some(p), false)?,
                KustoType::Long,
            )
        }
        "dcount" | "count_distinct" => {
            arity(name, &args, 1, 2, span)?;
            TExpr::new(
                with_filter(count_udaf(), vec![first()?.expr], None, true)?,
                KustoType::Long,
            )
        }
        "dcountif" | "count_distinctif" => {
            arity(name, &args, 2, 3, span)?;
            let p = predicate(args[1].clone());
            TExpr::new(
                with_filter(count_udaf(), vec![first()?.expr], Some(p), true)?,
                KustoType::Long,
            )
        }
        "sum" | "sumif" => {
            let want = if name == "sum" { 1 } else { 2 };
            arity(name, &args, want, want, span)?;
            let x = numeric(first()?);
            let filter = (name == "sumif").then(|| predicate(args[1].clone()));
            let ty = match x.ty {
                KustoType::Int => KustoType::Long,
                t => t,
            };
            let input = if x.ty == KustoType::Timespan {
                cast(
                    cast(
                        x.expr,
                        DataType::Duration(arrow::datatypes::TimeUnit::Nanosecond),
                    ),
                    DataType::Int64,
                )
            } else {
                x.expr
            };
            let e = with_filter(sum_udaf(), vec![input], filter, false)?;
            let e = cast(e, ty.arrow());
            TExpr::new(e, ty)
        }
        "avg" | "avgif" => {
            let want = if name == "avg" { 1 } else { 2 };
            arity(name, &args, want, want, span)?;
            let x = numeric(first()?);
            let filter = (name == "avgif").then(|| predicate(args[1].clone()));
            let input = if x.ty.is_numeric() {
                x.expr
            } else {
                convert_pub(x, KustoType::Real).expr
            };
            TExpr::new(
                with_filter(avg_udaf(), vec![input], filter, false)?,
                KustoType::Real,
            )
        }
        "min" | "max" | "minif" | "maxif" => {
            let want = if name.len() == 3 { 1 } else { 2 };
            arity(name, &args, want, want, span)?;
            let x = first()?;
            let filter = (want == 2).then(|| predicate(args[1].clone()));
            let udaf = if name.starts_with("min") {
                min_max::min_udaf()
            } else {
                min_max::max_udaf()
            };
            TExpr::new(with_filter(udaf, vec![x.expr], filter, false)?, x.ty)
        }
        "take_any" | "any" | "take_anyif" | "anyif" => {
            let x = first()?;
            let filter = name
                .ends_with("if")
                .then(|| predicate(args.get(1).cloned().unwrap_or(TExpr::bool(true))));
            let e = af::first_value(x.expr, vec![]);
            let e = match filter {
                Some(f) => match e {
                    Expr::AggregateFunction(mut a) => {
                        a.params.filter = Some(Box::new(f));
                        Expr::AggregateFunction(a)
                    }
                    other => other,
                },
                None => e,
            };
            TExpr::new(e, x.ty)
        }
        "make_list"
        | "list"
        | "make_list_if"
        | "make_list_with_nulls"
        | "make_set"
        | "set"
        | "make_set_if"
        | "make_bag"
        | "make_bag_if" => {
            let x = first()?;
            let is_if = name.ends_with("_if");
            let kind = match name {
                "make_list" | "list" | "make_list_if" => CollectKind::List,
                "make_list_with_nulls" => CollectKind::ListWithNulls,
                "make_set" | "set" | "make_set_if" => CollectKind::Set,
                _ => CollectKind::Bag,
            };
            let filter = if is_if {
                Some(predicate(
                    args.get(1)
                        .cloned()
                        .ok_or_else(|| err(name, "needs a predicate", span))?,
                ))
            } else {
                None
            };
            let max_at = if is_if { 2 } else { 1 };
            let max = match args.get(max_at) {
                Some(m) => {
                    Some(crate::plan::eval_i64_pub(m, "the maximum size", span)?.max(0) as usize)
                }
                None => None,
            };
            TExpr::new(
                collect::call(kind, x.expr, x.ty, max, filter),
                KustoType::Dynamic,
            )
        }
        // Exact sketches: the distinct values (hll) or every value (tdigest); see sketch.rs.
        "buildschema" => {
            arity(name, &args, 1, 1, span)?;
            let x = first()?;
            TExpr::new(
                collect::call(CollectKind::Schema, x.expr, x.ty, None, None),
                KustoType::Dynamic,
            )
        }
        "hll" | "hll_if" | "tdigest" => {
            let x = first()?;
            let (kind, filter) = match name {
                "hll" => (CollectKind::Set, None),
                "hll_if" => (
                    CollectKind::Set,
                    Some(predicate(
                        args.get(1)
                            .cloned()
                            .ok_or_else(|| err(name, "needs a predicate", span))?,
                    )),
                ),
                _ => (CollectKind::List, None),
            };
            TExpr::new(
                collect::call(kind, x.expr, x.ty, None, filter),
                KustoType::Dynamic,
            )
        }
        "percentile" => {
            arity(name, &args, 2, 2, span)?;
            let x = first()?;
            let p = crate::plan::eval_f64_pub(&args[1], "the percentile", span)?;
            let ty = x.ty;
            TExpr::new(
                collect::call(CollectKind::Percentile(p), x.expr, ty, None, None),
                if ty == KustoType::Int {
                    KustoType::Int
                } else {
                    ty
                },
            )
        }
        "stdev" | "stdevif" | "stdevp" | "stdevpif" | "variance" | "varianceif" | "variancep"
        | "variancepif" => {
            let is_if = name.ends_with("if");
            arity(
                name,
                &args,
                1 + usize::from(is_if),
                1 + usize::from(is_if),
                span,
            )?;
            let x = convert_pub(first()?, KustoType::Real);
            let filter = is_if.then(|| predicate(args[1].clone()));
            let udaf = match name.trim_end_matches("if") {
                "stdev" => stddev::stddev_udaf(),
                "stdevp" => stddev::stddev_pop_udaf(),
                "variance" => variance::var_samp_udaf(),
                _ => variance::var_pop_udaf(),
            };
            TExpr::new(
                with_filter(udaf, vec![x.expr], filter, false)?,
                KustoType::Real,
            )
        }
        "covariance" | "covarianceif" | "covariancep" | "covariancepif" => {
            let is_if = name.ends_with("if");
            arity(
                name,
                &args,
                2 + usize::from(is_if),
                2 + usize::from(is_if),
                span,
            )?;
            let x = convert_pub(first()?, KustoType::Real);
            let y = convert_pub(args[1].clone(), KustoType::Real);
            let filter = is_if.then(|| predicate(args[2].clone()));
            let udaf = if name.starts_with("covariancep") {
                covariance::covar_pop_udaf()
            } else {
                covariance::covar_samp_udaf()
            };
            TExpr::new(
                with_filter(udaf, vec![x.expr, y.expr], filter, false)?,
                KustoType::Real,
            )
        }
        "binary_all_and" | "binary_all_or" | "binary_all_xor" => {
            arity(name, &args, 1, 1, span)?;
            let x = convert_pub(first()?, KustoType::Long);
            let udaf = match name {
                "binary_all_and" => bit_and_or_xor::bit_and_udaf(),
                "binary_all_or" => bit_and_or_xor::bit_or_udaf(),
                _ => bit_and_or_xor::bit_xor_udaf(),
            };
            TExpr::new(
                with_filter(udaf, vec![x.expr], None, false)?,
                KustoType::Long,
            )
        }
        other => {
            return Err(KqlError::unsupported(
                format!("the aggregation '{other}' in this position"),
                span,
            ));
        }
    })
}
