//! Time bounds from a query's filters, to skip whole segments by their catalog time range.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};

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
        for f in filters {
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

    fn add(&mut self, e: &Expr, column: &str) {
        match e {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => {
                self.add(left, column);
                self.add(right, column);
            }
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
}
