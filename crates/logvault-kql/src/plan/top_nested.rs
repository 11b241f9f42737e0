//! `top-nested`: hierarchical top values. Level `k` aggregates the input by the values of
//! levels `0..=k`, keeps the combinations whose levels `0..k` survived the previous level (an
//! inner join, nulls equal as grouping keys are), and ranks them within those (a
//! `row_number()` window partitioned by the outer levels' values).

use datafusion::functions_window::row_number::row_number_udwf;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{
    Cast, Expr as DfExpr, ExprFunctionExt, SortExpr, WindowFunctionDefinition, lit,
};

use super::ops::expr_name;
use super::rel::{Rel, TExpr};
use super::scalar::Scope;
use super::{Env, Planner};
use crate::ast::{Assign, Expr, ExprKind, Ident, TopNestedLevel};
use crate::error::{KqlError, Span};
use crate::types::KustoType;

impl Planner<'_> {
    pub(crate) fn top_nested(
        &mut self,
        rel: Rel,
        levels: &[TopNestedLevel],
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        // The level values, as columns of the input.
        let mut key_names: Vec<String> = Vec::new();
        let mut agg_names: Vec<String> = Vec::new();
        let mut extend: Vec<Assign> = Vec::new();
        for (k, l) in levels.iter().enumerate() {
            if let Some(o) = &l.others {
                return Err(KqlError::unsupported(
                    "top-nested 'with others' (the other values' row)",
                    o.span,
                ));
            }
            let name = match (l.of.names.as_slice(), expr_name(&l.of.expr)) {
                ([n], _) => n.name.clone(),
                ([], Some(n)) => n,
                _ => format!("Column{}", k + 1),
            };
            if key_names.contains(&name) {
                return Err(KqlError::semantic(
                    format!("top-nested: the level '{name}' is given twice"),
                    l.of.expr.span,
                ));
            }
            if !matches!(&l.of.expr.kind, ExprKind::Name(n) if *n == name) {
                extend.push(Assign {
                    names: vec![Ident {
                        name: name.clone(),
                        span: l.of.expr.span,
                    }],
                    expr: l.of.expr.clone(),
                });
            }
            let agg = match l.by.names.as_slice() {
                [n] => n.name.clone(),
                _ => format!("aggregated_{name}"),
            };
            agg_names.push(agg);
            key_names.push(name);
        }
        let base = if extend.is_empty() {
            rel
        } else {
            super::ops::extend(self, rel, &extend, env)?
        };
        let mut survivors: Option<Rel> = None;
        for (k, l) in levels.iter().enumerate() {
            let by: Vec<Assign> = key_names[..=k]
                .iter()
                .map(|n| Assign {
                    names: vec![Ident {
                        name: n.clone(),
                        span,
                    }],
                    expr: Expr {
                        kind: ExprKind::Name(n.clone()),
                        span,
                    },
                })
                .collect();
            let agg = Assign {
                names: vec![Ident {
                    name: agg_names[k].clone(),
                    span: l.by.expr.span,
                }],
                expr: l.by.expr.clone(),
            };
            // Columns: the keys 0..=k, then the aggregation.
            let grouped = self.summarize(base.clone(), &[agg], &by, env)?;
            // Keep the combinations whose outer levels survived; carry their aggregations.
            let (joined, outer_aggs): (Rel, Vec<(String, TExpr)>) = match survivors.take() {
                None => (grouped, Vec::new()),
                Some(prev) => {
                    let pairs: Vec<(usize, usize)> = (0..k).map(|i| (i, 2 * i)).collect();
                    let (plan, g, s) = self.inner_join(grouped, prev, &pairs, true)?;
                    let mut items: Vec<(String, TExpr)> = g.cols();
                    let aggs: Vec<(String, TExpr)> = (0..k)
                        .map(|i| (format!("__kql_outer_agg_{i}"), s.col(2 * i + 1)))
                        .collect();
                    items.extend(aggs.iter().cloned());
                    let rel = super::rel::project(plan, items, false)?;
                    let carried = aggs
                        .iter()
                        .map(|(n, _)| {
                            let i = rel.index(n).unwrap_or(0);
                            (n.clone(), rel.texpr(i))
                        })
                        .collect();
                    (rel, carried)
                }
            };
            let agg_i = k + 1;
            let ranked = match &l.n {
                None => joined,
                Some(n) => {
                    let t = self.scalar(n, &Scope::empty(env))?;
                    let limit = super::consts::eval_i64(&t, "the number of values", n.span)?;
                    let partition: Vec<DfExpr> = (0..k).map(|i| joined.column(i)).collect();
                    let order = vec![SortExpr::new(joined.column(agg_i), l.asc, !l.asc)];
                    let f = DfExpr::from(WindowFunction::new(
                        WindowFunctionDefinition::WindowUDF(row_number_udwf()),
                        Vec::new(),
                    ));
                    let rn = f.partition_by(partition).order_by(order).build()?;
                    let rn =
                        DfExpr::Cast(Cast::new(Box::new(rn), arrow::datatypes::DataType::Int64));
                    let rn_name = self.fresh("rank");
                    let mut items = joined.scope_cols();
                    items.push((rn_name, TExpr::new(rn, KustoType::Long)));
                    let numbered = joined.project(items)?;
                    let last = numbered.cols.len() - 1;
                    numbered.filter(numbered.column(last).lt_eq(lit(limit)))?
                }
            };
            // Columns in Kusto's order: key0, agg0, key1, agg1, ...
            let mut items: Vec<(String, TExpr)> = Vec::new();
            for (i, (_, t)) in outer_aggs.iter().enumerate() {
                items.push((key_names[i].clone(), ranked.texpr(i)));
                let j = ranked.index(&format!("__kql_outer_agg_{i}")).unwrap_or(0);
                items.push((agg_names[i].clone(), TExpr::new(ranked.column(j), t.ty)));
            }
            items.push((key_names[k].clone(), ranked.texpr(k)));
            items.push((agg_names[k].clone(), ranked.texpr(agg_i)));
            survivors = Some(ranked.project(items)?);
        }
        survivors.ok_or_else(|| KqlError::semantic("top-nested needs a level", span))
    }
}
