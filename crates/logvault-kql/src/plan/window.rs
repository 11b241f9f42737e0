//! Kusto's window functions over serialized rows (`row_number`, `prev`, `next`, `row_cumsum`,
//! `row_rank_dense`, `row_rank_min`, `row_window_session`), planned as DataFusion window
//! functions ordered by the
//! sort keys that serialized the rows (or in the source's order: `range`, `serialize`).
//!
//! A restart condition (`row_number(1, restart)`, `row_cumsum(x, restart)`) becomes a
//! partition: a running count of the restarts, itself a window function, so a projection may
//! need windows over windows; [`plan_windows`] plans them innermost first.

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, ScalarValue};
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::functions_window::lead_lag::{lag_udwf, lead_udwf};
use datafusion::functions_window::row_number::row_number_udwf;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{
    Expr, ExprFunctionExt, LogicalPlan, LogicalPlanBuilder, SortExpr, WindowFrame,
    WindowFrameBound, WindowFrameUnits, WindowFunctionDefinition, cast, lit, when,
};

use datafusion::logical_expr::expr_rewriter::normalize_col;

use super::operators::convert;
use super::scalar::Scope;
use super::{Planner, TExpr};
use crate::ast::Arg;
use crate::error::{KqlError, Span};
use crate::types::KustoType;

pub(crate) const WINDOW_FUNCTIONS: &[&str] = &[
    "row_number",
    "prev",
    "next",
    "row_cumsum",
    "row_rank_dense",
    "row_rank_min",
    "row_window_session",
];

/// Whether `name` is a window function.
pub(crate) fn is_window(name: &str) -> bool {
    WINDOW_FUNCTIONS.contains(&name)
}

/// The frame from the first row of the partition to the current row.
fn running() -> WindowFrame {
    WindowFrame::new_bounds(
        WindowFrameUnits::Rows,
        WindowFrameBound::Preceding(ScalarValue::UInt64(None)),
        WindowFrameBound::CurrentRow,
    )
}

/// `f` over the rows ordered by `order`, partitioned by `partition`.
fn over(
    f: Expr,
    order: &[SortExpr],
    partition: Vec<Expr>,
    frame: Option<WindowFrame>,
) -> Result<Expr, KqlError> {
    // A ROWS frame by default: a RANGE frame over a timespan or datetime order fails
    // DataFusion's type coercion, and the row functions do not read frames.
    let frame = frame.unwrap_or_else(running);
    Ok(f.order_by(order.to_vec())
        .partition_by(partition)
        .window_frame(frame)
        .build()?)
}

fn udwf(f: std::sync::Arc<datafusion::logical_expr::WindowUDF>, args: Vec<Expr>) -> Expr {
    Expr::from(WindowFunction::new(
        WindowFunctionDefinition::WindowUDF(f),
        args,
    ))
}

/// The running sum of `x` (a window function).
fn running_sum(x: Expr, order: &[SortExpr], partition: Vec<Expr>) -> Result<Expr, KqlError> {
    let f = Expr::from(WindowFunction::new(
        WindowFunctionDefinition::AggregateUDF(sum_udaf()),
        vec![x],
    ));
    over(f, order, partition, Some(running()))
}

/// The partition of a restart condition: how many rows so far restarted.
fn restart_group(
    restart: Expr,
    order: &[SortExpr],
    partition: Vec<Expr>,
) -> Result<Expr, KqlError> {
    let one = when(restart, lit(1i64)).otherwise(lit(0i64))?;
    running_sum(one, order, partition)
}

impl Planner<'_> {
    /// Plans a call of a window function.
    pub(crate) fn window_call(
        &mut self,
        name: &str,
        args: &[Arg],
        name_span: Span,
        span: Span,
        sc: &Scope<'_>,
    ) -> Result<TExpr, KqlError> {
        let Some(order) = sc.window.clone() else {
            return Err(KqlError::semantic(
                format!(
                    "{name}() needs serialized rows: put '| serialize' (or a sort) before this operator"
                ),
                name_span,
            ));
        };
        let mut targs = Vec::with_capacity(args.len());
        for a in args {
            targs.push(self.scalar(&a.value, sc)?);
        }
        let arity = |min: usize, max: usize| -> Result<(), KqlError> {
            if targs.len() < min || targs.len() > max {
                return Err(KqlError::semantic(
                    format!(
                        "{name}() takes {min} to {max} arguments, {} given",
                        targs.len()
                    ),
                    span,
                ));
            }
            Ok(())
        };
        // Inside a subquery run per partition, every window is partitioned so.
        let base = self.window_partition.clone();
        let restart = |i: usize| -> Result<Vec<Expr>, KqlError> {
            let mut partition = base.clone();
            match targs.get(i) {
                None => Ok(partition),
                Some(t) if t.ty == KustoType::Bool => {
                    partition.push(restart_group(t.expr.clone(), &order, base.clone())?);
                    Ok(partition)
                }
                Some(t) => Err(KqlError::semantic(
                    format!("{name}(): the restart condition must be bool, not {}", t.ty),
                    span,
                )),
            }
        };
        match name {
            "row_number" => {
                arity(0, 2)?;
                let start = match targs.first() {
                    Some(t) if t.ty.is_numeric() => convert(t.clone(), KustoType::Long).expr,
                    Some(t) => {
                        return Err(KqlError::semantic(
                            format!(
                                "row_number(): the first index must be a number, not {}",
                                t.ty
                            ),
                            span,
                        ));
                    }
                    None => lit(1i64),
                };
                let n = over(
                    udwf(row_number_udwf(), Vec::new()),
                    &order,
                    restart(1)?,
                    None,
                )?;
                let e = Expr::Cast(datafusion::logical_expr::Cast::new(
                    Box::new(n),
                    arrow::datatypes::DataType::Int64,
                )) + start
                    - lit(1i64);
                Ok(TExpr::new(e, KustoType::Long))
            }
            "prev" | "next" => {
                arity(1, 3)?;
                let x = targs[0].clone();
                let offset = match targs.get(1) {
                    Some(t) => super::consts::eval_i64(t, &format!("{name}()'s offset"), span)?,
                    None => 1,
                };
                if offset < 0 {
                    return Err(KqlError::semantic(
                        format!("{name}(): the offset must not be negative"),
                        span,
                    ));
                }
                let default = match targs.get(2) {
                    Some(t) => convert(t.clone(), x.ty).expr,
                    None => lit(ScalarValue::Null),
                };
                let f = if name == "prev" {
                    lag_udwf()
                } else {
                    lead_udwf()
                };
                let e = over(
                    udwf(f, vec![x.expr, lit(offset), default]),
                    &order,
                    base.clone(),
                    None,
                )?;
                Ok(TExpr::new(e, x.ty))
            }
            "row_cumsum" => {
                arity(1, 2)?;
                let x = targs[0].clone();
                if !x.ty.is_numeric() && x.ty != KustoType::Timespan {
                    return Err(KqlError::semantic(
                        format!("row_cumsum() sums numbers, not {}", x.ty),
                        span,
                    ));
                }
                let ty = match x.ty {
                    KustoType::Int | KustoType::Bool => KustoType::Long,
                    t => t,
                };
                let x = convert(x, ty);
                let e = running_sum(x.expr, &order, restart(1)?)?;
                Ok(TExpr::new(e, ty))
            }
            "row_rank_dense" | "row_rank_min" => {
                arity(1, 2)?;
                let f = crate::udf::window::row_rank_udwf(name == "row_rank_dense");
                let e = over(
                    udwf(f, vec![targs[0].expr.clone()]),
                    &order,
                    restart(1)?,
                    None,
                )?;
                Ok(TExpr::new(e, KustoType::Long))
            }
            "row_window_session" => {
                arity(3, 4)?;
                let x = targs[0].clone();
                let distance = match x.ty {
                    KustoType::DateTime | KustoType::Timespan => KustoType::Timespan,
                    KustoType::Long | KustoType::Int => KustoType::Long,
                    other => {
                        return Err(KqlError::semantic(
                            format!(
                                "row_window_session() makes sessions of datetime values, not {other}"
                            ),
                            span,
                        ));
                    }
                };
                let long = |t: TExpr| {
                    let t = match distance {
                        KustoType::Long => convert(t, KustoType::Long),
                        _ => t,
                    };
                    cast(
                        cast(t.expr, t.ty.arrow()),
                        arrow::datatypes::DataType::Int64,
                    )
                };
                for d in &targs[1..3] {
                    if d.ty != distance && !(distance == KustoType::Long && d.ty.is_numeric()) {
                        return Err(KqlError::semantic(
                            format!(
                                "row_window_session(): the distances must be {distance}, not {}",
                                d.ty
                            ),
                            span,
                        ));
                    }
                }
                let restart = match targs.get(3) {
                    Some(t) if t.ty == KustoType::Bool => t.expr.clone(),
                    Some(t) => {
                        return Err(KqlError::semantic(
                            format!(
                                "row_window_session(): the restart condition must be bool, not {}",
                                t.ty
                            ),
                            span,
                        ));
                    }
                    None => lit(false),
                };
                let args = vec![
                    long(x.clone()),
                    long(targs[1].clone()),
                    long(targs[2].clone()),
                    restart,
                ];
                let e = over(
                    udwf(crate::udf::window::row_window_session_udwf(), args),
                    &order,
                    base.clone(),
                    None,
                )?;
                let ty = match x.ty {
                    KustoType::Int => KustoType::Long,
                    t => t,
                };
                Ok(TExpr::new(cast(e, ty.arrow()), ty))
            }
            _ => Err(KqlError::semantic(
                format!("unknown window function '{name}'"),
                name_span,
            )),
        }
    }
}

/// Whether `e` contains a window function.
fn has_window(e: &Expr) -> bool {
    let mut found = false;
    let _ = e.apply(|x| {
        if matches!(x, Expr::WindowFunction(_)) {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// The window functions in `e` that contain no other window function.
fn innermost(e: &Expr, out: &mut Vec<Expr>) {
    let _ = e.apply(|x| {
        if let Expr::WindowFunction(w) = x {
            let nested = w.params.args.iter().any(has_window)
                || w.params.partition_by.iter().any(has_window)
                || w.params.order_by.iter().any(|s| has_window(&s.expr));
            if nested {
                return Ok(TreeNodeRecursion::Continue);
            }
            if !out.contains(x) {
                out.push(x.clone());
            }
            return Ok(TreeNodeRecursion::Jump);
        }
        Ok(TreeNodeRecursion::Continue)
    });
}

/// Plans the window functions of a projection's expressions below it, innermost first, and
/// rewrites the expressions to read their results.
pub(crate) fn plan_windows(
    mut plan: LogicalPlan,
    exprs: &mut [Expr],
) -> Result<LogicalPlan, KqlError> {
    for _ in 0..8 {
        let mut found = Vec::new();
        for e in exprs.iter() {
            innermost(e, &mut found);
        }
        if found.is_empty() {
            return Ok(plan);
        }
        // Qualified as the window node will qualify them, so their names are its fields'.
        let normalized = found
            .iter()
            .map(|w| normalize_col(w.clone(), &plan))
            .collect::<Result<Vec<_>, _>>()?;
        plan = LogicalPlanBuilder::window_plan(plan, normalized.clone())?;
        let fields = window_fields(&plan);
        let names: Vec<(Expr, String)> = found
            .iter()
            .zip(&normalized)
            .map(|(w, n)| {
                let name = fields
                    .iter()
                    .find(|(e, _)| e == n)
                    .map_or_else(|| n.schema_name().to_string(), |(_, f)| f.clone());
                (w.clone(), name)
            })
            .collect();
        for e in exprs.iter_mut() {
            let rewritten = e.clone().transform_down(|x| {
                if let Some((_, n)) = names.iter().find(|(w, _)| *w == x) {
                    return Ok(Transformed::new(
                        Expr::Column(Column::new_unqualified(n.clone())),
                        true,
                        TreeNodeRecursion::Jump,
                    ));
                }
                Ok(Transformed::no(x))
            })?;
            *e = rewritten.data;
        }
    }
    Err(KqlError::semantic(
        "window functions nested too deeply",
        Span::default(),
    ))
}

/// The window expressions of the window nodes on top of `plan`, with the names of the fields
/// they give.
fn window_fields(plan: &LogicalPlan) -> Vec<(Expr, String)> {
    let mut out = Vec::new();
    let mut node = plan;
    while let LogicalPlan::Window(w) = node {
        let fields = w.schema.fields();
        let start = fields.len().saturating_sub(w.window_expr.len());
        for (i, e) in w.window_expr.iter().enumerate() {
            if let Some(f) = fields.get(start + i) {
                out.push((e.clone(), f.name().clone()));
            }
        }
        node = w.input.as_ref();
    }
    out
}
