//! The planner: a parsed query to a DataFusion logical plan with Kusto result types.
//!
//! Split by concept: this module holds the entry points, the scope of `let` names and the
//! dispatch over tabular expressions; `rel` the relation being built; `scalar` and `operators`
//! scalar expressions; `ops` the simple tabular operators; `summarize` aggregation; `join`
//! joins, lookups and unions; `sources` datatable, print and range; `expand` mv-expand and
//! the parse operators; `apply` mv-apply (and subqueries run per partition); `partition`;
//! `window` the window functions; `scan`; `evaluate`, `reshape` (pivot, narrow),
//! `schema_merge` and `plugins` the plugins; `pattern` calls of `declare pattern`; `constant`
//! runs sub-plans over the query's own constants while planning; `tables` where tables come
//! from ([`TableResolver`]) and `options` the options of planning.

mod apply;
mod constant;
mod consts;
mod evaluate;
mod expand;
mod join;
mod operators;
pub(crate) mod ops;
mod options;
mod partition;
mod pattern;
mod plugins;
pub(crate) mod rel;
mod reshape;
mod scalar;
mod scan;
mod schema_merge;
mod sources;
mod stored;
mod summarize;
mod tables;
mod top_nested;
mod window;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, TableSource};

use crate::ast::{Expr, ExprKind, Lambda, LetValue, Operator, ParamType, Query, Statement};
use crate::error::{KqlError, Span, did_you_mean};
use crate::types::{KustoSchema, KustoType};
pub(crate) use operators::{binary as binary_pub, convert as convert_pub, negate as negate_pub};
pub use options::PlanOptions;
use options::timestamp_literal;
pub(crate) use rel::{Rel, TExpr};
pub use stored::{
    FunctionResolver, StoredFunction, check_stored_function, plan_query_with_functions,
};
pub use tables::{TableMap, TableResolver};

/// The value of a constant integer expression (for function arguments that must be constant).
pub(crate) fn eval_i64_pub(t: &TExpr, what: &str, span: Span) -> Result<i64, KqlError> {
    consts::eval_i64(t, what, span)
}

/// The value of a constant expression.
pub(crate) fn eval_pub(
    t: &TExpr,
    what: &str,
    span: Span,
) -> Result<datafusion::common::ScalarValue, KqlError> {
    consts::eval(t, what, span)
}

/// The value of a constant number.
pub(crate) fn eval_f64_pub(t: &TExpr, what: &str, span: Span) -> Result<f64, KqlError> {
    let v = consts::eval(t, what, span)?;
    match v.cast_to(&arrow::datatypes::DataType::Float64) {
        Ok(datafusion::common::ScalarValue::Float64(Some(x))) => Ok(x),
        _ => Err(KqlError::semantic(format!("{what} must be a number"), span)),
    }
}

/// The window functions' names (`row_number`, `prev`, ...).
pub(crate) fn window_function_names() -> impl Iterator<Item = &'static str> {
    window::WINDOW_FUNCTIONS.iter().copied()
}

/// A planned query.
#[derive(Debug, Clone)]
pub struct KqlPlan {
    /// The DataFusion plan (not yet optimized).
    pub plan: LogicalPlan,
    /// The result's columns and their Kusto types.
    pub schema: KustoSchema,
    /// The visualization asked for by `render`, if any (it changes no rows).
    pub render: Option<String>,
}

/// Plans the KQL `text` over the tables of `tables`.
///
/// # Errors
/// [`KqlError`] with the line, column and a caret for syntax and semantic errors.
pub fn plan_query(
    text: &str,
    tables: &dyn TableResolver,
    options: &PlanOptions,
) -> Result<KqlPlan, KqlError> {
    let query = crate::parser::parse(text)?;
    plan_parsed(&query, tables, options).map_err(|e| e.locate(text))
}

/// Plans an already parsed query.
///
/// # Errors
/// As [`plan_query`], without line and column (call [`KqlError::locate`] with the text).
pub fn plan_parsed(
    query: &Query,
    tables: &dyn TableResolver,
    options: &PlanOptions,
) -> Result<KqlPlan, KqlError> {
    let mut planner = Planner {
        tables,
        now_ticks: options.now_ticks,
        time_range: options.time_range,
        render: None,
        counter: 0,
        constants: HashMap::new(),
        options: HashMap::new(),
        window_partition: Vec::new(),
    };
    let mut env = Env::default();
    let rel = planner.statements(&query.statements, &mut env)?;
    Ok(KqlPlan {
        plan: rel.plan,
        schema: rel.cols,
        render: planner.render,
    })
}

/// What a name bound by `let` (or a function parameter, or `as`) stands for.
#[derive(Debug, Clone)]
pub(crate) enum Binding {
    /// A scalar value.
    Scalar(TExpr),
    /// A table.
    Tabular(Rel),
    /// A user-defined function, with the scope it was defined in.
    Function(Rc<Lambda>, Env),
    /// A pattern (`declare pattern`), with the scope it was declared in.
    Pattern(Rc<crate::ast::Pattern>, Env),
}

/// The names in scope.
#[derive(Debug, Clone, Default)]
pub(crate) struct Env {
    vars: Rc<HashMap<String, Binding>>,
}

impl Env {
    pub(crate) fn get(&self, name: &str) -> Option<&Binding> {
        self.vars.get(name)
    }

    pub(crate) fn bind(&mut self, name: &str, b: Binding) {
        Rc::make_mut(&mut self.vars).insert(name.to_owned(), b);
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    /// The names bound to views (`let V = view () { ... }`), sorted.
    pub(crate) fn views(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .vars
            .iter()
            .filter(|(_, b)| matches!(b, Binding::Function(l, _) if l.view && l.params.is_empty()))
            .map(|(n, _)| n.clone())
            .collect();
        v.sort();
        v
    }
}

pub(crate) struct Planner<'a> {
    tables: &'a dyn TableResolver,
    pub(crate) now_ticks: i64,
    time_range: Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)>,
    render: Option<String>,
    counter: usize,
    /// The rows of tables built from constants (datatable, range, print), by scan name: what
    /// plugins whose output columns depend on the data (`bag_unpack`) read at plan time.
    pub(crate) constants: HashMap<String, arrow::record_batch::RecordBatch>,
    /// The values of `set` options the planner reads (`query_bin_auto_size`, ...).
    pub(crate) options: HashMap<String, Expr>,
    /// While planning a subquery that runs on each partition of the rows at once (`mv-apply`,
    /// `partition`): the column that tells the partitions apart, which window functions
    /// partition by.
    pub(crate) window_partition: Vec<datafusion::logical_expr::Expr>,
}

impl Planner<'_> {
    /// A fresh internal name.
    pub(crate) fn fresh(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("__kql_{what}_{}", self.counter)
    }

    /// `let`s then the query's tabular expression (the first, when there are several).
    fn statements(&mut self, stmts: &[Statement], env: &mut Env) -> Result<Rel, KqlError> {
        let mut result = None;
        for s in stmts {
            match s {
                Statement::Let { name, value } => {
                    let b = self.let_binding(value, env)?;
                    env.bind(&name.name, b);
                }
                Statement::Expr(e) => {
                    let rel = self.tabular(e, env)?;
                    if result.is_none() {
                        result = Some(rel);
                    }
                }
                Statement::Ignored(_) => {}
                Statement::Set(name, value) => {
                    self.options.insert(name.name.clone(), value.clone());
                }
            }
        }
        result.ok_or_else(|| KqlError::semantic("the query returns no table", Span::default()))
    }

    fn let_binding(&mut self, value: &LetValue, env: &Env) -> Result<Binding, KqlError> {
        match value {
            LetValue::Function(l) => Ok(Binding::Function(Rc::new(l.clone()), env.clone())),
            LetValue::Pattern(p) => Ok(Binding::Pattern(Rc::new(p.clone()), env.clone())),
            LetValue::Expr(e) => {
                if self.is_tabular(e, env) {
                    Ok(Binding::Tabular(self.tabular(e, env)?))
                } else {
                    let t = self.scalar(e, &scalar::Scope::empty(env))?;
                    Ok(Binding::Scalar(t))
                }
            }
        }
    }

    /// Whether `e` is a tabular expression in `env`.
    pub(crate) fn is_tabular(&self, e: &Expr, env: &Env) -> bool {
        match &e.kind {
            ExprKind::Pipe { .. }
            | ExprKind::Datatable { .. }
            | ExprKind::Print(_)
            | ExprKind::Range { .. }
            | ExprKind::Union(_)
            | ExprKind::Search(_)
            | ExprKind::Evaluate(_) => true,
            ExprKind::Name(n) => match env.get(n) {
                Some(Binding::Tabular(_)) => true,
                Some(Binding::Scalar(_)) => false,
                Some(Binding::Function(l, _)) => {
                    l.params.is_empty() && self.body_is_tabular(l, env)
                }
                Some(Binding::Pattern(..)) => false,
                None => self.tables.table(n).is_some() || n.contains('*'),
            },
            ExprKind::Call { name, .. } => match name.name.as_str() {
                "materialize" | "table" | "view" | "materialized_view" | "external_table" => true,
                n => match env.get(n) {
                    Some(Binding::Function(l, _)) => self.body_is_tabular(l, env),
                    Some(Binding::Pattern(..)) => true,
                    _ => false,
                },
            },
            ExprKind::Member(base, _) => {
                workspace_call(base).is_some()
                    || matches!(
                        &base.kind,
                        ExprKind::Call { name, .. } if matches!(env.get(&name.name), Some(Binding::Pattern(..)))
                    )
            }
            _ => false,
        }
    }

    fn body_is_tabular(&self, l: &Lambda, env: &Env) -> bool {
        let mut inner = env.clone();
        for p in &l.params {
            if let ParamType::Tabular(_) = p.ty {
                // A placeholder: the name is tabular inside the body.
                inner.bind(
                    &p.name.name,
                    Binding::Tabular(Rel {
                        plan: LogicalPlanBuilder::empty(false)
                            .build()
                            .unwrap_or_else(|_| LogicalPlan::default()),
                        cols: Vec::new(),
                        ordered: false,
                        keys: Vec::new(),
                    }),
                );
            }
        }
        for s in &l.body {
            match s {
                Statement::Let {
                    name,
                    value: LetValue::Expr(e),
                } if self.is_tabular(e, &inner) => {
                    inner.bind(
                        &name.name,
                        Binding::Tabular(Rel {
                            plan: LogicalPlan::default(),
                            cols: Vec::new(),
                            ordered: false,
                            keys: Vec::new(),
                        }),
                    );
                }
                Statement::Expr(e) => return self.is_tabular(e, &inner),
                _ => {}
            }
        }
        false
    }

    /// Plans a tabular expression (on its own: a window partition of an enclosing subquery run
    /// per partition does not reach into it).
    pub(crate) fn tabular(&mut self, e: &Expr, env: &Env) -> Result<Rel, KqlError> {
        let outer = std::mem::take(&mut self.window_partition);
        let rel = self.tabular_here(e, env);
        self.window_partition = outer;
        rel
    }

    fn tabular_here(&mut self, e: &Expr, env: &Env) -> Result<Rel, KqlError> {
        match &e.kind {
            ExprKind::Pipe { source, ops } => {
                let mut rel = self.tabular(source, env)?;
                let mut env = env.clone();
                for op in ops {
                    rel = self.operator(rel, op, &mut env)?;
                }
                Ok(rel)
            }
            ExprKind::Name(n) => self.named_table(n, e.span, env),
            ExprKind::Call { name, args }
                if matches!(env.get(&name.name), Some(Binding::Pattern(..))) =>
            {
                self.pattern_call(&name.name, args, None, e.span, env)
            }
            ExprKind::Member(base, table) if workspace_call(base).is_some() => {
                self.workspace_table(base, &table.name, e.span, env)
            }
            ExprKind::Member(base, path) if matches!(&base.kind, ExprKind::Call { name, .. } if matches!(env.get(&name.name), Some(Binding::Pattern(..)))) =>
            {
                let ExprKind::Call { name, args } = &base.kind else {
                    return Err(KqlError::semantic("expected a pattern", e.span));
                };
                self.pattern_call(&name.name, args, Some(&path.name), e.span, env)
            }
            ExprKind::Call { name, args } => self.tabular_call(&name.name, args, e.span, env),
            ExprKind::Datatable { columns, values } => self.datatable(columns, values, e.span, env),
            ExprKind::Print(cols) => self.print(cols, env),
            ExprKind::Range {
                column,
                from,
                to,
                step,
            } => self.range(column, from, to, step, env),
            ExprKind::Union(u) => self.union(None, u, env),
            ExprKind::Search(s) => self.search(None, s, env),
            ExprKind::Evaluate(ev) => self.evaluate(None, ev, e.span, env),
            _ => Err(KqlError::semantic(
                "expected a tabular expression (a table, a let-bound table, datatable, print, range or a pipeline)",
                e.span,
            )),
        }
    }

    fn named_table(&mut self, name: &str, span: Span, env: &Env) -> Result<Rel, KqlError> {
        match env.get(name) {
            Some(Binding::Tabular(rel)) => return Ok(rel.clone()),
            Some(Binding::Function(l, fenv)) if l.params.is_empty() => {
                let (l, fenv) = (Rc::clone(l), fenv.clone());
                return self.invoke_tabular(&l, &fenv, &[], span, env);
            }
            Some(Binding::Scalar(_)) => {
                return Err(KqlError::semantic(
                    format!("'{name}' is a scalar, not a table"),
                    span,
                ));
            }
            _ => {}
        }
        if name.contains('*') {
            let u = crate::ast::Union {
                inner: false,
                fuzzy: false,
                with_source: None,
                tables: vec![Expr {
                    kind: ExprKind::Name(name.to_owned()),
                    span,
                }],
                span,
            };
            return self.union(None, &u, env);
        }
        self.table(name, span, env)
    }

    /// `workspace("w").name`: table `name` of workspace `w`, as the resolver has it.
    fn workspace_table(
        &mut self,
        call: &Expr,
        name: &str,
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let Some(arg) = workspace_call(call) else {
            return Err(KqlError::semantic("expected workspace(\"name\")", span));
        };
        let t = self.scalar(arg, &scalar::Scope::empty(env))?;
        let Some(workspace) = t.literal_str().map(str::to_owned) else {
            return Err(KqlError::semantic(
                "workspace() needs a constant workspace name",
                arg.span,
            ));
        };
        let Some(source) = self.tables.workspace_table(&workspace, name) else {
            return Err(KqlError::semantic(
                format!(
                    "workspace('{workspace}') has no table '{name}' that this query can read \
                     (the workspace must exist, the caller must be allowed to query it, and the \
                     table must hold rows or have a declared schema)"
                ),
                span,
            ));
        };
        self.scan_source(
            datafusion::common::TableReference::partial(workspace.as_str(), name),
            source,
        )
    }

    /// Table `name` from the resolver.
    pub(crate) fn table(&mut self, name: &str, span: Span, env: &Env) -> Result<Rel, KqlError> {
        let Some(source) = self.tables.table(name) else {
            let names = self.tables.table_names();
            let mut candidates: Vec<&str> = names.iter().map(String::as_str).collect();
            candidates.extend(env.names());
            return Err(KqlError::semantic(
                format!(
                    "unknown table or name '{name}'{}",
                    did_you_mean(name, candidates)
                ),
                span,
            ));
        };
        self.scan_source(datafusion::common::TableReference::from(name), source)
    }

    /// A scan of `source` under the name `name`, its columns those KQL has types for, the
    /// query's time range applied.
    fn scan_source(
        &mut self,
        name: datafusion::common::TableReference,
        source: Arc<dyn TableSource>,
    ) -> Result<Rel, KqlError> {
        let schema = source.schema();
        let mut keep = Vec::new();
        let mut types = Vec::new();
        for (i, f) in schema.fields().iter().enumerate() {
            if let Some(t) = KustoType::of_field(f) {
                keep.push(i);
                types.push(t);
            }
        }
        let projection = (keep.len() != schema.fields().len()).then_some(keep);
        let mut builder = LogicalPlanBuilder::scan(name.clone(), source, projection)?;
        if let Some((start, end)) = self.time_range
            && let Ok(field) = schema.field_with_name("TimeGenerated")
            && let (Some(from), Some(to)) = (
                timestamp_literal(field.data_type(), start),
                timestamp_literal(field.data_type(), end),
            )
        {
            let time = datafusion::logical_expr::col(datafusion::common::Column::new(
                Some(name),
                "TimeGenerated",
            ));
            builder = builder.filter(time.clone().gt_eq(from).and(time.lt(to)))?;
        }
        Ok(Rel::new(builder.build()?, types))
    }

    fn tabular_call(
        &mut self,
        name: &str,
        args: &[crate::ast::Arg],
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        match name {
            "materialize" | "view" => match args {
                [a] => self.tabular(&a.value, env),
                _ => Err(KqlError::semantic(
                    format!("{name}() takes one tabular argument"),
                    span,
                )),
            },
            "table" | "materialized_view" | "external_table" => {
                let Some(a) = args.first() else {
                    return Err(KqlError::semantic("table() needs a table name", span));
                };
                let t = self.scalar(&a.value, &scalar::Scope::empty(env))?;
                let Some(n) = t.literal_str().map(str::to_owned) else {
                    return Err(KqlError::semantic(
                        "table() needs a constant table name",
                        a.value.span,
                    ));
                };
                self.named_table(&n, span, env)
            }
            _ => match env.get(name) {
                Some(Binding::Function(l, fenv)) => {
                    let (l, fenv) = (Rc::clone(l), fenv.clone());
                    self.invoke_tabular(&l, &fenv, args, span, env)
                }
                _ => Err(KqlError::semantic(
                    format!(
                        "'{name}' is not a tabular function{}",
                        did_you_mean(name, env.names())
                    ),
                    span,
                )),
            },
        }
    }

    /// Binds a function's parameters to `args` (planned in `caller`), in the function's scope.
    pub(crate) fn bind_args(
        &mut self,
        l: &Lambda,
        fenv: &Env,
        args: &[crate::ast::Arg],
        span: Span,
        caller: &scalar::Scope<'_>,
    ) -> Result<Env, KqlError> {
        if args.len() > l.params.len() {
            return Err(KqlError::semantic(
                format!(
                    "the function takes {} arguments, {} given",
                    l.params.len(),
                    args.len()
                ),
                span,
            ));
        }
        let mut env = fenv.clone();
        for (i, p) in l.params.iter().enumerate() {
            let arg = args
                .iter()
                .find(|a| a.name.as_ref().is_some_and(|n| n.name == p.name.name))
                .or_else(|| args.get(i).filter(|a| a.name.is_none()));
            let b = match (&p.ty, arg) {
                (ParamType::Tabular(_), Some(a)) => {
                    Binding::Tabular(self.tabular(&a.value, caller.env)?)
                }
                (ParamType::Scalar(t), Some(a)) => {
                    let v = self.scalar(&a.value, caller)?;
                    Binding::Scalar(operators::convert(v, *t))
                }
                (ParamType::Scalar(t), None) => match &p.default {
                    Some(d) => {
                        let v = self.scalar(d, &scalar::Scope::empty(fenv))?;
                        Binding::Scalar(operators::convert(v, *t))
                    }
                    None => {
                        return Err(KqlError::semantic(
                            format!("missing argument '{}'", p.name.name),
                            span,
                        ));
                    }
                },
                (ParamType::Tabular(_), None) => {
                    return Err(KqlError::semantic(
                        format!("missing tabular argument '{}'", p.name.name),
                        span,
                    ));
                }
            };
            env.bind(&p.name.name, b);
        }
        Ok(env)
    }

    fn invoke_tabular(
        &mut self,
        l: &Lambda,
        fenv: &Env,
        args: &[crate::ast::Arg],
        span: Span,
        caller: &Env,
    ) -> Result<Rel, KqlError> {
        let scope = scalar::Scope::empty(caller);
        let mut env = self.bind_args(l, fenv, args, span, &scope)?;
        self.statements(&l.body, &mut env)
    }

    /// Plans statements (a function body).
    pub(crate) fn statements_pub(
        &mut self,
        stmts: &[Statement],
        env: &mut Env,
    ) -> Result<Rel, KqlError> {
        self.statements(stmts, env)
    }

    /// Applies one operator.
    fn operator(&mut self, rel: Rel, op: &Operator, env: &mut Env) -> Result<Rel, KqlError> {
        ops::apply(self, rel, op, env)
    }

    pub(crate) fn set_render(&mut self, chart: &str) {
        self.render = Some(chart.to_owned());
    }
}

/// The argument of `workspace(x)` when `e` is that call.
fn workspace_call(e: &Expr) -> Option<&Expr> {
    match &e.kind {
        ExprKind::Call { name, args } if name.name == "workspace" && args.len() == 1 => {
            args.first().map(|a| &a.value)
        }
        _ => None,
    }
}
