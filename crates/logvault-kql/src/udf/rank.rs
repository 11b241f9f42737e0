//! `row_rank_dense` and `row_rank_min` as one DataFusion window function: over the rows of a
//! partition in order, a rank starts at the first row and wherever the term differs from the
//! previous row's (nulls are equal to each other). The dense rank counts the ranks so far; the
//! minimal rank is the row number where the current one started.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array};
use arrow::compute::kernels::cmp::distinct;
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;

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
