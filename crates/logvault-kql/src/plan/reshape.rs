//! Plugins that reshape a table: `pivot` (values of a column become columns) and `narrow`
//! (every cell becomes a row).
//!
//! `pivot`'s output columns are values of the data. A logical plan has a fixed schema, so they
//! are known either from the output schema written after `:` or, when the rows come from the
//! query's own constants, by computing the pivot column's values while planning (as
//! `bag_unpack` does); over rows read at run time without a schema, pivot is refused with an
//! error that says to write the schema.

use serde_json::Value;

use super::operators::convert;
use super::rel::{Rel, TExpr, unique_name};
use super::scalar::Scope;
use super::{Env, Planner};
use crate::ast::{Arg, Assign, BinOp, Evaluate, Expr, ExprKind, Ident, Literal, MvItem};
use crate::error::{KqlError, Span};
use crate::functions::{self, FnCall};
use crate::types::KustoType;
use crate::udf::value::read_column;

fn name(n: &str, span: Span) -> Expr {
    Expr {
        kind: ExprKind::Name(n.to_owned()),
        span,
    }
}

fn call(f: &str, args: Vec<Expr>, span: Span) -> Expr {
    Expr {
        kind: ExprKind::Call {
            name: Ident {
                name: f.to_owned(),
                span,
            },
            args: args
                .into_iter()
                .map(|value| Arg { name: None, value })
                .collect(),
        },
        span,
    }
}

/// The conditional form of an aggregation pivot accepts (`sum` -> `sumif`), and whether a cell
/// without rows is 0 rather than null.
fn conditional(agg: &str) -> Option<(&'static str, bool)> {
    Some(match agg {
        "count" => ("countif", true),
        "sum" => ("sumif", true),
        "dcount" => ("dcountif", true),
        "avg" => ("avgif", false),
        "min" => ("minif", false),
        "max" => ("maxif", false),
        "take_any" | "any" => ("take_anyif", false),
        "stdev" => ("stdevif", false),
        "variance" => ("varianceif", false),
        "make_list" => ("make_list_if", false),
        "make_set" => ("make_set_if", false),
        "make_bag" => ("make_bag_if", false),
        _ => return None,
    })
}

/// The names of the columns an expression reads.
fn names_in(e: &Expr, out: &mut Vec<String>) {
    match &e.kind {
        ExprKind::Name(n) => out.push(n.clone()),
        ExprKind::Member(b, _) => names_in(b, out),
        ExprKind::Index(b, i) => {
            names_in(b, out);
            names_in(i, out);
        }
        ExprKind::Unary(_, x) => names_in(x, out),
        ExprKind::Binary(_, l, r) => {
            names_in(l, out);
            names_in(r, out);
        }
        ExprKind::Call { args, .. } => args.iter().for_each(|a| names_in(&a.value, out)),
        _ => {}
    }
}

impl Planner<'_> {
    /// `pivot(PivotColumn [, Aggregation] [, Column, ...]) [: (schema)]`: one row per value of
    /// the columns, one column per value of `PivotColumn` (as a string) holding the aggregation
    /// over the rows of that value (`count()` by default). Planned as one `summarize` of the
    /// conditional aggregations (`sumif(x, tostring(P) == "v")`, ...) by the columns.
    pub(crate) fn pivot(
        &mut self,
        rel: Rel,
        ev: &Evaluate,
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        if let Some(a) = ev.args.iter().find(|a| a.name.is_some()) {
            return Err(KqlError::semantic(
                "pivot takes no named arguments",
                a.value.span,
            ));
        }
        let args: Vec<&Expr> = ev.args.iter().map(|a| &a.value).collect();
        let Some(ExprKind::Name(pivot_col)) = args.first().map(|e| &e.kind) else {
            return Err(KqlError::semantic(
                "pivot needs the column to pivot as its first argument",
                span,
            ));
        };
        rel.require(pivot_col, args[0].span)?;
        let mut rest = &args[1..];
        let (agg_name, agg_args, agg_span) = match rest.first().map(|e| (&e.kind, e.span)) {
            Some((ExprKind::Call { name, args }, s))
                if functions::aggregate::is_aggregate(&name.name) =>
            {
                rest = &rest[1..];
                (name.name.clone(), args.clone(), s)
            }
            _ => ("count".to_owned(), Vec::new(), span),
        };
        let Some((if_name, zero)) = conditional(&agg_name) else {
            return Err(KqlError::unsupported(
                format!(
                    "pivot with {agg_name}() (pivot aggregates with min, max, take_any, sum, dcount, avg, stdev, variance, make_list, make_bag, make_set or count)"
                ),
                agg_span,
            ));
        };
        // The columns kept: those given, else all but the pivot column and those aggregated.
        let mut group: Vec<String> = Vec::new();
        if rest.is_empty() {
            let mut used = vec![pivot_col.clone()];
            agg_args.iter().for_each(|a| names_in(&a.value, &mut used));
            group.extend(
                rel.cols
                    .iter()
                    .map(|c| c.name.clone())
                    .filter(|n| !used.contains(n)),
            );
        } else {
            for e in rest {
                let ExprKind::Name(n) = &e.kind else {
                    return Err(KqlError::semantic(
                        "pivot's columns after the aggregation must be column names",
                        e.span,
                    ));
                };
                rel.require(n, e.span)?;
                group.push(n.clone());
            }
        }
        // The pivoted columns: from the output schema, or the values known now.
        let values: Vec<(String, Option<KustoType>)> = match &ev.schema {
            Some(schema) => schema
                .iter()
                .filter(|(n, _)| !group.contains(&n.name))
                .map(|(n, t)| (n.name.clone(), Some(*t)))
                .collect(),
            None => {
                let sc = Scope::with_cols(rel.scope_cols(), env);
                let as_text = convert(self.scalar(args[0], &sc)?, KustoType::String);
                let only = rel.project(vec![("v".into(), as_text)])?;
                let Some(batches) = self.constant_rows_of(&only, "pivot", span)? else {
                    return Err(KqlError::unsupported(
                        "pivot without an output schema over rows read at run time: its columns are values of the data, which a plan must know before it runs (write `evaluate pivot(...) : (Key:string, Value1:long, ...)`)",
                        span,
                    ));
                };
                let mut seen: Vec<String> = Vec::new();
                for b in &batches {
                    for v in read_column(b.column(0), KustoType::String)? {
                        let t = v.to_text();
                        if !seen.contains(&t) {
                            seen.push(t);
                        }
                    }
                }
                seen.into_iter().map(|v| (v, None)).collect()
            }
        };
        let by: Vec<Assign> = group
            .iter()
            .map(|g| Assign {
                names: Vec::new(),
                expr: name(g, span),
            })
            .collect();
        if by.is_empty() && values.is_empty() {
            return Err(KqlError::semantic(
                "pivot has no columns to produce: no other columns and no pivot values",
                span,
            ));
        }
        let mut taken = group.clone();
        let mut aggs = Vec::new();
        let mut fresh_names = Vec::new();
        for (v, _) in &values {
            let test = Expr {
                kind: ExprKind::Binary(
                    BinOp::Eq,
                    Box::new(call("tostring", vec![name(pivot_col, span)], span)),
                    Box::new(Expr {
                        kind: ExprKind::Literal(Literal::String(v.clone())),
                        span,
                    }),
                ),
                span,
            };
            let mut a: Vec<Expr> = agg_args.iter().map(|a| a.value.clone()).collect();
            a.push(test);
            let internal = self.fresh("pivot");
            fresh_names.push(internal.clone());
            aggs.push(Assign {
                names: vec![Ident {
                    name: internal,
                    span,
                }],
                expr: call(if_name, a, agg_span),
            });
            let shown = unique_name(v, &taken);
            taken.push(shown);
        }
        let summed = self.summarize(rel, &aggs, &by, env)?;
        // The pivoted columns under their values' names, typed as the schema says.
        let mut items: Vec<(String, TExpr)> = Vec::new();
        for (i, g) in group.iter().enumerate() {
            items.push((g.clone(), summed.texpr(i)));
        }
        for (k, (_, ty)) in values.iter().enumerate() {
            let i = summed.require(&fresh_names[k], span)?;
            let mut t = summed.texpr(i);
            if zero {
                let z = convert(TExpr::long(0), t.ty);
                t = TExpr::new(
                    datafusion::functions::expr_fn::coalesce(vec![t.expr, z.expr]),
                    t.ty,
                );
            }
            if let Some(ty) = ty {
                t = convert(t, *ty);
            }
            items.push((taken[group.len() + k].clone(), t));
        }
        if let Some(schema) = &ev.schema {
            let order: Vec<&str> = schema.iter().map(|(n, _)| n.name.as_str()).collect();
            items.sort_by_key(|(n, _)| order.iter().position(|o| o == n).unwrap_or(usize::MAX));
        }
        summed.project(items)
    }

    /// `narrow()`: every cell as a row of `Row` (the row's 0-based number), `Column` (its
    /// column's name) and `Value` (its value as a string). Planned as one pass: the row's
    /// names and values as two arrays, expanded side by side.
    pub(crate) fn narrow(
        &mut self,
        rel: Rel,
        ev: &Evaluate,
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        if !ev.args.is_empty() {
            return Err(KqlError::semantic("narrow() takes no arguments", span));
        }
        let (row, names, values) = (self.fresh("row"), self.fresh("names"), self.fresh("values"));
        let order = if rel.ordered {
            rel.keys.clone()
        } else {
            Vec::new()
        };
        let number = TExpr::new(
            super::apply::row_number(Vec::new(), order)? - datafusion::logical_expr::lit(1i64),
            KustoType::Long,
        );
        let all_names = Value::Array(
            rel.cols
                .iter()
                .map(|c| Value::String(c.name.clone()))
                .collect(),
        );
        let mut call = FnCall {
            name: "pack_array",
            args: (0..rel.cols.len())
                .map(|i| convert(rel.texpr(i), KustoType::String))
                .collect(),
            span,
            now_ticks: self.now_ticks,
            star_names: Vec::new(),
        };
        let cells = functions::call_scalar(&mut call)?;
        let arrays = rel.project(vec![
            (row.clone(), number),
            (
                names.clone(),
                TExpr::lit(
                    datafusion::common::ScalarValue::Utf8(Some(all_names.to_string())),
                    KustoType::Dynamic,
                ),
            ),
            (values.clone(), cells),
        ])?;
        let item = |n: &str| MvItem {
            name: None,
            expr: name(n, span),
            to: Some(KustoType::String),
        };
        let expanded = self.mv_expand(
            arrays,
            &[item(&names), item(&values)],
            None,
            false,
            None,
            span,
            env,
        )?;
        let pick = |n: &str| expanded.require(n, span).map(|i| expanded.texpr(i));
        let out = vec![
            ("Row".to_owned(), pick(&row)?),
            ("Column".to_owned(), pick(&names)?),
            ("Value".to_owned(), pick(&values)?),
        ];
        expanded.project(out)
    }
}
