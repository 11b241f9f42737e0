//! The scrub: reads and authenticates everything a workspace has at rest.
//!
//! For each table: every version of its catalog manifest (each is sealed and bound to its
//! table and number), then every segment the latest version lists, read whole: the
//! infrastructure layer if the account has one, the leading magic, the key metadata, the
//! encrypted footer, every column chunk's dictionary and data pages with their headers, the
//! column and offset indexes, and the needle index's sealed block (if it has one). A segment
//! that authenticates must also hold what the catalog says it holds (rows, size, time range,
//! schema). Segments present in storage but listed by no manifest (an interrupted write or
//! compaction leaves them; nothing counts them) are listed as orphans, which is not damage.
//!
//! A segment whose account key cannot be had (revoked, or the vault unreachable) is skipped and
//! said so: it cannot be checked, which is not damage either.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use futures::TryStreamExt;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::file::metadata::PageIndexPolicy;
use serde::Serialize;

use crate::catalog::{Manifest, SegmentEntry};
use crate::layout::{AccountId, SegmentId, SegmentLocation};
use crate::needles::{BlockRef, NeedleBlock};
use crate::{Store, StoreError};

/// What the scrub found in one segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum SegmentStatus {
    /// Every module authenticated, and the segment holds what the catalog says.
    Ok,
    /// It failed to authenticate, or holds something else than the catalog says.
    Damaged {
        /// What is wrong.
        reason: String,
    },
    /// The catalog lists it but storage does not have it.
    Missing,
    /// Its account key cannot be had now, so it was not checked.
    Skipped {
        /// Why the key cannot be had.
        reason: String,
    },
}

/// One segment's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentCheck {
    /// `account/workspace/table/id`.
    pub segment: String,
    /// Rows the catalog says it holds.
    pub rows: u64,
    /// Bytes the catalog says it has.
    pub bytes: u64,
    /// The result.
    #[serde(flatten)]
    pub status: SegmentStatus,
}

/// A catalog manifest version that does not open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestDamage {
    /// Its version number.
    pub version: u64,
    /// Why it does not open.
    pub reason: String,
}

/// One table's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableVerification {
    /// The table.
    pub table: String,
    /// Manifest versions read.
    pub manifest_versions: u64,
    /// Versions that do not open (the latest among them makes the table unreadable).
    pub damaged_manifests: Vec<ManifestDamage>,
    /// The segments the latest manifest lists.
    pub segments: Vec<SegmentCheck>,
    /// Segments in storage that no manifest lists (`account/workspace/table/id`).
    pub orphans: Vec<String>,
    /// Segments a compaction replaced whose files wait for their grace period before they
    /// are deleted (not orphans, not read by queries).
    pub retired: usize,
}

/// What the scrub of a workspace found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// The workspace.
    pub workspace: String,
    /// Per table.
    pub tables: Vec<TableVerification>,
    /// Segments read and authenticated.
    pub segments_ok: usize,
    /// Segments damaged or missing, and manifest versions that do not open.
    pub damaged: usize,
    /// Segments not checked (key unavailable).
    pub skipped: usize,
    /// Orphan segments (not damage).
    pub orphans: usize,
    /// Replaced segments waiting for deletion (see [`TableVerification::retired`]).
    pub retired: usize,
    /// Bytes of segments read.
    pub bytes_read: u64,
}

impl VerifyReport {
    /// Whether nothing damaged or missing was found.
    pub fn is_clean(&self) -> bool {
        self.damaged == 0
    }

    /// The damaged or missing segments, by name.
    pub fn damaged_segments(&self) -> Vec<&SegmentCheck> {
        self.tables
            .iter()
            .flat_map(|t| &t.segments)
            .filter(|s| {
                matches!(
                    s.status,
                    SegmentStatus::Damaged { .. } | SegmentStatus::Missing
                )
            })
            .collect()
    }
}

/// Progress of a scrub, for a progress line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyProgress {
    /// Segments checked so far.
    pub segments_done: usize,
    /// Segments to check in the tables seen so far.
    pub segments_total: usize,
    /// Bytes read so far.
    pub bytes: u64,
}

impl Store {
    /// Scrubs `workspace` (or only `table`): see the module documentation. `refused` names the
    /// accounts whose key must not be used (a revoked key the caller knows of) and why; their
    /// segments are skipped.
    ///
    /// # Errors
    /// Invalid names and storage failures (listing, a read that fails otherwise than by
    /// damage); damage is reported in the result, not as an error.
    pub async fn verify_workspace(
        &self,
        workspace: &str,
        table: Option<&str>,
        refused: &BTreeMap<AccountId, String>,
        progress: &mut (dyn FnMut(VerifyProgress) + Send),
    ) -> Result<VerifyReport, StoreError> {
        crate::layout::check_workspace(workspace)?;
        let tables = match table {
            Some(t) => {
                crate::layout::check_table(t)?;
                vec![t.to_owned()]
            }
            None => self.catalog().tables(workspace).await?,
        };
        let mut report = VerifyReport {
            workspace: workspace.to_owned(),
            ..VerifyReport::default()
        };
        let mut seen = VerifyProgress::default();
        for t in tables {
            let (checked, latest) = self.catalog().verify_versions(workspace, &t).await?;
            let mut out = TableVerification {
                table: t.clone(),
                manifest_versions: checked.len() as u64,
                ..TableVerification::default()
            };
            for (version, result) in checked {
                if let Err(e) = result {
                    out.damaged_manifests.push(ManifestDamage {
                        version,
                        reason: e.to_string(),
                    });
                }
            }
            report.damaged += out.damaged_manifests.len();
            let Some(manifest) = latest else {
                report.tables.push(out);
                continue;
            };
            seen.segments_total += manifest.segments.len();
            progress(seen);
            for entry in &manifest.segments {
                let loc = manifest.location(entry);
                let status = match refused.get(&entry.account) {
                    Some(reason) => SegmentStatus::Skipped {
                        reason: reason.clone(),
                    },
                    None => self.verify_segment(&loc, entry).await?,
                };
                match &status {
                    SegmentStatus::Ok => {
                        report.segments_ok += 1;
                        report.bytes_read += entry.bytes;
                        seen.bytes += entry.bytes;
                    }
                    SegmentStatus::Skipped { .. } => report.skipped += 1,
                    SegmentStatus::Damaged { reason } => {
                        tracing::warn!(segment = %loc, %reason, "scrub: damaged segment");
                        report.damaged += 1;
                    }
                    SegmentStatus::Missing => {
                        tracing::warn!(segment = %loc, "scrub: segment missing from storage");
                        report.damaged += 1;
                    }
                }
                out.segments.push(SegmentCheck {
                    segment: loc.to_string(),
                    rows: entry.rows,
                    bytes: entry.bytes,
                    status,
                });
                seen.segments_done += 1;
                progress(seen);
            }
            out.orphans = self.orphans(workspace, &t, &manifest).await?;
            report.orphans += out.orphans.len();
            out.retired = manifest.retired.len();
            report.retired += out.retired;
            report.tables.push(out);
        }
        Ok(report)
    }

    /// Reads and authenticates one segment whole and compares it with its catalog entry.
    async fn verify_segment(
        &self,
        loc: &SegmentLocation,
        entry: &SegmentEntry,
    ) -> Result<SegmentStatus, StoreError> {
        let damaged = |reason: String| Ok(SegmentStatus::Damaged { reason });
        let account = match self.open_account(&loc.account, None).await {
            Ok(a) => a,
            Err(e) if e.is_integrity() => return damaged(e.to_string()),
            Err(e) => return Err(e),
        };
        let aek = match self.keyring().aek(&loc.account).await {
            Ok(aek) => aek,
            Err(e) if e.vault_kind().is_some() => {
                return Ok(SegmentStatus::Skipped {
                    reason: e.to_string(),
                });
            }
            Err(e) => return Err(e),
        };
        let epoch = self
            .keyring()
            .cached_record(&loc.account)
            .map_or(crate::keyring::CURRENT_AEK_EPOCH, |r| r.epoch);
        let bytes = match crate::segment::fetch(account.objects(), loc).await {
            Ok(b) => b,
            Err(StoreError::SegmentNotFound { .. }) => return Ok(SegmentStatus::Missing),
            Err(e) if e.is_integrity() => return damaged(e.to_string()),
            Err(e) => return Err(e),
        };
        if bytes.len() as u64 != entry.bytes {
            return damaged(format!(
                "it is {} bytes, the catalog says {}",
                bytes.len(),
                entry.bytes
            ));
        }
        if bytes.get(..4) != Some(crate::segment::ENCRYPTED_MAGIC.as_slice()) {
            return damaged("it does not start with the encrypted-footer magic".into());
        }
        let slot: crate::segment::CheckSlot = Arc::default();
        let props = crate::segment::decryption_properties(loc, &aek, epoch, Some(slot.clone()))?;
        let expected = (
            entry.rows,
            entry.min_time,
            entry.max_time,
            entry.schema.clone(),
        );
        let block_key = crate::needles::block::key(&aek, loc)?;
        let at = loc.clone();
        let checked =
            tokio::task::spawn_blocking(move || scan(bytes, props, &expected, (&at, &block_key)))
                .await
                .map_err(|e| StoreError::Integrity {
                    segment: loc.to_string(),
                    reason: e.to_string(),
                })?;
        Ok(match checked {
            Ok(()) => SegmentStatus::Ok,
            Err(reason) => {
                let precise = slot
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
                SegmentStatus::Damaged {
                    reason: precise.map_or(reason, |e| e.to_string()),
                }
            }
        })
    }

    /// Segments under `workspace/table` in every account that `manifest` does not list.
    async fn orphans(
        &self,
        workspace: &str,
        table: &str,
        manifest: &Manifest,
    ) -> Result<Vec<String>, StoreError> {
        // Replaced segments waiting for their grace period are known: not orphans.
        let listed: BTreeSet<(AccountId, SegmentId)> = manifest
            .segments
            .iter()
            .map(|s| (s.account.clone(), s.id))
            .chain(manifest.retired.iter().map(|r| (r.account.clone(), r.id)))
            .collect();
        let mut out = Vec::new();
        for account in self.account_ids().await? {
            let Ok(acct) = self.open_account(&account, None).await else {
                continue;
            };
            let dir = object_store::path::Path::from_iter([
                crate::layout::SEGMENTS_DIR,
                workspace,
                table,
            ]);
            let metas: Vec<_> = acct
                .objects()
                .list(Some(&dir))
                .try_collect()
                .await
                .map_err(|e| StoreError::storage(format!("segments of table {table}"), &e))?;
            for m in metas {
                let Some(id) = SegmentId::of_file(&m.location) else {
                    continue;
                };
                if !listed.contains(&(account.clone(), id)) {
                    out.push(format!("{account}/{workspace}/{table}/{id}"));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

type Expected = (
    u64,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
    SchemaRef,
);

/// Decodes every row of every column (every page and its header), with the page index, opens
/// the needle index's block, and compares what it holds with the catalog's entry. Batches are
/// counted and dropped as they come, so memory stays one batch.
fn scan(
    bytes: Bytes,
    props: Arc<parquet::encryption::decrypt::FileDecryptionProperties>,
    (rows, min_time, max_time, schema): &Expected,
    block: (&SegmentLocation, &logvault_crypto::Key256),
) -> Result<(), String> {
    let options = ArrowReaderOptions::new()
        .with_page_index_policy(PageIndexPolicy::Required)
        .with_file_decryption_properties(props);
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes.clone(), options)
        .map_err(|e| e.to_string())?;
    let found_schema = builder.schema().clone();
    check_framing(&bytes, builder.metadata())?;
    check_needle_block(&bytes, builder.metadata(), block)?;
    let reader = builder.build().map_err(|e| e.to_string())?;
    let (mut count, mut range) = (0u64, None);
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        count += batch.num_rows() as u64;
        if batch.num_rows() > 0 {
            let (lo, hi) = crate::segment::time_range(std::slice::from_ref(&batch))?;
            range = Some(match range {
                None => (lo, hi),
                Some((l, h)) => (std::cmp::min(l, lo), std::cmp::max(h, hi)),
            });
        }
    }
    if count != *rows {
        return Err(format!("it holds {count} rows, the catalog says {rows}"));
    }
    if range != Some((*min_time, *max_time)) {
        return Err(format!(
            "its time range is {range:?}, the catalog says {min_time} to {max_time}"
        ));
    }
    if found_schema.fields() != schema.fields() {
        return Err("its schema differs from the catalog's".into());
    }
    Ok(())
}

/// Opens the needle index's sealed block of the segment at `loc` (whose file is `bytes`), if
/// its footer names one: it must authenticate and be well formed.
fn check_needle_block(
    bytes: &[u8],
    meta: &parquet::file::metadata::ParquetMetaData,
    (loc, key): (&SegmentLocation, &logvault_crypto::Key256),
) -> Result<(), String> {
    let Some(reference) = BlockRef::of(meta) else {
        return Ok(());
    };
    let reference =
        reference.map_err(|e| format!("its needle index's footer entry is malformed: {e}"))?;
    let range = reference.range();
    let sealed = usize::try_from(range.start)
        .ok()
        .zip(usize::try_from(range.end).ok())
        .and_then(|(from, to)| bytes.get(from..to))
        .ok_or("its needle index lies past the end of the file")?;
    let plain = crate::needles::block::open(key, loc, sealed).map_err(|e| e.to_string())?;
    NeedleBlock::parts(&plain)
        .map(|_| ())
        .map_err(|e| format!("its needle index is malformed: {e}"))
}

/// The plaintext length prefix of the encrypted module at `at`.
fn module_len(bytes: &[u8], at: u64) -> Result<u64, String> {
    let at = usize::try_from(at).map_err(|e| e.to_string())?;
    let prefix = bytes
        .get(at..at + 4)
        .ok_or_else(|| format!("a module at byte {at} lies past the end"))?;
    Ok(u64::from(u32::from_le_bytes([
        prefix[0], prefix[1], prefix[2], prefix[3],
    ])))
}

/// Checks the framing of every page the decoder does not frame itself. Each page is two
/// modules, its header and its body, each `length (4 bytes, plaintext) | nonce | ciphertext |
/// tag`; parquet-rs reads a body by the size its (authenticated) header gives and never looks at
/// the body's length prefix, so a flipped bit there would go unnoticed although nothing reads
/// it. The scrub checks that every page's two modules fill exactly the page's extent as the
/// authenticated offset index and column metadata give it, and that each page index is one
/// module of its recorded length: then no byte of the file is left unchecked.
pub(crate) fn check_framing(
    bytes: &[u8],
    meta: &parquet::file::metadata::ParquetMetaData,
) -> Result<(), String> {
    let two_modules = |from: u64, len: u64, what: &str| -> Result<(), String> {
        let header = module_len(bytes, from)?;
        let body = module_len(bytes, from + 4 + header)?;
        if 4 + header + 4 + body == len {
            Ok(())
        } else {
            Err(format!(
                "the {what} at byte {from} has modules of {header} and {body} bytes, which do \
                 not fill its {len} bytes"
            ))
        }
    };
    footer_module(bytes)?;
    let offsets = meta
        .offset_index()
        .ok_or("the segment has no offset index")?;
    for (rg, row_group) in meta.row_groups().iter().enumerate() {
        for (c, column) in row_group.columns().iter().enumerate() {
            let data = u64::try_from(column.data_page_offset()).map_err(|e| e.to_string())?;
            if let Some(dict) = column.dictionary_page_offset() {
                let dict = u64::try_from(dict).map_err(|e| e.to_string())?;
                two_modules(dict, data.saturating_sub(dict), "dictionary page")?;
            }
            let pages = offsets
                .get(rg)
                .and_then(|r| r.get(c))
                .ok_or("the offset index misses a column chunk")?;
            for page in pages.page_locations() {
                let at = u64::try_from(page.offset).map_err(|e| e.to_string())?;
                let len = u64::try_from(page.compressed_page_size).map_err(|e| e.to_string())?;
                two_modules(at, len, "data page")?;
            }
            for (offset, length, what) in [
                (
                    column.column_index_offset(),
                    column.column_index_length(),
                    "column index",
                ),
                (
                    column.offset_index_offset(),
                    column.offset_index_length(),
                    "offset index",
                ),
            ] {
                if let (Some(o), Some(l)) = (offset, length) {
                    let o = u64::try_from(o).map_err(|e| e.to_string())?;
                    let l = u64::try_from(l).map_err(|e| e.to_string())?;
                    if 4 + module_len(bytes, o)? != l {
                        return Err(format!(
                            "the {what} at byte {o} is not one module of {l} bytes"
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Checks the plaintext crypto metadata at the start of the footer byte for byte: logvault writes
/// exactly `AES_GCM_V1 { aad_file_unique: 8 bytes, supply_aad_prefix: true }` and its key
/// metadata, in Thrift's compact encoding, and then the encrypted footer module. parquet-rs
/// reads these bytes leniently (a stop byte with its high bits flipped still reads as a stop),
/// so a flip there would go unnoticed although nothing changes meaning; the key metadata itself
/// is checked by the key retriever, and `aad_file_unique` enters every module's AAD.
fn check_crypto_metadata(bytes: &[u8], start: u64, module: u64) -> Result<(), String> {
    let region = usize::try_from(start)
        .ok()
        .zip(usize::try_from(module).ok())
        .and_then(|(s, m)| bytes.get(s..m))
        .ok_or("the footer's crypto metadata lies past the end")?;
    let bad = || "the footer's crypto metadata is not what logvault writes".to_owned();
    let (head, rest) = region.split_at_checked(4).ok_or_else(bad)?;
    if head != [0x1c, 0x1c, 0x28, 0x08] {
        return Err(bad());
    }
    let (_aad_file_unique, rest) = rest.split_at_checked(8).ok_or_else(bad)?;
    let (mid, mut rest) = rest.split_at_checked(4).ok_or_else(bad)?;
    if mid != [0x11, 0x00, 0x00, 0x18] {
        return Err(bad());
    }
    // The key metadata's length, a ULEB128 varint, then the key metadata and the final stop.
    let (mut len, mut shift) = (0u64, 0u32);
    loop {
        let (&b, r) = rest.split_first().ok_or_else(bad)?;
        rest = r;
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 28 {
            return Err(bad());
        }
    }
    let len = usize::try_from(len).map_err(|_| bad())?;
    let (_key_metadata, tail) = rest.split_at_checked(len).ok_or_else(bad)?;
    if tail != [0x00] {
        return Err(bad());
    }
    Ok(())
}

/// Where the encrypted footer module starts: the footer is the plaintext crypto metadata, then
/// one module that ends where the footer ends. Its length prefix is, again, not used by
/// parquet-rs (which knows the footer's length from the file's tail), so it is checked here,
/// with the crypto metadata before it.
pub(crate) fn footer_module(bytes: &[u8]) -> Result<u64, String> {
    let n = bytes.len() as u64;
    let tail = bytes
        .get(bytes.len().saturating_sub(8)..bytes.len().saturating_sub(4))
        .ok_or("the segment has no footer")?;
    let footer_len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    let end = n.checked_sub(8).ok_or("the segment has no footer")?;
    let start = end
        .checked_sub(footer_len)
        .ok_or("the footer is longer than the segment")?;
    let module = (start..end.saturating_sub(4))
        .find(|p| module_len(bytes, *p).is_ok_and(|l| l >= 28 && p + 4 + l == end))
        .ok_or_else(|| {
            "the encrypted footer is not one module ending with the footer".to_owned()
        })?;
    check_crypto_metadata(bytes, start, module)?;
    Ok(module)
}
