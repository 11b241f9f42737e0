//! `evaluate` plugins (`bag_unpack` here; `pivot` and `narrow` in `reshape`, `schema_merge`
//! in `schema_merge`, those composed from KQL templates in `plugins`), `invoke`,
//! `make-series`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::consts;
use super::operators::{convert, dynamic_path};
use super::rel::{Rel, TExpr, unique_name};
use super::scalar::Scope;
use super::{Binding, Env, Planner};
use crate::ast::{Arg, Evaluate, Expr, ExprKind, MakeSeries};
use crate::error::{KqlError, Span};
use crate::types::KustoType;
use crate::udf::value::{Val, read_column};

impl Planner<'_> {
    pub(crate) fn evaluate(
        &mut self,
        input: Option<Rel>,
        ev: &Evaluate,
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        match (ev.plugin.name.as_str(), input) {
            ("bag_unpack", Some(rel)) => self.bag_unpack(rel, ev, span, env),
            ("pivot", Some(rel)) => self.pivot(rel, ev, span, env),
            ("narrow", Some(rel)) => self.narrow(rel, ev, span, env),
            ("schema_merge", Some(rel)) => self.schema_merge(rel, ev, span, env),
            (
                "rows_near" | "ipv4_lookup" | "ipv6_lookup" | "geo_polygon_lookup"
                | "geo_line_lookup" | "rolling_percentile" | "dcount_intersect",
                Some(rel),
            ) => self.composed_plugin(rel, ev, span, env),
            (name, _) => Err(KqlError::unsupported(
                format!("the plugin '{name}'"),
                ev.plugin.span,
            )),
        }
    }

    /// `bag_unpack(d [, prefix] [, columnsConflict=...] [, ignoredProperties=...])`: a column per
    /// property of the bags. The columns are the output schema given after `:`, or, for a table
    /// of constants, the properties found in it (sorted by name, typed by their values).
    fn bag_unpack(
        &mut self,
        rel: Rel,
        ev: &Evaluate,
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let sc = Scope::with_cols(rel.scope_cols(), env);
        let positional: Vec<&Arg> = ev.args.iter().filter(|a| a.name.is_none()).collect();
        let Some(bag_arg) = positional.first() else {
            return Err(KqlError::semantic(
                "bag_unpack needs a dynamic column",
                span,
            ));
        };
        let bag = self.scalar(&bag_arg.value, &sc)?;
        let mut prefix = match positional.get(1) {
            Some(p) => self
                .scalar(&p.value, &sc)?
                .literal_str()
                .unwrap_or("")
                .to_owned(),
            None => String::new(),
        };
        let mut conflict = "error".to_owned();
        let mut ignored: Vec<String> = Vec::new();
        for a in ev.args.iter().filter(|a| a.name.is_some()) {
            let name = a.name.as_ref().map(|n| n.name.as_str()).unwrap_or("");
            let t = self.scalar(&a.value, &sc)?;
            match name {
                "columnsConflict" => conflict = t.literal_str().unwrap_or("error").to_owned(),
                "ignoredProperties" => {
                    if let Some(Value::Array(items)) =
                        t.literal_str().and_then(|s| serde_json::from_str(s).ok())
                    {
                        ignored = items
                            .iter()
                            .filter_map(|i| i.as_str().map(str::to_owned))
                            .collect();
                    }
                }
                "OutputColumnPrefix" => {
                    if let Some(p) = prefix_from(&t) {
                        prefix = p.to_owned();
                    }
                }
                other => {
                    return Err(KqlError::semantic(
                        format!("bag_unpack has no parameter '{other}'"),
                        a.value.span,
                    ));
                }
            }
        }
        let bag_col = match &bag_arg.value.kind {
            ExprKind::Name(n) => Some(n.clone()),
            _ => None,
        };
        // The properties and their types.
        let mut props: BTreeMap<String, KustoType> = BTreeMap::new();
        if let Some(schema) = &ev.schema {
            for (n, t) in schema {
                if !rel.cols.iter().any(|c| c.name == n.name) {
                    props.insert(n.name.clone(), *t);
                }
            }
        } else if let Some(batches) = self.constant_rows_of(
            &rel.project(vec![("bag".into(), bag.clone())])?,
            "bag_unpack",
            span,
        )? {
            for batch in &batches {
                for v in read_column(batch.column(0), KustoType::Dynamic)? {
                    if let Val::Dynamic(Value::Object(m)) = v {
                        for (k, x) in m {
                            let t = json_type(&x);
                            props
                                .entry(k)
                                .and_modify(|old| *old = join_types(*old, t))
                                .or_insert(t);
                        }
                    }
                }
            }
        } else {
            return Err(KqlError::unsupported(
                "bag_unpack without an output schema over data (write `evaluate bag_unpack(d) : (*, Name:string, ...)`)",
                span,
            ));
        }
        for i in &ignored {
            props.remove(i);
        }
        let mut items: Vec<(String, TExpr)> = Vec::new();
        for (i, c) in rel.cols.iter().enumerate() {
            if Some(&c.name) == bag_col.as_ref() {
                continue;
            }
            items.push((c.name.clone(), rel.texpr(i)));
        }
        for (k, t) in props {
            let name = format!("{prefix}{k}");
            let value = convert(
                dynamic_path(bag.clone(), vec![TExpr::string(k.clone())], span)?,
                t,
            );
            match items.iter().position(|(n, _)| *n == name) {
                Some(pos) => match conflict.as_str() {
                    "replace_source" => items[pos].1 = value,
                    "keep_source" => {}
                    _ => {
                        return Err(KqlError::semantic(
                            format!(
                                "bag_unpack: the property '{k}' is also a column (use columnsConflict='replace_source' or 'keep_source')"
                            ),
                            span,
                        ));
                    }
                },
                None => {
                    let taken: Vec<String> = items.iter().map(|(n, _)| n.clone()).collect();
                    items.push((unique_name(&name, &taken), value));
                }
            }
        }
        if let Some(schema) = &ev.schema {
            let order: Vec<&str> = schema.iter().map(|(n, _)| n.name.as_str()).collect();
            if !ev.schema_star {
                items.retain(|(n, _)| order.contains(&n.as_str()));
            }
            // `*` (the input's other columns) first, then the schema's columns in its order.
            items.sort_by_key(|(n, _)| order.iter().position(|o| o == n).map_or(0, |p| p + 1));
        }
        rel.project(items)
    }

    pub(crate) fn invoke(&mut self, rel: Rel, call: &Expr, env: &Env) -> Result<Rel, KqlError> {
        let ExprKind::Call { name, args } = &call.kind else {
            return Err(KqlError::semantic(
                "invoke needs a function call",
                call.span,
            ));
        };
        let Some(Binding::Function(l, fenv)) = env.get(&name.name) else {
            return Err(KqlError::semantic(
                format!("'{}' is not a function defined by let", name.name),
                name.span,
            ));
        };
        let (l, fenv) = (l.clone(), fenv.clone());
        let Some(first) = l.params.first() else {
            return Err(KqlError::semantic(
                "the invoked function takes no table",
                call.span,
            ));
        };
        let mut inner = fenv.clone();
        inner.bind(&first.name.name, Binding::Tabular(rel));
        let rest = crate::ast::Lambda {
            params: l.params[1..].to_vec(),
            body: l.body.clone(),
            span: l.span,
            view: false,
        };
        let scope = Scope::empty(env);
        let mut bound = self.bind_args(&rest, &inner, args, call.span, &scope)?;
        self.statements_pub(&rest.body, &mut bound)
    }

    /// `make-series`: per group, one array per aggregation with a value for each bin of the
    /// axis from `from` (inclusive) to `to` (exclusive) by `step`, and the axis itself. Planned
    /// as a summarize by (keys, bin index), then a collection into arrays.
    pub(crate) fn make_series(
        &mut self,
        rel: Rel,
        ms: &MakeSeries,
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let sc = Scope::with_cols(rel.scope_cols(), env);
        let axis = self.scalar(&ms.on, &sc)?;
        let (Some(from), Some(to)) = (&ms.from, &ms.to) else {
            return Err(KqlError::unsupported(
                "make-series without 'from' and 'to' (give the axis range)",
                span,
            ));
        };
        let (from_t, to_t) = (self.scalar(from, &sc)?, self.scalar(to, &sc)?);
        let step_t = self.scalar(&ms.step, &sc)?;
        let as_num = |t: &TExpr, what: &str, s: Span| -> Result<f64, KqlError> {
            let v = consts::eval(t, what, s)?;
            let v = match v {
                datafusion::common::ScalarValue::TimestampNanosecond(Some(x), _)
                | datafusion::common::ScalarValue::DurationNanosecond(Some(x)) => x as f64,
                other => match other.cast_to(&arrow::datatypes::DataType::Float64) {
                    Ok(datafusion::common::ScalarValue::Float64(Some(x))) => x,
                    _ => return Err(KqlError::semantic(format!("{what} must be a constant"), s)),
                },
            };
            Ok(v)
        };
        let f = as_num(&from_t, "make-series 'from'", from.span)?;
        let t = as_num(&to_t, "make-series 'to'", to.span)?;
        let st = as_num(&step_t, "make-series 'step'", ms.step.span)?;
        if st <= 0.0 {
            return Err(KqlError::semantic(
                "the make-series step must be positive",
                ms.step.span,
            ));
        }
        let n = ((t - f) / st).ceil().max(0.0) as usize;
        if n > 1_000_000 {
            return Err(KqlError::semantic(
                "make-series would make more than a million bins",
                span,
            ));
        }
        // The bin index of each row: floor((axis - from) / step), rows outside dropped.
        let axis_num = match axis.ty {
            KustoType::DateTime | KustoType::Timespan => TExpr::new(
                datafusion::logical_expr::cast(
                    datafusion::logical_expr::cast(axis.expr.clone(), axis.ty.arrow()),
                    arrow::datatypes::DataType::Int64,
                ),
                KustoType::Long,
            ),
            _ => convert(axis.clone(), KustoType::Real),
        };
        let idx_expr = datafusion::logical_expr::cast(
            datafusion::functions::math::expr_fn::floor(
                (datafusion::logical_expr::cast(
                    axis_num.expr,
                    arrow::datatypes::DataType::Float64,
                ) - datafusion::logical_expr::lit(f))
                    / datafusion::logical_expr::lit(st),
            ),
            arrow::datatypes::DataType::Int64,
        );
        let idx_name = self.fresh("bin");
        let mut items = rel.scope_cols();
        items.push((idx_name.clone(), TExpr::new(idx_expr, KustoType::Long)));
        let with_idx = rel.project(items)?;
        let last = with_idx.cols.len() - 1;
        let in_range = with_idx
            .column(last)
            .gt_eq(datafusion::logical_expr::lit(0i64))
            .and(
                with_idx
                    .column(last)
                    .lt(datafusion::logical_expr::lit(n as i64)),
            );
        let filtered = with_idx.filter(in_range)?;
        // Summarize by keys and bin.
        let mut by = ms.by.clone();
        by.push(crate::ast::Assign {
            names: vec![crate::ast::Ident {
                name: idx_name.clone(),
                span,
            }],
            expr: Expr {
                kind: ExprKind::Name(idx_name.clone()),
                span,
            },
        });
        // A constant (`other = -1`) is the value of every bin that has rows.
        let aggs: Vec<crate::ast::Assign> = ms
            .aggs
            .iter()
            .map(|(a, _)| {
                let constant = match &a.expr.kind {
                    ExprKind::Literal(_) => true,
                    ExprKind::Unary(_, x) => matches!(x.kind, ExprKind::Literal(_)),
                    _ => false,
                };
                if !constant {
                    return a.clone();
                }
                let mut a = a.clone();
                let span = a.expr.span;
                a.expr = Expr {
                    kind: ExprKind::Call {
                        name: crate::ast::Ident {
                            name: "take_any".into(),
                            span,
                        },
                        args: vec![Arg {
                            name: None,
                            value: a.expr.clone(),
                        }],
                    },
                    span,
                };
                a
            })
            .collect();
        let binned = self.summarize(filtered, &aggs, &by, env)?;
        let keys = ms.by.len();
        let bin_col = keys;
        // Collect each aggregation into its series.
        let mut series_items: Vec<(String, TExpr)> = Vec::new();
        let mut outer_aggs = Vec::new();
        for (k, (_, default)) in ms.aggs.iter().enumerate() {
            let col = keys + 1 + k;
            let name = binned.cols[col].name.clone();
            let default_json = match default {
                Some(d) => {
                    let dt = self.scalar(d, &Scope::empty(env))?;
                    let v = consts::eval(
                        &convert(dt, KustoType::Dynamic),
                        "the make-series default",
                        d.span,
                    )?;
                    match v {
                        datafusion::common::ScalarValue::Utf8(Some(s)) => {
                            serde_json::from_str(&s).unwrap_or(Value::Null)
                        }
                        _ => Value::Null,
                    }
                }
                None => Value::from(0),
            };
            let pair = crate::udf::rowfn::RowUdf::call(
                "series_pair",
                vec![binned.column(bin_col), binned.column(col)],
                vec![KustoType::Long, binned.cols[col].ty],
                KustoType::Dynamic,
                false,
                |v| Val::Dynamic(Value::Array(v.iter().map(Val::to_json).collect())),
            );
            let agg = crate::udf::aggregate::call(
                crate::udf::aggregate::CollectKind::Series {
                    n,
                    default: default_json,
                },
                pair,
                KustoType::Dynamic,
                None,
                None,
            );
            let alias = self.fresh("series");
            outer_aggs.push(agg.alias(alias.clone()));
            series_items.push((
                name,
                TExpr::new(
                    datafusion::logical_expr::Expr::Column(
                        datafusion::common::Column::new_unqualified(alias),
                    ),
                    KustoType::Dynamic,
                ),
            ));
        }
        let group: Vec<datafusion::logical_expr::Expr> =
            (0..keys).map(|i| binned.column(i)).collect();
        let rows_name = self.fresh("rows");
        outer_aggs.push(
            datafusion::functions_aggregate::count::count_udaf()
                .call(vec![datafusion::logical_expr::lit(1i64)])
                .alias(rows_name.clone()),
        );
        let mut builder = datafusion::logical_expr::LogicalPlanBuilder::from(binned.plan.clone())
            .aggregate(group, outer_aggs)?;
        if !ms.nonempty {
            // Without kind=nonempty, no input rows give no series.
            builder = builder.filter(
                datafusion::logical_expr::Expr::Column(
                    datafusion::common::Column::new_unqualified(rows_name),
                )
                .gt(datafusion::logical_expr::lit(0i64)),
            )?;
        }
        let plan = builder.build()?;
        // The axis values, one array for every row.
        let axis_values: Vec<Value> = (0..n)
            .map(|i| {
                let x = f + st * i as f64;
                match axis.ty {
                    KustoType::DateTime => Val::DateTime((x as i64).div_euclid(100)).to_json(),
                    KustoType::Timespan => Val::Timespan((x as i64).div_euclid(100)).to_json(),
                    KustoType::Long | KustoType::Int => Value::from(x as i64),
                    _ => crate::udf::value::real_json(x),
                }
            })
            .collect();
        let axis_name = crate::plan::ops::expr_name(&ms.on).unwrap_or_else(|| "Column1".into());
        let mut out: Vec<(String, TExpr)> = (0..keys)
            .map(|i| {
                let name = binned.cols[i].name.clone();
                (
                    name.clone(),
                    TExpr::new(
                        datafusion::logical_expr::Expr::Column(
                            datafusion::common::Column::new_unqualified(name),
                        ),
                        binned.cols[i].ty,
                    ),
                )
            })
            .collect();
        out.extend(series_items);
        out.push((
            axis_name,
            TExpr::lit(
                datafusion::common::ScalarValue::Utf8(Some(Value::Array(axis_values).to_string())),
                KustoType::Dynamic,
            ),
        ));
        super::rel::project(plan, out, false)
    }
}

fn prefix_from(t: &TExpr) -> Option<&str> {
    t.literal_str()
}

/// The Kusto type of a JSON value (as `bag_unpack` types a column).
fn json_type(v: &Value) -> KustoType {
    match v {
        Value::Bool(_) => KustoType::Bool,
        Value::Number(n) if n.is_i64() => KustoType::Long,
        Value::Number(_) => KustoType::Real,
        Value::String(s)
            if crate::literal::parse_datetime(s).is_some()
                && s.contains('-')
                && s.contains(':') =>
        {
            KustoType::DateTime
        }
        Value::String(_) => KustoType::String,
        _ => KustoType::Dynamic,
    }
}

fn join_types(a: KustoType, b: KustoType) -> KustoType {
    if a == b {
        a
    } else if a.is_numeric() && b.is_numeric() {
        KustoType::numeric_join(a, b)
    } else {
        KustoType::Dynamic
    }
}
