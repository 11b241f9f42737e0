//! What a query's filters allow a scan to skip: whole segments by their catalog time range
//! ([`TimeBounds`]), and row groups by the segments' needle index ([`needles`]); and which
//! string columns they compare with strings only ([`labels`]), which a scan may read as
//! dictionaries.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};
use logvault_store::needles::Needle;

/// An inclusive range of microseconds since the epoch; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeBounds {
    /// Lowest time a matching row can have.
    pub min: Option<i64>,
    /// Highest time a matching row can have.
    pub max: Option<i64>,
}

fn micros(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMicrosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(v.div_euclid(1_000)),
        _ => None,
    }
}

fn literal(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(v, _) => micros(v),
        Expr::Cast(c) => literal(&c.expr),
        Expr::TryCast(c) => literal(&c.expr),
        _ => None,
    }
}

fn is_time_column(e: &Expr, column: &str) -> bool {
    match e {
        Expr::Column(c) => c.name == column,
        Expr::Cast(c) => is_time_column(&c.expr, column),
        _ => false,
    }
}

impl TimeBounds {
    /// The bounds implied by the conjunction of `filters` on `column`. Filters it does not
    /// understand leave the bounds open (never prune wrongly).
    pub fn from_filters(filters: &[Expr], column: &str) -> Self {
        let mut bounds = Self::default();
        for f in filters.iter().flat_map(split_conjunction) {
            bounds.add(f, column);
        }
        bounds
    }

    fn raise_min(&mut self, v: i64) {
        self.min = Some(self.min.map_or(v, |m| m.max(v)));
    }

    fn lower_max(&mut self, v: i64) {
        self.max = Some(self.max.map_or(v, |m| m.min(v)));
    }

    /// Narrows the bounds by one conjunct.
    fn add(&mut self, e: &Expr, column: &str) {
        match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (op, value) = if is_time_column(left, column) {
                    (*op, literal(right))
                } else if is_time_column(right, column) {
                    (op.swap().unwrap_or(*op), literal(left))
                } else {
                    return;
                };
                let Some(v) = value else { return };
                match op {
                    Operator::Gt | Operator::GtEq => self.raise_min(v),
                    Operator::Lt | Operator::LtEq => self.lower_max(v),
                    Operator::Eq => {
                        self.raise_min(v);
                        self.lower_max(v);
                    }
                    _ => {}
                }
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) if is_time_column(expr, column) => {
                if let Some(v) = literal(low) {
                    self.raise_min(v);
                }
                if let Some(v) = literal(high) {
                    self.lower_max(v);
                }
            }
            _ => {}
        }
    }

    /// Whether a segment holding times in `[min, max]` may hold a matching row.
    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        self.min.is_none_or(|lo| max >= lo) && self.max.is_none_or(|hi| min <= hi)
    }
}

/// The values the conjunction of `filters` requires of string columns: a conjunct
/// `column = 'v'` (either way round, the column cast to another string type or not),
/// `column IN ('v', ...)` or a disjunction of those on one column. Conjuncts of other shapes
/// require nothing here (never prune wrongly).
pub fn needles(filters: &[Expr]) -> Vec<Needle> {
    filters
        .iter()
        .flat_map(split_conjunction)
        .filter_map(needle)
        .collect()
}

/// The string columns that conjuncts of `filters` compare with string literals and nothing
/// else: `column = 'v'`, `column <> 'v'` (either way round, the column cast to another string
/// type or not), `column [NOT] IN ('v', ...)`, or an `OR` of equalities (an `AND` of `<>`s) of
/// one column; as `crate::view_eq` compares them, a value of a dictionary at a time when the
/// column is read as one (another conjunct reading the same column otherwise, a `LIKE` say,
/// reads it cast back to views: right, if no faster). Each column once, in the order first met.
pub fn labels(filters: &[Expr]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for column in filters.iter().flat_map(split_conjunction).filter_map(label) {
        if !out.contains(&column) {
            out.push(column);
        }
    }
    out
}

/// The column `e` compares with string literals, if that is all `e` does.
fn label(e: &Expr) -> Option<String> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::Eq | Operator::NotEq => compared(left, right).map(|(c, _)| c),
            Operator::Or | Operator::And => {
                let (left, right) = (label(left)?, label(right)?);
                (left == right).then_some(left)
            }
            _ => None,
        },
        Expr::InList(InList { expr, list, .. })
            if list.iter().all(|v| string_literal(v).is_some()) =>
        {
            string_column(expr)
        }
        _ => None,
    }
}

/// The values `e` requires of one column: `column = 'v'`, `column IN (...)`, or a disjunction
/// of those on the same column (DataFusion writes a short `IN` list as one).
fn needle(e: &Expr) -> Option<Needle> {
    match e {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => {
            let (column, value) = compared(left, right)?;
            Some(Needle::new(column, vec![value]))
        }
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let (mut left, right) = (needle(left)?, needle(right)?);
            if left.column != right.column {
                return None;
            }
            left.values.extend(right.values);
            Some(left)
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => {
            let values: Option<Vec<String>> = list.iter().map(string_literal).collect();
            Some(Needle::new(string_column(expr)?, values?))
        }
        _ => None,
    }
}

/// The column and the string literal the two sides of a comparison are, either way round.
fn compared(left: &Expr, right: &Expr) -> Option<(String, String)> {
    match (string_column(left), string_column(right)) {
        (Some(c), None) => Some((c, string_literal(right)?)),
        (None, Some(c)) => Some((c, string_literal(left)?)),
        _ => None,
    }
}

/// A column, or a column cast to a string type (which keeps a string's bytes).
fn string_column(e: &Expr) -> Option<String> {
    match e {
        Expr::Column(c) => Some(c.name.clone()),
        Expr::Cast(c) if c.field.data_type().is_string() => string_column(&c.expr),
        _ => None,
    }
}

fn string_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Literal(v, _) => v.try_as_str().flatten().map(str::to_owned),
        Expr::Cast(c) if c.field.data_type().is_string() => string_literal(&c.expr),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{ident as col, lit};

    fn ts(v: i64) -> Expr {
        lit(ScalarValue::TimestampMicrosecond(
            Some(v),
            Some("UTC".into()),
        ))
    }

    #[test]
    fn comparisons_between_and_conjunctions() {
        let f = [
            col("TimeGenerated").gt_eq(ts(100)),
            ts(500).gt(col("TimeGenerated")),
            col("Level").eq(lit("ERROR")),
        ];
        let b = TimeBounds::from_filters(&f, "TimeGenerated");
        assert_eq!(
            b,
            TimeBounds {
                min: Some(100),
                max: Some(500)
            }
        );
        assert!(b.overlaps(0, 100));
        assert!(b.overlaps(499, 900));
        assert!(!b.overlaps(0, 99));
        assert!(!b.overlaps(501, 900));
        let f = [col("TimeGenerated")
            .between(ts(10), ts(20))
            .and(col("TimeGenerated").lt(ts(15)))];
        assert_eq!(
            TimeBounds::from_filters(&f, "TimeGenerated"),
            TimeBounds {
                min: Some(10),
                max: Some(15)
            }
        );
    }

    #[test]
    fn unknown_shapes_never_prune() {
        let f = [
            col("TimeGenerated")
                .gt(ts(100))
                .or(col("TimeGenerated").lt(ts(5))),
            col("TimeGenerated").not_between(ts(1), ts(2)),
            col("Other").gt(ts(100)),
        ];
        let b = TimeBounds::from_filters(&f, "TimeGenerated");
        assert_eq!(b, TimeBounds::default());
        assert!(b.overlaps(i64::MIN, i64::MIN));
    }

    #[test]
    fn needles_are_string_equalities_and_in_lists_of_a_column() {
        use arrow::datatypes::DataType;
        use datafusion::logical_expr::cast;
        let f = [
            col("RequestId").eq(lit("r-1")),
            lit("h-2").eq(cast(col("Host"), DataType::Utf8)),
            col("TraceId").in_list(
                vec![lit("t-1"), lit(ScalarValue::Utf8View(Some("t-2".into())))],
                false,
            ),
            col("Level")
                .eq(lit("ERROR"))
                .and(col("UserId").eq(lit("u-9"))),
            // Not needles: other operators, a negated list, a non-string literal, a function.
            col("A").not_eq(lit("x")),
            col("B").in_list(vec![lit("x")], true),
            col("C").eq(lit(5)),
            datafusion::functions::expr_fn::lower(col("D")).eq(lit("x")),
            col("E").eq(col("F")),
            col("G").eq(lit("g-1")).or(col("G").eq(lit("g-2"))),
            // A disjunction over two columns requires nothing of either.
            col("H").eq(lit("x")).or(col("I").eq(lit("y"))),
        ];
        let got = needles(&f);
        let want = vec![
            Needle::new("RequestId", vec!["r-1".into()]),
            Needle::new("Host", vec!["h-2".into()]),
            Needle::new("TraceId", vec!["t-1".into(), "t-2".into()]),
            Needle::new("Level", vec!["ERROR".into()]),
            Needle::new("UserId", vec!["u-9".into()]),
            Needle::new("G", vec!["g-1".into(), "g-2".into()]),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn labels_are_columns_compared_with_strings_and_nothing_else() {
        use arrow::datatypes::DataType;
        use datafusion::logical_expr::cast;
        let f = [
            col("Level").eq(lit("ERROR")),
            lit("h-2").not_eq(cast(col("Host"), DataType::Utf8)),
            col("Code").in_list(vec![lit("404"), lit("500")], true),
            col("Service")
                .not_eq(lit("a"))
                .and(col("Service").not_eq(lit("b"))),
            col("Level").in_list(vec![lit("WARN")], false),
            // Not labels: another operator, a number, a function, two columns, a list with a
            // column in it, an `OR` over two columns.
            col("A").lt(lit("x")),
            col("C").eq(lit(5)),
            datafusion::functions::expr_fn::lower(col("D")).eq(lit("x")),
            col("E").eq(col("F")),
            col("G").in_list(vec![lit("x"), col("X")], false),
            col("H").eq(lit("x")).or(col("I").eq(lit("y"))),
        ];
        assert_eq!(labels(&f), vec!["Level", "Host", "Code", "Service"]);
    }
}
