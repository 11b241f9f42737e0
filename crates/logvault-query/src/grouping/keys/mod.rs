//! Group ids for the strings of one column: the distinct values in the order first seen.
//!
//! A string view of at most 12 bytes holds the whole string in its 16 bytes (length, then the
//! bytes, zero-padded), so two such views are equal exactly when their strings are: those are
//! grouped by the view's bits alone, without reading the string. A direct-mapped table of
//! [`CACHE_SLOTS`] views (a multiplication and a shift of the view pick the slot) answers most
//! rows of a column of few values with one load and one comparison; a miss goes to a hash map of
//! all the short strings seen, and takes the slot. A column of many values skips the table
//! ([`StringGroups::skip_table`]): its misses would only rewrite slots. Longer strings are grouped by
//! their bytes in a hash map. A column mostly null (sparse fields are common in logs) is walked
//! by its set validity bits only.

use arrow::array::{Array, StringViewArray, StringViewBuilder};
use datafusion::common::HashMap;

mod dictionary;

use dictionary::DictionaryGroups;
pub(crate) use dictionary::KEY_LANES;

/// Slots of the direct-mapped table in front of the short strings' map (a power of two).
pub(crate) const CACHE_SLOTS: usize = 512;
const CACHE_SHIFT: u32 = 64 - CACHE_SLOTS.trailing_zeros();

/// A slot of the direct-mapped table: a short string's view and its group.
#[derive(Clone, Copy)]
struct Slot {
    view: u128,
    id: u32,
}

/// No short string's view: its length field is above 12.
const EMPTY: Slot = Slot {
    view: u128::MAX,
    id: 0,
};

/// The distinct strings of a column seen since the last [`StringGroups::take`], each with its
/// group id (0, 1, ... in the order first seen; in a batch mostly null, the null group first).
pub(crate) struct StringGroups {
    /// The last short string seen in each slot.
    cache: Box<[Slot]>,
    /// Every short string seen, by its view.
    inline: HashMap<u128, u32>,
    /// Strings longer than a view holds, by their bytes.
    long: HashMap<Box<[u8]>, u32>,
    long_bytes: usize,
    /// The null group, once a null was seen.
    null: Option<u32>,
    /// Every group's string, in group order: the group column of the output.
    values: StringViewBuilder,
    count: u32,
    /// Whether short strings go through the direct-mapped table first.
    direct: bool,
    /// The group of each value of the last dictionary seen, as rows asked for them.
    dictionary: DictionaryGroups,
}

/// The groups of a dictionary's values ([`StringGroups::intern_dictionary`]): the Parquet
/// reader gives every batch of a column chunk the same dictionary, so each value is looked up
/// once per chunk, and a row costs an index into `ids`. A value is given a group only when a row
/// holds it (a chunk's dictionary may hold values that no row read has, e.g. rows filtered out).
impl Default for StringGroups {
    fn default() -> Self {
        Self {
            cache: vec![EMPTY; CACHE_SLOTS].into_boxed_slice(),
            inline: HashMap::default(),
            long: HashMap::default(),
            long_bytes: 0,
            null: None,
            values: StringViewBuilder::new(),
            count: 0,
            direct: true,
            dictionary: DictionaryGroups::default(),
        }
    }
}

/// The largest string a view holds inline.
const INLINE_LEN: u32 = 12;

impl StringGroups {
    /// For a column of many values: short strings go to the map directly, without the table
    /// (which holds none that the map does not; the ids given stay).
    pub(crate) fn skip_table(&mut self) {
        self.direct = false;
        self.cache = Box::default();
    }

    /// Groups seen so far.
    pub(crate) fn len(&self) -> usize {
        self.count as usize
    }

    /// Groups of strings longer than a view holds, among [`Self::len`].
    pub(crate) fn long_len(&self) -> usize {
        self.long.len()
    }

    /// Bytes held, roughly (maps, long strings, the output column being built).
    pub(crate) fn size(&self) -> usize {
        let entry = std::mem::size_of::<u128>() + std::mem::size_of::<u32>() + 1;
        let long_entry = std::mem::size_of::<Box<[u8]>>() + std::mem::size_of::<u32>() + 1;
        self.cache.len() * std::mem::size_of::<Slot>()
            + self.inline.capacity() * entry
            + self.long.capacity() * long_entry
            + 2 * self.long_bytes
            + self.count as usize * std::mem::size_of::<u128>()
    }

    /// Appends the group id of each of `array`'s rows to `ids` (cleared first).
    ///
    /// # Errors
    /// More than `u32::MAX` groups (a partial aggregate emits long before).
    pub(crate) fn intern(
        &mut self,
        array: &StringViewArray,
        ids: &mut Vec<usize>,
    ) -> Result<(), GroupError> {
        if self.direct {
            self.intern_with::<true>(array, ids)
        } else {
            self.intern_with::<false>(array, ids)
        }
    }

    fn intern_with<const DIRECT: bool>(
        &mut self,
        array: &StringViewArray,
        ids: &mut Vec<usize>,
    ) -> Result<(), GroupError> {
        ids.clear();
        let views = array.views();
        match array.logical_nulls() {
            None => {
                // Extended from a slice's iterator, the ids need no capacity check per row; the
                // first error is kept and returned after (ids past it are not used then).
                let mut failed = None;
                ids.extend(views.iter().enumerate().map(|(i, &view)| {
                    match self.id::<DIRECT>(array, i, view) {
                        Ok(id) => id as usize,
                        Err(e) => {
                            failed.get_or_insert(e);
                            0
                        }
                    }
                }));
                if let Some(e) = failed {
                    return Err(e);
                }
            }
            Some(nulls) if nulls.null_count() * 2 > nulls.len() => {
                // Mostly null: every row the null group, then the valid rows by their set bits.
                let null = self.null_id()? as usize;
                ids.resize(array.len(), null);
                for i in nulls.valid_indices() {
                    let (Some(&view), Some(slot)) = (views.get(i), ids.get_mut(i)) else {
                        continue;
                    };
                    *slot = self.id::<DIRECT>(array, i, view)? as usize;
                }
            }
            Some(nulls) => {
                ids.reserve(array.len());
                for (i, &view) in views.iter().enumerate() {
                    let id = if nulls.is_null(i) {
                        self.null_id()?
                    } else {
                        self.id::<DIRECT>(array, i, view)?
                    };
                    ids.push(id as usize);
                }
            }
        }
        Ok(())
    }

    /// The strings of groups `0..len()` as a column, and a fresh start (ids from 0 again).
    pub(crate) fn take(&mut self) -> StringViewArray {
        let values = self.values.finish();
        let direct = self.direct;
        *self = Self::default();
        if !direct {
            self.skip_table();
        }
        values
    }

    #[inline(always)]
    fn id<const DIRECT: bool>(
        &mut self,
        array: &StringViewArray,
        i: usize,
        view: u128,
    ) -> Result<u32, GroupError> {
        // The view's low 32 bits are the string's length.
        if (view as u32) <= INLINE_LEN {
            if !DIRECT {
                return self.map_id(view, || array.value(i));
            }
            let mixed = (view as u64) ^ ((view >> 64) as u64);
            let slot = (mixed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> CACHE_SHIFT) as usize;
            if let Some(hit) = self.cache.get(slot)
                && hit.view == view
            {
                return Ok(hit.id);
            }
            self.inline_id(array, i, view, slot)
        } else {
            self.long_id(array.value(i))
        }
    }

    #[inline(never)]
    fn inline_id(
        &mut self,
        array: &StringViewArray,
        i: usize,
        view: u128,
        slot: usize,
    ) -> Result<u32, GroupError> {
        let id = self.map_id(view, || array.value(i))?;
        if let Some(cached) = self.cache.get_mut(slot) {
            *cached = Slot { view, id };
        }
        Ok(id)
    }

    #[inline(always)]
    fn map_id<'v>(
        &mut self,
        view: u128,
        value: impl FnOnce() -> &'v str,
    ) -> Result<u32, GroupError> {
        if let Some(&id) = self.inline.get(&view) {
            return Ok(id);
        }
        let id = self.add(Some(value()))?;
        self.inline.insert(view, id);
        Ok(id)
    }

    #[inline(never)]
    fn long_id(&mut self, value: &str) -> Result<u32, GroupError> {
        if let Some(&id) = self.long.get(value.as_bytes()) {
            return Ok(id);
        }
        let id = self.add(Some(value))?;
        self.long_bytes += value.len();
        self.long.insert(value.as_bytes().into(), id);
        Ok(id)
    }

    fn null_id(&mut self) -> Result<u32, GroupError> {
        if let Some(id) = self.null {
            return Ok(id);
        }
        let id = self.add(None)?;
        self.null = Some(id);
        Ok(id)
    }

    fn add(&mut self, value: Option<&str>) -> Result<u32, GroupError> {
        let id = self.count;
        self.count = self.count.checked_add(1).ok_or(GroupError::TooMany)?;
        self.values.append_option(value);
        Ok(id)
    }
}

/// A dictionary key the rows of a batch held, with its group and how many rows held it
/// ([`StringGroups::count_dictionary`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyRows {
    pub(crate) key: usize,
    pub(crate) group: usize,
    pub(crate) rows: i64,
}

/// Why rows could not be given group ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupError {
    /// More groups than a `u32` counts.
    TooMany,
    /// A dictionary key outside its dictionary.
    BadKey,
    /// A dictionary whose values are not strings.
    NotStrings,
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(super) fn ids(groups: &mut StringGroups, values: &[Option<&str>]) -> Vec<usize> {
        let array = StringViewArray::from(values.to_vec());
        let mut out = Vec::new();
        groups.intern(&array, &mut out).expect("interned");
        out
    }

    #[test]
    fn equal_strings_share_a_group_and_groups_are_numbered_in_the_order_first_seen() {
        let mut groups = StringGroups::default();
        let long = "a string longer than twelve bytes";
        let got = ids(
            &mut groups,
            &[
                Some("INFO"),
                Some("ERROR"),
                None,
                Some(long),
                Some("INFO"),
                Some(""),
                None,
                Some(long),
                Some("ERROR"),
            ],
        );
        assert_eq!(got, vec![0, 1, 2, 3, 0, 4, 2, 3, 1]);
        // A second batch (new buffers, so new views for the long string) keeps the ids.
        let got = ids(&mut groups, &[Some(long), Some("WARN"), Some("INFO")]);
        assert_eq!(got, vec![3, 5, 0]);
        let values = groups.take();
        let strings: Vec<Option<&str>> = values.iter().collect();
        assert_eq!(
            strings,
            vec![
                Some("INFO"),
                Some("ERROR"),
                None,
                Some(long),
                Some(""),
                Some("WARN")
            ]
        );
        assert_eq!(groups.len(), 0, "take starts afresh");
    }

    #[test]
    fn without_nulls_the_empty_string_and_long_strings_find_their_own_groups() {
        // Every slot empty: an empty string's view (all zero) must not be taken for one.
        let mut groups = StringGroups::default();
        let long = "a string longer than twelve bytes";
        let batch = [
            Some("x"),
            Some(""),
            Some(long),
            Some(""),
            Some("x"),
            Some(long),
        ];
        assert_eq!(ids(&mut groups, &batch), vec![0, 1, 2, 1, 0, 2]);
        assert_eq!(ids(&mut groups, &batch), vec![0, 1, 2, 1, 0, 2]);
        assert_eq!(groups.len(), 3);
    }

    #[test]
    fn twelve_and_thirteen_byte_strings_are_told_apart_from_their_prefixes() {
        // 12 bytes fit in the view; 13 do not, and share the first 12.
        let mut groups = StringGroups::default();
        let got = ids(
            &mut groups,
            &[
                Some("abcdefghijkl"),
                Some("abcdefghijklm"),
                Some("abcdefghijkl"),
                Some("abcdefghijklm"),
            ],
        );
        assert_eq!(got, vec![0, 1, 0, 1]);
    }

    #[test]
    fn many_short_strings_share_the_table_s_slots_without_changing_ids() {
        let mut groups = StringGroups::default();
        // More strings than slots: some share a slot and take it from each other.
        let n = 3 * CACHE_SLOTS;
        let names: Vec<String> = (0..n).map(|i| format!("host-{i:04}")).collect();
        let first: Vec<Option<&str>> = names.iter().map(|s| Some(s.as_str())).collect();
        assert_eq!(ids(&mut groups, &first), (0..n).collect::<Vec<_>>());
        // Reversed, in another batch: the ids found are those given first.
        let reversed: Vec<Option<&str>> = first.iter().rev().copied().collect();
        assert_eq!(
            ids(&mut groups, &reversed),
            (0..n).rev().collect::<Vec<_>>()
        );
        assert_eq!(groups.len(), n);
        let values = groups.take();
        assert_eq!(values.value(42), "host-0042");
    }

    #[test]
    fn without_the_table_and_in_a_mostly_null_column_the_ids_are_the_same() {
        let names: Vec<String> = (0..2000).map(|i| format!("u{:06}", i * 7 % 1500)).collect();
        let long = "a user name longer than a view";
        // Mostly null (walked by the set bits), with a long string among the values.
        let values: Vec<Option<&str>> = names
            .iter()
            .enumerate()
            .map(|(i, n)| match i % 10 {
                0 => Some(n.as_str()),
                5 => Some(long),
                _ => None,
            })
            .collect();
        let mut with_table = StringGroups::default();
        let expected = ids(&mut with_table, &values);
        // Taken over by the other mode half way, as a column found to have many values is.
        let mut switched = StringGroups::default();
        let (first, second) = values.split_at(1000);
        let mut got = ids(&mut switched, first);
        switched.skip_table();
        got.extend(ids(&mut switched, second));
        assert_eq!(got, expected);
        // A mostly null batch gives the null group first, then the valid rows in order.
        assert_eq!(&got[..6], &[1, 0, 0, 0, 0, 2]);
        let a = with_table.take();
        let b = switched.take();
        assert_eq!(a.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());
        assert_eq!(b.null_count(), 1);
        // After `take`, the mode stays: a fresh start without the table.
        assert!(!switched.direct && switched.cache.is_empty());
        assert_eq!(ids(&mut switched, &[Some("x"), None]), vec![0, 1]);
    }
}
