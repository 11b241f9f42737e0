//! `join` (every kind, Kusto's default `innerunique` included), `lookup`, `union` and
//! `search`.

use datafusion::common::{Column, JoinType};
use datafusion::logical_expr::{Expr as DfExpr, LogicalPlanBuilder, cast};

use super::operators;
use super::rel::{Rel, TExpr, project, unique_name};
use super::scalar::Scope;
use super::{Env, Planner};
use crate::ast::{
    BinOp, Expr, ExprKind, JoinKind, Search, StrOp, StrOpKind, Union, wildcard_match,
};
use crate::error::{KqlError, Span};
use crate::types::{KustoColumn, KustoType};

/// A side of a join, aliased so its columns are unambiguous.
pub(crate) struct Side {
    alias: String,
    pub(crate) rel: Rel,
}

impl Side {
    pub(crate) fn col(&self, i: usize) -> TExpr {
        TExpr::new(
            DfExpr::Column(Column::new(
                Some(self.alias.clone()),
                self.rel.cols[i].name.clone(),
            )),
            self.rel.cols[i].ty,
        )
    }

    pub(crate) fn cols(&self) -> Vec<(String, TExpr)> {
        (0..self.rel.cols.len())
            .map(|i| (self.rel.cols[i].name.clone(), self.col(i)))
            .collect()
    }
}

impl Planner<'_> {
    pub(crate) fn side(&mut self, rel: Rel, what: &str) -> Result<Side, KqlError> {
        let alias = self.fresh(what);
        let plan = LogicalPlanBuilder::from(rel.plan)
            .alias(alias.clone())?
            .build()?;
        Ok(Side {
            alias,
            rel: Rel {
                plan,
                cols: rel.cols,
                ordered: false,
                keys: Vec::new(),
            },
        })
    }

    /// An inner join of two relations on pairs of column indexes (nulls equal when
    /// `null_equal`, as Kusto's grouping keys are): the plan and both sides' columns.
    pub(crate) fn inner_join(
        &mut self,
        left: Rel,
        right: Rel,
        keys: &[(usize, usize)],
        null_equal: bool,
    ) -> Result<(datafusion::logical_expr::LogicalPlan, Side, Side), KqlError> {
        let left = self.side(left, "left")?;
        let right = self.side(right, "right")?;
        let on: Vec<DfExpr> = keys
            .iter()
            .map(|(l, r)| {
                let (l, r) = (left.col(*l).expr, right.col(*r).expr);
                if null_equal {
                    DfExpr::BinaryExpr(datafusion::logical_expr::BinaryExpr::new(
                        Box::new(l),
                        datafusion::logical_expr::Operator::IsNotDistinctFrom,
                        Box::new(r),
                    ))
                } else {
                    l.eq(r)
                }
            })
            .collect();
        let plan = LogicalPlanBuilder::from(left.rel.plan.clone())
            .join_on(right.rel.plan.clone(), JoinType::Inner, on)?
            .build()?;
        Ok((plan, left, right))
    }

    /// The key pairs of an `on` clause.
    fn join_keys(
        &mut self,
        left: &Side,
        right: &Side,
        on: &[Expr],
        env: &Env,
    ) -> Result<Vec<(TExpr, TExpr, String)>, KqlError> {
        let sides = Some((left.cols(), right.cols()));
        let sc = Scope {
            cols: Vec::new(),
            env,
            agg: None,
            sides,
            window: None,
        };
        let mut keys = Vec::new();
        let mut pending: Vec<&Expr> = on.iter().collect();
        while let Some(e) = pending.pop() {
            match &e.kind {
                ExprKind::Name(n) => {
                    let li = left.rel.require(n, e.span)?;
                    let ri = right.rel.index(n).ok_or_else(|| {
                        KqlError::semantic(
                            format!(
                                "the right side of the join has no column '{n}'{}",
                                crate::error::did_you_mean(
                                    n,
                                    right.rel.cols.iter().map(|c| c.name.as_str())
                                )
                            ),
                            e.span,
                        )
                    })?;
                    keys.push((left.col(li), right.col(ri), n.clone()));
                }
                ExprKind::Binary(BinOp::And, a, b) => {
                    pending.push(a);
                    pending.push(b);
                }
                ExprKind::Binary(BinOp::Eq, a, b) => {
                    let (l, r) = match (&a.kind, &b.kind) {
                        (ExprKind::JoinSide { left: true, .. }, _) => (a, b),
                        (_, ExprKind::JoinSide { left: true, .. }) => (b, a),
                        _ => {
                            return Err(KqlError::semantic(
                                "a join condition compares $left.column with $right.column",
                                e.span,
                            ));
                        }
                    };
                    let lt = self.scalar(l, &sc)?;
                    let rt = self.scalar(r, &sc)?;
                    let name = match &l.kind {
                        ExprKind::JoinSide { column, .. } => column.name.clone(),
                        _ => String::new(),
                    };
                    keys.push((lt, rt, name));
                }
                _ => {
                    return Err(KqlError::unsupported(
                        "join conditions other than equalities of columns",
                        e.span,
                    ));
                }
            }
        }
        keys.reverse();
        Ok(keys)
    }

    pub(crate) fn join(
        &mut self,
        left: Rel,
        kind: JoinKind,
        right: &Expr,
        on: &[Expr],
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let right = self.tabular(right, env)?;
        let left = self.side(left, "left")?;
        let right = self.side(right, "right")?;
        let keys = self.join_keys(&left, &right, on, env)?;
        if keys.is_empty() {
            return Err(KqlError::semantic("a join needs at least one key", span));
        }
        let (lk, rk): (Vec<DfExpr>, Vec<DfExpr>) = keys
            .iter()
            .map(|(l, r, _)| key_pair(l.clone(), r.clone()))
            .unzip();
        let left_plan = if kind == JoinKind::InnerUnique {
            // One left row per key value (Kusto keeps an arbitrary one).
            let all: Vec<DfExpr> = (0..left.rel.cols.len()).map(|i| left.col(i).expr).collect();
            let dedup = LogicalPlanBuilder::from(left.rel.plan.clone())
                .distinct_on(lk.clone(), all, None)?
                .build()?;
            LogicalPlanBuilder::from(dedup)
                .alias(left.alias.clone())?
                .build()?
        } else {
            left.rel.plan.clone()
        };
        let jt = match kind {
            JoinKind::InnerUnique | JoinKind::Inner => JoinType::Inner,
            JoinKind::LeftOuter => JoinType::Left,
            JoinKind::RightOuter => JoinType::Right,
            JoinKind::FullOuter => JoinType::Full,
            JoinKind::LeftSemi => JoinType::LeftSemi,
            JoinKind::RightSemi => JoinType::RightSemi,
            JoinKind::LeftAnti => JoinType::LeftAnti,
            JoinKind::RightAnti => JoinType::RightAnti,
        };
        let on_exprs: Vec<DfExpr> = lk.into_iter().zip(rk).map(|(l, r)| l.eq(r)).collect();
        let plan = LogicalPlanBuilder::from(left_plan)
            .join_on(right.rel.plan.clone(), jt, on_exprs)?
            .build()?;
        let mut items: Vec<(String, TExpr)> = Vec::new();
        let with_left = !matches!(kind, JoinKind::RightSemi | JoinKind::RightAnti);
        let with_right = !matches!(kind, JoinKind::LeftSemi | JoinKind::LeftAnti);
        if with_left {
            items.extend(left.cols());
        }
        if with_right {
            for (n, t) in right.cols() {
                let taken: Vec<String> = items.iter().map(|(n, _)| n.clone()).collect();
                items.push((unique_name(&n, &taken), t));
            }
        }
        project(plan, items, false)
    }

    pub(crate) fn lookup(
        &mut self,
        left: Rel,
        inner: bool,
        right: &Expr,
        on: &[Expr],
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let right = self.tabular(right, env)?;
        let left = self.side(left, "left")?;
        let right = self.side(right, "right")?;
        let keys = self.join_keys(&left, &right, on, env)?;
        if keys.is_empty() {
            return Err(KqlError::semantic("a lookup needs at least one key", span));
        }
        let key_names: Vec<String> = keys.iter().map(|(_, _, n)| n.clone()).collect();
        let on_exprs: Vec<DfExpr> = keys
            .into_iter()
            .map(|(l, r, _)| {
                let (l, r) = key_pair(l, r);
                l.eq(r)
            })
            .collect();
        let jt = if inner {
            JoinType::Inner
        } else {
            JoinType::Left
        };
        let plan = LogicalPlanBuilder::from(left.rel.plan.clone())
            .join_on(right.rel.plan.clone(), jt, on_exprs)?
            .build()?;
        let mut items = left.cols();
        for (n, t) in right.cols() {
            if key_names.contains(&n) {
                continue;
            }
            let taken: Vec<String> = items.iter().map(|(n, _)| n.clone()).collect();
            items.push((unique_name(&n, &taken), t));
        }
        project(plan, items, false)
    }

    /// `union` (outer by default: every column, nulls where a table lacks one; a name with
    /// different types in different tables becomes `name_type` columns).
    pub(crate) fn union(
        &mut self,
        input: Option<Rel>,
        u: &Union,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let mut parts: Vec<(String, Rel)> = Vec::new();
        if let Some(rel) = input {
            parts.push(("union_arg0".into(), rel));
        }
        for (i, t) in u.tables.iter().enumerate() {
            match &t.kind {
                ExprKind::Name(n) if n.contains('*') => {
                    let mut names: Vec<String> = self
                        .tables_matching(n)
                        .into_iter()
                        .filter(|x| wildcard_match(n, x))
                        .collect();
                    names.sort();
                    for name in names {
                        let rel = self.table(&name, t.span, env)?;
                        parts.push((name, rel));
                    }
                    // Views bound by `let` match wildcards too.
                    for name in env.views().into_iter().filter(|v| wildcard_match(n, v)) {
                        let rel = self.tabular(
                            &Expr {
                                kind: ExprKind::Name(name.clone()),
                                span: t.span,
                            },
                            env,
                        )?;
                        parts.push((name, rel));
                    }
                }
                ExprKind::Name(n) => match self.tabular(t, env) {
                    Ok(rel) => parts.push((n.clone(), rel)),
                    Err(_) if u.fuzzy => {}
                    Err(e) => return Err(e),
                },
                _ => {
                    // A pipeline ending in `as Name` is named so.
                    let named = match &t.kind {
                        ExprKind::Pipe { ops, .. } => match ops.last().map(|o| &o.kind) {
                            Some(crate::ast::OpKind::As(n)) => Some(n.name.clone()),
                            _ => None,
                        },
                        _ => None,
                    };
                    match self.tabular(t, env) {
                        Ok(rel) => parts.push((
                            named.unwrap_or_else(|| {
                                format!("union_arg{}", i + usize::from(!parts.is_empty() && i == 0))
                            }),
                            rel,
                        )),
                        Err(_) if u.fuzzy => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        if parts.is_empty() {
            return Err(KqlError::semantic(
                "union has no tables (no table matches)",
                u.span,
            ));
        }
        self.union_rels(parts, u.inner, u.with_source.as_ref(), u.span)
    }

    /// The union of `parts` (each named, for `withsource`): every column (only those all
    /// parts have with `inner`), nulls where a part lacks one; a name with different types
    /// in different parts becomes `name_type` columns.
    pub(crate) fn union_rels(
        &mut self,
        parts: Vec<(String, Rel)>,
        inner: bool,
        with_source: Option<&crate::ast::Ident>,
        span: crate::error::Span,
    ) -> Result<Rel, KqlError> {
        // The output columns: name -> types seen.
        let mut names: Vec<String> = Vec::new();
        let mut types: Vec<Vec<KustoType>> = Vec::new();
        for (_, rel) in &parts {
            for c in &rel.cols {
                match names.iter().position(|n| *n == c.name) {
                    Some(i) => {
                        if !types[i].contains(&c.ty) {
                            types[i].push(c.ty);
                        }
                    }
                    None => {
                        names.push(c.name.clone());
                        types.push(vec![c.ty]);
                    }
                }
            }
        }
        // Each output column with the input column (name) it takes its values from. A
        // `name_type` column whose name is taken gets a number (`x_long1`).
        let mut out_cols: Vec<KustoColumn> = Vec::new();
        let mut sources: Vec<String> = Vec::new();
        for (n, ts) in names.iter().zip(&types) {
            if inner && !parts.iter().all(|(_, r)| r.index(n).is_some()) {
                continue;
            }
            if ts.len() == 1 {
                out_cols.push(KustoColumn {
                    name: n.clone(),
                    ty: ts[0],
                });
                sources.push(n.clone());
            } else {
                for t in ts {
                    let mut name = format!("{n}_{}", t.name());
                    let base = name.clone();
                    let mut k = 1;
                    while names.contains(&name) || out_cols.iter().any(|c| c.name == name) {
                        name = format!("{base}{k}");
                        k += 1;
                    }
                    out_cols.push(KustoColumn { name, ty: *t });
                    sources.push(n.clone());
                }
            }
        }
        // Serialized inputs (each ordered) stay serialized: their rows one input after the
        // other, each in its order.
        let keep_order = parts.len() > 1 && parts.iter().all(|(_, r)| r.ordered);
        let mut plans = Vec::new();
        for (part, (source, rel)) in parts.iter().enumerate() {
            let mut items: Vec<(String, TExpr)> = Vec::new();
            if keep_order {
                items.push(("__kql_part".into(), TExpr::long(part as i64)));
                items.push((
                    "__kql_prn".into(),
                    TExpr::new(
                        super::apply::row_number(Vec::new(), rel.keys.clone())?,
                        KustoType::Long,
                    ),
                ));
            }
            if let Some(ws) = with_source {
                items.push((ws.name.clone(), TExpr::string(source.clone())));
            }
            for (c, source) in out_cols.iter().zip(&sources) {
                let found = rel
                    .cols
                    .iter()
                    .position(|x| x.name == *source && x.ty == c.ty);
                let t = match found {
                    Some(i) if rel.cols[i].ty == c.ty => rel.texpr(i),
                    _ => TExpr::null(c.ty),
                };
                items.push((c.name.clone(), TExpr::new(cast(t.expr, c.ty.arrow()), c.ty)));
            }
            plans.push(rel.project(items)?.plan);
        }
        let mut it = plans.into_iter();
        let Some(first) = it.next() else {
            return Err(KqlError::semantic("union has no tables", span));
        };
        let mut b = LogicalPlanBuilder::from(first);
        for p in it {
            b = b.union(p)?;
        }
        if keep_order {
            let key = |n: &str| DfExpr::Column(Column::from_name(n)).sort(true, true);
            b = b.sort(vec![key("__kql_part"), key("__kql_prn")])?;
            let kept: Vec<DfExpr> = b
                .schema()
                .fields()
                .iter()
                .skip(2)
                .map(|f| DfExpr::Column(Column::from_name(f.name())))
                .collect();
            b = b.project(kept)?;
        }
        let mut cols = Vec::new();
        if let Some(ws) = with_source {
            cols.push(KustoColumn {
                name: ws.name.clone(),
                ty: KustoType::String,
            });
        }
        cols.extend(out_cols);
        Ok(Rel {
            plan: b.build()?,
            cols,
            ordered: keep_order,
            keys: Vec::new(),
        })
    }

    fn tables_matching(&self, pattern: &str) -> Vec<String> {
        self.tables
            .table_names()
            .into_iter()
            .filter(|n| wildcard_match(pattern, n))
            .collect()
    }

    /// `search`: rows of the tables where the predicate holds; a bare string looks in every
    /// string column (`has` semantics). Adds `$table` when several tables are searched.
    pub(crate) fn search(
        &mut self,
        input: Option<Rel>,
        s: &Search,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let (rel, many) = match input {
            Some(rel) => (rel, false),
            None => {
                let mut names: Vec<String> = if s.tables.is_empty() {
                    let mut all = self.tables.table_names();
                    all.extend(env.views());
                    all
                } else {
                    s.tables
                        .iter()
                        .flat_map(|t| {
                            if t.name.contains('*') {
                                self.tables_matching(&t.name)
                            } else {
                                vec![t.name.clone()]
                            }
                        })
                        .collect()
                };
                names.sort();
                names.dedup();
                // Let-bound tables (views) are searched too when no table list is given.
                let u = Union {
                    inner: false,
                    fuzzy: false,
                    with_source: Some(crate::ast::Ident {
                        name: "$table".into(),
                        span: s.predicate.span,
                    }),
                    tables: names
                        .into_iter()
                        .map(|n| Expr {
                            kind: ExprKind::Name(n),
                            span: s.predicate.span,
                        })
                        .collect(),
                    span: s.predicate.span,
                };
                (self.union(None, &u, env)?, true)
            }
        };
        let _ = many;
        let pred = search_predicate(&s.predicate, s.case_sensitive);
        let sc = Scope::with_cols(rel.scope_cols(), env);
        let t = self.scalar(&pred, &sc).or_else(|e| {
            // A bare term: any string column has it.
            if let ExprKind::Literal(crate::ast::Literal::String(term)) = &s.predicate.kind {
                let tests: Vec<DfExpr> = rel
                    .cols
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.ty.is_textual())
                    .map(|(i, _)| {
                        operators::binary(
                            BinOp::Str(StrOp {
                                kind: StrOpKind::Has,
                                cs: s.case_sensitive,
                                negated: false,
                            }),
                            rel.texpr(i),
                            TExpr::string(term.clone()),
                            s.predicate.span,
                        )
                        .map(|t| t.expr)
                    })
                    .collect::<Result<_, _>>()?;
                let e = tests
                    .into_iter()
                    .reduce(DfExpr::or)
                    .unwrap_or_else(|| datafusion::logical_expr::lit(false));
                Ok(TExpr::new(e, KustoType::Bool))
            } else {
                Err(e)
            }
        })?;
        rel.filter(t.expr)
    }
}

/// A bare string literal in `search` means "any column has it"; kept as is here and
/// expanded by the caller.
fn search_predicate(e: &Expr, _cs: bool) -> Expr {
    e.clone()
}

/// The two sides of a key cast to a common type where they differ.
fn key_pair(l: TExpr, r: TExpr) -> (DfExpr, DfExpr) {
    if l.ty == r.ty {
        return (l.expr, r.expr);
    }
    if l.ty.is_numeric() && r.ty.is_numeric() {
        let t = KustoType::numeric_join(l.ty, r.ty);
        return (cast(l.expr, t.arrow()), cast(r.expr, t.arrow()));
    }
    let (l, r) = (
        operators::convert(l, KustoType::String),
        operators::convert(r, KustoType::String),
    );
    (l.expr, r.expr)
}
