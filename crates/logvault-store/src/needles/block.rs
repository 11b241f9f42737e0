//! The needle index's block (version 2): the filters of every indexed column of a segment, sealed
//! with the segment's block key and written inside the segment's file after its last row group,
//! where Parquet readers never look; the footer's entry [`BLOCK_KEY`] says where it lies and
//! which columns it indexes (docs/format.md, "Needle index").
//!
//! In clear the block is, for each indexed column: the name's length (`u16` LE), the name
//! (UTF-8), the length of the column's part (`u32` LE), then the part: for each row group in file
//! order its row count (`u32` LE), the filter's length (`u32` LE) and the filter as Parquet writes
//! a Bloom filter. Sealed, it is AES-256-GCM (`nonce || ciphertext || tag`) under
//! [`logvault_crypto::Aek::derive_segment_block_key`], bound to [`AAD_PREFIX`] and the segment's
//! own associated data (account, workspace, table, id), so a block copied into another segment
//! fails to open.

use logvault_crypto::aead;
use logvault_crypto::{Aek, Key256};
use parquet::file::metadata::{KeyValue, ParquetMetaData};
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::layout::SegmentLocation;

/// The footer entry of a version-2 index: a [`BlockRef`] as JSON.
pub const BLOCK_KEY: &str = "logvault.needles.v2";
/// The start of the block's associated data; the segment's follows.
pub const AAD_PREFIX: &[u8] = b"logvault/needles/v2/";

/// A needle index in clear: the framed filters of each indexed column.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NeedleBlock {
    /// The indexed columns, in the block's order.
    pub columns: Vec<String>,
    /// The block's bytes in clear.
    pub bytes: Vec<u8>,
}

impl NeedleBlock {
    /// Appends `column`'s part (its row groups framed as the block holds them). A name longer
    /// than a `u16` or a part longer than a `u32` is left out (Parquet column names are short;
    /// a part is at most a few megabytes).
    pub(crate) fn push(&mut self, column: String, part: &[u8]) {
        let (Ok(name_len), Ok(part_len)) = (u16::try_from(column.len()), u32::try_from(part.len()))
        else {
            return;
        };
        self.bytes.extend_from_slice(&name_len.to_le_bytes());
        self.bytes.extend_from_slice(column.as_bytes());
        self.bytes.extend_from_slice(&part_len.to_le_bytes());
        self.bytes.extend_from_slice(part);
        self.columns.push(column);
    }

    /// The columns' parts of a block in clear, or why it is malformed.
    pub(crate) fn parts(bytes: &[u8]) -> Result<Vec<(String, &[u8])>, String> {
        let mut parts = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (name_len, tail) = rest
                .split_first_chunk::<2>()
                .ok_or("a column's name is cut short")?;
            let name_len = usize::from(u16::from_le_bytes(*name_len));
            if tail.len() < name_len {
                return Err("a column's name is cut short".into());
            }
            let (name, tail) = tail.split_at(name_len);
            let name = std::str::from_utf8(name).map_err(|_| "a column's name is not UTF-8")?;
            let (part_len, tail) = tail
                .split_first_chunk::<4>()
                .ok_or("a column's part is cut short")?;
            let part_len = usize::try_from(u32::from_le_bytes(*part_len))
                .map_err(|_| "a column's part is too long")?;
            if tail.len() < part_len {
                return Err(format!("column {name}'s part is cut short"));
            }
            let (part, tail) = tail.split_at(part_len);
            parts.push((name.to_owned(), part));
            rest = tail;
        }
        Ok(parts)
    }
}

/// Where a segment's sealed block lies in its file, and what it indexes (the footer's
/// [`BLOCK_KEY`] entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    /// The block's first byte in the file.
    pub offset: u64,
    /// The sealed block's length in bytes.
    pub length: u64,
    /// The indexed columns.
    pub columns: Vec<String>,
}

impl BlockRef {
    /// The reference in a segment's footer, if it has one; a malformed entry is reported as
    /// `Err` (the segment is then read without its index).
    pub fn of(meta: &ParquetMetaData) -> Option<Result<Self, String>> {
        let entry = meta
            .file_metadata()
            .key_value_metadata()?
            .iter()
            .find(|kv| kv.key == BLOCK_KEY)?;
        Some(
            entry
                .value
                .as_deref()
                .ok_or_else(|| "the needle index's entry has no value".to_owned())
                .and_then(|v| serde_json::from_str(v).map_err(|e| e.to_string())),
        )
    }

    /// The footer entry, or why it cannot be written.
    pub(crate) fn key_value(&self) -> Result<KeyValue, String> {
        let value = serde_json::to_string(self).map_err(|e| e.to_string())?;
        Ok(KeyValue::new(BLOCK_KEY.to_owned(), value))
    }

    /// Whether the block indexes the column of any of `needles`.
    pub fn indexes_any(&self, needles: &[super::Needle]) -> bool {
        self.columns
            .iter()
            .any(|c| needles.iter().any(|n| n.column == *c))
    }

    /// The byte range of the block in the file.
    pub fn range(&self) -> std::ops::Range<u64> {
        self.offset..self.offset.saturating_add(self.length)
    }
}

fn aad(loc: &SegmentLocation) -> Vec<u8> {
    let mut aad = AAD_PREFIX.to_vec();
    aad.extend_from_slice(&loc.aad_prefix());
    aad
}

/// The block key of the segment at `loc`, from its account key.
pub(crate) fn key(aek: &Aek, loc: &SegmentLocation) -> Result<Key256, StoreError> {
    aek.derive_segment_block_key(&loc.segment.to_string())
        .map_err(|e| StoreError::crypto(format!("block key of segment {loc}"), &e))
}

/// Seals `block` for the segment at `loc` under its block `key`.
pub(crate) fn seal(
    key: &Key256,
    loc: &SegmentLocation,
    block: &NeedleBlock,
) -> Result<Vec<u8>, StoreError> {
    aead::seal(key, &aad(loc), &block.bytes)
        .map_err(|e| StoreError::crypto(format!("needle index of segment {loc}"), &e))
}

/// Opens the sealed block of the segment at `loc`: [`StoreError::Integrity`] if it was altered,
/// cut, moved from another segment or sealed under another key.
pub(crate) fn open(
    key: &Key256,
    loc: &SegmentLocation,
    sealed: &[u8],
) -> Result<Vec<u8>, StoreError> {
    aead::open(key, &aad(loc), sealed, "needle index").map_err(|_| StoreError::Integrity {
        segment: loc.to_string(),
        reason: "its needle index fails authentication".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{AccountId, SegmentId};

    fn loc(id: SegmentId) -> SegmentLocation {
        SegmentLocation::new(AccountId::service(), "ws-one", "Logs", id).unwrap()
    }

    #[test]
    fn a_block_round_trips_and_fails_when_altered_moved_or_under_another_key() {
        let mut block = NeedleBlock::default();
        block.push("RequestId".into(), &[1, 2, 3]);
        block.push("TraceId".into(), &[]);
        assert_eq!(block.columns, ["RequestId", "TraceId"]);
        let parts = NeedleBlock::parts(&block.bytes).unwrap();
        assert_eq!(
            parts,
            vec![
                ("RequestId".to_owned(), &[1u8, 2, 3][..]),
                ("TraceId".to_owned(), &[][..])
            ]
        );
        assert!(NeedleBlock::parts(&block.bytes[..block.bytes.len() - 1]).is_err());

        let aek = logvault_crypto::Aek::generate().unwrap();
        let here = loc(SegmentId::generate());
        let key = aek
            .derive_segment_block_key(&here.segment.to_string())
            .unwrap();
        let sealed = seal(&key, &here, &block).unwrap();
        assert!(
            !sealed.windows(9).any(|w| w == b"RequestId"),
            "the block is not in clear"
        );
        assert_eq!(open(&key, &here, &sealed).unwrap(), block.bytes);

        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        let err = open(&key, &here, &altered).unwrap_err();
        assert!(
            err.to_string().contains(&here.to_string()) && err.to_string().contains("needle"),
            "{err}"
        );
        let elsewhere = loc(SegmentId::generate());
        assert!(open(&key, &elsewhere, &sealed).is_err(), "moved");
        let other_key = aek
            .derive_segment_block_key(&elsewhere.segment.to_string())
            .unwrap();
        assert!(open(&other_key, &here, &sealed).is_err(), "another key");
    }
}
