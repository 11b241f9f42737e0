//! Group ids for the strings of one column: the distinct values in the order first seen.
//!
//! A string view of at most 12 bytes holds the whole string in its 16 bytes (length, then the
//! bytes, zero-padded), so two such views are equal exactly when their strings are: those are
//! grouped by the view's bits alone, without reading or hashing the string. While there are few
//! of them (a log's level, category or result code), a branch-free scan of at most
//! [`SMALL_GROUPS`] views finds the group; past that, a hash map of the views. Longer strings are
//! grouped by their bytes in a hash map.

use arrow::array::{Array, StringViewArray, StringViewBuilder};
use datafusion::common::HashMap;

/// How many short strings are found by a scan before they move to a hash map.
pub(crate) const SMALL_GROUPS: usize = 8;

/// The distinct strings of a column seen since the last [`StringGroups::take`], each with its
/// group id (0, 1, ... in the order first seen).
pub(crate) struct StringGroups {
    /// Short strings' views while they are few (`small_ids[i]` is `small[i]`'s group).
    small: Vec<u128>,
    small_ids: Vec<u32>,
    /// Short strings' views once there are more than [`SMALL_GROUPS`] (then `small` is empty).
    inline: HashMap<u128, u32>,
    /// Strings longer than a view holds, by their bytes.
    long: HashMap<Box<[u8]>, u32>,
    long_bytes: usize,
    /// The null group, once a null was seen.
    null: Option<u32>,
    /// Every group's string, in group order: the group column of the output.
    values: StringViewBuilder,
    count: u32,
}

impl Default for StringGroups {
    fn default() -> Self {
        Self {
            small: Vec::with_capacity(SMALL_GROUPS),
            small_ids: Vec::with_capacity(SMALL_GROUPS),
            inline: HashMap::default(),
            long: HashMap::default(),
            long_bytes: 0,
            null: None,
            values: StringViewBuilder::new(),
            count: 0,
        }
    }
}

/// The largest string a view holds inline.
const INLINE_LEN: u32 = 12;

impl StringGroups {
    /// Groups seen so far.
    pub(crate) fn len(&self) -> usize {
        self.count as usize
    }

    /// Bytes held, roughly (maps, long strings, the output column being built).
    pub(crate) fn size(&self) -> usize {
        let entry = std::mem::size_of::<u128>() + std::mem::size_of::<u32>() + 1;
        let long_entry = std::mem::size_of::<Box<[u8]>>() + std::mem::size_of::<u32>() + 1;
        self.inline.capacity() * entry
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
    ) -> Result<(), TooManyGroups> {
        ids.clear();
        ids.reserve(array.len());
        let views = array.views();
        match array.logical_nulls() {
            None => {
                for (i, &view) in views.iter().enumerate() {
                    ids.push(self.id(array, i, view)? as usize);
                }
            }
            Some(nulls) => {
                for (i, &view) in views.iter().enumerate() {
                    let id = if nulls.is_null(i) {
                        self.null_id()?
                    } else {
                        self.id(array, i, view)?
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
        *self = Self::default();
        values
    }

    #[inline]
    fn id(&mut self, array: &StringViewArray, i: usize, view: u128) -> Result<u32, TooManyGroups> {
        // The view's low 32 bits are the string's length.
        if (view as u32) <= INLINE_LEN {
            self.inline_id(array, i, view)
        } else {
            self.long_id(array.value(i))
        }
    }

    #[inline]
    fn inline_id(
        &mut self,
        array: &StringViewArray,
        i: usize,
        view: u128,
    ) -> Result<u32, TooManyGroups> {
        if self.inline.is_empty() {
            // Branch-free: the rows' values come in no order, so an early exit mispredicts.
            let mut found = usize::MAX;
            for (at, &known) in self.small.iter().enumerate() {
                if known == view {
                    found = at;
                }
            }
            if let Some(&id) = self.small_ids.get(found) {
                return Ok(id);
            }
            if self.small.len() < SMALL_GROUPS {
                let id = self.add(Some(array.value(i)))?;
                self.small.push(view);
                self.small_ids.push(id);
                return Ok(id);
            }
            self.inline.reserve(4 * SMALL_GROUPS);
            for (known, id) in self.small.drain(..).zip(self.small_ids.drain(..)) {
                self.inline.insert(known, id);
            }
        }
        if let Some(&id) = self.inline.get(&view) {
            return Ok(id);
        }
        let id = self.add(Some(array.value(i)))?;
        self.inline.insert(view, id);
        Ok(id)
    }

    fn long_id(&mut self, value: &str) -> Result<u32, TooManyGroups> {
        if let Some(&id) = self.long.get(value.as_bytes()) {
            return Ok(id);
        }
        let id = self.add(Some(value))?;
        self.long_bytes += value.len();
        self.long.insert(value.as_bytes().into(), id);
        Ok(id)
    }

    fn null_id(&mut self) -> Result<u32, TooManyGroups> {
        if let Some(id) = self.null {
            return Ok(id);
        }
        let id = self.add(None)?;
        self.null = Some(id);
        Ok(id)
    }

    fn add(&mut self, value: Option<&str>) -> Result<u32, TooManyGroups> {
        let id = self.count;
        self.count = self.count.checked_add(1).ok_or(TooManyGroups)?;
        self.values.append_option(value);
        Ok(id)
    }
}

/// More groups than a `u32` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooManyGroups;

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(groups: &mut StringGroups, values: &[Option<&str>]) -> Vec<usize> {
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
    fn many_short_strings_move_from_the_scan_to_the_map_without_changing_ids() {
        let mut groups = StringGroups::default();
        let names: Vec<String> = (0..100).map(|i| format!("host-{i:03}")).collect();
        let first: Vec<Option<&str>> = names.iter().map(|s| Some(s.as_str())).collect();
        assert_eq!(ids(&mut groups, &first), (0..100).collect::<Vec<_>>());
        // Reversed, in another batch: the ids found are those given first.
        let reversed: Vec<Option<&str>> = first.iter().rev().copied().collect();
        assert_eq!(
            ids(&mut groups, &reversed),
            (0..100).rev().collect::<Vec<_>>()
        );
        assert_eq!(groups.len(), 100);
        let values = groups.take();
        assert_eq!(values.value(42), "host-042");
    }
}
