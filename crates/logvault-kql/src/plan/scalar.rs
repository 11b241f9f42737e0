//! Scalar expressions: names, literals, member access on dynamic values, calls.

use std::cell::RefCell;
use std::rc::Rc;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{LogicalPlanBuilder, scalar_subquery};

use super::operators::{self, between, binary, in_list};
use super::summarize::AggCollector;
use super::{Binding, Env, Planner, Rel, TExpr};
use crate::ast::{Arg, Expr, ExprKind, Literal, UnaryOp};
use crate::error::{KqlError, Span, did_you_mean};
use crate::functions::{self, FnCall};
use crate::types::KustoType;

/// Named typed columns.
pub(crate) type Columns = Vec<(String, TExpr)>;

/// What names mean while planning a scalar expression: the columns of the current row (and
/// columns assigned earlier in the same operator), and the `let` names.
pub(crate) struct Scope<'e> {
    /// Columns, later entries shadowing earlier ones.
    pub cols: Vec<(String, TExpr)>,
    /// The `let` names.
    pub env: &'e Env,
    /// In `summarize`: where aggregation calls are collected.
    pub agg: Option<Rc<RefCell<AggCollector>>>,
    /// In a join's `on` clause: the left and right columns for `$left.x` / `$right.x`.
    pub sides: Option<(Columns, Columns)>,
    /// Over serialized rows (`extend`, `project` after `serialize`, `sort`, ...): the sort keys
    /// that window functions (`row_number`, `prev`, ...) order by.
    pub window: Option<Vec<datafusion::logical_expr::SortExpr>>,
}

impl<'e> Scope<'e> {
    /// No columns.
    pub(crate) fn empty(env: &'e Env) -> Self {
        Self {
            cols: Vec::new(),
            env,
            agg: None,
            sides: None,
            window: None,
        }
    }

    /// The columns `cols`.
    pub(crate) fn with_cols(cols: Vec<(String, TExpr)>, env: &'e Env) -> Self {
        Self {
            cols,
            env,
            agg: None,
            sides: None,
            window: None,
        }
    }

    pub(crate) fn col(&self, name: &str) -> Option<&TExpr> {
        self.cols
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
    }

    /// Sets (or adds) column `name`.
    pub(crate) fn set(&mut self, name: &str, t: TExpr) {
        self.cols.push((name.to_owned(), t));
    }
}

impl Planner<'_> {
    /// Plans a scalar expression.
    pub(crate) fn scalar(&mut self, e: &Expr, sc: &Scope<'_>) -> Result<TExpr, KqlError> {
        match &e.kind {
            ExprKind::Literal(l) => literal(l, e.span),
            ExprKind::Name(n) => self.name(n, e.span, sc),
            ExprKind::Star => Err(KqlError::semantic("'*' is not a value here", e.span)),
            ExprKind::JoinSide { left, column } => {
                let Some((l, r)) = &sc.sides else {
                    return Err(KqlError::semantic(
                        "$left and $right are only valid in a join's 'on' clause",
                        e.span,
                    ));
                };
                let cols = if *left { l } else { r };
                cols.iter()
                    .find(|(n, _)| *n == column.name)
                    .map(|(_, t)| t.clone())
                    .ok_or_else(|| {
                        KqlError::semantic(
                            format!(
                                "unknown column '{}' on the {} side of the join{}",
                                column.name,
                                if *left { "left" } else { "right" },
                                did_you_mean(&column.name, cols.iter().map(|(n, _)| n.as_str()))
                            ),
                            column.span,
                        )
                    })
            }
            ExprKind::Member(..) | ExprKind::Index(..) => self.path(e, sc),
            ExprKind::Unary(op, inner) => {
                let t = self.scalar(inner, sc)?;
                match op {
                    UnaryOp::Plus => Ok(t),
                    UnaryOp::Neg => operators::negate(t, e.span),
                }
            }
            ExprKind::Binary(op, l, r) => {
                let lt = self.scalar(l, sc)?;
                if let crate::ast::BinOp::Str(s) = op
                    && matches!(
                        s.kind,
                        crate::ast::StrOpKind::HasAny | crate::ast::StrOpKind::HasAll
                    )
                {
                    let items = self.list_items(r, sc)?;
                    return operators::has_any_all(lt, items, *s, e.span);
                }
                let rt = self.scalar(r, sc)?;
                binary(*op, lt, rt, e.span)
            }
            ExprKind::In {
                lhs,
                list,
                negated,
                ci,
            } => {
                let l = self.scalar(lhs, sc)?;
                if let [one] = list.as_slice()
                    && self.is_tabular(one, sc.env)
                {
                    let rel = self.tabular(one, sc.env)?;
                    if rel.cols.is_empty() {
                        return Err(KqlError::semantic("the table has no columns", one.span));
                    }
                    let first = rel.project(vec![(rel.cols[0].name.clone(), rel.texpr(0))])?;
                    return operators::in_subquery(l, first, *negated, *ci, e.span);
                }
                let mut items = Vec::new();
                for x in list {
                    items.extend(self.list_items(x, sc)?);
                }
                in_list(l, items, *negated, *ci, e.span)
            }
            ExprKind::Between {
                lhs,
                low,
                high,
                negated,
            } => {
                let l = self.scalar(lhs, sc)?;
                let lo = self.scalar(low, sc)?;
                let hi = self.scalar(high, sc)?;
                between(l, lo, hi, *negated, e.span)
            }
            ExprKind::Call { name, args }
                if name.name == "bin_auto"
                    && args.len() == 1
                    && self.options.contains_key("query_bin_auto_size") =>
            {
                // bin_auto(x) is bin_at(x, query_bin_auto_size, query_bin_auto_at).
                let mut all = args.clone();
                let size = self.options.get("query_bin_auto_size").cloned();
                let at = self.options.get("query_bin_auto_at").cloned();
                let f = match (size, at) {
                    (Some(s), Some(a)) => {
                        all.push(crate::ast::Arg {
                            name: None,
                            value: s,
                        });
                        all.push(crate::ast::Arg {
                            name: None,
                            value: a,
                        });
                        "bin_at"
                    }
                    (Some(s), None) => {
                        all.push(crate::ast::Arg {
                            name: None,
                            value: s,
                        });
                        "bin"
                    }
                    _ => "bin_auto",
                };
                self.call(f, &all, name.span, e.span, sc)
            }
            ExprKind::Call { name, args } => self.call(&name.name, args, name.span, e.span, sc),
            ExprKind::TypeOf(t) => Ok(TExpr::string(t.name())),
            ExprKind::Pipe { .. }
            | ExprKind::Datatable { .. }
            | ExprKind::Print(_)
            | ExprKind::Range { .. }
            | ExprKind::Union(_)
            | ExprKind::Search(_)
            | ExprKind::Evaluate(_) => Err(KqlError::semantic(
                "a tabular expression cannot be used as a value here (use toscalar())",
                e.span,
            )),
        }
    }

    /// The items of a list operand: a dynamic array constant is spread into its elements.
    fn list_items(&mut self, e: &Expr, sc: &Scope<'_>) -> Result<Vec<TExpr>, KqlError> {
        if let ExprKind::Call { name, args } = &e.kind
            && name.name == "pack_array"
            && sc.env.get("pack_array").is_none()
        {
            let mut out = Vec::new();
            for a in args {
                out.extend(self.list_items(&a.value, sc)?);
            }
            return Ok(out);
        }
        let t = self.scalar(e, sc)?;
        if t.ty == KustoType::Dynamic
            && let Some(text) = t.literal_str()
            && let Ok(serde_json::Value::Array(items)) =
                serde_json::from_str::<serde_json::Value>(text)
        {
            return Ok(items.iter().map(operators::json_literal).collect());
        }
        Ok(vec![t])
    }

    fn name(&mut self, n: &str, span: Span, sc: &Scope<'_>) -> Result<TExpr, KqlError> {
        if let Some(t) = sc.col(n) {
            return Ok(t.clone());
        }
        match sc.env.get(n) {
            Some(Binding::Scalar(t)) => return Ok(t.clone()),
            Some(Binding::Tabular(_)) => {
                return Err(KqlError::semantic(
                    format!("'{n}' is a table; use toscalar() for its value"),
                    span,
                ));
            }
            Some(Binding::Function(l, fenv)) if l.params.is_empty() => {
                let (l, fenv) = (Rc::clone(l), fenv.clone());
                return self.invoke_scalar(&l, &fenv, &[], span, sc);
            }
            _ => {}
        }
        let mut names: Vec<&str> = sc.cols.iter().map(|(n, _)| n.as_str()).collect();
        names.extend(sc.env.names());
        Err(KqlError::semantic(
            format!(
                "unknown name '{n}': not a column, nor a let or a parameter{}",
                did_you_mean(n, names)
            ),
            span,
        ))
    }

    /// `d.a.b[0]`, `d['x']`: one path lookup on the dynamic value at the root.
    fn path(&mut self, e: &Expr, sc: &Scope<'_>) -> Result<TExpr, KqlError> {
        let mut steps: Vec<TExpr> = Vec::new();
        let mut cur = e;
        loop {
            match &cur.kind {
                ExprKind::Member(base, name) => {
                    steps.push(TExpr::string(name.name.clone()));
                    cur = base;
                }
                ExprKind::Index(base, index) => {
                    let i = self.scalar(index, sc)?;
                    steps.push(i);
                    cur = base;
                }
                _ => break,
            }
        }
        steps.reverse();
        // `$left.x` parses as a join side; `T.x` on a column named T is a path.
        let root = self.scalar(cur, sc)?;
        operators::dynamic_path(root, steps, e.span)
    }

    /// A function call: a user-defined function, a built-in, or (in summarize) an aggregation.
    pub(crate) fn call(
        &mut self,
        name: &str,
        args: &[Arg],
        name_span: Span,
        span: Span,
        sc: &Scope<'_>,
    ) -> Result<TExpr, KqlError> {
        if let Some(Binding::Function(l, fenv)) = sc.env.get(name) {
            let (l, fenv) = (Rc::clone(l), fenv.clone());
            return self.invoke_scalar(&l, &fenv, args, span, sc);
        }
        if name == "toscalar" {
            let [a] = args else {
                return Err(KqlError::semantic("toscalar() takes one argument", span));
            };
            if !self.is_tabular(&a.value, sc.env) {
                return self.scalar(&a.value, sc);
            }
            let rel = self.tabular(&a.value, sc.env)?;
            if rel.cols.is_empty() {
                return Err(KqlError::semantic(
                    "toscalar() of a table without columns",
                    span,
                ));
            }
            let ty = rel.cols[0].ty;
            let first = rel.project(vec![(rel.cols[0].name.clone(), rel.texpr(0))])?;
            let plan = LogicalPlanBuilder::from(first.plan)
                .limit(0, Some(1))?
                .build()?;
            let first = Rel {
                plan,
                cols: first.cols,
                ordered: false,
                keys: Vec::new(),
            };
            // Over constants the value is known now: a literal, usable where a constant is
            // required (a `range` bound, `take`'s count).
            if let Some(batches) = self.constant_rows_of(&first, "toscalar()", span)? {
                let value = match batches.iter().find(|b| b.num_rows() > 0) {
                    Some(b) => ScalarValue::try_from_array(b.column(0), 0)?,
                    None => ScalarValue::try_from(&ty.arrow())?,
                };
                let value = value.cast_to(&ty.arrow()).unwrap_or(value);
                return Ok(TExpr::lit(value, ty));
            }
            return Ok(TExpr::new(scalar_subquery(super::rel::arc(first.plan)), ty));
        }
        if super::window::is_window(name) {
            return self.window_call(name, args, name_span, span, sc);
        }
        if functions::aggregate::is_aggregate(name) {
            let Some(agg) = &sc.agg else {
                return Err(KqlError::semantic(
                    format!("'{name}' is an aggregation function: use it in summarize"),
                    name_span,
                ));
            };
            let agg = Rc::clone(agg);
            return self.aggregate_call(name, args, span, sc, &agg);
        }
        if !functions::is_scalar(name) {
            let mut names: Vec<&str> = functions::scalar_names().collect();
            names.extend(functions::aggregate::NAMES.iter().copied());
            names.extend(sc.env.names());
            return Err(KqlError::semantic(
                format!("unknown function '{name}'{}", did_you_mean(name, names)),
                name_span,
            ));
        }
        // Arguments: `*` (pack_all, hash_many) and names are passed through.
        let mut targs = Vec::with_capacity(args.len());
        // pack_all() reads every column of the row, as if given `*`.
        let mut star = name == "pack_all";
        for a in args {
            if matches!(a.value.kind, ExprKind::Star) {
                star = true;
                continue;
            }
            targs.push(self.scalar(&a.value, sc)?);
        }
        if star {
            targs.extend(sc.cols.iter().map(|(_, t)| t.clone()));
        }
        let star_names: Vec<String> = if star {
            sc.cols.iter().map(|(n, _)| n.clone()).collect()
        } else {
            Vec::new()
        };
        let mut c = FnCall {
            name,
            args: targs,
            span,
            now_ticks: self.now_ticks,
            star_names,
        };
        functions::call_scalar(&mut c)
    }

    fn invoke_scalar(
        &mut self,
        l: &crate::ast::Lambda,
        fenv: &Env,
        args: &[Arg],
        span: Span,
        sc: &Scope<'_>,
    ) -> Result<TExpr, KqlError> {
        let mut env = self.bind_args(l, fenv, args, span, sc)?;
        let mut result = None;
        for s in &l.body {
            match s {
                crate::ast::Statement::Let { name, value } => {
                    let b = self.let_binding_in(value, &env)?;
                    env.bind(&name.name, b);
                }
                crate::ast::Statement::Expr(e) => {
                    if self.is_tabular(e, &env) {
                        return Err(KqlError::semantic(
                            "this function returns a table; it cannot be used as a value",
                            span,
                        ));
                    }
                    // The body sees the caller's columns too (functions over row values).
                    let inner = Scope {
                        cols: sc.cols.clone(),
                        env: &env,
                        agg: sc.agg.clone(),
                        sides: None,
                        window: sc.window.clone(),
                    };
                    result = Some(self.scalar(e, &inner)?);
                    break;
                }
                crate::ast::Statement::Ignored(_) | crate::ast::Statement::Set(..) => {}
            }
        }
        result.ok_or_else(|| KqlError::semantic("the function has no value", span))
    }

    fn let_binding_in(
        &mut self,
        value: &crate::ast::LetValue,
        env: &Env,
    ) -> Result<Binding, KqlError> {
        match value {
            crate::ast::LetValue::Function(l) => {
                Ok(Binding::Function(Rc::new(l.clone()), env.clone()))
            }
            crate::ast::LetValue::Pattern(p) => {
                Ok(Binding::Pattern(Rc::new(p.clone()), env.clone()))
            }
            crate::ast::LetValue::Expr(e) => {
                if self.is_tabular(e, env) {
                    Ok(Binding::Tabular(self.tabular(e, env)?))
                } else {
                    Ok(Binding::Scalar(self.scalar(e, &Scope::empty(env))?))
                }
            }
        }
    }
}

/// The typed value of a literal.
pub(crate) fn literal(l: &Literal, span: Span) -> Result<TExpr, KqlError> {
    Ok(match l {
        Literal::Null(t) => TExpr::null(*t),
        Literal::Bool(b) => TExpr::bool(*b),
        Literal::Int(v) => TExpr::lit(ScalarValue::Int32(Some(*v)), KustoType::Int),
        Literal::Long(v) => TExpr::long(*v),
        Literal::Real(v) => TExpr::real(*v),
        Literal::Decimal(s) => {
            let v: f64 = s
                .parse()
                .map_err(|_| KqlError::semantic("invalid decimal", span))?;
            TExpr::lit(
                ScalarValue::Decimal128(Some((v * 1e18).round() as i128), 38, 18),
                KustoType::Decimal,
            )
        }
        Literal::String(s) => TExpr::string(s.clone()),
        Literal::DateTime(t) => {
            let ns = t.checked_mul(100).ok_or_else(|| {
                KqlError::semantic(
                    "datetime out of the supported range (years 1677 to 2262)",
                    span,
                )
            })?;
            TExpr::lit(
                ScalarValue::TimestampNanosecond(Some(ns), Some("UTC".into())),
                KustoType::DateTime,
            )
        }
        Literal::Timespan(t) => {
            let ns = t.checked_mul(100).ok_or_else(|| {
                KqlError::semantic("timespan out of the supported range (292 years)", span)
            })?;
            TExpr::lit(
                ScalarValue::DurationNanosecond(Some(ns)),
                KustoType::Timespan,
            )
        }
        Literal::Guid(g) => TExpr::lit(ScalarValue::Utf8(Some(g.clone())), KustoType::Guid),
        Literal::Dynamic(v) => {
            if v.is_null() {
                TExpr::null(KustoType::Dynamic)
            } else {
                TExpr::lit(
                    ScalarValue::Utf8(Some(crate::udf::value::dynamic_text(v))),
                    KustoType::Dynamic,
                )
            }
        }
    })
}
