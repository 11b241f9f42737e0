//! String columns of few values, held by a hot batch also as dictionaries.
//!
//! The memory tier holds string columns as views (16 bytes a row), the type queries see. A query
//! grouping by a column of few values (`Level`, `Host`, a result code) reads it from the segments
//! as a dictionary and aggregates by key (`logvault_query`'s string grouping); from views it looks
//! up every row's view instead, and reads all of them: at 10M rows a hot count by level read
//! 160 MB of views and took 30 ms, against 23 ms from the segments. So a batch's string column
//! of few values is kept as a dictionary too (`Int32` keys, 4 bytes a row, and each value once),
//! written into the batch's zeroizing buffer beside the views (wiped with them, counted in the
//! tier's bound), and handed to a scan that asks for the column as a dictionary
//! ([`super::HotSegment::read_as`]). "Few" is the grouping's own bound for aggregating by key: at
//! most [`MAX_VALUES`] values, or one per eight rows of the batch.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringDictionaryBuilder};
use arrow::datatypes::Int32Type;

/// A column of at most this many values is kept as a dictionary whatever its batch's rows.
const MAX_VALUES: usize = 256;

/// The string view columns of `columns` that hold few values, each as (its index, the column as
/// a dictionary: `Int32` keys, `Utf8` values, the type the string grouping reads). A column is given up as soon as its values pass the
/// bound, so one of many values costs a look-up per row until then.
pub(super) fn of_few_values(columns: &[ArrayRef]) -> Vec<(usize, ArrayRef)> {
    columns
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((i, dictionary_of(c.as_string_view_opt()?)?)))
        .collect()
}

fn dictionary_of(views: &arrow::array::StringViewArray) -> Option<ArrayRef> {
    let rows = views.len();
    let bound = MAX_VALUES.max(rows / 8);
    let mut builder = StringDictionaryBuilder::<Int32Type>::with_capacity(rows, bound, bound * 16);
    for value in views {
        match value {
            Some(v) => {
                let key = builder.append(v).ok()?;
                // Keys are handed out in order: a new value takes the next one.
                if usize::try_from(key).ok()? >= bound {
                    return None;
                }
            }
            None => builder.append_null(),
        }
    }
    Some(Arc::new(builder.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringViewArray};
    use arrow::datatypes::DataType;

    fn views(values: impl IntoIterator<Item = Option<String>>) -> ArrayRef {
        Arc::new(values.into_iter().collect::<StringViewArray>())
    }

    #[test]
    fn a_column_of_few_values_is_kept_as_a_dictionary_of_the_same_strings() {
        let level = views((0..1_000).map(|i| (i % 7 != 3).then(|| format!("level {}", i % 5))));
        let found = of_few_values(&[Arc::new(Int64Array::from(vec![1; 1_000])), level.clone()]);
        let [(1, dictionary)] = found.as_slice() else {
            panic!("{found:?}")
        };
        let dictionary_type =
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        assert_eq!(dictionary.data_type(), &dictionary_type);
        let back = arrow::compute::cast(dictionary, &DataType::Utf8View).unwrap();
        assert_eq!(&back, &level, "the same strings and nulls, row for row");
        assert_eq!(dictionary.as_dictionary::<Int32Type>().values().len(), 5);
    }

    #[test]
    fn a_column_of_many_values_is_not() {
        // 300 values in 1000 rows: over 256 and over one per eight rows.
        let many = views((0..1_000).map(|i| Some(format!("user {}", i % 300))));
        assert!(of_few_values(&[many]).is_empty());
        // 300 values in 4000 rows: one per 13 rows, under the row bound (500).
        let repeated = views((0..4_000).map(|i| Some(format!("host {}", i % 300))));
        assert_eq!(of_few_values(&[repeated]).len(), 1);
        // The bound itself: 256 values are kept, 257 are not.
        let at = views((0..1_000).map(|i| Some(format!("v{}", i % 256))));
        let over = views((0..1_000).map(|i| Some(format!("v{}", i % 257))));
        let kept: Vec<usize> = of_few_values(&[at, over]).iter().map(|(i, _)| *i).collect();
        assert_eq!(kept, [0]);
    }
}
