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

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::StringViewArray;
use arrow::array::{Array, ArrayRef, AsArray, DictionaryArray, Int32Array, StringArray};
use arrow::datatypes::Int32Type;
use foldhash::fast::FixedState;

/// A column of at most this many values is kept as a dictionary whatever its batch's rows.
const MAX_VALUES: usize = 256;

/// The string view columns of `columns` that hold few values, each as (its index, the column as
/// a dictionary: `Int32` keys, `Utf8` values, the type the string grouping reads). A column is
/// given up as soon as its values pass the bound, so one of many values costs a look-up per row
/// until then.
pub(super) fn of_few_values(columns: &[ArrayRef]) -> Vec<(usize, ArrayRef)> {
    columns
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((i, dictionary_of(c.as_string_view_opt()?)?)))
        .collect()
}

/// The column as a dictionary, its values in the order they first appear; `None` past the bound.
///
/// A string of at most 12 bytes is inlined in its 16-byte view (length, then the bytes), so the
/// view with the bytes past the length masked is the string: such rows are looked up by that
/// number, without reading a string or comparing bytes (most values of few-valued columns are
/// short: levels, codes, regions). Longer ones are looked up by their text. A promotion builds
/// this for every batch of every column of few values; arrow's `StringDictionaryBuilder`, which
/// hashes and compares each row's text, took about 0.2 s more CPU for the 10M-row suite.
fn dictionary_of(views: &StringViewArray) -> Option<ArrayRef> {
    let rows = views.len();
    let bound = MAX_VALUES.max(rows / 8);
    let mut keys: Vec<i32> = Vec::with_capacity(rows);
    let mut values: Vec<&str> = Vec::new();
    let mut short: HashMap<u128, i32, FixedState> = HashMap::default();
    let mut long: HashMap<&str, i32, FixedState> = HashMap::default();
    for (i, view) in views.views().iter().enumerate() {
        if views.is_null(i) {
            keys.push(0);
            continue;
        }
        let next = i32::try_from(values.len()).ok()?;
        let len = *view as u32;
        let key = if len <= 12 {
            // The length (32 bits) and the string's bytes. Arrow requires the bytes after them to
            // be zero (and refuses a view that breaks this); masking them costs nothing.
            let kept = 32 + 8 * len;
            let masked = if kept >= 128 {
                *view
            } else {
                *view & ((1u128 << kept) - 1)
            };
            *short.entry(masked).or_insert_with(|| {
                values.push(views.value(i));
                next
            })
        } else {
            let text = views.value(i);
            *long.entry(text).or_insert_with(|| {
                values.push(text);
                next
            })
        };
        if values.len() > bound {
            return None;
        }
        keys.push(key);
    }
    let keys = Int32Array::new(keys.into(), views.nulls().cloned());
    let values: ArrayRef = Arc::new(StringArray::from_iter_values(values));
    let dictionary = DictionaryArray::<Int32Type>::try_new(keys, values).ok()?;
    Some(Arc::new(dictionary))
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

    /// Short (inlined) and long strings, nulls, a value that is a prefix of another, and an
    /// empty string: every row reads back as it was, each value is held once, in the order
    /// values first appear.
    #[test]
    fn short_and_long_values_each_get_one_key_in_order_of_appearance() {
        let pick = [
            Some("INFO"),
            None,
            Some("web-042.prod.example.com"),
            Some(""),
            Some("INF"),
            Some("exactly12byt"),
            Some("thirteen byte"),
            Some("web-042.prod.example.com"),
            Some("INFO"),
            Some("exactly12byt"),
        ];
        let rows = views((0..2_000).map(|i| pick[(i * 7) % pick.len()].map(String::from)));
        let found = of_few_values(std::slice::from_ref(&rows));
        let [(0, dictionary)] = found.as_slice() else {
            panic!("{found:?}")
        };
        let back = arrow::compute::cast(dictionary, &DataType::Utf8View).unwrap();
        assert_eq!(&back, &rows, "the same strings and nulls, row for row");
        let dictionary = dictionary.as_dictionary::<Int32Type>();
        let values = dictionary.values().as_string::<i32>();
        let held: Vec<&str> = values.iter().flatten().collect();
        let mut expected: Vec<&str> = Vec::new();
        for v in rows.as_string_view().iter().flatten() {
            if !expected.contains(&v) {
                expected.push(v);
            }
        }
        assert_eq!(held, expected);
        assert_eq!(held.len(), 6);
        // A column of nulls only is a dictionary of no values.
        let nulls = views((0..100).map(|_| None));
        let found = of_few_values(std::slice::from_ref(&nulls));
        let [(0, dictionary)] = found.as_slice() else {
            panic!("{found:?}")
        };
        assert_eq!(dictionary.null_count(), 100);
        assert_eq!(dictionary.as_dictionary::<Int32Type>().values().len(), 0);
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
