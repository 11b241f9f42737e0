//! Kusto's window functions that DataFusion has no equivalent of, each evaluated over the rows
//! of a partition in their order:
//! - `row_rank_dense` and `row_rank_min`: a rank starts at the first row and wherever the term
//!   differs from the previous row's (nulls are equal to each other); the dense rank counts the
//!   ranks so far, the minimal rank is the row number where the current one started;
//! - `row_window_session`: the value at the start of each row's session.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::compute::kernels::cmp::distinct;
use arrow::datatypes::Int64Type;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl,
};

/// Which rank.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RowRank {
    dense: bool,
    signature: Signature,
}

impl WindowUDFImpl for RowRank {
    fn name(&self) -> &str {
        if self.dense {
            "row_rank_dense"
        } else {
            "row_rank_min"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn partition_evaluator(
        &self,
        _: PartitionEvaluatorArgs<'_>,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(RankEvaluator { dense: self.dense }))
    }

    fn field(&self, args: WindowUDFFieldArgs<'_>) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(args.name(), DataType::Int64, false)))
    }
}

#[derive(Debug)]
struct RankEvaluator {
    dense: bool,
}

impl PartitionEvaluator for RankEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        Ok(Arc::new(ranks(&values[0], num_rows, self.dense)?))
    }
}

/// The ranks of the `n` rows of `term`.
fn ranks(term: &ArrayRef, n: usize, dense: bool) -> Result<Int64Array> {
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Ok(Int64Array::from(out));
    }
    let n = n.min(term.len());
    let changed = distinct(&term.slice(0, n - 1), &term.slice(1, n - 1))?;
    let (mut rank, mut start) = (1i64, 1i64);
    out.push(1);
    for i in 1..n {
        if changed.is_valid(i - 1) && changed.value(i - 1) {
            rank += 1;
            start = i as i64 + 1;
        }
        out.push(if dense { rank } else { start });
    }
    Ok(Int64Array::from(out))
}

/// The window function `row_rank_dense` (`dense`) or `row_rank_min`.
pub(crate) fn row_rank_udwf(dense: bool) -> Arc<WindowUDF> {
    Arc::new(WindowUDF::from(RowRank {
        dense,
        signature: Signature::any(1, Volatility::Immutable),
    }))
}

/// `row_window_session(x, max_from_first, max_between_neighbors, restart)` over values as
/// longs (datetimes as nanoseconds).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Session {
    signature: Signature,
}

impl WindowUDFImpl for Session {
    fn name(&self) -> &str {
        "row_window_session"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn partition_evaluator(
        &self,
        _: PartitionEvaluatorArgs<'_>,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(SessionEvaluator))
    }

    fn field(&self, args: WindowUDFFieldArgs<'_>) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(args.name(), DataType::Int64, true)))
    }
}

#[derive(Debug)]
struct SessionEvaluator;

impl PartitionEvaluator for SessionEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let [x, first, between, restart] = values else {
            return datafusion::common::plan_err!("row_window_session takes four arguments");
        };
        let (x, first, between) = (
            x.as_primitive::<Int64Type>(),
            first.as_primitive::<Int64Type>(),
            between.as_primitive::<Int64Type>(),
        );
        let restart = restart.as_boolean();
        let n = num_rows.min(x.len());
        let get = |a: &arrow::array::PrimitiveArray<Int64Type>, i: usize| {
            a.is_valid(i).then(|| a.value(i))
        };
        let mut out: Vec<Option<i64>> = Vec::with_capacity(n);
        let (mut start, mut previous): (Option<i64>, Option<i64>) = (None, None);
        for i in 0..n {
            let v = get(x, i);
            let new_session = match (start, previous, v) {
                (Some(s), Some(p), Some(v)) => {
                    let far =
                        |base: i64, d: Option<i64>| d.is_some_and(|d| v >= base.saturating_add(d));
                    far(s, get(first, i))
                        || far(p, get(between, i))
                        || (restart.is_valid(i) && restart.value(i))
                }
                _ => true,
            };
            if new_session {
                start = v;
            }
            previous = v;
            out.push(start);
        }
        Ok(Arc::new(Int64Array::from(out)))
    }
}

/// The window function `row_window_session(x, max_from_first, max_between_neighbors,
/// restart)`, all longs but `restart`.
pub(crate) fn row_window_session_udwf() -> Arc<WindowUDF> {
    Arc::new(WindowUDF::from(Session {
        signature: Signature::exact(
            vec![
                DataType::Int64,
                DataType::Int64,
                DataType::Int64,
                DataType::Boolean,
            ],
            Volatility::Immutable,
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BooleanArray, StringArray};

    #[test]
    fn sessions_start_far_from_the_first_or_the_previous_value_or_on_restart() {
        let x: ArrayRef = Arc::new(Int64Array::from(vec![
            Some(0),
            Some(3),
            Some(9),
            Some(13),
            None,
            Some(15),
            Some(16),
        ]));
        let first: ArrayRef = Arc::new(Int64Array::from(vec![10; 7]));
        let between: ArrayRef = Arc::new(Int64Array::from(vec![5; 7]));
        let restart: ArrayRef = Arc::new(BooleanArray::from(vec![
            false, false, false, false, false, false, true,
        ]));
        let got = SessionEvaluator
            .evaluate_all(&[x, first, between, restart], 7)
            .unwrap();
        let got: Vec<Option<i64>> = got.as_primitive::<Int64Type>().iter().collect();
        // 9 is 6 after 3 (5 or more apart): a new session; 13 is less than 10 after 9 and less
        // than 5 after 9; a null ends the session and 15 starts one; 16 restarts.
        assert_eq!(
            got,
            [Some(0), Some(0), Some(9), Some(9), None, Some(15), Some(16)]
        );
    }

    #[test]
    fn ranks_follow_runs_of_equal_terms() {
        let term: ArrayRef = Arc::new(StringArray::from(vec![
            Some("a"),
            Some("a"),
            Some("b"),
            None,
            None,
            Some("a"),
        ]));
        let dense = ranks(&term, 6, true).unwrap();
        assert_eq!(dense.values().to_vec(), [1, 1, 2, 3, 3, 4]);
        let min = ranks(&term, 6, false).unwrap();
        assert_eq!(min.values().to_vec(), [1, 1, 3, 4, 4, 6]);
    }
}
