//! Tables built from the query itself: `datatable`, `print`, `range`.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, DurationNanosecondArray, Float64Builder, Int64Array, TimestampNanosecondArray,
    new_empty_array,
};
use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::logical_expr::LogicalPlanBuilder;

use super::consts::eval;
use super::ops::expr_name;
use super::rel::{Rel, TExpr, one_row, project};
use super::scalar::Scope;
use super::{Env, Planner, operators};
use crate::ast::{Assign, Expr, Ident};
use crate::error::{KqlError, Span};
use crate::types::{KustoColumn, KustoType};

/// The most rows `range` produces.
const MAX_RANGE_ROWS: usize = crate::udf::range::MAX_ROWS as usize;

impl Planner<'_> {
    /// A table of constant rows.
    pub(crate) fn values_table(
        &mut self,
        cols: Vec<KustoColumn>,
        rows: Vec<Vec<TExpr>>,
        span: Span,
    ) -> Result<Rel, KqlError> {
        let mut columns: Vec<Vec<ScalarValue>> = vec![Vec::with_capacity(rows.len()); cols.len()];
        for row in rows {
            for (i, (cell, col)) in row.into_iter().zip(&cols).enumerate() {
                let cell = operators::convert(cell, col.ty);
                let v = eval(&cell, "a datatable value", span)?;
                let v = v.cast_to(&col.ty.arrow()).map_err(|e| {
                    KqlError::semantic(
                        format!(
                            "the value for column '{}' is not a {}: {e}",
                            col.name, col.ty
                        ),
                        span,
                    )
                })?;
                columns[i].push(v);
            }
        }
        let arrays: Vec<ArrayRef> = columns
            .into_iter()
            .zip(&cols)
            .map(|(vals, col)| {
                if vals.is_empty() {
                    Ok(new_empty_array(&col.ty.arrow()))
                } else {
                    ScalarValue::iter_to_array(vals)
                }
            })
            .collect::<Result<_, _>>()?;
        self.batch_table(cols, arrays)
    }

    /// A table over computed columns.
    pub(crate) fn batch_table(
        &mut self,
        cols: Vec<KustoColumn>,
        arrays: Vec<ArrayRef>,
    ) -> Result<Rel, KqlError> {
        let schema = Arc::new(Schema::new(
            cols.iter().map(|c| c.ty.field(&c.name)).collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
        let name = self.fresh("values");
        self.constants.insert(name.clone(), batch.clone());
        let table = MemTable::try_new(schema, vec![vec![batch]])?;
        let plan =
            LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(table)), None)?.build()?;
        Ok(Rel::new(plan, cols.iter().map(|c| c.ty).collect()))
    }

    pub(crate) fn datatable(
        &mut self,
        columns: &[(Ident, KustoType)],
        values: &[Expr],
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        if columns.is_empty() {
            return Err(KqlError::semantic("a datatable needs columns", span));
        }
        if !values.len().is_multiple_of(columns.len()) {
            return Err(KqlError::semantic(
                format!(
                    "the datatable has {} columns but {} values (not a multiple)",
                    columns.len(),
                    values.len()
                ),
                span,
            ));
        }
        let sc = Scope::empty(env);
        let mut rows = Vec::new();
        for chunk in values.chunks(columns.len()) {
            let mut row = Vec::new();
            for v in chunk {
                row.push(self.scalar(v, &sc)?);
            }
            rows.push(row);
        }
        let cols = columns
            .iter()
            .map(|(n, t)| KustoColumn {
                name: n.name.clone(),
                ty: *t,
            })
            .collect();
        self.values_table(cols, rows, span)
    }

    pub(crate) fn print(&mut self, items: &[Assign], env: &Env) -> Result<Rel, KqlError> {
        let mut sc = Scope::empty(env);
        let mut out: Vec<(String, TExpr)> = Vec::new();
        let mut n = 0;
        for a in &super::ops::expand_multi(items) {
            let t = self.scalar(&a.expr, &sc)?;
            let name = match a.names.as_slice() {
                [x] => x.name.clone(),
                _ => {
                    let _ = expr_name(&a.expr);
                    let name = format!("print_{n}");
                    n += 1;
                    name
                }
            };
            sc.set(&name, t.clone());
            out.push((name, t));
        }
        project(one_row()?, out, false)
    }

    pub(crate) fn range(
        &mut self,
        column: &Ident,
        from: &Expr,
        to: &Expr,
        step: &Expr,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let sc = Scope::empty(env);
        let f = self.scalar(from, &sc)?;
        let t = self.scalar(to, &sc)?;
        let s = self.scalar(step, &sc)?;
        let ty = match (f.ty, t.ty) {
            (a, b) if a.is_numeric() && b.is_numeric() && s.ty.is_numeric() => {
                if a == KustoType::Real || b == KustoType::Real || s.ty == KustoType::Real {
                    KustoType::Real
                } else {
                    KustoType::Long
                }
            }
            (KustoType::DateTime, KustoType::DateTime) if s.ty == KustoType::Timespan => {
                KustoType::DateTime
            }
            (KustoType::Timespan, KustoType::Timespan) if s.ty == KustoType::Timespan => {
                KustoType::Timespan
            }
            (a, b) => {
                return Err(KqlError::semantic(
                    format!("range from a {a} to a {b} by a {} is not supported", s.ty),
                    from.span.to(step.span),
                ));
            }
        };
        // Bounds known only when the query runs (`toscalar` of a stored table).
        let known = [&f, &t, &s]
            .iter()
            .all(|x| eval(x, "a range bound", step.span).is_ok());
        if !known {
            return range_at_run_time(&column.name, f, t, s, ty);
        }
        // The column is built as an Arrow array directly (8 bytes a value): a `ScalarValue` per
        // value took about 90 bytes, a datetime's with its own copy of the zone (finding 26 of
        // docs/reliability.md: 2.78 GB for 31 million rows).
        let array: ArrayRef = match ty {
            KustoType::Real => {
                let (a, b, st) = (
                    eval_f64(&f, from.span)?,
                    eval_f64(&t, to.span)?,
                    eval_f64(&s, step.span)?,
                );
                if st == 0.0 || !st.is_finite() {
                    return Err(KqlError::semantic(
                        "the range step must not be 0",
                        step.span,
                    ));
                }
                let mut out = Float64Builder::new();
                let mut i = 0u64;
                loop {
                    let x = a + st * i as f64;
                    if (st > 0.0 && x > b) || (st < 0.0 && x < b) {
                        break;
                    }
                    out.append_value(x);
                    i += 1;
                    if i > MAX_RANGE_ROWS as u64 {
                        return Err(too_many(step.span));
                    }
                }
                Arc::new(out.finish())
            }
            _ => {
                let a = eval_ticks(&f, from.span)?;
                let b = eval_ticks(&t, to.span)?;
                let st = eval_ticks(&s, step.span)?;
                if st == 0 {
                    return Err(KqlError::semantic(
                        "the range step must not be 0",
                        step.span,
                    ));
                }
                let count = if (st > 0 && b < a) || (st < 0 && b > a) {
                    0
                } else {
                    ((b as i128 - a as i128) / st as i128) as usize + 1
                };
                if count > MAX_RANGE_ROWS {
                    return Err(too_many(step.span));
                }
                let values = (0..count).map(|i| a + st * i as i64);
                match ty {
                    KustoType::DateTime => Arc::new(
                        TimestampNanosecondArray::from_iter_values(values).with_timezone("UTC"),
                    ),
                    KustoType::Timespan => {
                        Arc::new(DurationNanosecondArray::from_iter_values(values))
                    }
                    _ => Arc::new(Int64Array::from_iter_values(values)),
                }
            }
        };
        let ascending = values_ascending(&array);
        let mut rel = self.batch_table(
            vec![KustoColumn {
                name: column.name.clone(),
                ty,
            }],
            vec![array],
        )?;
        // Kusto marks range's output serialized: window functions follow the column's order.
        rel.ordered = true;
        rel.keys = vec![datafusion::logical_expr::SortExpr::new(
            rel.column(0),
            ascending,
            false,
        )];
        Ok(rel)
    }
}

/// `range` whose bounds are computed by the query: one row holding the list of values (a
/// function that refuses more than the rows a constant range may have), unnested, in order.
fn range_at_run_time(
    name: &str,
    from: TExpr,
    to: TExpr,
    step: TExpr,
    ty: KustoType,
) -> Result<Rel, KqlError> {
    use arrow::datatypes::DataType;
    use datafusion::logical_expr::{Expr as DfExpr, cast};
    let real = ty == KustoType::Real;
    let number = |x: TExpr| -> DfExpr {
        if real {
            cast(
                operators::convert(x, KustoType::Real).expr,
                DataType::Float64,
            )
        } else {
            cast(cast(x.expr, x.ty.arrow()), DataType::Int64)
        }
    };
    let list =
        crate::udf::range::range_udf(real).call(vec![number(from), number(to), number(step)]);
    let plan = LogicalPlanBuilder::from(one_row()?)
        .project(vec![list.alias(name)])?
        .unnest_column(name)?
        .build()?;
    let value = DfExpr::Column(datafusion::common::Column::from_name(name));
    let typed = match ty {
        KustoType::DateTime | KustoType::Timespan => cast(value, ty.arrow()),
        _ => value,
    };
    // Serialized: the values in the order made (the step's sign is not known here).
    project(plan, vec![(name.to_owned(), TExpr::new(typed, ty))], true)
}

/// Whether a range's values grow (its step is positive).
fn values_ascending(a: &arrow::array::ArrayRef) -> bool {
    if a.len() < 2 {
        return true;
    }
    match (
        ScalarValue::try_from_array(a, 0),
        ScalarValue::try_from_array(a, 1),
    ) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y) != Some(std::cmp::Ordering::Greater),
        _ => true,
    }
}

fn too_many(span: Span) -> KqlError {
    KqlError::semantic(
        format!("range would produce more than {MAX_RANGE_ROWS} rows"),
        span,
    )
}

fn eval_f64(t: &TExpr, span: Span) -> Result<f64, KqlError> {
    let v = eval(t, "a range bound", span)?;
    match v.cast_to(&arrow::datatypes::DataType::Float64) {
        Ok(ScalarValue::Float64(Some(x))) => Ok(x),
        _ => Err(KqlError::semantic("a range bound must be a number", span)),
    }
}

/// A long, or a datetime/timespan in nanoseconds.
fn eval_ticks(t: &TExpr, span: Span) -> Result<i64, KqlError> {
    let v = eval(t, "a range bound", span)?;
    let x = match v {
        ScalarValue::TimestampNanosecond(Some(x), _) | ScalarValue::DurationNanosecond(Some(x)) => {
            x
        }
        ScalarValue::TimestampMicrosecond(Some(x), _)
        | ScalarValue::DurationMicrosecond(Some(x)) => x * 1000,
        other => match other.cast_to(&arrow::datatypes::DataType::Int64) {
            Ok(ScalarValue::Int64(Some(x))) => x,
            _ => return Err(KqlError::semantic("a range bound must not be null", span)),
        },
    };
    Ok(x)
}
