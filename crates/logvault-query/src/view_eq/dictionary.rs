//! A [`super::ViewEq`] over a column read as a dictionary.
//!
//! A segment scan reads a filter's column of few values as a dictionary when every row group
//! of the segment stores it in dictionary pages (`crate::provider`, [`hintable`]): the reader then
//! hands out each row's key into the column chunk's values instead of building a string view
//! per row, and the comparison is made once per value of the dictionary, each row taking its
//! key's answer. `Level IN ('ERROR', 'CRITICAL')` over 10M rows read as views spent about as
//! much building the views as comparing them (docs/bench/journal.md).
//!
//! A dictionary with more values than a batch has rows (a chunk of many values that still fit
//! its dictionary page) is compared a key at a time instead, each value at most once.

use arrow::array::{Array, AsArray, BooleanArray, DictionaryArray};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::{DataType, Int32Type};
use datafusion::parquet::basic::Encoding;
use datafusion::parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};

use super::{Needle, pack};

/// The largest dictionary page (bytes as stored) of a column chunk the scan reads as a
/// dictionary: a column of labels (levels, hosts, services, result codes) has a dictionary of a
/// few kilobytes; a column of ids that still fits its dictionary page is left to string views,
/// whose reading costs the same whatever the number of values.
pub(crate) const MAX_DICTIONARY_PAGE: i64 = 64 * 1024;

/// Whether a filter's column may be read from a column chunk as a dictionary: its data pages are
/// all dictionary-encoded (else the reader would build a dictionary of plain values by hashing
/// them) and its dictionary page is small ([`MAX_DICTIONARY_PAGE`]). A chunk whose footer says
/// nothing of its pages' encodings is not.
pub(crate) fn hintable(chunk: &ColumnChunkMetaData) -> bool {
    let Some(dictionary) = chunk.dictionary_page_offset() else {
        return false;
    };
    let small = chunk
        .data_page_offset()
        .checked_sub(dictionary)
        .is_some_and(|size| (0..=MAX_DICTIONARY_PAGE).contains(&size));
    small
        && chunk.page_encoding_stats_mask().is_some_and(|mask| {
            mask.is_only(Encoding::RLE_DICTIONARY) || mask.is_only(Encoding::PLAIN_DICTIONARY)
        })
}

/// Which of the string columns `labels` the segment of `footer` stores as small dictionaries
/// ([`hintable`]) in every row group (none when it has no row group).
pub(crate) fn stored_as_dictionaries(footer: &ParquetMetaData, labels: &[String]) -> Vec<String> {
    let columns = footer.file_metadata().schema_descr().columns();
    let row_groups = footer.row_groups();
    labels
        .iter()
        .filter(|label| {
            // A top-level column: its path is its name alone.
            let Some(index) = columns
                .iter()
                .position(|c| c.path().parts() == [label.as_str()])
            else {
                return false;
            };
            !row_groups.is_empty()
                && row_groups
                    .iter()
                    .all(|rg| rg.columns().get(index).is_some_and(hintable))
        })
        .cloned()
        .collect()
}

/// Which rows of `keys` hold one of `needles` (none of them, when `negated`), null where the row
/// is null (a null key or a key to a null value); `None` when the dictionary's values are not
/// strings.
pub(super) fn compare(
    needles: &[Needle],
    keys: &DictionaryArray<Int32Type>,
    negated: bool,
) -> Option<BooleanArray> {
    let values = keys.values();
    let value = value_reader(values.as_ref())?;
    let hit = |i: usize| value(i).is_some_and(|v| needles.iter().any(|n| n.bytes == v));
    let indices = keys.keys().values();
    // A null row's key may be anything: its bit is masked by the nulls below.
    let hits = if values.len() <= 256 {
        // The usual labels: each value's answer in a table a key's low byte indexes, without a
        // bounds check (a key past the values is a null row's, whose bit the nulls mask).
        let mut answers = [0u8; 256];
        for (i, answer) in answers.iter_mut().enumerate().take(values.len()) {
            *answer = u8::from(hit(i));
        }
        pack(indices, |k| answers[usize::from(k as u8)] == 1)
    } else if values.len() <= indices.len() {
        let answers: Vec<bool> = (0..values.len()).map(hit).collect();
        pack(indices, |k| {
            usize::try_from(k)
                .ok()
                .and_then(|k| answers.get(k).copied())
                .unwrap_or(false)
        })
    } else {
        // Each value answered when a row first holds it: 0 not yet, 1 no, 2 yes.
        let mut answers = vec![0u8; values.len()];
        BooleanBuffer::collect_bool(indices.len(), |row| {
            let Some(k) = usize::try_from(indices[row])
                .ok()
                .filter(|&k| k < answers.len())
            else {
                return false;
            };
            if answers[k] == 0 {
                answers[k] = 1 + u8::from(hit(k));
            }
            answers[k] == 2
        })
    };
    let hits = if negated { !&hits } else { hits };
    Some(BooleanArray::new(hits, keys.logical_nulls()))
}

/// A reader of a dictionary's values: the bytes of the `i`th (`None` when null).
type ValueReader<'a> = Box<dyn Fn(usize) -> Option<&'a [u8]> + 'a>;

/// A [`ValueReader`] of `values`, for the string types a dictionary's values may have.
fn value_reader(values: &dyn Array) -> Option<ValueReader<'_>> {
    Some(match values.data_type() {
        DataType::Utf8 => {
            let values = values.as_string::<i32>();
            Box::new(move |i| values.is_valid(i).then(|| values.value(i).as_bytes()))
        }
        DataType::LargeUtf8 => {
            let values = values.as_string::<i64>();
            Box::new(move |i| values.is_valid(i).then(|| values.value(i).as_bytes()))
        }
        DataType::Utf8View => {
            let values = values.as_string_view();
            Box::new(move |i| values.is_valid(i).then(|| values.value(i).as_bytes()))
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        Array, ArrayRef, AsArray, DictionaryArray, Int32Array, Int64Array, StringArray,
        StringViewArray,
    };
    use arrow::datatypes::{DataType, Field, Int32Type, Schema};
    use arrow::record_batch::RecordBatch;
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::PhysicalExpr;
    use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, Literal};

    use super::super::{ViewEq, rewrite};

    /// A dictionary of `values` with `keys` (a null key is a null row), as a batch's only
    /// column `s`.
    fn batch(values: ArrayRef, keys: Vec<Option<i32>>) -> RecordBatch {
        let dictionary =
            DictionaryArray::<Int32Type>::try_new(Int32Array::from(keys), values).expect("keys");
        let schema = Arc::new(Schema::new(vec![Field::new(
            "s",
            dictionary.data_type().clone(),
            true,
        )]));
        RecordBatch::try_new(schema, vec![Arc::new(dictionary)]).expect("a batch")
    }

    fn literal(text: &str) -> Arc<dyn PhysicalExpr> {
        Arc::new(Literal::new(ScalarValue::Utf8View(Some(text.into()))))
    }

    /// `s` as the scan's expression adapter writes it: cast to the table's string views.
    fn cast_column() -> Arc<dyn PhysicalExpr> {
        Arc::new(CastExpr::new(
            Arc::new(Column::new("s", 0)),
            DataType::Utf8View,
            None,
        ))
    }

    /// `s IN (literals)` (or `NOT IN`) over the cast column, as the planner chains it.
    fn list(literals: &[&str], negated: bool) -> Arc<dyn PhysicalExpr> {
        let (compare, join) = if negated {
            (Operator::NotEq, Operator::And)
        } else {
            (Operator::Eq, Operator::Or)
        };
        let one = |l: &str| -> Arc<dyn PhysicalExpr> {
            Arc::new(BinaryExpr::new(cast_column(), compare, literal(l)))
        };
        let mut expr = one(literals[0]);
        for l in &literals[1..] {
            expr = Arc::new(BinaryExpr::new(expr, join, one(l)));
        }
        expr
    }

    /// The rows of a dictionary: few values (many rows each), more values than rows, and 300
    /// values over 700 rows; with null keys, an empty string and a long one. (Not a
    /// null value: a Parquet reader writes a null row as a null key, and arrow's cast to views
    /// takes a key to a null value for a value; that case is below.)
    fn cases() -> Vec<RecordBatch> {
        let labels: ArrayRef = Arc::new(StringArray::from(vec![
            "INFO",
            "ERROR",
            "WARN",
            "CRITICAL",
            "",
            "a label longer than a view holds",
        ]));
        let keys: Vec<Option<i32>> = (0..300)
            .map(|i| (i % 7 != 3).then_some(i * 5 % 6))
            .collect();
        let many: ArrayRef = Arc::new(StringViewArray::from_iter_values((0..500).map(|i| {
            if i % 50 == 7 {
                "ERROR".to_owned()
            } else {
                format!("v{i}")
            }
        })));
        let few_rows: Vec<Option<i32>> = vec![Some(7), Some(8), None, Some(57), Some(7), Some(499)];
        // More values than a key's low byte tells apart, fewer than the rows.
        let hosts: ArrayRef = Arc::new(StringArray::from_iter_values((0..300).map(|i| {
            if i == 70 {
                "ERROR".to_owned()
            } else {
                format!("host-{i}")
            }
        })));
        let host_keys: Vec<Option<i32>> = (0..700)
            .map(|i| (i % 11 != 5).then_some(i * 13 % 300))
            .collect();
        vec![
            batch(labels, keys),
            batch(many, few_rows),
            batch(hosts, host_keys),
        ]
    }

    #[test]
    fn a_dictionary_column_cast_to_views_is_compared_by_value_as_the_cast_would_be() {
        let lists: [&[&str]; 4] = [
            &["ERROR"],
            &["ERROR", "CRITICAL"],
            &["", "a label longer than a view holds", "absent"],
            &["v8", "ERROR"],
        ];
        for batch in cases() {
            let rows = batch.num_rows();
            for literals in lists {
                for negated in [false, true] {
                    let original = list(literals, negated);
                    let fast = rewrite(&original).expect("rewrites").expect("a ViewEq");
                    assert!(fast.downcast_ref::<ViewEq>().is_some(), "{fast}");
                    let got = fast.evaluate(&batch).and_then(|v| v.into_array(rows));
                    let want = original.evaluate(&batch).and_then(|v| v.into_array(rows));
                    let (got, want) = (got.expect("evaluates"), want.expect("evaluates"));
                    assert_eq!(
                        got.as_boolean(),
                        want.as_boolean(),
                        "{literals:?} {negated}"
                    );
                    assert!(got.null_count() > 0, "null keys stay null");
                }
            }
        }
        // A key to a null value is a null row, either way round.
        let values: ArrayRef = Arc::new(StringArray::from(vec![Some("ERROR"), None]));
        let nulls = batch(values, vec![Some(0), Some(1), None]);
        for negated in [false, true] {
            let fast = rewrite(&list(&["ERROR"], negated)).expect("rewrites");
            let got = fast.expect("a ViewEq").evaluate(&nulls);
            let got = got.and_then(|v| v.into_array(3)).expect("evaluates");
            let got: Vec<_> = got.as_boolean().iter().collect();
            assert_eq!(got, vec![Some(!negated), None, None], "{negated}");
        }
    }

    #[test]
    fn a_dictionary_literal_and_an_uncast_dictionary_column_are_taken_too() {
        // What the scan's simplifier leaves when it moves the column's cast onto the literal.
        for batch in cases() {
            let DataType::Dictionary(_, value_type) = batch.schema().field(0).data_type().clone()
            else {
                unreachable!("a dictionary column");
            };
            let value = ScalarValue::Utf8(Some("ERROR".into())).cast_to(&value_type);
            let dictionary_literal = ScalarValue::Dictionary(
                Box::new(DataType::Int32),
                Box::new(value.expect("a cast")),
            );
            let original: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
                Arc::new(Column::new("s", 0)),
                Operator::Eq,
                Arc::new(Literal::new(dictionary_literal)),
            ));
            let fast = ViewEq::of(&original).expect("a ViewEq");
            let rows = batch.num_rows();
            let got = fast.evaluate(&batch).and_then(|v| v.into_array(rows));
            let want = original.evaluate(&batch).and_then(|v| v.into_array(rows));
            let (got, want) = (got.expect("evaluates"), want.expect("evaluates"));
            assert_eq!(got.as_boolean(), want.as_boolean());
            assert!(got.as_boolean().true_count() > 0);
        }
    }

    #[test]
    fn a_cast_of_another_type_or_to_another_type_is_answered_by_the_original() {
        // A number cast to a string is not a column of strings: the original answers.
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Int64, true)]));
        let numbers: ArrayRef = Arc::new(Int64Array::from(vec![1, 22, 1]));
        let numbers = RecordBatch::try_new(schema, vec![numbers]).expect("a batch");
        let original: Arc<dyn PhysicalExpr> =
            Arc::new(BinaryExpr::new(cast_column(), Operator::Eq, literal("1")));
        let fast = ViewEq::of(&original).expect("a ViewEq");
        let got = fast.evaluate(&numbers).and_then(|v| v.into_array(3));
        let got = got.expect("evaluates");
        let hits: Vec<_> = got.as_boolean().iter().collect();
        assert_eq!(hits, vec![Some(true), Some(false), Some(true)]);
        // A cast to a number is not taken.
        let to_number: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            Arc::new(CastExpr::new(
                Arc::new(Column::new("s", 0)),
                DataType::Int64,
                None,
            )),
            Operator::Eq,
            Arc::new(Literal::new(ScalarValue::Int64(Some(1)))),
        ));
        assert!(ViewEq::of(&to_number).is_none());
    }

    /// The footer of a Parquet file of one row group holding `labels` (a few values),
    /// `ids` (10,000 distinct 24-byte values: a dictionary of about 280 KB, under the 1 MiB
    /// limit), `tags` (distinct 200-byte values past that limit: plain pages) and `plain` (few
    /// values, written without a dictionary).
    fn footer() -> datafusion::parquet::file::metadata::ParquetMetaData {
        use datafusion::parquet::arrow::ArrowWriter;
        use datafusion::parquet::file::properties::WriterProperties;
        use datafusion::parquet::schema::types::ColumnPath;
        let rows = 10_000;
        let column = |f: &dyn Fn(usize) -> String| -> ArrayRef {
            Arc::new(StringArray::from_iter_values((0..rows).map(f)))
        };
        let batch = RecordBatch::try_from_iter([
            (
                "labels",
                column(&|i| ["INFO", "WARN", "ERROR"][i % 3].to_owned()),
            ),
            ("ids", column(&|i| format!("req-{i:020}"))),
            ("tags", column(&|i| format!("{i:06}-{}", "t".repeat(194)))),
            ("plain", column(&|i| ["a", "b"][i % 2].to_owned())),
        ])
        .expect("a batch");
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(rows))
            .set_column_dictionary_enabled(ColumnPath::from("plain"), false)
            .build();
        let mut file = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut file, batch.schema(), Some(properties)).expect("a writer");
        writer.write(&batch).expect("written");
        writer.close().expect("closed");
        let bytes = bytes::Bytes::from(file);
        datafusion::parquet::file::metadata::ParquetMetaDataReader::new()
            .parse_and_finish(&bytes)
            .expect("a footer")
    }

    #[test]
    fn only_columns_stored_in_small_dictionaries_are_read_as_dictionaries() {
        let footer = footer();
        let names = ["labels", "ids", "tags", "plain", "absent"].map(str::to_owned);
        assert_eq!(
            super::stored_as_dictionaries(&footer, &names),
            vec!["labels".to_owned()]
        );
        let chunk = |i: usize| &footer.row_group(0).columns()[i];
        // `ids` is all dictionary pages, with a dictionary page past the bound.
        let ids = chunk(1);
        let dictionary = ids.dictionary_page_offset().expect("a dictionary page");
        assert!(ids.data_page_offset() - dictionary > super::MAX_DICTIONARY_PAGE);
        assert!(!super::hintable(ids));
    }
}
