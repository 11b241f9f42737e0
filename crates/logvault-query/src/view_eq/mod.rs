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
//! An `IN` list of labels reaches the physical plan as an `OR` of equalities of one column
//! (`NOT IN` as an `AND` of `<>`s), each evaluated over the whole batch and the results
//! combined; one [`ViewEq`] takes them together, a row's view compared with every literal in
//! one pass.
//!
//! [`ViewEquality`] (a physical optimizer rule) replaces such comparisons in the predicates of
//! Parquet scans (the row filter) and of `FilterExec`s (the memory tier's scans) with a [`ViewEq`],
//! which keeps the comparison it replaces and answers with it for anything that is neither a string
//! view array nor a dictionary of strings (`view_eq::dictionary`) at run time. Everything that
//! reasons about the predicate rather than evaluating it sees the original: `snapshot` gives it
//! back (DataFusion's statistics, page index and bloom filter pruning work on the snapshot), and
//! bounds, properties, display and SQL text are the original's. The benchmark's errors per hour at
//! 1M rows spent about 15% of its time in those comparisons (docs/bench/journal.md).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringViewArray, make_view};
use arrow::buffer::{BooleanBuffer, Buffer};
use arrow::datatypes::{DataType, FieldRef, Int32Type, Schema};
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
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, Literal};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};

pub(crate) mod dictionary;

/// The longest string a view holds inline.
const INLINE_LEN: usize = 12;

/// A string literal an equality compares views with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
            // A literal the scan's simplifier moved a column's cast onto (`Level = 'ERROR'` over
            // a column read as a dictionary).
            ScalarValue::Dictionary(_, inner) => return Self::of(inner),
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

    fn inline(&self) -> bool {
        self.bytes.len() <= INLINE_LEN
    }
}

/// Which rows of `array` hold one of `needles` (null rows' bits are unspecified).
///
/// Inline literals (the usual labels) are compared a 64-row word at a time, each row's view
/// against each literal's, with no branch and no index into the array, which the compiler turns
/// into vector compares; an `IN` list of them costs one pass, not one per literal and an `OR`.
fn matches(needles: &[Needle], array: &StringViewArray) -> BooleanBuffer {
    let views = array.views();
    match needles {
        [one] if one.inline() => pack(views, |v| v == one.view),
        // Two literals, the common `IN` list, without a loop over the list in the row loop.
        [a, b] if a.inline() && b.inline() => pack(views, |v| (v == a.view) | (v == b.view)),
        _ if needles.iter().all(Needle::inline) => {
            let inline: Vec<u128> = needles.iter().map(|n| n.view).collect();
            pack(views, |v| {
                inline.iter().fold(false, |hit, n| hit | (v == *n))
            })
        }
        _ => BooleanBuffer::collect_bool(views.len(), |i| {
            needles.iter().any(|n| {
                if n.inline() {
                    views[i] == n.view
                } else {
                    views[i] as u64 == n.view as u64
                        && array.value(i).as_bytes() == n.bytes.as_slice()
                }
            })
        }),
    }
}

/// The bits of `hit` over `items` (views, or dictionary keys), packed 64 to a word.
fn pack<T: Copy>(items: &[T], hit: impl Fn(T) -> bool) -> BooleanBuffer {
    let mut words: Vec<u64> = Vec::with_capacity(items.len().div_ceil(64));
    for chunk in items.chunks(64) {
        let mut word = 0u64;
        for (bit, &item) in chunk.iter().enumerate() {
            word |= u64::from(hit(item)) << bit;
        }
        words.push(word);
    }
    BooleanBuffer::new(Buffer::from_vec(words), 0, items.len())
}

/// `column = 'text'` (or `<>`), an `OR` of such equalities of one column (`IN`) or an `AND` of
/// such `<>`s (`NOT IN`), evaluated on string views by [`matches`]; the expression it replaces
/// answers for any other input and for everything but evaluation.
#[derive(Debug)]
pub struct ViewEq {
    /// The expression this replaces: a `BinaryExpr` comparison, or the `OR` (`AND`) of them.
    original: Arc<dyn PhysicalExpr>,
    /// Its column side.
    column: Arc<dyn PhysicalExpr>,
    /// The literals; a row matches when it equals any of them (none of them, when `negated`).
    needles: Vec<Needle>,
    negated: bool,
}

impl ViewEq {
    /// `expr` as a [`ViewEq`] when it is a column compared (`=`, `<>`) with a string literal, or
    /// an `OR` of two equality [`ViewEq`]s of one column (an `AND` of two `<>` ones).
    pub(crate) fn of(expr: &Arc<dyn PhysicalExpr>) -> Option<Arc<dyn PhysicalExpr>> {
        let binary = expr.downcast_ref::<BinaryExpr>()?;
        let negated = match binary.op() {
            Operator::Eq => false,
            Operator::NotEq => true,
            Operator::Or => return Self::combined(binary, false),
            Operator::And => return Self::combined(binary, true),
            _ => return None,
        };
        let (column, literal) = match (
            column_of(binary.left()),
            binary.right().downcast_ref::<Literal>(),
        ) {
            (Some(_), Some(literal)) => (binary.left(), literal),
            _ => match (
                column_of(binary.right()),
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
            needles: vec![needle],
            negated,
        }))
    }

    /// `left OR right` of two equalities (`negated` false: `IN`), or `left AND right` of two
    /// `<>`s (`negated` true: `NOT IN`), of the same column with string literals, as one
    /// [`ViewEq`]: both sides must be [`ViewEq`]s already, as [`rewrite`] (bottom-up) leaves
    /// them. Its original is the `OR` (`AND`) of the sides' originals, so that what reasons
    /// about the predicate sees no `ViewEq` in it. Nulls stay null either way, as
    /// `NULL OR NULL` and `NULL AND NULL` are.
    fn combined(binary: &BinaryExpr, negated: bool) -> Option<Arc<dyn PhysicalExpr>> {
        let l = binary.left().downcast_ref::<Self>()?;
        let r = binary.right().downcast_ref::<Self>()?;
        if l.negated != negated || r.negated != negated || !l.column.eq(&r.column) {
            return None;
        }
        let original: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            Arc::clone(&l.original),
            *binary.op(),
            Arc::clone(&r.original),
        ));
        let needles = l.needles.iter().chain(&r.needles).cloned().collect();
        Some(Arc::new(Self {
            original,
            column: Arc::clone(&l.column),
            needles,
            negated,
        }))
    }

    fn compare(&self, array: &StringViewArray) -> ArrayRef {
        let hits = matches(&self.needles, array);
        let values = if self.negated { !&hits } else { hits };
        Arc::new(BooleanArray::new(values, array.nulls().cloned()))
    }
}

/// The column `expr` reads, when it is a column or a column cast to a string type (as a scan's
/// expression adapter casts a column the file holds as a dictionary to the table's views).
fn column_of(expr: &Arc<dyn PhysicalExpr>) -> Option<&Column> {
    if let Some(column) = expr.downcast_ref::<Column>() {
        return Some(column);
    }
    let cast = expr.downcast_ref::<CastExpr>()?;
    matches!(
        cast.cast_type(),
        DataType::Utf8View | DataType::Utf8 | DataType::LargeUtf8
    )
    .then(|| cast.expr().downcast_ref::<Column>())
    .flatten()
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
        // A column read as a dictionary is compared a value of its dictionary at a time, not
        // cast to views first.
        let read = match self.column.downcast_ref::<CastExpr>() {
            Some(cast) => cast.expr(),
            None => &self.column,
        };
        if let ColumnarValue::Array(array) = read.evaluate(batch)? {
            if let Some(views) = array.as_string_view_opt() {
                return Ok(ColumnarValue::Array(self.compare(views)));
            }
            if let Some(keys) = array.as_dictionary_opt::<Int32Type>()
                && let Some(hits) = dictionary::compare(&self.needles, keys, self.negated)
            {
                return Ok(ColumnarValue::Array(Arc::new(hits)));
            }
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
        // The original of a merged list has plain comparisons below it: rewritten bottom-up.
        let original = Arc::clone(&self.original).with_new_children(children)?;
        Ok(rewrite(&original)?.unwrap_or(original))
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

    /// `s = a OR s = b OR ...` over `column`, left-deep as the planner builds an `IN` list.
    fn any_of(column: &str, index: usize, literals: &[&str]) -> Arc<dyn PhysicalExpr> {
        chain(column, index, literals, Operator::Eq, Operator::Or)
    }

    /// `s <> a AND s <> b AND ...` over `column`, as the planner builds a `NOT IN` list.
    fn none_of(column: &str, index: usize, literals: &[&str]) -> Arc<dyn PhysicalExpr> {
        chain(column, index, literals, Operator::NotEq, Operator::And)
    }

    fn chain(
        column: &str,
        index: usize,
        literals: &[&str],
        compare: Operator,
        join: Operator,
    ) -> Arc<dyn PhysicalExpr> {
        let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(column, index));
        let one = |literal: &str| -> Arc<dyn PhysicalExpr> {
            Arc::new(BinaryExpr::new(
                Arc::clone(&column),
                compare,
                Arc::new(Literal::new(ScalarValue::Utf8View(Some(literal.into())))),
            ))
        };
        let mut expr = one(literals[0]);
        for literal in &literals[1..] {
            expr = Arc::new(BinaryExpr::new(expr, join, one(literal)));
        }
        expr
    }

    /// Two string view columns of `rows` rows cycling through [`values`] (the second shifted by
    /// three), so words of 64 rows and a partial last word are both crossed.
    fn two_columns(rows: usize) -> RecordBatch {
        let all = values();
        let column = |shift: usize| -> ArrayRef {
            Arc::new(StringViewArray::from(
                (0..rows)
                    .map(|i| all[(i + shift) % all.len()])
                    .collect::<Vec<_>>(),
            ))
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8View, true),
            Field::new("t", DataType::Utf8View, true),
        ]));
        RecordBatch::try_new(schema, vec![column(0), column(3)]).expect("a batch")
    }

    fn does_not_contain_view_eq(expr: &Arc<dyn PhysicalExpr>) -> bool {
        expr.downcast_ref::<ViewEq>().is_none()
            && expr.children().into_iter().all(does_not_contain_view_eq)
    }

    #[test]
    fn an_in_or_not_in_list_of_one_column_is_one_view_eq_answering_as_what_it_replaces() {
        let lists: [&[&str]; 5] = [
            &["ERROR", "CRITICAL"],
            &["ERROR", "CRITICAL", "twelve bytes"],
            &["ERROR", "", "absent", "ERRO"],
            &["ERROR", "connection timed out"],
            &["connection reset by peer", "thirteen byte", "ERRORS"],
        ];
        for rows in [17, 64, 200] {
            let batch = two_columns(rows);
            for (literals, original) in lists.iter().flat_map(|literals| {
                [
                    (*literals, any_of("s", 0, literals)),
                    (*literals, none_of("s", 0, literals)),
                ]
            }) {
                let fast = super::rewrite(&original)
                    .expect("rewrites")
                    .expect("a rewrite");
                let one = fast.downcast_ref::<ViewEq>().expect("one ViewEq");
                assert_eq!(one.needles.len(), literals.len(), "{literals:?}");
                let got = fast.evaluate(&batch).and_then(|v| v.into_array(rows));
                let want = original.evaluate(&batch).and_then(|v| v.into_array(rows));
                let (got, want) = (got.expect("evaluates"), want.expect("evaluates"));
                assert_eq!(got.as_boolean(), want.as_boolean(), "{rows} {literals:?}");
                assert!(got.as_boolean().true_count() > 0, "{rows} {literals:?}");
                assert_eq!(got.null_count(), want.null_count());
                let snapshot = fast.snapshot().expect("snapshots").expect("a snapshot");
                assert!(does_not_contain_view_eq(&snapshot), "{snapshot}");
                assert_eq!(fast.to_string(), original.to_string());
            }
        }
    }

    #[test]
    fn two_columns_or_an_equality_beside_a_negation_keep_their_sides_apart() {
        let batch = two_columns(100);
        let not_equal: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            Arc::new(Column::new("s", 0)),
            Operator::NotEq,
            Arc::new(Literal::new(ScalarValue::Utf8View(Some("ERROR".into())))),
        ));
        let mixed: [Arc<dyn PhysicalExpr>; 4] = [
            Arc::new(BinaryExpr::new(
                any_of("s", 0, &["ERROR"]),
                Operator::Or,
                any_of("t", 1, &["CRITICAL"]),
            )),
            Arc::new(BinaryExpr::new(
                any_of("s", 0, &["CRITICAL"]),
                Operator::Or,
                Arc::clone(&not_equal),
            )),
            Arc::new(BinaryExpr::new(
                any_of("s", 0, &["CRITICAL"]),
                Operator::And,
                not_equal,
            )),
            Arc::new(BinaryExpr::new(
                none_of("s", 0, &["ERROR"]),
                Operator::And,
                none_of("t", 1, &["CRITICAL"]),
            )),
        ];
        for original in mixed {
            let fast = super::rewrite(&original)
                .expect("rewrites")
                .expect("its sides rewritten");
            let both = fast.downcast_ref::<BinaryExpr>().expect("still two sides");
            assert!(both.left().downcast_ref::<ViewEq>().is_some(), "{fast}");
            assert!(both.right().downcast_ref::<ViewEq>().is_some(), "{fast}");
            let got = fast.evaluate(&batch).and_then(|v| v.into_array(100));
            let want = original.evaluate(&batch).and_then(|v| v.into_array(100));
            assert_eq!(
                got.expect("evaluates").as_boolean(),
                want.expect("evaluates").as_boolean(),
                "{original}"
            );
        }
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
