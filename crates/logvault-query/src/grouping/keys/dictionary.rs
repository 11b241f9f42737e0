//! Group ids for a column read as an Arrow dictionary (`super::super::dictionary`): each
//! value of a dictionary is looked up once while the batches share it, a value getting a group
//! only when a row holds it; then a row costs its key. A batch whose every aggregate is a row
//! count is counted by key instead, without an id per row ([`StringGroups::count_dictionary`]).

use arrow::array::{Array, DictionaryArray, StringArray};
use arrow::datatypes::Int32Type;

use super::{GroupError, INLINE_LEN, KeyRows, StringGroups};

#[derive(Default)]
pub(super) struct DictionaryGroups {
    /// The dictionary's values (kept, so that their buffers are not reused while compared).
    pub(super) values: Option<StringArray>,
    /// The group of each value, [`UNSEEN`] until a row holds it.
    pub(super) ids: Vec<u32>,
    /// Rows of each value in the batch being counted, in [`KEY_LANES`] lanes.
    counts: Vec<[u32; KEY_LANES]>,
}

/// Counters per dictionary value when counting by key: eight, so that a value held by most rows
/// (`INFO` of a `Level`) comes back to one counter only every eighth row (0.64 -> 0.42 ns a row
/// against four lanes, measured on a loop over 8,192 keys of five skewed values).
pub(crate) const KEY_LANES: usize = 8;

/// A dictionary value no row has held yet.
pub(super) const UNSEEN: u32 = u32::MAX;

/// A dictionary of at most this many values, or one value per [`KEY_LANES`] rows of its batch,
/// is counted by key ([`StringGroups::count_dictionary`]): the counters (and the sums of
/// `super::super::by_key`) are zeroed for every value of it, each batch, which a larger
/// dictionary would make cost more than a group id per row.
const COUNTED_VALUES: usize = 256;

impl DictionaryGroups {
    /// Whether `values` is the dictionary the ids are for (the same buffers, the same length).
    fn holds(&self, values: &StringArray) -> bool {
        self.values.as_ref().is_some_and(|held| {
            held.len() == values.len()
                && held.offset() == values.offset()
                && held.values().as_ptr() == values.values().as_ptr()
                && held.offsets().inner().inner().as_ptr()
                    == values.offsets().inner().inner().as_ptr()
        })
    }

    /// `array`'s values, with the ids made theirs (all [`UNSEEN`]) unless they already are.
    fn values_of<'a>(
        &mut self,
        array: &'a DictionaryArray<Int32Type>,
    ) -> Result<&'a StringArray, GroupError> {
        let Some(values) = array.values().as_any().downcast_ref::<StringArray>() else {
            return Err(GroupError::NotStrings);
        };
        if !self.holds(values) {
            self.values = Some(values.clone());
            self.ids.clear();
            self.ids.resize(values.len(), UNSEEN);
        }
        Ok(values)
    }
}

impl StringGroups {
    /// [`Self::intern`] for a column read as a dictionary: each distinct key's value is looked
    /// up once while the dictionary stays the same, then each row's id is its key's.
    ///
    /// # Errors
    /// More than `u32::MAX` groups, or a key outside the dictionary (Arrow's dictionary arrays
    /// never have one).
    pub(crate) fn intern_dictionary(
        &mut self,
        array: &DictionaryArray<Int32Type>,
        ids: &mut Vec<usize>,
    ) -> Result<(), GroupError> {
        ids.clear();
        let values = self.dictionary.values_of(array)?;
        let keys = array.keys();
        ids.reserve(array.len());
        match keys.nulls().filter(|n| n.null_count() > 0) {
            None => {
                // Every row's id from the table in one pass (no capacity check, no error path
                // per row); the rows of values not seen before (a new dictionary's first batch)
                // are then given their ids one by one.
                let table = &self.dictionary.ids;
                let mut unseen = false;
                ids.extend(keys.values().iter().map(|&key| {
                    match usize::try_from(key).ok().and_then(|k| table.get(k)) {
                        Some(&id) if id != UNSEEN => id as usize,
                        _ => {
                            unseen = true;
                            usize::MAX
                        }
                    }
                }));
                if unseen {
                    for (slot, &key) in ids.iter_mut().zip(keys.values()) {
                        if *slot == usize::MAX {
                            *slot = self.key_id(values, key)? as usize;
                        }
                    }
                }
            }
            Some(nulls) if nulls.null_count() * 2 > nulls.len() => {
                // Mostly null: every row the null group, then the valid rows by their set bits.
                let null = self.null_id()? as usize;
                ids.resize(array.len(), null);
                for i in nulls.valid_indices() {
                    let (Some(&key), Some(slot)) = (keys.values().get(i), ids.get_mut(i)) else {
                        continue;
                    };
                    *slot = self.key_id(values, key)? as usize;
                }
            }
            Some(nulls) => {
                for (i, &key) in keys.values().iter().enumerate() {
                    let id = if nulls.is_null(i) {
                        self.null_id()?
                    } else {
                        self.key_id(values, key)?
                    };
                    ids.push(id as usize);
                }
            }
        }
        Ok(())
    }

    /// Whether [`Self::count_dictionary`] takes `array`: no null key, and a dictionary small for
    /// the batch ([`COUNTED_VALUES`]). It changes nothing, so a caller can ask before other work.
    pub(crate) fn counts_by_key(array: &DictionaryArray<Int32Type>) -> bool {
        let keys = array.keys();
        keys.null_count() == 0
            && array.values().len() <= (keys.len() / KEY_LANES).max(COUNTED_VALUES)
    }

    /// Each group's rows in `array` (each key a row holds, once, with its group and rows) into `out`,
    /// counted by key without an id per row: the keys are counted in [`KEY_LANES`] lanes per
    /// value (row `i` in lane `i % 8`, so that rows of one value do not wait on one counter), then each
    /// value a row holds is given its group. `false` (nothing counted) for a batch with null keys
    /// or a dictionary large for the batch ([`COUNTED_VALUES`]), which [`Self::intern_dictionary`]
    /// takes.
    ///
    /// # Errors
    /// As [`Self::intern_dictionary`].
    pub(crate) fn count_dictionary(
        &mut self,
        array: &DictionaryArray<Int32Type>,
        out: &mut Vec<KeyRows>,
    ) -> Result<bool, GroupError> {
        out.clear();
        if !Self::counts_by_key(array) {
            return Ok(false);
        }
        let keys = array.keys();
        let values = self.dictionary.values_of(array)?;
        let counts = &mut self.dictionary.counts;
        counts.clear();
        counts.resize(values.len(), [0; KEY_LANES]);
        let chunks = keys.values().chunks_exact(KEY_LANES);
        let rest = chunks.remainder();
        for chunk in chunks {
            for (lane, &key) in chunk.iter().enumerate() {
                match usize::try_from(key).ok().and_then(|k| counts.get_mut(k)) {
                    Some(lanes) => lanes[lane] += 1,
                    None => return Err(GroupError::BadKey),
                }
            }
        }
        for &key in rest {
            match usize::try_from(key).ok().and_then(|k| counts.get_mut(k)) {
                Some(lanes) => lanes[0] += 1,
                None => return Err(GroupError::BadKey),
            }
        }
        // Each value a row holds, with its rows; then the value's group.
        out.extend(counts.iter().enumerate().filter_map(|(key, lanes)| {
            let rows: u32 = lanes.iter().sum();
            (rows > 0).then_some(KeyRows {
                key,
                group: 0,
                rows: i64::from(rows),
            })
        }));
        for counted in out.iter_mut() {
            // `key` < the dictionary's length, which fits an `i32` key.
            counted.group = self.key_id(values, counted.key as i32)? as usize;
        }
        Ok(true)
    }

    #[inline(always)]
    fn key_id(&mut self, values: &StringArray, key: i32) -> Result<u32, GroupError> {
        let k = usize::try_from(key).map_err(|_| GroupError::BadKey)?;
        match self.dictionary.ids.get(k) {
            Some(&id) if id != UNSEEN => Ok(id),
            Some(_) => self.value_id(values, k),
            None => Err(GroupError::BadKey),
        }
    }

    #[inline(never)]
    fn value_id(&mut self, values: &StringArray, k: usize) -> Result<u32, GroupError> {
        let id = if values.is_null(k) {
            self.null_id()?
        } else {
            let value = values.value(k);
            if value.len() <= INLINE_LEN as usize {
                // A short string's view is its bytes: the same key as the views' rows get.
                self.map_id(arrow::array::make_view(value.as_bytes(), 0, 0), || value)?
            } else {
                self.long_id(value)?
            }
        };
        if let Some(slot) = self.dictionary.ids.get_mut(k) {
            *slot = id;
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grouping::keys::tests::ids;

    fn dictionary(values: &[Option<&str>], keys: &[Option<i32>]) -> DictionaryArray<Int32Type> {
        DictionaryArray::new(
            arrow::array::Int32Array::from(keys.to_vec()),
            std::sync::Arc::new(StringArray::from(values.to_vec())),
        )
    }

    const LONG: &str = "a string longer than twelve bytes";

    /// A dictionary's values: short, long, a null value, one no row holds, short.
    fn five_values() -> [Option<&'static str>; 5] {
        [
            Some("INFO"),
            Some(LONG),
            None,
            Some("unused"),
            Some("ERROR"),
        ]
    }

    #[test]
    fn a_dictionary_s_rows_get_the_groups_their_strings_get_as_views() {
        let values = five_values();
        let long = LONG;
        let keys = [Some(0), Some(1), None, Some(2), Some(4), Some(1), Some(0)];
        let as_strings: Vec<Option<&str>> = keys
            .iter()
            .map(|k| k.and_then(|k| values[k as usize]))
            .collect();
        let mut by_views = StringGroups::default();
        let expected = ids(&mut by_views, &as_strings);
        let mut groups = StringGroups::default();
        let mut got = Vec::new();
        let array = dictionary(&values, &keys);
        groups
            .intern_dictionary(&array, &mut got)
            .expect("interned");
        assert_eq!(got, expected);
        // The same dictionary again (a later batch of the chunk), then another dictionary
        // holding the same strings in another order, then views: the ids stay.
        let again = array.slice(4, 3);
        groups
            .intern_dictionary(&again, &mut got)
            .expect("interned");
        assert_eq!(got, expected[4..]);
        let other = dictionary(
            &[Some("ERROR"), Some("INFO"), Some(long)],
            &[Some(2), Some(0), Some(1)],
        );
        groups
            .intern_dictionary(&other, &mut got)
            .expect("interned");
        assert_eq!(
            got,
            ids(&mut by_views, &[Some(long), Some("ERROR"), Some("INFO")])
        );
        assert_eq!(
            ids(&mut groups, &[Some("INFO"), Some("WARN")]),
            ids(&mut by_views, &[Some("INFO"), Some("WARN")])
        );
        // A value no row holds ("unused") is no group.
        let taken = groups.take();
        let strings: Vec<Option<&str>> = taken.iter().collect();
        assert_eq!(
            strings,
            vec![Some("INFO"), Some(long), None, Some("ERROR"), Some("WARN")]
        );
        // After `take`, the dictionary's ids start afresh too.
        groups
            .intern_dictionary(&array, &mut got)
            .expect("interned");
        assert_eq!(got, expected);
    }

    #[test]
    fn a_mostly_null_dictionary_column_gets_the_groups_its_views_get() {
        let values = [
            Some("u1"),
            Some("a user name longer than a view"),
            Some("u3"),
        ];
        let keys: Vec<Option<i32>> = (0..100)
            .map(|i: i32| (i % 7 == 3).then_some(i % 3))
            .collect();
        let as_strings: Vec<Option<&str>> = keys
            .iter()
            .map(|k| k.and_then(|k| values[k as usize]))
            .collect();
        let expected = ids(&mut StringGroups::default(), &as_strings);
        let mut got = Vec::new();
        StringGroups::default()
            .intern_dictionary(&dictionary(&values, &keys), &mut got)
            .expect("interned");
        assert_eq!(got, expected);
        assert_eq!(got[0], 0, "the null group first, as for views");
    }

    #[test]
    fn rows_counted_by_key_are_the_rows_their_ids_give_each_group() {
        let values = five_values();
        // Runs of one value across the lanes, a null value, a length not a multiple of 8.
        let pattern = [0, 0, 0, 1, 4, 2, 0, 4, 1];
        let keys: Vec<Option<i32>> = (0..1003).map(|i| Some(pattern[i % 9])).collect();
        let array = dictionary(&values, &keys);
        // Each group's string and rows, by the ids' way and counted by key.
        let by_ids = {
            let mut groups = StringGroups::default();
            let mut ids = Vec::new();
            groups
                .intern_dictionary(&array, &mut ids)
                .expect("interned");
            let mut rows = vec![0i64; groups.len()];
            for id in ids {
                rows[id] += 1;
            }
            let names: Vec<Option<String>> =
                groups.take().iter().map(|v| v.map(str::to_owned)).collect();
            let mut pairs: Vec<(Option<String>, i64)> = names.into_iter().zip(rows).collect();
            pairs.sort_unstable();
            pairs
        };
        let mut groups = StringGroups::default();
        let mut counted = Vec::new();
        assert_eq!(groups.count_dictionary(&array, &mut counted), Ok(true));
        // A later batch of the same dictionary by the ids' way: the same groups.
        let mut later = Vec::new();
        groups
            .intern_dictionary(&array.slice(0, 9), &mut later)
            .expect("interned");
        assert_eq!(groups.len(), 4, "\"unused\" is no group");
        let names: Vec<Option<String>> =
            groups.take().iter().map(|v| v.map(str::to_owned)).collect();
        let mut pairs: Vec<(Option<String>, i64)> = counted
            .iter()
            .map(|c| (names[c.group].clone(), c.rows))
            .collect();
        pairs.sort_unstable();
        assert_eq!(pairs, by_ids);
        assert_eq!(pairs.iter().map(|(_, n)| n).sum::<i64>(), 1003);
        let later: Vec<Option<String>> = later.iter().map(|&id| names[id].clone()).collect();
        let first: Vec<Option<String>> = pattern
            .iter()
            .map(|&k| values[k as usize].map(str::to_owned))
            .collect();
        assert_eq!(later, first);
        // Null keys are left to the ids' way.
        let with_nulls = dictionary(&values, &[Some(0), None, Some(4)]);
        assert_eq!(
            groups.count_dictionary(&with_nulls, &mut counted),
            Ok(false)
        );
        assert!(counted.is_empty());
    }

    #[test]
    fn a_dictionary_large_for_its_batch_is_left_to_the_ids() {
        let names: Vec<String> = (0..300).map(|i| format!("v{i}")).collect();
        let count = |values: usize, rows: i32| {
            let dictionary_values: Vec<Option<&str>> =
                names[..values].iter().map(|n| Some(n.as_str())).collect();
            let keys: Vec<Option<i32>> = (0..rows).map(|i| Some(i % values as i32)).collect();
            let mut counted = Vec::new();
            StringGroups::default()
                .count_dictionary(&dictionary(&dictionary_values, &keys), &mut counted)
                .expect("no bad key")
        };
        // At most 256 values, or one per eight rows.
        assert!(count(256, 1000));
        assert!(!count(257, 1000));
        assert!(count(300, 2400));
        assert!(!count(300, 2399));
    }

    #[test]
    fn a_key_outside_the_dictionary_is_an_error_not_a_group() {
        let mut groups = StringGroups::default();
        let mut got = Vec::new();
        let values = StringArray::from(vec!["a", "b"]);
        groups.dictionary.values = Some(values.clone());
        groups.dictionary.ids = vec![UNSEEN; 2];
        assert_eq!(groups.key_id(&values, 2), Err(GroupError::BadKey));
        assert_eq!(groups.key_id(&values, -1), Err(GroupError::BadKey));
        let array = dictionary(&[Some("a"), Some("b")], &[Some(1), Some(0)]);
        groups
            .intern_dictionary(&array, &mut got)
            .expect("interned");
        assert_eq!(got, vec![0, 1]);
    }
}
