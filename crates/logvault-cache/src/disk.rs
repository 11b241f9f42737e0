//! The disk tier: cache files under `<cache dir>/v1/<account>/<workspace>/<table>/`, one per
//! cached segment, sealed under the service key ([`crate::file`]), indexed in memory by a moka
//! cache weighted by file bytes (TinyLFU admission, LRU eviction), rebuilt by a directory scan
//! when the cache is opened.
//!
//! Every file has a unique name (`<segment-id>.<generation>.lvc`), so removing an entry deletes
//! exactly its own file, even when a newer file for the same segment was written meanwhile.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use logvault_store::{AccountId, SegmentLocation};
use moka::notification::RemovalCause;

use crate::CacheError;
use crate::file::{self, CacheKeys, FileError, FileMeta, Opened, PREFIX_LEN};
use crate::metrics::{Event, Metrics};

const VERSION_DIR: &str = "v1";
const EXT: &str = "lvc";
const TMP_EXT: &str = "tmp";
/// Bytes read at once to open a file's head (prefix, metadata, body header).
const HEAD_READ: usize = 4096;

/// One cached segment on disk.
#[derive(Debug)]
pub(crate) struct DiskEntry {
    pub(crate) loc: SegmentLocation,
    pub(crate) file: PathBuf,
    /// Bytes of the file (what the tier's bound counts).
    pub(crate) stored: u64,
    pub(crate) opened: Opened,
    last_read: AtomicI64,
    /// When the entry was made (see [`crate::stamp`]).
    pub(crate) stamp: u64,
}

impl DiskEntry {
    pub(crate) fn touch(&self, now: DateTime<Utc>) {
        self.last_read
            .fetch_max(now.timestamp_micros(), Ordering::Relaxed);
    }

    pub(crate) fn last_read(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.last_read.load(Ordering::Relaxed)).unwrap_or_default()
    }
}

/// What the scan of the directory found when the tier was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ScanReport {
    pub(crate) loaded: u64,
    pub(crate) dropped: u64,
}

type Index = moka::sync::Cache<SegmentLocation, Arc<DiskEntry>>;

/// The disk tier.
#[derive(Debug)]
pub(crate) struct DiskTier {
    root: PathBuf,
    keys: Arc<CacheKeys>,
    index: Index,
    capacity: u64,
    chunk_size: u32,
    metrics: Arc<Metrics>,
}

fn weight(stored: u64) -> u32 {
    u32::try_from(stored).unwrap_or(u32::MAX)
}

fn remove_file(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %path.display(), error = %e, "cannot delete hot cache file");
    }
}

impl DiskTier {
    /// Opens the tier in `dir` (created if missing) and loads the files already there; corrupt
    /// files and files of another format version are deleted and counted.
    pub(crate) async fn open(
        dir: &Path,
        keys: Arc<CacheKeys>,
        capacity: u64,
        chunk_size: u32,
        metrics: Arc<Metrics>,
    ) -> Result<(Self, ScanReport), CacheError> {
        let root = dir.join(VERSION_DIR);
        fs::create_dir_all(&root).map_err(|e| CacheError::io(&root, &e))?;
        let listener_metrics = Arc::clone(&metrics);
        let index: Index = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .weigher(|_, e: &Arc<DiskEntry>| weight(e.stored))
            .eviction_listener(
                move |key: Arc<SegmentLocation>, entry: Arc<DiskEntry>, cause| {
                    remove_file(&entry.file);
                    if cause == RemovalCause::Size {
                        listener_metrics.add(&key.workspace, Event::DiskEviction, 1);
                    }
                },
            )
            .build();
        let tier = Self {
            root,
            keys,
            index,
            capacity,
            chunk_size,
            metrics,
        };
        let report = tier.scan().await?;
        Ok((tier, report))
    }

    /// The bound, in bytes.
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    async fn scan(&self) -> Result<ScanReport, CacheError> {
        let root = self.root.clone();
        let keys = Arc::clone(&self.keys);
        let (found, dropped) = tokio::task::spawn_blocking(move || scan_dir(&root, &keys))
            .await
            .map_err(|e| CacheError::Io {
                path: self.root.display().to_string(),
                reason: e.to_string(),
            })??;
        for (ws, n) in &dropped {
            self.metrics.add(ws, Event::Corrupt, *n);
        }
        let mut newest: std::collections::HashMap<SegmentLocation, DiskEntry> =
            std::collections::HashMap::new();
        let mut report = ScanReport {
            loaded: 0,
            dropped: dropped.iter().map(|(_, n)| n).sum(),
        };
        for entry in found {
            match newest.remove(&entry.loc) {
                Some(old) if old.opened.meta.cached_at >= entry.opened.meta.cached_at => {
                    remove_file(&entry.file);
                    newest.insert(old.loc.clone(), old);
                }
                Some(old) => {
                    remove_file(&old.file);
                    newest.insert(entry.loc.clone(), entry);
                }
                None => {
                    newest.insert(entry.loc.clone(), entry);
                }
            }
        }
        for (loc, entry) in newest {
            report.loaded += 1;
            self.index.insert(loc, Arc::new(entry));
        }
        self.index.run_pending_tasks();
        Ok(report)
    }

    /// The entry of `loc`, if cached.
    pub(crate) fn get(&self, loc: &SegmentLocation) -> Option<Arc<DiskEntry>> {
        self.index.get(loc)
    }

    /// Reads the plaintext `ranges` of a cached object, decrypting only the chunks they cover.
    pub(crate) async fn read(
        &self,
        entry: &Arc<DiskEntry>,
        ranges: Vec<Range<u64>>,
    ) -> Result<Vec<Bytes>, FileError> {
        let keys = Arc::clone(&self.keys);
        let entry = Arc::clone(entry);
        tokio::task::spawn_blocking(move || read_ranges(&keys, &entry, &ranges))
            .await
            .map_err(|e| FileError::Corrupt(format!("read task failed: {e}")))?
    }

    /// Drops a corrupt entry (its file is deleted) unless it was replaced meanwhile.
    pub(crate) fn drop_corrupt(&self, entry: &Arc<DiskEntry>, reason: &str) {
        tracing::warn!(
            file = %entry.file.display(),
            segment = %entry.loc,
            reason,
            "dropping corrupt hot cache file"
        );
        self.metrics.add(&entry.loc.workspace, Event::Corrupt, 1);
        if self
            .index
            .get(&entry.loc)
            .is_some_and(|current| Arc::ptr_eq(&current, entry))
        {
            self.index.invalidate(&entry.loc);
        } else {
            remove_file(&entry.file);
        }
    }

    /// Whether an object of `len` bytes can be kept at all.
    pub(crate) fn admits(&self, len: u64) -> bool {
        self.capacity > 0 && len <= self.capacity
    }

    /// Seals `plain` into a new file for `loc`. The entry is not indexed yet: the caller
    /// [`DiskTier::insert`]s or [`DiskTier::discard`]s it.
    pub(crate) async fn write(
        &self,
        loc: &SegmentLocation,
        plain: Bytes,
        meta: FileMeta,
    ) -> Result<Option<DiskEntry>, CacheError> {
        if !self.admits(plain.len() as u64) {
            return Ok(None);
        }
        let dir = self.dir_of(loc);
        let name = format!(
            "{}.{}.{EXT}",
            loc.segment,
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        );
        let path = dir.join(name);
        let keys = Arc::clone(&self.keys);
        let chunk = self.chunk_size;
        let target = path.clone();
        let written = tokio::task::spawn_blocking(move || {
            write_file(&keys, &dir, &target, &meta, &plain, chunk)
        })
        .await
        .map_err(|e| CacheError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })??;
        let cached_at = written.1.meta.cached_at.timestamp_micros();
        Ok(Some(DiskEntry {
            loc: loc.clone(),
            file: path,
            stored: written.0,
            opened: written.1,
            last_read: AtomicI64::new(cached_at),
            stamp: crate::stamp::next(),
        }))
    }

    /// Indexes a written entry (replacing, and deleting the file of, any older one).
    pub(crate) fn insert(&self, entry: DiskEntry) {
        self.index.insert(entry.loc.clone(), Arc::new(entry));
    }

    /// Deletes the file of a written entry that is not to be kept.
    pub(crate) fn discard(&self, entry: &DiskEntry) {
        remove_file(&entry.file);
    }

    fn dir_of(&self, loc: &SegmentLocation) -> PathBuf {
        self.root
            .join(loc.account.as_str())
            .join(&loc.workspace)
            .join(&loc.table)
    }

    /// Removes `loc`'s entry (its file is deleted).
    pub(crate) fn remove(&self, loc: &SegmentLocation) {
        self.index.invalidate(loc);
    }

    /// Every entry.
    pub(crate) fn entries(&self) -> Vec<Arc<DiskEntry>> {
        self.index.iter().map(|(_, e)| e).collect()
    }

    /// Removes every entry of `workspace` and every file left in its directories. Returns the
    /// entries, their bytes, and the files deleted from the directories afterwards.
    pub(crate) fn purge(&self, workspace: &str) -> (u64, u64, u64) {
        let mine: Vec<Arc<DiskEntry>> = self
            .entries()
            .into_iter()
            .filter(|e| e.loc.workspace == workspace)
            .collect();
        for e in &mine {
            self.index.invalidate(&e.loc);
        }
        self.index.run_pending_tasks();
        let mut leftover = 0;
        if let Ok(accounts) = fs::read_dir(&self.root) {
            for account in accounts.flatten() {
                let dir = account.path().join(workspace);
                if dir.is_dir() {
                    leftover += count_files(&dir);
                    if let Err(e) = fs::remove_dir_all(&dir) {
                        tracing::warn!(dir = %dir.display(), error = %e, "cannot delete hot cache directory");
                    }
                }
            }
        }
        let bytes = mine.iter().map(|e| e.stored).sum();
        (mine.len() as u64, bytes, leftover)
    }

    /// Entries and bytes, settled.
    pub(crate) fn usage(&self) -> (u64, u64) {
        self.index.run_pending_tasks();
        (self.index.entry_count(), self.index.weighted_size())
    }

    /// Entries and bytes of one workspace.
    pub(crate) fn usage_of(&self, workspace: &str) -> (u64, u64) {
        self.index
            .iter()
            .filter(|(k, _)| k.workspace == workspace)
            .fold((0, 0), |(n, b), (_, e)| (n + 1, b + e.stored))
    }
}

fn count_files(dir: &Path) -> u64 {
    let Ok(read) = fs::read_dir(dir) else {
        return 0;
    };
    read.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() { count_files(&p) } else { 1 }
        })
        .sum()
}

fn write_file(
    keys: &CacheKeys,
    dir: &Path,
    path: &Path,
    meta: &FileMeta,
    plain: &[u8],
    chunk: u32,
) -> Result<(u64, Opened), CacheError> {
    let sealed = file::encode(keys, meta, plain, chunk).map_err(|e| CacheError::Corrupt {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    fs::create_dir_all(dir).map_err(|e| CacheError::io(dir, &e))?;
    let tmp = path.with_extension(TMP_EXT);
    let mut f = fs::File::create(&tmp).map_err(|e| CacheError::io(&tmp, &e))?;
    f.write_all(&sealed).map_err(|e| CacheError::io(&tmp, &e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| CacheError::io(path, &e))?;
    let opened = file::open_head(keys, &meta.path, &sealed, sealed.len() as u64).map_err(|e| {
        CacheError::Corrupt {
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    })?;
    Ok((sealed.len() as u64, opened))
}

fn read_ranges(
    keys: &CacheKeys,
    entry: &DiskEntry,
    ranges: &[Range<u64>],
) -> Result<Vec<Bytes>, FileError> {
    let io = |e: std::io::Error| FileError::Corrupt(format!("cannot read: {e}"));
    let mut f = fs::File::open(&entry.file).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    if len != entry.stored {
        return Err(FileError::Corrupt(format!(
            "file is {len} bytes, expected {}",
            entry.stored
        )));
    }
    let size = entry.opened.header.plaintext_len;
    let mut out = Vec::with_capacity(ranges.len());
    for range in ranges {
        if range.start > range.end || range.end > size {
            return Err(FileError::Corrupt(format!(
                "range {}..{} is outside the object of {size} bytes",
                range.start, range.end
            )));
        }
        let (chunks, span) = file::chunk_span(&entry.opened, range);
        if chunks.is_empty() {
            out.push(Bytes::new());
            continue;
        }
        f.seek(SeekFrom::Start(span.start)).map_err(io)?;
        let mut cipher = vec![0u8; usize::try_from(span.end - span.start).unwrap_or(0)];
        f.read_exact(&mut cipher).map_err(io)?;
        let plain = file::decrypt_range(keys, &entry.opened, chunks, &cipher, range)?;
        out.push(Bytes::from(plain));
    }
    Ok(out)
}

/// Reads the head of a file and opens it as the cache file of `routed`.
fn open_file(keys: &CacheKeys, path: &Path, routed: &str) -> Result<(u64, Opened), FileError> {
    let io = |e: std::io::Error| FileError::Corrupt(format!("cannot read: {e}"));
    let mut f = fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let mut head = vec![0u8; HEAD_READ.min(usize::try_from(len).unwrap_or(HEAD_READ))];
    f.read_exact(&mut head).map_err(io)?;
    let meta_len = file::meta_len(&head)?;
    let need = PREFIX_LEN + meta_len + logvault_crypto::infra::HEADER_LEN;
    if need > head.len() {
        let have = head.len();
        head.resize(need, 0);
        f.read_exact(&mut head[have..]).map_err(io)?;
    }
    file::open_head(keys, routed, &head, len).map(|o| (len, o))
}

/// Valid entries, and files dropped per workspace.
type Scanned = (Vec<DiskEntry>, Vec<(String, u64)>);

/// The entries of every valid file under `root`, and the number of files dropped per workspace.
fn scan_dir(root: &Path, keys: &CacheKeys) -> Result<Scanned, CacheError> {
    let mut found = Vec::new();
    let mut dropped: std::collections::BTreeMap<String, u64> = Default::default();
    let read = |dir: &Path| -> Result<Vec<PathBuf>, CacheError> {
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let entries = fs::read_dir(dir).map_err(|e| CacheError::io(dir, &e))?;
        Ok(entries.flatten().map(|e| e.path()).collect())
    };
    for account_dir in read(root)? {
        for ws_dir in read(&account_dir)? {
            for table_dir in read(&ws_dir)? {
                for path in read(&table_dir)? {
                    let ws = ws_dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    match load(keys, &account_dir, &ws_dir, &table_dir, &path) {
                        Ok(Some(entry)) => found.push(entry),
                        Ok(None) => remove_file(&path),
                        Err(reason) => {
                            tracing::warn!(file = %path.display(), %reason, "dropping hot cache file");
                            remove_file(&path);
                            *dropped.entry(ws).or_default() += 1;
                        }
                    }
                }
            }
        }
    }
    Ok((found, dropped.into_iter().collect()))
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One file found by the scan: `Ok(None)` for a leftover temporary file.
fn load(
    keys: &CacheKeys,
    account: &Path,
    ws: &Path,
    table: &Path,
    path: &Path,
) -> Result<Option<DiskEntry>, String> {
    let file = name(path);
    if file.ends_with(&format!(".{TMP_EXT}")) {
        return Ok(None);
    }
    let segment = file
        .strip_suffix(&format!(".{EXT}"))
        .and_then(|s| s.split_once('.'))
        .map(|(id, _)| id)
        .ok_or("not a cache file name")?;
    let account = AccountId::parse(&name(account)).map_err(|e| e.to_string())?;
    let loc = SegmentLocation::new(
        account,
        &name(ws),
        &name(table),
        segment
            .parse()
            .map_err(|e: logvault_store::StoreError| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let routed = loc.routed_path().to_string();
    let (stored, opened) = open_file(keys, path, &routed).map_err(|e| e.to_string())?;
    let last = opened.meta.cached_at.timestamp_micros();
    Ok(Some(DiskEntry {
        loc,
        file: path.to_owned(),
        stored,
        opened,
        last_read: AtomicI64::new(last),
        stamp: crate::stamp::next(),
    }))
}
