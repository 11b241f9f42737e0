//! `mv-apply`: a subquery applied to each row's expanded arrays (and the same planning for
//! `partition` over rows read at run time).
//!
//! Planned without running anything per row: the rows are numbered (a window function), the
//! arrays expanded as `mv-expand` does, and the subquery's operators planned over all the
//! expanded rows at once, *partitioned* by the row number: `summarize` groups by it as well,
//! `take` and `top` keep the first rows of each partition (a `row_number()` window partitioned
//! by it), `project` and `distinct` keep it. The subquery's result is joined back to the
//! outer row's other columns on the row number.

use datafusion::functions_window::row_number::row_number_udwf;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{
    Cast, Expr as DfExpr, ExprFunctionExt, SortExpr, WindowFunctionDefinition, lit,
};

use super::rel::{Rel, TExpr};
use super::scalar::Scope;
use super::{Env, Planner, ops};
use crate::ast::{Assign, ColumnPattern, Expr, ExprKind, Ident, MvItem, OpKind, Operator};
use crate::error::{KqlError, Span};
use crate::types::KustoType;

/// `row_number()` over `partition`, ordered by `order`, as a long.
pub(crate) fn row_number(partition: Vec<DfExpr>, order: Vec<SortExpr>) -> Result<DfExpr, KqlError> {
    let f = DfExpr::from(WindowFunction::new(
        WindowFunctionDefinition::WindowUDF(row_number_udwf()),
        Vec::new(),
    ));
    // A ROWS frame: a RANGE frame over a timespan or datetime order fails type coercion.
    let frame = datafusion::logical_expr::WindowFrame::new_bounds(
        datafusion::logical_expr::WindowFrameUnits::Rows,
        datafusion::logical_expr::WindowFrameBound::Preceding(
            datafusion::common::ScalarValue::UInt64(None),
        ),
        datafusion::logical_expr::WindowFrameBound::CurrentRow,
    );
    let e = f
        .partition_by(partition)
        .order_by(order)
        .window_frame(frame)
        .build()?;
    Ok(DfExpr::Cast(Cast::new(
        Box::new(e),
        arrow::datatypes::DataType::Int64,
    )))
}

fn name_expr(name: &str, span: Span) -> Expr {
    Expr {
        kind: ExprKind::Name(name.to_owned()),
        span,
    }
}

impl Planner<'_> {
    /// `mv-apply items on (subquery)`.
    pub(crate) fn mv_apply(
        &mut self,
        rel: Rel,
        items: &[MvItem],
        item_index: Option<&Ident>,
        ops: &[Operator],
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let rid = self.fresh("row");
        let mut cols = rel.scope_cols();
        cols.push((
            rid.clone(),
            TExpr::new(row_number(Vec::new(), Vec::new())?, KustoType::Long),
        ));
        let numbered = rel.project(cols)?;
        let expanded =
            self.mv_expand(numbered.clone(), items, item_index, false, None, span, env)?;
        let sub = self.partitioned_ops(expanded, ops, &rid, "mv-apply", env)?;
        // The outer columns the subquery's result does not have, joined back by row number.
        let sub_names = sub.names();
        let outer_missing: Vec<usize> = (0..numbered.cols.len())
            .filter(|i| {
                let n = &numbered.cols[*i].name;
                *n != rid && !sub_names.contains(n)
            })
            .collect();
        let sub_rid = sub.require(&rid, span)?;
        if outer_missing.is_empty() {
            let items = (0..sub.cols.len())
                .filter(|i| *i != sub_rid)
                .map(|i| (sub.cols[i].name.clone(), sub.texpr(i)))
                .collect();
            return sub.project(items);
        }
        let outer_rid = numbered.require(&rid, span)?;
        let (plan, outer, inner) =
            self.inner_join(numbered, sub, &[(outer_rid, sub_rid)], false)?;
        let mut out: Vec<(String, TExpr)> = outer_missing
            .iter()
            .map(|i| (outer.rel.cols[*i].name.clone(), outer.col(*i)))
            .collect();
        out.extend(
            (0..inner.rel.cols.len())
                .filter(|i| *i != sub_rid)
                .map(|i| (inner.rel.cols[i].name.clone(), inner.col(i))),
        );
        super::rel::project(plan, out, false)
    }

    /// The operators of a subquery (of `what`: `mv-apply`, `partition`) applied to each
    /// partition of the column `rid` separately, all partitions at once. The result keeps
    /// `rid`.
    pub(crate) fn partitioned_ops(
        &mut self,
        rel: Rel,
        ops: &[Operator],
        rid: &str,
        what: &str,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let mut sub = rel;
        let mut senv = env.clone();
        let outer = std::mem::replace(
            &mut self.window_partition,
            vec![DfExpr::Column(datafusion::common::Column::from_name(rid))],
        );
        let mut result = Ok(());
        for op in ops {
            match self.partitioned_op(sub.clone(), op, rid, what, &mut senv) {
                Ok(next) if next.index(rid).is_some() => sub = next,
                Ok(_) => {
                    result = Err(KqlError::unsupported(
                        format!("this operator inside {what} (it drops the rows' identity)"),
                        op.span,
                    ));
                    break;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.window_partition = outer;
        result.map(|()| sub)
    }

    /// One operator of a subquery, applied to each partition of `rid` separately.
    fn partitioned_op(
        &mut self,
        rel: Rel,
        op: &Operator,
        rid: &str,
        what: &str,
        env: &mut Env,
    ) -> Result<Rel, KqlError> {
        let span = op.span;
        let key = Assign {
            names: vec![Ident {
                name: rid.to_owned(),
                span,
            }],
            expr: name_expr(rid, span),
        };
        let with = |kind: OpKind| Operator { kind, span };
        match &op.kind {
            OpKind::Where(_)
            | OpKind::Extend(_)
            | OpKind::Parse { .. }
            | OpKind::ParseKv { .. }
            | OpKind::MvExpand { .. }
            | OpKind::ProjectAway(_)
            | OpKind::ProjectRename(_)
            | OpKind::ProjectReorder(_)
            | OpKind::Sort(_)
            | OpKind::As(_)
            | OpKind::Render { .. } => ops::apply(self, rel, op, env),
            // Window functions partition by `rid` (the planner's window partition).
            OpKind::Serialize(_) => ops::apply(self, rel, op, env),
            OpKind::Summarize { aggs, by } => {
                let mut keys = vec![key];
                keys.extend(by.iter().cloned());
                self.summarize(rel, aggs, &keys, env)
            }
            OpKind::Count => {
                let count = Assign {
                    names: vec![Ident {
                        name: "Count".into(),
                        span,
                    }],
                    expr: Expr {
                        kind: ExprKind::Call {
                            name: Ident {
                                name: "count".into(),
                                span,
                            },
                            args: Vec::new(),
                        },
                        span,
                    },
                };
                self.summarize(rel, &[count], &[key], env)
            }
            OpKind::Project(items) => {
                let mut items = items.clone();
                items.push(key);
                ops::apply(self, rel, &with(OpKind::Project(items)), env)
            }
            OpKind::ProjectKeep(pats) => {
                let mut pats = pats.clone();
                pats.push(ColumnPattern {
                    pattern: rid.to_owned(),
                    span,
                });
                ops::apply(self, rel, &with(OpKind::ProjectKeep(pats)), env)
            }
            OpKind::Distinct(items) => {
                if items.len() == 1 && matches!(items[0].kind, ExprKind::Star) {
                    return ops::apply(self, rel, op, env);
                }
                let mut items = items.clone();
                items.push(name_expr(rid, span));
                ops::apply(self, rel, &with(OpKind::Distinct(items)), env)
            }
            OpKind::Take(n) => {
                let keys = rel.keys.clone();
                self.first_rows(rel, n, keys, rid, env)
            }
            OpKind::Scan(s) => self.scan_by(rel, s, Some(rid), span, env),
            OpKind::MakeSeries(ms) => {
                let mut ms = (**ms).clone();
                ms.by.push(key);
                self.make_series(rel, &ms, span, env)
            }
            OpKind::Top { n, by } => {
                let sorted = ops::sort(self, rel, by, env)?;
                let keys = sorted.keys.clone();
                self.first_rows(sorted, n, keys, rid, env)
            }
            other => Err(KqlError::unsupported(
                format!("{} inside {what}", op_name(other)),
                span,
            )),
        }
    }

    /// The first `n` rows of each partition of `rid` in the order `keys`.
    fn first_rows(
        &mut self,
        rel: Rel,
        n: &Expr,
        keys: Vec<SortExpr>,
        rid: &str,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let t = self.scalar(n, &Scope::empty(env))?;
        let n_rows = super::consts::eval_i64(&t, "the number of rows", n.span)?;
        let rn = self.fresh("rn");
        let i = rel.require(rid, n.span)?;
        let mut cols = rel.scope_cols();
        cols.push((
            rn.clone(),
            TExpr::new(
                row_number(vec![rel.column(i)], keys.clone())?,
                KustoType::Long,
            ),
        ));
        let ordered = rel.ordered;
        let numbered = rel.project(cols)?;
        let last = numbered.cols.len() - 1;
        let kept = numbered.filter(numbered.column(last).lt_eq(lit(n_rows)))?;
        let items = (0..last)
            .map(|k| (kept.cols[k].name.clone(), kept.texpr(k)))
            .collect();
        let mut out = kept.project(items)?;
        out.ordered = ordered;
        out.keys = keys;
        Ok(out)
    }
}

/// The operator's name, for errors.
fn op_name(k: &OpKind) -> &'static str {
    match k {
        OpKind::Join { .. } => "join",
        OpKind::Lookup { .. } => "lookup",
        OpKind::Union(_) => "union",
        OpKind::MvApply { .. } => "mv-apply",
        OpKind::MakeSeries(_) => "make-series",
        OpKind::TopNested(_) => "top-nested",
        OpKind::Evaluate(_) => "evaluate",
        OpKind::Invoke(_) => "invoke",
        OpKind::Search(_) => "search",
        OpKind::GetSchema => "getschema",
        OpKind::Sample(_) | OpKind::SampleDistinct(..) => "sample",
        OpKind::Consume => "consume",
        OpKind::Scan(_) => "scan",
        OpKind::Partition(_) => "partition",
        _ => "this operator",
    }
}
