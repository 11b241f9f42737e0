//! The row and column operators: `where`, the `project` family, `extend`, `take`, `sort`,
//! `top`, `distinct`, `count`, `as`, `serialize`, `sample`, `getschema`, `render`.

use datafusion::functions_aggregate::count::count_udaf;
use datafusion::logical_expr::{Expr as DfExpr, LogicalPlanBuilder, SortExpr, lit};

use super::consts::eval_i64;
use super::rel::{Rel, TExpr, unique_name};
use super::scalar::Scope;
use super::{Binding, Env, Planner};
use crate::ast::{Assign, ColumnPattern, Expr, ExprKind, OpKind, Operator, SortKey};
use crate::error::{KqlError, Span, did_you_mean};
use crate::types::{KustoColumn, KustoType};

/// Applies one operator to `rel`.
pub(crate) fn apply(
    p: &mut Planner<'_>,
    rel: Rel,
    op: &Operator,
    env: &mut Env,
) -> Result<Rel, KqlError> {
    let span = op.span;
    match &op.kind {
        OpKind::Where(pred) => {
            let sc = Scope::with_cols(rel.scope_cols(), env);
            let t = p.scalar(pred, &sc)?;
            let e = match t.ty {
                KustoType::Bool => t.expr,
                KustoType::Dynamic => super::operators::convert(t, KustoType::Bool).expr,
                other => {
                    return Err(KqlError::semantic(
                        format!("the 'where' predicate must be bool, not {other}"),
                        pred.span,
                    ));
                }
            };
            rel.filter(e)
        }
        OpKind::Project(items) => project(p, &rel, &expand_multi(items), env),
        OpKind::Extend(items) => extend(p, rel, &expand_multi(items), env),
        OpKind::ProjectAway(pats) => {
            let keep = select(&rel, pats, false)?;
            let items = rel
                .cols
                .iter()
                .enumerate()
                .filter(|(i, _)| !keep.contains(i))
                .map(|(i, c)| (c.name.clone(), rel.texpr(i)))
                .collect();
            rel.project(items)
        }
        OpKind::ProjectKeep(pats) => {
            let keep = select(&rel, pats, false)?;
            let items = rel
                .cols
                .iter()
                .enumerate()
                .filter(|(i, _)| keep.contains(i))
                .map(|(i, c)| (c.name.clone(), rel.texpr(i)))
                .collect();
            rel.project(items)
        }
        OpKind::ProjectRename(pairs) => {
            let mut names = rel.names();
            for (new, old) in pairs {
                let i = rel.require(&old.name, old.span)?;
                names[i] = new.name.clone();
            }
            let items = names
                .into_iter()
                .enumerate()
                .map(|(i, n)| (n, rel.texpr(i)))
                .collect();
            rel.project(items)
        }
        OpKind::ProjectReorder(items) => {
            let mut order: Vec<usize> = Vec::new();
            for (pat, asc) in items {
                let mut matched: Vec<usize> = (0..rel.cols.len())
                    .filter(|i| pat.matches(&rel.cols[*i].name) && !order.contains(i))
                    .collect();
                if matched.is_empty() && !pat.is_wildcard() {
                    rel.require(&pat.pattern, pat.span)?;
                }
                if let Some(asc) = asc {
                    matched.sort_by(|a, b| rel.cols[*a].name.cmp(&rel.cols[*b].name));
                    if !asc {
                        matched.reverse();
                    }
                }
                order.extend(matched);
            }
            let rest: Vec<usize> = (0..rel.cols.len()).filter(|i| !order.contains(i)).collect();
            order.extend(rest);
            let items = order
                .into_iter()
                .map(|i| (rel.cols[i].name.clone(), rel.texpr(i)))
                .collect();
            rel.project(items)
        }
        OpKind::Summarize { aggs, by } => p.summarize(rel, aggs, by, env),
        OpKind::Count => {
            let e = count_udaf().call(vec![lit(1i64)]).alias("Count");
            let plan = LogicalPlanBuilder::from(rel.plan)
                .aggregate(Vec::<DfExpr>::new(), vec![e])?
                .build()?;
            Ok(Rel::new(plan, vec![KustoType::Long]))
        }
        OpKind::Take(n) => {
            let n = take_count(p, n, env)?;
            limit(rel, n)
        }
        OpKind::Sort(keys) => sort(p, rel, keys, env),
        OpKind::Top { n, by } => {
            let n = take_count(p, n, env)?;
            let sorted = sort(p, rel, by, env)?;
            limit(sorted, n)
        }
        OpKind::Distinct(items) => {
            let rel = if items.len() == 1 && matches!(items[0].kind, ExprKind::Star) {
                rel
            } else {
                let assigns: Vec<Assign> = items
                    .iter()
                    .map(|e| Assign {
                        names: Vec::new(),
                        expr: e.clone(),
                    })
                    .collect();
                project(p, &rel, &assigns, env)?
            };
            let plan = LogicalPlanBuilder::from(rel.plan).distinct()?.build()?;
            Ok(Rel {
                plan,
                cols: rel.cols,
                ordered: false,
                keys: Vec::new(),
            })
        }
        OpKind::As(name) => {
            env.bind(&name.name, Binding::Tabular(rel.clone()));
            Ok(rel)
        }
        OpKind::Serialize(items) => {
            let mut rel = rel;
            rel.ordered = true;
            if items.is_empty() {
                Ok(rel)
            } else {
                extend(p, rel, items, env)
            }
        }
        OpKind::Sample(n) => {
            let n = take_count(p, n, env)?;
            let plan = LogicalPlanBuilder::from(rel.plan)
                .sort(vec![SortExpr::new(
                    datafusion::functions::math::expr_fn::random(),
                    true,
                    false,
                )])?
                .limit(0, Some(n))?
                .build()?;
            Ok(Rel {
                plan,
                cols: rel.cols,
                ordered: false,
                keys: Vec::new(),
            })
        }
        OpKind::SampleDistinct(n, col) => {
            let n = take_count(p, n, env)?;
            let one = project(
                p,
                &rel,
                &[Assign {
                    names: Vec::new(),
                    expr: col.clone(),
                }],
                env,
            )?;
            let plan = LogicalPlanBuilder::from(one.plan)
                .distinct()?
                .limit(0, Some(n))?
                .build()?;
            Ok(Rel {
                plan,
                cols: one.cols,
                ordered: false,
                keys: Vec::new(),
            })
        }
        OpKind::GetSchema => getschema(p, &rel, env),
        OpKind::Render { chart } => {
            p.set_render(chart);
            Ok(rel)
        }
        OpKind::Consume => limit(rel, 0),
        OpKind::Scan(s) => p.scan(rel, s, op.span, env),
        OpKind::Partition(part) => p.partition(rel, part, op.span, env),
        OpKind::Union(u) => p.union(Some(rel), u, env),
        OpKind::Join { kind, right, on } => p.join(rel, *kind, right, on, span, env),
        OpKind::Lookup { inner, right, on } => p.lookup(rel, *inner, right, on, span, env),
        OpKind::Parse {
            expr,
            parts,
            regex,
            relaxed,
            filter,
            flags,
        } => p.parse_op(
            rel, expr, parts, *regex, *relaxed, *filter, flags, span, env,
        ),
        OpKind::ParseKv {
            expr,
            columns,
            params,
        } => p.parse_kv(rel, expr, columns, params, span, env),
        OpKind::MvExpand {
            items,
            item_index,
            bag_array,
            limit,
        } => p.mv_expand(
            rel,
            items,
            item_index.as_ref(),
            *bag_array,
            limit.as_ref(),
            span,
            env,
        ),
        OpKind::MvApply {
            items,
            item_index,
            ops,
        } => p.mv_apply(rel, items, item_index.as_ref(), ops, span, env),
        OpKind::MakeSeries(ms) => p.make_series(rel, ms, span, env),
        OpKind::TopNested(levels) => p.top_nested(rel, levels, span, env),
        OpKind::Evaluate(ev) => p.evaluate(Some(rel), ev, span, env),
        OpKind::Invoke(call) => p.invoke(rel, call, env),
        OpKind::Search(s) => p.search(Some(rel), s, env),
    }
}

/// The constant row count of `take`, `top`, `sample`.
fn take_count(p: &mut Planner<'_>, n: &Expr, env: &Env) -> Result<usize, KqlError> {
    let t = p.scalar(n, &Scope::empty(env))?;
    let v = eval_i64(&t, "the number of rows", n.span)?;
    Ok(usize::try_from(v.max(0)).unwrap_or(usize::MAX))
}

pub(crate) fn limit(rel: Rel, n: usize) -> Result<Rel, KqlError> {
    let plan = LogicalPlanBuilder::from(rel.plan)
        .limit(0, Some(n))?
        .build()?;
    Ok(Rel {
        plan,
        cols: rel.cols,
        ordered: rel.ordered,
        keys: rel.keys,
    })
}

/// The indexes of the columns matching any of `pats` (an unmatched plain name is an error).
fn select(rel: &Rel, pats: &[ColumnPattern], _: bool) -> Result<Vec<usize>, KqlError> {
    let mut out = Vec::new();
    for pat in pats {
        let matched: Vec<usize> = (0..rel.cols.len())
            .filter(|i| pat.matches(&rel.cols[*i].name))
            .collect();
        if matched.is_empty() && !pat.is_wildcard() {
            rel.require(&pat.pattern, pat.span)?;
        }
        out.extend(matched);
    }
    Ok(out)
}

/// The name Kusto gives an unnamed expression: a column's own name, `d_a_b` for a path
/// `d.a.b`, else `None` (the caller numbers it `Column1`, `Column2`, ...).
pub(crate) fn expr_name(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Name(n) => Some(n.clone()),
        ExprKind::Member(base, name) => Some(format!("{}_{}", expr_name(base)?, name.name)),
        ExprKind::Index(base, idx) => {
            let b = expr_name(base)?;
            match &idx.kind {
                ExprKind::Literal(crate::ast::Literal::String(s)) => Some(format!("{b}_{s}")),
                ExprKind::Literal(crate::ast::Literal::Long(i)) => Some(format!("{b}_{i}")),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The next free `ColumnN` name.
pub(crate) fn next_column_name(counter: &mut usize, taken: &[String]) -> String {
    loop {
        *counter += 1;
        let n = format!("Column{counter}");
        if !taken.contains(&n) {
            return n;
        }
    }
}

fn project(p: &mut Planner<'_>, rel: &Rel, items: &[Assign], env: &Env) -> Result<Rel, KqlError> {
    let mut sc = Scope::with_cols(rel.scope_cols(), env);
    sc.window = rel.ordered.then(|| rel.keys.clone());
    let mut out: Vec<(String, TExpr)> = Vec::new();
    let mut counter = 0;
    for a in items {
        // A bare wildcard pattern in project is not KQL; `project *` is refused by the parser.
        let t = p.scalar(&a.expr, &sc)?;
        let name = match a.names.as_slice() {
            [n] => n.name.clone(),
            [] => match expr_name(&a.expr) {
                Some(n) => n,
                None => {
                    let taken: Vec<String> = out.iter().map(|(n, _)| n.clone()).collect();
                    next_column_name(&mut counter, &taken)
                }
            },
            _ => {
                return Err(KqlError::unsupported(
                    "assigning several names in project",
                    a.expr.span,
                ));
            }
        };
        if out.iter().any(|(n, _)| *n == name) {
            return Err(KqlError::semantic(
                format!("the column '{name}' is projected twice"),
                a.expr.span,
            ));
        }
        sc.set(&name, t.clone());
        out.push((name, t));
    }
    rel.project(out)
}

/// `extend`: new columns at the end, an existing name replaced in place. Later assignments
/// see earlier ones.
pub(crate) fn extend(
    p: &mut Planner<'_>,
    rel: Rel,
    items: &[Assign],
    env: &Env,
) -> Result<Rel, KqlError> {
    let mut sc = Scope::with_cols(rel.scope_cols(), env);
    sc.window = rel.ordered.then(|| rel.keys.clone());
    let mut out: Vec<(String, TExpr)> = rel.scope_cols();
    let mut counter = 0;
    for a in items {
        let t = p.scalar(&a.expr, &sc)?;
        let name = match a.names.as_slice() {
            [n] => n.name.clone(),
            [] => match expr_name(&a.expr) {
                Some(n) => n,
                None => {
                    let taken: Vec<String> = out.iter().map(|(n, _)| n.clone()).collect();
                    next_column_name(&mut counter, &taken)
                }
            },
            _ => {
                return Err(KqlError::unsupported(
                    "assigning several names in extend",
                    a.expr.span,
                ));
            }
        };
        sc.set(&name, t.clone());
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = t,
            None => out.push((name, t)),
        }
    }
    rel.project(out)
}

/// `sort by`: Kusto sorts descending by default, nulls last when descending.
pub(crate) fn sort(
    p: &mut Planner<'_>,
    rel: Rel,
    keys: &[SortKey],
    env: &Env,
) -> Result<Rel, KqlError> {
    let sc = Scope::with_cols(rel.scope_cols(), env);
    let mut exprs = Vec::new();
    for k in keys {
        let t = p.scalar(&k.expr, &sc)?;
        let e = if t.ty == KustoType::Dynamic {
            super::operators::convert(t, KustoType::String).expr
        } else {
            t.expr
        };
        exprs.push(SortExpr::new(e, k.asc, k.nulls_first));
    }
    let plan = LogicalPlanBuilder::from(rel.plan)
        .sort(exprs.clone())?
        .build()?;
    Ok(Rel {
        plan,
        cols: rel.cols,
        ordered: true,
        keys: exprs,
    })
}

fn getschema(p: &mut Planner<'_>, rel: &Rel, env: &Env) -> Result<Rel, KqlError> {
    let mut values = Vec::new();
    for (i, c) in rel.cols.iter().enumerate() {
        values.push(vec![
            TExpr::string(c.name.clone()),
            TExpr::lit(
                datafusion::common::ScalarValue::Int32(Some(i as i32)),
                KustoType::Int,
            ),
            TExpr::string(c.ty.dotnet_name()),
            TExpr::string(c.ty.name()),
        ]);
    }
    let cols = vec![
        KustoColumn {
            name: "ColumnName".into(),
            ty: KustoType::String,
        },
        KustoColumn {
            name: "ColumnOrdinal".into(),
            ty: KustoType::Int,
        },
        KustoColumn {
            name: "DataType".into(),
            ty: KustoType::String,
        },
        KustoColumn {
            name: "ColumnType".into(),
            ty: KustoType::String,
        },
    ];
    let _ = env;
    p.values_table(cols, values, Span::default())
}

/// The first unmatched name among `names` in `rel`, as an error with a suggestion.
#[allow(dead_code)]
pub(crate) fn unknown_column(rel: &Rel, name: &str, span: Span) -> KqlError {
    KqlError::semantic(
        format!(
            "unknown column '{name}'{}",
            did_you_mean(name, rel.cols.iter().map(|c| c.name.as_str()))
        ),
        span,
    )
}

/// A name not used by `taken`.
#[allow(dead_code)]
pub(crate) fn fresh_name(name: &str, taken: &[String]) -> String {
    unique_name(name, taken)
}

/// Assignments of functions that return several values (`array_sort_asc(a, b)`: one array
/// per input array) made one assignment per value: the names given, or `a_sorted`, ...
pub(crate) fn expand_multi(items: &[Assign]) -> Vec<Assign> {
    let mut out = Vec::with_capacity(items.len());
    for a in items {
        let ExprKind::Call { name, args } = &a.expr.kind else {
            out.push(a.clone());
            continue;
        };
        let arrays = args
            .iter()
            .filter(|x| {
                !matches!(
                    x.value.kind,
                    ExprKind::Literal(crate::ast::Literal::Bool(_))
                )
            })
            .count();
        let multi = matches!(name.name.as_str(), "array_sort_asc" | "array_sort_desc")
            && arrays > 1
            && (a.names.is_empty() || a.names.len() == arrays);
        if !multi {
            out.push(a.clone());
            continue;
        }
        for i in 0..arrays {
            let label = match a.names.get(i) {
                Some(n) => n.clone(),
                None => crate::ast::Ident {
                    name: match &args[i].value.kind {
                        ExprKind::Name(n) => format!("{n}_sorted"),
                        _ => format!("array{}_sorted", i + 1),
                    },
                    span: a.expr.span,
                },
            };
            out.push(Assign {
                names: vec![label],
                expr: crate::ast::Expr {
                    kind: ExprKind::Index(
                        Box::new(a.expr.clone()),
                        Box::new(crate::ast::Expr {
                            kind: ExprKind::Literal(crate::ast::Literal::Long(i as i64)),
                            span: a.expr.span,
                        }),
                    ),
                    span: a.expr.span,
                },
            });
        }
    }
    out
}
