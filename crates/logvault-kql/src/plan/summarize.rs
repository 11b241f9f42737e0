//! `summarize`: grouping keys (with `bin()` and Kusto's implicit names), aggregations inside
//! any scalar expression (`round(avg(x), 2)`), multi-column aggregations (`arg_max(x, *)`,
//! `percentiles(x, 50, 95)`).

use std::cell::RefCell;
use std::rc::Rc;

use datafusion::common::Column;
use datafusion::functions_aggregate::expr_fn as af;
use datafusion::logical_expr::{Expr as DfExpr, LogicalPlanBuilder, SortExpr};

use super::ops::{expr_name, next_column_name};
use super::rel::{Rel, TExpr, project, unique_name};
use super::scalar::Scope;
use super::{Env, Planner};
use crate::ast::{Arg, Assign, Expr, ExprKind};
use crate::error::{KqlError, Span};
use crate::functions::aggregate as agg;
use crate::types::KustoType;

/// The aggregations met while planning a `summarize`'s expressions.
#[derive(Debug, Default)]
pub(crate) struct AggCollector {
    /// (internal name, aggregate expression).
    pub aggs: Vec<(String, DfExpr)>,
}

impl Planner<'_> {
    /// An aggregation call inside a summarize expression: collected, and replaced by a
    /// reference to its output column.
    pub(crate) fn aggregate_call(
        &mut self,
        name: &str,
        args: &[Arg],
        span: Span,
        sc: &Scope<'_>,
        collector: &Rc<RefCell<AggCollector>>,
    ) -> Result<TExpr, KqlError> {
        if matches!(
            name,
            "arg_max" | "arg_min" | "percentiles" | "percentiles_array"
        ) && name != "percentiles_array"
        {
            return Err(KqlError::unsupported(
                format!("{name}() inside an expression (use it directly: summarize {name}(...))"),
                span,
            ));
        }
        let inner = Scope {
            cols: sc.cols.clone(),
            env: sc.env,
            agg: None,
            sides: None,
            window: None,
        };
        let mut targs = Vec::new();
        for a in args {
            if matches!(a.value.kind, ExprKind::Star) {
                continue;
            }
            targs.push(self.scalar(&a.value, &inner)?);
        }
        let t = agg::build(name, targs, span)?;
        let alias = self.fresh("agg");
        collector.borrow_mut().aggs.push((alias.clone(), t.expr));
        Ok(TExpr::new(
            DfExpr::Column(Column::new_unqualified(alias)),
            t.ty,
        ))
    }

    pub(crate) fn summarize(
        &mut self,
        rel: Rel,
        aggs: &[Assign],
        by: &[Assign],
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let input = Scope::with_cols(rel.scope_cols(), env);
        let mut counter = 0;
        // Grouping keys.
        let mut keys: Vec<(String, TExpr)> = Vec::new();
        for a in by {
            let t = self.scalar(&a.expr, &input)?;
            let name = match a.names.as_slice() {
                [n] => n.name.clone(),
                _ => key_name(&a.expr).unwrap_or_else(|| {
                    let taken: Vec<String> = keys.iter().map(|(n, _)| n.clone()).collect();
                    next_column_name(&mut counter, &taken)
                }),
            };
            let t = if t.ty == KustoType::Dynamic {
                // Group on the JSON text (Kusto groups dynamic values by value).
                t
            } else {
                t
            };
            keys.push((name, t));
        }
        // Aggregations: each output column is a scalar expression over collected aggregates.
        let collector = Rc::new(RefCell::new(AggCollector::default()));
        let mut outputs: Vec<(String, TExpr)> = Vec::new();
        let taken_names = |keys: &[(String, TExpr)], outs: &[(String, TExpr)]| -> Vec<String> {
            keys.iter()
                .chain(outs.iter())
                .map(|(n, _)| n.clone())
                .collect()
        };
        for a in aggs {
            if let ExprKind::Call { name, args } = &a.expr.kind
                && matches!(name.name.as_str(), "arg_max" | "arg_min")
                && env.get(&name.name).is_none()
            {
                self.arg_extreme(
                    &rel,
                    &name.name,
                    args,
                    a,
                    &keys,
                    &collector,
                    &mut outputs,
                    env,
                )?;
                continue;
            }
            if let ExprKind::Call { name, args } = &a.expr.kind
                && name.name == "percentiles"
            {
                let sc = Scope {
                    cols: rel.scope_cols(),
                    env,
                    agg: None,
                    sides: None,
                    window: None,
                };
                let Some(x) = args.first() else {
                    return Err(KqlError::semantic(
                        "percentiles() needs a value",
                        a.expr.span,
                    ));
                };
                let xt = self.scalar(&x.value, &sc)?;
                let base = expr_name(&x.value).unwrap_or_default();
                for (i, pa) in args.iter().enumerate().skip(1) {
                    let pt = self.scalar(&pa.value, &sc)?;
                    let t = agg::build("percentile", vec![xt.clone(), pt.clone()], a.expr.span)?;
                    let alias = self.fresh("agg");
                    collector.borrow_mut().aggs.push((alias.clone(), t.expr));
                    let pv = super::consts::eval(&pt, "the percentile", pa.value.span)?;
                    let label = pv.to_string().replace('.', "_");
                    let name = match a.names.get(i - 1) {
                        Some(n) => n.name.clone(),
                        None => unique_name(
                            &format!("percentile_{base}_{label}"),
                            &taken_names(&keys, &outputs),
                        ),
                    };
                    outputs.push((
                        name,
                        TExpr::new(DfExpr::Column(Column::new_unqualified(alias)), t.ty),
                    ));
                }
                continue;
            }
            let sc = Scope {
                cols: rel.scope_cols(),
                env,
                agg: Some(Rc::clone(&collector)),
                sides: None,
                window: None,
            };
            let before = collector.borrow().aggs.len();
            let t = self.scalar(&a.expr, &sc)?;
            if collector.borrow().aggs.len() == before {
                return Err(KqlError::semantic(
                    "a summarize expression must use an aggregation function (count(), sum(), ...)",
                    a.expr.span,
                ));
            }
            let name = match a.names.as_slice() {
                [n] => n.name.clone(),
                [] => {
                    let implicit = match &a.expr.kind {
                        ExprKind::Call { name, args } if agg::is_aggregate(&name.name) => {
                            let first = args.first().and_then(|x| {
                                expr_name(&x.value).or_else(|| first_column(&x.value))
                            });
                            Some(agg::implicit_name(&name.name, first.as_deref()))
                        }
                        _ => None,
                    };
                    let taken = taken_names(&keys, &outputs);
                    match implicit {
                        Some(n) => unique_name(&n, &taken),
                        None => next_column_name(&mut counter, &taken),
                    }
                }
                _ => {
                    return Err(KqlError::unsupported(
                        "several names for one aggregation",
                        a.expr.span,
                    ));
                }
            };
            outputs.push((name, t));
        }
        let group: Vec<DfExpr> = keys
            .iter()
            .map(|(n, t)| t.expr.clone().alias(n.clone()))
            .collect();
        let aggs: Vec<(String, DfExpr)> = collector.borrow().aggs.clone();
        // The aggregates go in unaliased and are renamed by a projection above, as SQL's
        // planner does: DataFusion's rewrites look for bare aggregate calls (a lone
        // `count_distinct` becomes a two-level group by only so). Aggregates whose own names
        // would collide keep their aliases.
        let names: Vec<String> = aggs
            .iter()
            .map(|(_, e)| e.schema_name().to_string())
            .collect();
        let unique = names.iter().collect::<std::collections::HashSet<_>>().len() == names.len();
        let plan = if unique {
            let aggregated = LogicalPlanBuilder::from(rel.plan)
                .aggregate(
                    group.clone(),
                    aggs.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
                )?
                .build()?;
            let mut renamed: Vec<DfExpr> = keys
                .iter()
                .map(|(n, _)| DfExpr::Column(Column::new_unqualified(n.clone())))
                .collect();
            renamed.extend(aggs.iter().zip(&names).map(|((alias, _), name)| {
                DfExpr::Column(Column::new_unqualified(name.clone())).alias(alias.clone())
            }));
            LogicalPlanBuilder::from(aggregated)
                .project(renamed)?
                .build()?
        } else {
            let aggr: Vec<DfExpr> = aggs
                .iter()
                .map(|(n, e)| e.clone().alias(n.clone()))
                .collect();
            LogicalPlanBuilder::from(rel.plan)
                .aggregate(group, aggr)?
                .build()?
        };
        let mut items: Vec<(String, TExpr)> = keys
            .iter()
            .map(|(n, t)| {
                (
                    n.clone(),
                    TExpr::new(DfExpr::Column(Column::new_unqualified(n.clone())), t.ty),
                )
            })
            .collect();
        for (n, t) in outputs {
            if items.iter().any(|(m, _)| *m == n) {
                return Err(KqlError::semantic(
                    format!("the column '{n}' is produced twice by summarize"),
                    Span::default(),
                ));
            }
            items.push((n, t));
        }
        project(plan, items, false)
    }

    /// `arg_max(x, *)` / `arg_min(x, a, b)`: the row with the largest (smallest) `x` in each
    /// group, as `first_value(col ORDER BY x DESC)` per returned column.
    #[allow(clippy::too_many_arguments)]
    fn arg_extreme(
        &mut self,
        rel: &Rel,
        fname: &str,
        args: &[Arg],
        a: &Assign,
        keys: &[(String, TExpr)],
        collector: &Rc<RefCell<AggCollector>>,
        outputs: &mut Vec<(String, TExpr)>,
        env: &Env,
    ) -> Result<(), KqlError> {
        let sc = Scope::with_cols(rel.scope_cols(), env);
        let Some(x) = args.first() else {
            return Err(KqlError::semantic(
                format!("{fname}() needs a value"),
                a.expr.span,
            ));
        };
        let xt = self.scalar(&x.value, &sc)?;
        let desc = fname == "arg_max";
        let order = vec![SortExpr::new(xt.expr.clone(), !desc, false)];
        let mut returned: Vec<(String, TExpr)> = Vec::new();
        let xname = expr_name(&x.value).unwrap_or_else(|| {
            format!(
                "{}_{}",
                if desc { "max" } else { "min" },
                first_column(&x.value).unwrap_or_default()
            )
        });
        returned.push((xname.clone(), xt.clone()));
        for r in &args[1..] {
            if matches!(r.value.kind, ExprKind::Star) {
                for (i, c) in rel.cols.iter().enumerate() {
                    if c.name == xname || keys.iter().any(|(k, _)| *k == c.name) {
                        continue;
                    }
                    if returned.iter().any(|(n, _)| *n == c.name) {
                        continue;
                    }
                    returned.push((c.name.clone(), rel.texpr(i)));
                }
            } else {
                let t = self.scalar(&r.value, &sc)?;
                let n = match &r.name {
                    Some(n) => n.name.clone(),
                    None => expr_name(&r.value).unwrap_or_else(|| "Column1".into()),
                };
                returned.push((n, t));
            }
        }
        // `(a, b) = arg_max(...)` and `name = arg_max(x, *)` rename the outputs in order.
        for (i, (n, t)) in returned.into_iter().enumerate() {
            let e = if i == 0 {
                if desc {
                    af::max(t.expr.clone())
                } else {
                    af::min(t.expr.clone())
                }
            } else {
                af::first_value(t.expr.clone(), order.clone())
            };
            let alias = self.fresh("agg");
            collector.borrow_mut().aggs.push((alias.clone(), e));
            let name = match a.names.get(i) {
                Some(given) => given.name.clone(),
                None => {
                    let taken: Vec<String> = keys
                        .iter()
                        .chain(outputs.iter())
                        .map(|(n, _)| n.clone())
                        .collect();
                    unique_name(&n, &taken)
                }
            };
            outputs.push((
                name,
                TExpr::new(DfExpr::Column(Column::new_unqualified(alias)), t.ty),
            ));
        }
        Ok(())
    }
}

/// The name of a grouping key written without one: a column's name, and for `bin(x, ...)`
/// (and `bin_at`, `floor`, `bin_auto`) the name of `x`.
fn key_name(e: &Expr) -> Option<String> {
    if let Some(n) = expr_name(e) {
        return Some(n);
    }
    match &e.kind {
        ExprKind::Call { name, args }
            if matches!(name.name.as_str(), "bin" | "bin_at" | "floor" | "bin_auto") =>
        {
            args.first().and_then(|a| expr_name(&a.value))
        }
        _ => None,
    }
}

/// The first column name referenced in an expression.
pub(crate) fn first_column(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Name(n) => Some(n.clone()),
        ExprKind::Member(b, _) | ExprKind::Index(b, _) | ExprKind::Unary(_, b) => first_column(b),
        ExprKind::Binary(_, l, r) => first_column(l).or_else(|| first_column(r)),
        ExprKind::Call { args, .. } => args.iter().find_map(|a| first_column(&a.value)),
        _ => None,
    }
}
