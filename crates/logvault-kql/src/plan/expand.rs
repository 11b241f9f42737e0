//! `mv-expand`, `mv-apply`, `parse`, `parse-kv`.

use datafusion::common::{Column, UnnestOptions};
use datafusion::logical_expr::LogicalPlanBuilder;

use super::consts;
use super::operators::convert;
use super::ops::expr_name;
use super::rel::{Rel, TExpr};
use super::scalar::Scope;
use super::{Env, Planner};
use crate::udf::dynamic::{MvIndex, MvList};
use crate::ast::{Expr, Ident, MvItem, Operator, ParsePart};
use crate::error::{KqlError, Span};
use crate::types::KustoType;

impl Planner<'_> {
    /// `mv-expand`: each element of the arrays (or bags) in its own row, the other columns
    /// repeated; several arrays expand side by side, the shorter padded with nulls.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn mv_expand(
        &mut self,
        rel: Rel,
        items: &[MvItem],
        item_index: Option<&Ident>,
        bag_array: bool,
        limit: Option<&Expr>,
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let sc = Scope::with_cols(rel.scope_cols(), env);
        let limit = match limit {
            Some(l) => {
                let t = self.scalar(l, &sc)?;
                usize::try_from(consts::eval_i64(&t, "the mv-expand limit", l.span)?.max(0))
                    .unwrap_or(usize::MAX)
            }
            None => usize::MAX,
        };
        let mut out: Vec<(String, TExpr)> = rel.scope_cols();
        let mut expanded: Vec<(String, Option<KustoType>)> = Vec::new();
        let mut lists = Vec::new();
        for it in items {
            let t = self.scalar(&it.expr, &sc)?;
            let name = match &it.name {
                Some(n) => n.name.clone(),
                None => expr_name(&it.expr).ok_or_else(|| {
                    KqlError::semantic(
                        "name the expanded value: mv-expand Name = expression",
                        it.expr.span,
                    )
                })?,
            };
            let list = MvList::call(convert(t, KustoType::Dynamic).expr, bag_array, limit);
            lists.push(list.clone());
            let lt = TExpr::new(list, KustoType::Dynamic);
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = lt,
                None => out.push((name.clone(), lt)),
            }
            expanded.push((name, it.to));
        }
        if let Some(ix) = item_index {
            out.push((ix.name.clone(), TExpr::new(MvIndex::call(lists), KustoType::Long)));
            expanded.push((ix.name.clone(), None));
        }
        let projected = rel.project(out)?;
        let columns: Vec<Column> = expanded
            .iter()
            .map(|(n, _)| {
                let i = projected.index(n).unwrap_or(0);
                let (q, f) = projected.plan.schema().qualified_field(i);
                Column::new(q.cloned(), f.name())
            })
            .collect();
        let plan = LogicalPlanBuilder::from(projected.plan.clone())
            .unnest_columns_with_options(columns, UnnestOptions::new().with_preserve_nulls(true))?
            .build()?;
        let unnested = Rel {
            plan,
            cols: projected.cols.clone(),
            ordered: false,
        };
        if expanded.iter().all(|(_, to)| to.is_none()) {
            return Ok(unnested);
        }
        let items = (0..unnested.cols.len())
            .map(|i| {
                let name = unnested.cols[i].name.clone();
                let t = unnested.texpr(i);
                let t = match expanded.iter().find(|(n, _)| *n == name) {
                    Some((_, Some(to))) => convert(t, *to),
                    _ => t,
                };
                (name, t)
            })
            .collect();
        let _ = span;
        unnested.project(items)
    }

    pub(crate) fn mv_apply(
        &mut self,
        _rel: Rel,
        _items: &[MvItem],
        _item_index: Option<&Ident>,
        _ops: &[Operator],
        span: Span,
        _env: &Env,
    ) -> Result<Rel, KqlError> {
        Err(KqlError::unsupported("mv-apply", span))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn parse_op(
        &mut self,
        _rel: Rel,
        _expr: &Expr,
        _parts: &[ParsePart],
        _regex: bool,
        _relaxed: bool,
        _filter: bool,
        _flags: &str,
        span: Span,
        _env: &Env,
    ) -> Result<Rel, KqlError> {
        Err(KqlError::unsupported("parse", span))
    }

    pub(crate) fn parse_kv(
        &mut self,
        _rel: Rel,
        _expr: &Expr,
        _columns: &[(Ident, KustoType)],
        _params: &[(String, Expr)],
        span: Span,
        _env: &Env,
    ) -> Result<Rel, KqlError> {
        Err(KqlError::unsupported("parse-kv", span))
    }
}
