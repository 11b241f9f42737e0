//! `evaluate schema_merge([PreserveOrder])`: schemas in `getschema`'s shape merged into one.
//!
//! Its input is the union of `getschema` outputs, which the planner builds from the schemas it
//! knows: the rows are computed while planning and the merged schema is a table of constants.

use super::operators::convert;
use super::rel::{Rel, TExpr};
use super::scalar::Scope;
use super::{Env, Planner};
use crate::ast::Evaluate;
use crate::error::{KqlError, Span};
use crate::types::{KustoColumn, KustoType};
use crate::udf::value::{Val, read_column};

impl Planner<'_> {
    /// `schema_merge([PreserveOrder])`: the schemas in the input (rows of `getschema`, one
    /// schema after another) merged into one, in `getschema`'s shape. A column
    /// new to the merge goes at its ordinal; a column seen before keeps its place, its type
    /// reduced with the new one (`int` and `long` to `long`, numbers to `real`); with
    /// `PreserveOrder` (the default) a column whose ordinal differs from the one it first had
    /// is an error row, as Kusto shows it (ordinal -1, `ERROR(...)` types).
    pub(crate) fn schema_merge(
        &mut self,
        rel: Rel,
        ev: &Evaluate,
        span: Span,
        env: &Env,
    ) -> Result<Rel, KqlError> {
        let mut preserve = true;
        for a in &ev.args {
            if a.name.as_ref().is_some_and(|n| n.name != "PreserveOrder") {
                return Err(KqlError::semantic(
                    "schema_merge's only parameter is PreserveOrder",
                    a.value.span,
                ));
            }
            let t = self.scalar(&a.value, &Scope::empty(env))?;
            preserve = match super::consts::eval(&t, "PreserveOrder", a.value.span)? {
                datafusion::common::ScalarValue::Boolean(Some(b)) => b,
                _ => {
                    return Err(KqlError::semantic(
                        "PreserveOrder must be true or false",
                        a.value.span,
                    ));
                }
            };
        }
        let col = |n: &str| {
            rel.require(n, span).map_err(|_| {
                KqlError::semantic(
                    format!("schema_merge reads getschema's output: the input has no column '{n}'"),
                    span,
                )
            })
        };
        let (name_i, ord_i, type_i) = (
            col("ColumnName")?,
            col("ColumnOrdinal")?,
            col("ColumnType")?,
        );
        let only = rel.project(vec![
            ("n".into(), convert(rel.texpr(name_i), KustoType::String)),
            ("o".into(), convert(rel.texpr(ord_i), KustoType::Long)),
            ("t".into(), convert(rel.texpr(type_i), KustoType::String)),
        ])?;
        let Some(batches) = self.constant_rows_of(&only, "schema_merge", span)? else {
            return Err(KqlError::unsupported(
                "schema_merge over rows read at run time (its input is getschema's output, which the planner knows)",
                span,
            ));
        };
        let mut rows: Vec<(String, i64, String)> = Vec::new();
        for b in &batches {
            let n = read_column(b.column(0), KustoType::String)?;
            let o = read_column(b.column(1), KustoType::Long)?;
            let t = read_column(b.column(2), KustoType::String)?;
            for ((n, o), t) in n.into_iter().zip(o).zip(t) {
                let o = match o {
                    Val::Long(x) => x,
                    _ => -1,
                };
                rows.push((n.to_text(), o, t.to_text()));
            }
        }
        let merged = merge_schemas(&rows, preserve);
        let mut values = Vec::new();
        let mut position = 0i32;
        for m in &merged {
            let (ordinal, dotnet, kusto) = match &m.ty {
                Ok(t) => {
                    let o = position;
                    position += 1;
                    (o, t.dotnet_name().to_owned(), t.name().to_owned())
                }
                Err(why) => (
                    -1,
                    format!("ERROR(unknown CSL type:ERROR({why}))"),
                    format!("ERROR({why})"),
                ),
            };
            values.push(vec![
                TExpr::string(m.name.clone()),
                TExpr::lit(
                    datafusion::common::ScalarValue::Int32(Some(ordinal)),
                    KustoType::Int,
                ),
                TExpr::string(dotnet),
                TExpr::string(kusto),
            ]);
        }
        let cols = [
            ("ColumnName", KustoType::String),
            ("ColumnOrdinal", KustoType::Int),
            ("DataType", KustoType::String),
            ("ColumnType", KustoType::String),
        ]
        .iter()
        .map(|(n, ty)| KustoColumn {
            name: (*n).to_owned(),
            ty: *ty,
        })
        .collect();
        self.values_table(cols, values, span)
    }
}

/// One column of a merged schema: its type, or why it has none.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Merged {
    pub(crate) name: String,
    pub(crate) ty: Result<KustoType, String>,
    first_ordinal: i64,
}

/// Merges schemas given as `(name, ordinal, type)` rows, one schema after another.
pub(crate) fn merge_schemas(rows: &[(String, i64, String)], preserve: bool) -> Vec<Merged> {
    let mut merged: Vec<Merged> = Vec::new();
    for (name, ordinal, ty) in rows {
        let parsed: Result<KustoType, String> = ty
            .parse::<KustoType>()
            .map_err(|_| format!("unknown type {ty}"));
        match merged.iter_mut().find(|m| m.name == *name) {
            Some(m) => {
                m.ty = match (&m.ty, parsed) {
                    (Err(e), _) => Err(e.clone()),
                    (_, Err(e)) => Err(e),
                    (Ok(a), Ok(b)) => reduce(*a, b),
                };
                if preserve && *ordinal != m.first_ordinal && m.ty.is_ok() {
                    m.ty = Err("columns are out of order".into());
                }
            }
            None => {
                let at = usize::try_from(*ordinal)
                    .unwrap_or(usize::MAX)
                    .min(merged.len());
                merged.insert(
                    at,
                    Merged {
                        name: name.clone(),
                        ty: parsed,
                        first_ordinal: *ordinal,
                    },
                );
            }
        }
    }
    merged
}

/// The common type of two column types, if they reduce to one.
fn reduce(a: KustoType, b: KustoType) -> Result<KustoType, String> {
    use KustoType::{Decimal, Int, Long, Real};
    match (a, b) {
        _ if a == b => Ok(a),
        (Int | Long, Int | Long) => Ok(Long),
        (Int | Long | Real, Int | Long | Real) => Ok(Real),
        (Int | Long | Real | Decimal, Int | Long | Real | Decimal) => Ok(Decimal),
        _ => Err(format!(
            "types {} and {} cannot be reduced",
            a.name(),
            b.name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: &str, o: i64, t: &str) -> (String, i64, String) {
        (n.to_owned(), o, t.to_owned())
    }

    #[test]
    fn merge_reduces_types_and_places_new_columns_at_their_ordinal() {
        let rows = vec![
            row("a", 0, "int"),
            row("b", 1, "string"),
            row("a", 0, "long"),
            row("c", 1, "real"),
            row("b", 2, "string"),
        ];
        let m = merge_schemas(&rows, false);
        let names: Vec<&str> = m.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["a", "c", "b"]);
        assert_eq!(m[0].ty, Ok(KustoType::Long));
        assert_eq!(m[2].ty, Ok(KustoType::String));
        let strict = merge_schemas(&rows, true);
        assert_eq!(strict[2].ty, Err("columns are out of order".to_owned()));
    }

    #[test]
    fn merge_refuses_types_that_do_not_reduce() {
        let rows = vec![row("a", 0, "string"), row("a", 0, "long")];
        let m = merge_schemas(&rows, true);
        assert!(
            m[0].ty
                .as_ref()
                .is_err_and(|e| e.contains("cannot be reduced"))
        );
    }
}
