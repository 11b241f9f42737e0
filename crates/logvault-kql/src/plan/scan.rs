//! `scan`: a state machine over the serialized rows (Kusto's matching logic: each row is
//! checked against the steps from the last to the first; a step matches when the previous
//! step has an active sequence and the row meets its condition (the sequence moves on), or
//! when the step itself has an active sequence, or is the first step, and the row meets it).
//!
//! Planned as: the rows numbered in their order and collected into one list (one per
//! partition inside `partition`), a scalar function that runs the steps over the list (conditions and assignments are evaluated by
//! a small interpreter over [`Val`]s: literals, columns, `Step.column`, arithmetic,
//! comparisons, `and`/`or`, `iff`, `isnull`, `isempty`, `strcat` ...), and the output rows
//! expanded back into typed columns.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::Value;

use super::rel::{Rel, TExpr};
use super::{Binding, Env, Planner};
use crate::ast::{BinOp, Expr, ExprKind, Literal, Scan, ScanOutput, UnaryOp};
use crate::error::{KqlError, Span};
use crate::types::KustoType;
use crate::udf::value::{Val, build_column, read_column};

/// A scan compiled for running: the columns of a row (input then declared), the steps.
#[derive(Debug, PartialEq)]
struct Program {
    cols: Vec<(String, KustoType)>,
    inputs: usize,
    defaults: Vec<Val>,
    steps: Vec<Step>,
    text: String,
}

#[derive(Debug, PartialEq)]
struct Step {
    name: String,
    output: ScanOutput,
    condition: Expr,
    assigns: Vec<(usize, Expr)>,
}

/// The state of a step: the rows of the steps up to it, and the match number.
#[derive(Clone)]
struct State {
    rows: Vec<Vec<Val>>,
    id: i64,
}

struct Ctx<'a> {
    p: &'a Program,
    row: &'a [Val],
    state: Option<&'a State>,
}

impl Ctx<'_> {
    fn column(&self, name: &str) -> Option<Val> {
        let i = self.p.cols.iter().position(|(n, _)| n == name)?;
        Some(self.row.get(i).cloned().unwrap_or(Val::Null))
    }

    fn step_column(&self, step: &str, col: &str) -> Option<Val> {
        let k = self.p.steps.iter().position(|s| s.name == step)?;
        let i = self.p.cols.iter().position(|(n, _)| n == col)?;
        let v = match self.state.and_then(|s| s.rows.get(k)) {
            Some(r) => r.get(i).cloned().unwrap_or(Val::Null),
            None if i >= self.p.inputs => self.p.defaults[i - self.p.inputs].clone(),
            None => Val::Null,
        };
        Some(v)
    }
}

fn literal(l: &Literal) -> Val {
    match l {
        Literal::Null(_) => Val::Null,
        Literal::Bool(b) => Val::Bool(*b),
        Literal::Int(v) => Val::Int(*v),
        Literal::Long(v) => Val::Long(*v),
        Literal::Real(v) => Val::Real(*v),
        Literal::Decimal(t) => t.parse().map_or(Val::Null, Val::Decimal),
        Literal::String(s) => Val::Str(s.clone()),
        Literal::DateTime(t) => Val::DateTime(*t),
        Literal::Timespan(t) => Val::Timespan(*t),
        Literal::Guid(g) => Val::Guid(g.clone()),
        Literal::Dynamic(v) => Val::Dynamic(v.clone()),
    }
}

fn unsupported(e: &Expr) -> KqlError {
    KqlError::unsupported("this expression inside scan", e.span)
}

fn truthy(v: &Val) -> bool {
    v.as_bool().unwrap_or(false)
}

fn is_int(v: &Val) -> bool {
    matches!(v, Val::Int(_) | Val::Long(_))
}

fn arith(op: BinOp, a: &Val, b: &Val) -> Val {
    use Val::{DateTime as D, Timespan as T};
    if a.is_null() || b.is_null() {
        return Val::Null;
    }
    match (op, a, b) {
        (BinOp::Sub, D(x), D(y)) => return T(x - y),
        (BinOp::Add, D(x), T(y)) | (BinOp::Add, T(y), D(x)) => return D(x + y),
        (BinOp::Sub, D(x), T(y)) => return D(x - y),
        (BinOp::Add, T(x), T(y)) => return T(x + y),
        (BinOp::Sub, T(x), T(y)) => return T(x - y),
        (BinOp::Div, T(x), T(y)) if *y != 0 => return Val::Real(*x as f64 / *y as f64),
        (BinOp::Mul, T(x), n) | (BinOp::Mul, n, T(x)) => {
            return n.as_f64().map_or(Val::Null, |f| T((*x as f64 * f) as i64));
        }
        _ => {}
    }
    if is_int(a) && is_int(b) {
        let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) else {
            return Val::Null;
        };
        return match op {
            BinOp::Add => Val::Long(x.wrapping_add(y)),
            BinOp::Sub => Val::Long(x.wrapping_sub(y)),
            BinOp::Mul => Val::Long(x.wrapping_mul(y)),
            BinOp::Div if y != 0 => Val::Long(x / y),
            BinOp::Mod if y != 0 => Val::Long(x % y),
            _ => Val::Null,
        };
    }
    let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
        return Val::Null;
    };
    Val::Real(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        _ => x % y,
    })
}

fn compare(a: &Val, b: &Val) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Val::Str(_) | Val::Guid(_), _) | (_, Val::Str(_) | Val::Guid(_)) => {
            Some(a.to_text().cmp(&b.to_text()))
        }
        (Val::DateTime(x), Val::DateTime(y)) | (Val::Timespan(x), Val::Timespan(y)) => {
            Some(x.cmp(y))
        }
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn eval(e: &Expr, c: &Ctx<'_>) -> Result<Val, KqlError> {
    Ok(match &e.kind {
        ExprKind::Literal(l) => literal(l),
        ExprKind::Name(n) => c
            .column(n)
            .ok_or_else(|| KqlError::semantic(format!("scan: unknown column '{n}'"), e.span))?,
        ExprKind::Member(base, col) => match &base.kind {
            ExprKind::Name(step) => c.step_column(step, &col.name).ok_or_else(|| {
                KqlError::semantic(
                    format!("scan: unknown step column '{step}.{}'", col.name),
                    e.span,
                )
            })?,
            _ => return Err(unsupported(e)),
        },
        ExprKind::Unary(op, x) => {
            let v = eval(x, c)?;
            match (op, &v) {
                (UnaryOp::Plus, _) => v,
                (UnaryOp::Neg, Val::Timespan(t)) => Val::Timespan(-t),
                (UnaryOp::Neg, _) if is_int(&v) => v.as_i64().map_or(Val::Null, |x| Val::Long(-x)),
                (UnaryOp::Neg, _) => v.as_f64().map_or(Val::Null, |x| Val::Real(-x)),
            }
        }
        ExprKind::Binary(op, l, r) => {
            let a = eval(l, c)?;
            match op {
                BinOp::And if a.as_bool() == Some(false) => return Ok(Val::Bool(false)),
                BinOp::Or if a.as_bool() == Some(true) => return Ok(Val::Bool(true)),
                _ => {}
            }
            let b = eval(r, c)?;
            match op {
                BinOp::And | BinOp::Or => match b.as_bool() {
                    Some(x) if a.is_null() => {
                        if (*op == BinOp::And) != x {
                            Val::Bool(x)
                        } else {
                            Val::Null
                        }
                    }
                    Some(x) => Val::Bool(x),
                    None => Val::Null,
                },
                BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
                    arith(*op, &a, &b)
                }
                BinOp::Eq | BinOp::NotEq => {
                    let eq = match (a.is_null(), b.is_null()) {
                        (true, true) => return Ok(Val::Null),
                        (true, false) | (false, true) => false,
                        _ => compare(&a, &b) == Some(std::cmp::Ordering::Equal),
                    };
                    Val::Bool(eq == (*op == BinOp::Eq))
                }
                BinOp::EqCi | BinOp::NotEqCi => {
                    let eq = a.to_text().to_lowercase() == b.to_text().to_lowercase();
                    Val::Bool(eq == (*op == BinOp::EqCi))
                }
                BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq => {
                    if a.is_null() || b.is_null() {
                        return Ok(Val::Null);
                    }
                    let Some(o) = compare(&a, &b) else {
                        return Ok(Val::Null);
                    };
                    Val::Bool(match op {
                        BinOp::Lt => o.is_lt(),
                        BinOp::LtEq => o.is_le(),
                        BinOp::Gt => o.is_gt(),
                        _ => o.is_ge(),
                    })
                }
                BinOp::Str(_) => return Err(unsupported(e)),
            }
        }
        ExprKind::Call { name, args } => {
            let vals = args
                .iter()
                .map(|a| eval(&a.value, c))
                .collect::<Result<Vec<_>, _>>()?;
            let arg = |i: usize| vals.get(i).cloned().unwrap_or(Val::Null);
            match name.name.as_str() {
                "iff" | "iif" => {
                    if truthy(&arg(0)) {
                        arg(1)
                    } else {
                        arg(2)
                    }
                }
                "isnull" => Val::Bool(arg(0).is_null()),
                "isnotnull" => Val::Bool(!arg(0).is_null()),
                "isempty" => Val::Bool(arg(0).is_null() || arg(0).to_text().is_empty()),
                "isnotempty" => Val::Bool(!(arg(0).is_null() || arg(0).to_text().is_empty())),
                "not" => arg(0).as_bool().map_or(Val::Null, |b| Val::Bool(!b)),
                "strcat" => Val::Str(vals.iter().map(Val::to_text).collect()),
                "tostring" => Val::Str(arg(0).to_text()),
                "coalesce" => vals.into_iter().find(|v| !v.is_null()).unwrap_or(Val::Null),
                _ => return Err(unsupported(e)),
            }
        }
        _ => return Err(unsupported(e)),
    })
}

/// A JSON value of a collected row as the column's type.
fn typed(v: &Value, ty: KustoType) -> Val {
    if v.is_null() {
        return Val::Null;
    }
    let d = Val::Dynamic(v.clone());
    let conv = match ty {
        KustoType::Long | KustoType::Int => d.as_i64().map(Val::Long),
        KustoType::Real | KustoType::Decimal => d.as_f64().map(Val::Real),
        KustoType::Bool => d.as_bool().map(Val::Bool),
        KustoType::DateTime => d.as_datetime().map(Val::DateTime),
        KustoType::Timespan => d.as_timespan().map(Val::Timespan),
        KustoType::String | KustoType::Guid => Some(Val::Str(d.to_text())),
        KustoType::Dynamic => Some(d),
    };
    conv.unwrap_or(Val::Null)
}

impl Program {
    /// Runs the steps over the rows (each a JSON array: row number, then the input columns).
    fn run(&self, rows: &Value) -> Result<Value, KqlError> {
        let Value::Array(items) = rows else {
            return Ok(Value::Array(Vec::new()));
        };
        let mut items: Vec<&Vec<Value>> = items.iter().filter_map(Value::as_array).collect();
        items.sort_by_key(|r| r.first().and_then(Value::as_i64).unwrap_or(0));
        let n = self.steps.len();
        let mut states: Vec<Option<State>> = vec![None; n];
        let mut next_id = 0i64;
        let mut out = Vec::new();
        for item in items {
            let mut base: Vec<Val> = (0..self.inputs)
                .map(|i| typed(item.get(i + 1).unwrap_or(&Value::Null), self.cols[i].1))
                .collect();
            base.extend(self.defaults.iter().cloned());
            for k in (0..n).rev() {
                let step = &self.steps[k];
                // Check 1: the previous step's sequence moves on to this step.
                if k > 0
                    && let Some(prev) = states[k - 1].clone()
                {
                    let ctx = Ctx {
                        p: self,
                        row: &base,
                        state: Some(&prev),
                    };
                    if truthy(&eval(&step.condition, &ctx)?) {
                        let r = self.extend(step, &base, Some(&prev))?;
                        let mut st = prev;
                        st.rows.truncate(k);
                        st.rows.push(r.clone());
                        if step.output != ScanOutput::None {
                            out.push(self.output(&r, st.id));
                        }
                        states[k] = Some(st);
                        states[k - 1] = None;
                        continue;
                    }
                }
                // Check 2: the step's own sequence, or a new one at the first step.
                if states[k].is_some() || k == 0 {
                    let ctx = Ctx {
                        p: self,
                        row: &base,
                        state: states[k].as_ref(),
                    };
                    if truthy(&eval(&step.condition, &ctx)?) {
                        let r = self.extend(step, &base, states[k].as_ref())?;
                        let st = match states[k].take() {
                            Some(mut st) => {
                                st.rows.truncate(k);
                                st.rows.push(r.clone());
                                st
                            }
                            None => {
                                next_id += 1;
                                State {
                                    rows: vec![r.clone()],
                                    id: next_id - 1,
                                }
                            }
                        };
                        if step.output == ScanOutput::All {
                            out.push(self.output(&r, st.id));
                        }
                        states[k] = Some(st);
                    }
                }
            }
        }
        Ok(Value::Array(out))
    }

    fn extend(
        &self,
        step: &Step,
        base: &[Val],
        state: Option<&State>,
    ) -> Result<Vec<Val>, KqlError> {
        let mut r = base.to_vec();
        let ctx = Ctx {
            p: self,
            row: base,
            state,
        };
        let mut values = Vec::with_capacity(step.assigns.len());
        for (i, e) in &step.assigns {
            values.push((*i, eval(e, &ctx)?));
        }
        for (i, v) in values {
            r[i] = v;
        }
        Ok(r)
    }

    fn output(&self, r: &[Val], id: i64) -> Value {
        let mut a: Vec<Value> = r.iter().map(Val::to_json).collect();
        a.push(Value::from(id));
        Value::Array(a)
    }
}

/// The scalar function running a [`Program`] over a collected list of rows.
#[derive(Debug)]
struct ScanUdf {
    program: Arc<Program>,
    signature: Signature,
}

impl PartialEq for ScanUdf {
    fn eq(&self, o: &Self) -> bool {
        self.program == o.program
    }
}

impl Eq for ScanUdf {}

impl Hash for ScanUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.program.text.hash(state);
    }
}

impl ScalarUDFImpl for ScanUdf {
    fn name(&self) -> &str {
        "kql_scan"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(KustoType::Dynamic.arrow())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let Some(arg) = args.args.first() else {
            return Ok(ColumnarValue::Array(build_column(&[], KustoType::Dynamic)));
        };
        let array = arg.to_array(rows)?;
        let mut out = Vec::with_capacity(rows);
        for v in read_column(&array, KustoType::Dynamic)? {
            let result = self
                .program
                .run(&v.as_dynamic())
                .map_err(|e| datafusion::error::DataFusionError::Execution(e.to_string()))?;
            out.push(Val::Dynamic(result));
        }
        Ok(ColumnarValue::Array(build_column(&out, KustoType::Dynamic)))
    }
}

fn quoted(name: &str) -> String {
    format!("['{}']", name.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl Planner<'_> {
    pub(crate) fn scan(
        &mut self,
        rel: Rel,
        s: &Scan,
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        self.scan_by(rel, s, None, span, env)
    }

    /// `scan` over the rows, or over each partition of the column `by` separately (inside
    /// `partition`): the rows are collected per value and each list runs on its own.
    pub(crate) fn scan_by(
        &mut self,
        rel: Rel,
        s: &Scan,
        by: Option<&str>,
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let mut cols: Vec<(String, KustoType)> =
            rel.cols.iter().map(|c| (c.name.clone(), c.ty)).collect();
        let inputs = cols.len();
        let mut defaults = Vec::new();
        let empty = Program {
            cols: Vec::new(),
            inputs: 0,
            defaults: Vec::new(),
            steps: Vec::new(),
            text: String::new(),
        };
        for (name, ty, default) in &s.declare {
            if cols.iter().any(|(n, _)| *n == name.name) {
                return Err(KqlError::semantic(
                    format!(
                        "scan: the declared column '{}' is already a column",
                        name.name
                    ),
                    name.span,
                ));
            }
            cols.push((name.name.clone(), *ty));
            let v = match default {
                Some(e) => eval(
                    e,
                    &Ctx {
                        p: &empty,
                        row: &[],
                        state: None,
                    },
                )?,
                None => Val::Null,
            };
            defaults.push(v);
        }
        let mut steps = Vec::new();
        for st in &s.steps {
            let mut assigns = Vec::new();
            for (col, e) in &st.assigns {
                let i = cols[inputs..]
                    .iter()
                    .position(|(n, _)| *n == col.name)
                    .ok_or_else(|| {
                        KqlError::semantic(
                            format!("scan: '{}' is not a declared column", col.name),
                            col.span,
                        )
                    })?;
                assigns.push((inputs + i, e.clone()));
            }
            if st.output == ScanOutput::Last {
                return Err(KqlError::unsupported(
                    "scan steps with output=last",
                    st.name.span,
                ));
            }
            steps.push(Step {
                name: st.name.name.clone(),
                output: st.output,
                condition: st.condition.clone(),
                assigns,
            });
        }
        let text = format!("{:?}", (&cols, &defaults, &steps));
        let program = Arc::new(Program {
            cols: cols.clone(),
            inputs,
            defaults,
            steps,
            text,
        });
        // The rows, numbered in their order, collected into one list.
        let packed: Vec<String> = rel.names().iter().map(|n| quoted(n)).collect();
        let collect = format!(
            "__kql_in | serialize __kql_rn = row_number() | summarize __kql_rows = make_list(pack_array(pack_array(__kql_rn{}))){}",
            packed.iter().map(|c| format!(", {c}")).collect::<String>(),
            by.map(|b| format!(" by {}", quoted(b))).unwrap_or_default()
        );
        let mut env1 = env.clone();
        env1.bind("__kql_in", Binding::Tabular(rel));
        let collected = self.plan_text("scan", &collect, &mut env1, span)?;
        let udf = ScalarUDF::from(ScanUdf {
            program,
            signature: Signature::any(1, Volatility::Immutable),
        });
        let call = datafusion::logical_expr::Expr::ScalarFunction(
            datafusion::logical_expr::expr::ScalarFunction::new_udf(
                Arc::new(udf),
                vec![collected.column(collected.require("__kql_rows", span)?)],
            ),
        );
        let ran = collected.project(vec![(
            "__kql_out".into(),
            TExpr::new(call, KustoType::Dynamic),
        )])?;
        // Back to typed columns.
        let mut items: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, (n, ty))| {
                let f = match ty {
                    KustoType::Long => "tolong",
                    KustoType::Int => "toint",
                    KustoType::Real => "toreal",
                    KustoType::Decimal => "todecimal",
                    KustoType::Bool => "tobool",
                    KustoType::DateTime => "todatetime",
                    KustoType::Timespan => "totimespan",
                    KustoType::Guid => "toguid",
                    KustoType::String => "tostring",
                    KustoType::Dynamic => "",
                };
                format!("{} = {f}(__kql_r[{i}])", quoted(n))
            })
            .collect();
        if let Some(id) = &s.match_id {
            items.push(format!(
                "{} = tolong(__kql_r[{}])",
                quoted(&id.name),
                cols.len()
            ));
        }
        let expand = format!(
            "__kql_ran | mv-expand __kql_r = __kql_out | project {}",
            items.join(", ")
        );
        let mut env2 = env.clone();
        env2.bind("__kql_ran", Binding::Tabular(ran));
        let mut out = self.plan_text("scan", &expand, &mut env2, span)?;
        out.ordered = true;
        Ok(out)
    }

    /// Plans KQL text written by the planner itself.
    pub(crate) fn plan_text(
        &mut self,
        what: &str,
        text: &str,
        env: &mut Env,
        span: Span,
    ) -> Result<Rel, KqlError> {
        let q = crate::parser::parse(text)
            .map_err(|e| KqlError::semantic(format!("{what}: {e}"), span))?;
        self.statements_pub(&q.statements, env)
            .map_err(|e| match e {
                KqlError::Semantic { message, .. } | KqlError::Syntax { message, .. } => {
                    KqlError::semantic(format!("{what}: {message}"), span)
                }
                other => other,
            })
    }
}
