//! `column = 'text'` and `column <> 'text'` on string views, compared a view at a time.
//!
//! Log queries filter on short labels (`Level IN ('ERROR', 'CRITICAL')`, `Level = 'WARN'`,
//! `Service = 'api'`), and DataFusion evaluates each as arrow's comparison of a string view
//! column with a scalar: per row, a handful of data-dependent branches (same view? same length?
//! same prefix? inline?) that mispredict on a column whose values alternate. A string of at most
//! 12 bytes is held whole in its 16-byte view, zero-padded, so two such strings are equal exactly
//! when their views are: the comparison becomes one 128-bit compare per row, without branches. A
//! longer literal is compared by length and 4-byte prefix first (the view's low 64 bits), and by
//! its bytes only when those match.
//!
//! [`ViewEquality`] (a physical optimizer rule) replaces such comparisons in the predicates of
//! Parquet scans (the row filter) and of `FilterExec`s (the memory tier's scans) with a
//! [`ViewEq`], which keeps the comparison it replaces and answers with it for anything that is
//! not a string view array at run time. Everything that reasons about the predicate rather than
//! evaluating it sees the original: `snapshot` gives it back (DataFusion's statistics, page
//! index and bloom filter pruning work on the snapshot), and bounds, properties, display and
//! SQL text are the original's. The benchmark's errors per hour at 1M rows spent about 15% of
//! its time in those comparisons (docs/bench/README.md).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringViewArray, make_view};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::{FieldRef, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::physical_plan::FileSource as _;
use datafusion::datasource::physical_plan::{FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::ColumnarValue;
use datafusion::logical_expr::Operator;
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::sort_properties::ExprProperties;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};

/// The longest string a view holds inline.
const INLINE_LEN: usize = 12;

/// A string literal an equality compares views with.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Needle {
    bytes: Vec<u8>,
    /// The view a column holding the literal has, when it is inline; else the view's low 64
    /// bits (length and prefix) widened.
    view: u128,
}

impl Needle {
    fn of(value: &ScalarValue) -> Option<Self> {
        let text = match value {
            ScalarValue::Utf8(Some(t))
            | ScalarValue::Utf8View(Some(t))
            | ScalarValue::LargeUtf8(Some(t)) => t,
            _ => return None,
        };
        let bytes = text.as_bytes().to_vec();
        let len = u32::try_from(bytes.len()).ok()?;
        let view = if bytes.len() <= INLINE_LEN {
            make_view(&bytes, 0, 0)
        } else {
            let mut head = [0u8; 4];
            head.copy_from_slice(bytes.get(..4)?);
            u128::from(u64::from(len) | (u64::from(u32::from_le_bytes(head)) << 32))
        };
        Some(Self { bytes, view })
    }

    /// Which rows of `array` hold the literal (null rows' bits are unspecified).
    fn matches(&self, array: &StringViewArray) -> BooleanBuffer {
        let views = array.views();
        if self.bytes.len() <= INLINE_LEN {
            let needle = self.view;
            BooleanBuffer::collect_bool(views.len(), |i| views[i] == needle)
        } else {
            let head = self.view as u64;
            BooleanBuffer::collect_bool(views.len(), |i| {
                views[i] as u64 == head && array.value(i).as_bytes() == self.bytes.as_slice()
            })
        }
    }
}

/// `column = 'text'` (or `<>`) evaluated on string views by [`Needle::matches`]; the comparison
/// it replaces answers for any other input and for everything but evaluation.
#[derive(Debug)]
pub struct ViewEq {
    /// The `BinaryExpr` this replaces.
    original: Arc<dyn PhysicalExpr>,
    /// Its column side.
    column: Arc<dyn PhysicalExpr>,
    needle: Needle,
    negated: bool,
}

impl ViewEq {
    /// `expr` as a [`ViewEq`] when it is a column compared (`=`, `<>`) with a string literal.
    pub(crate) fn of(expr: &Arc<dyn PhysicalExpr>) -> Option<Arc<dyn PhysicalExpr>> {
        let binary = expr.downcast_ref::<BinaryExpr>()?;
        let negated = match binary.op() {
            Operator::Eq => false,
            Operator::NotEq => true,
            _ => return None,
        };
        let (column, literal) = match (
            binary.left().downcast_ref::<Column>(),
            binary.right().downcast_ref::<Literal>(),
        ) {
            (Some(_), Some(literal)) => (binary.left(), literal),
            _ => match (
                binary.right().downcast_ref::<Column>(),
                binary.left().downcast_ref::<Literal>(),
            ) {
                (Some(_), Some(literal)) => (binary.right(), literal),
                _ => return None,
            },
        };
        let needle = Needle::of(literal.value())?;
        Some(Arc::new(Self {
            original: Arc::clone(expr),
            column: Arc::clone(column),
            needle,
            negated,
        }))
    }

    fn compare(&self, array: &StringViewArray) -> ArrayRef {
        let hits = self.needle.matches(array);
        let values = if self.negated { !&hits } else { hits };
        Arc::new(BooleanArray::new(values, array.nulls().cloned()))
    }
}

// By hand: a derive cannot compare or hash the `dyn PhysicalExpr` fields.
impl PartialEq for ViewEq {
    fn eq(&self, other: &Self) -> bool {
        self.original.eq(&other.original)
    }
}

impl Eq for ViewEq {}

impl Hash for ViewEq {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.original.hash(state);
    }
}

impl fmt::Display for ViewEq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.original, f)
    }
}

impl PhysicalExpr for ViewEq {
    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        self.original.return_field(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        if let ColumnarValue::Array(array) = self.column.evaluate(batch)?
            && let Some(views) = array.as_string_view_opt()
        {
            return Ok(ColumnarValue::Array(self.compare(views)));
        }
        self.original.evaluate(batch)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.original.children()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let original = Arc::clone(&self.original).with_new_children(children)?;
        Ok(Self::of(&original).unwrap_or(original))
    }

    fn evaluate_bounds(&self, children: &[&Interval]) -> Result<Interval> {
        self.original.evaluate_bounds(children)
    }

    fn propagate_constraints(
        &self,
        interval: &Interval,
        children: &[&Interval],
    ) -> Result<Option<Vec<Interval>>> {
        self.original.propagate_constraints(interval, children)
    }

    fn get_properties(&self, children: &[ExprProperties]) -> Result<ExprProperties> {
        self.original.get_properties(children)
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.original.fmt_sql(f)
    }

    fn snapshot(&self) -> Result<Option<Arc<dyn PhysicalExpr>>> {
        Ok(Some(Arc::clone(&self.original)))
    }
}

/// `predicate` with its column-to-string comparisons made [`ViewEq`]s; `None` when it has none.
fn rewrite(predicate: &Arc<dyn PhysicalExpr>) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    let rewritten = Arc::clone(predicate).transform_up(|e| {
        if e.downcast_ref::<ViewEq>().is_some() {
            return Ok(Transformed::no(e));
        }
        Ok(match ViewEq::of(&e) {
            Some(fast) => Transformed::yes(fast),
            None => Transformed::no(e),
        })
    })?;
    Ok(rewritten.transformed.then_some(rewritten.data))
}

/// The physical optimizer rule that puts [`ViewEq`] into the predicates of Parquet scans and
/// filters.
#[derive(Debug, Default)]
pub struct ViewEquality;

impl PhysicalOptimizerRule for ViewEquality {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if let Some(filter) = node.downcast_ref::<FilterExec>() {
                let Some(predicate) = rewrite(filter.predicate())? else {
                    return Ok(Transformed::no(node));
                };
                let filter = FilterExecBuilder::from(filter)
                    .with_predicate(predicate)
                    .build()?;
                return Ok(Transformed::yes(Arc::new(filter)));
            }
            if let Some(exec) = node.downcast_ref::<DataSourceExec>()
                && let Some((config, parquet)) = exec.downcast_to_file_source::<ParquetSource>()
                && let Some(predicate) = parquet.filter()
                && let Some(predicate) = rewrite(&predicate)?
            {
                let source = Arc::new(parquet.with_predicate(predicate));
                let config = FileScanConfigBuilder::from(config.clone())
                    .with_source(source)
                    .build();
                let exec: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(config);
                return Ok(Transformed::yes(exec));
            }
            Ok(Transformed::no(node))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "view_equality"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, ArrayRef, AsArray, StringViewArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::PhysicalExpr;
    use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};

    use super::ViewEq;

    /// Values that share lengths and prefixes with the literals compared below, nulls, the empty
    /// string, and strings longer than a view holds (in the array's data buffer).
    fn values() -> Vec<Option<&'static str>> {
        vec![
            Some("ERROR"),
            Some("ERRO"),
            Some("ERRORS"),
            None,
            Some(""),
            Some("CRITICAL"),
            Some("CRITICAl"),
            Some("connection timed out"),
            Some("connection timed ou"),
            Some("connection timed out!"),
            Some("conn"),
            Some("connection reset by peer"),
            Some("twelve bytes"),
            Some("twelve byteS"),
            Some("thirteen byte"),
            None,
            Some("ERROR"),
        ]
    }

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8View, true)]));
        let array: ArrayRef = Arc::new(StringViewArray::from(values()));
        RecordBatch::try_new(schema, vec![array]).expect("a batch")
    }

    fn comparison(op: Operator, literal: &str, column_left: bool) -> Arc<dyn PhysicalExpr> {
        let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new("s", 0));
        let literal: Arc<dyn PhysicalExpr> =
            Arc::new(Literal::new(ScalarValue::Utf8View(Some(literal.into()))));
        if column_left {
            Arc::new(BinaryExpr::new(column, op, literal))
        } else {
            Arc::new(BinaryExpr::new(literal, op, column))
        }
    }

    fn evaluate(expr: &Arc<dyn PhysicalExpr>) -> ArrayRef {
        expr.evaluate(&batch())
            .and_then(|v| v.into_array(values().len()))
            .expect("evaluates")
    }

    #[test]
    fn answers_equal_arrows_comparison_for_short_long_and_empty_literals() {
        let literals = [
            "ERROR",
            "CRITICAL",
            "",
            "twelve bytes",
            "thirteen byte",
            "connection timed out",
            "connection",
            "absent",
        ];
        for literal in literals {
            for op in [Operator::Eq, Operator::NotEq] {
                for column_left in [true, false] {
                    let original = comparison(op, literal, column_left);
                    let fast = ViewEq::of(&original).expect("a column compared with a string");
                    let (got, want) = (evaluate(&fast), evaluate(&original));
                    assert_eq!(got.as_boolean(), want.as_boolean(), "{op} {literal:?}");
                    assert_eq!(got.null_count(), 2, "{op} {literal:?}: nulls stay null");
                }
            }
        }
        let hits = evaluate(&ViewEq::of(&comparison(Operator::Eq, "ERROR", true)).expect("takes"));
        let hits: Vec<_> = hits.as_boolean().iter().collect();
        assert_eq!(hits.iter().filter(|h| **h == Some(true)).count(), 2);
    }

    #[test]
    fn takes_only_equality_of_a_column_with_a_string() {
        assert!(ViewEq::of(&comparison(Operator::Lt, "ERROR", true)).is_none());
        let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new("s", 0));
        let number: Arc<dyn PhysicalExpr> = Arc::new(Literal::new(ScalarValue::Int64(Some(3))));
        let null: Arc<dyn PhysicalExpr> = Arc::new(Literal::new(ScalarValue::Utf8(None)));
        for other in [number, null] {
            let expr: Arc<dyn PhysicalExpr> =
                Arc::new(BinaryExpr::new(Arc::clone(&column), Operator::Eq, other));
            assert!(ViewEq::of(&expr).is_none(), "{expr}");
        }
    }

    #[test]
    fn a_plain_string_column_is_answered_by_the_original_comparison() {
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
        let array: ArrayRef = Arc::new(arrow::array::StringArray::from(values()));
        let batch = RecordBatch::try_new(schema, vec![array]).expect("a batch");
        let original: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            Arc::new(Column::new("s", 0)),
            Operator::Eq,
            Arc::new(Literal::new(ScalarValue::Utf8(Some("ERROR".into())))),
        ));
        let fast = ViewEq::of(&original).expect("takes");
        let got = fast.evaluate(&batch).and_then(|v| v.into_array(17));
        let want = original.evaluate(&batch).and_then(|v| v.into_array(17));
        assert_eq!(
            got.expect("evaluates").as_boolean(),
            want.expect("evaluates").as_boolean()
        );
    }

    #[test]
    fn shows_and_snapshots_as_the_original() {
        let original = comparison(Operator::Eq, "ERROR", true);
        let fast = ViewEq::of(&original).expect("takes");
        assert_eq!(fast.to_string(), original.to_string());
        let snapshot = fast.snapshot().expect("snapshots").expect("a snapshot");
        assert!(snapshot.downcast_ref::<BinaryExpr>().is_some());
        let children: Vec<Arc<dyn PhysicalExpr>> =
            fast.children().into_iter().map(Arc::clone).collect();
        let rebuilt = Arc::clone(&fast)
            .with_new_children(children)
            .expect("rebuilds");
        assert!(rebuilt.downcast_ref::<ViewEq>().is_some());
    }
}
