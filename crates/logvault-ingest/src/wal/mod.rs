//! The write-ahead log of a workspace: what ingestion acknowledged and has not yet put into a
//! segment of the store survives a crash (R-E3).
//!
//! - Records (one parsed batch of one table each) are sealed with AES-256-GCM under a key the
//!   caller gives ([`WalKey`], e.g. `Aek::derive_purpose_key("wal")` of the account the data is
//!   for); each frame names its key ([`WalKeyRef`]: scheme and account), so that replay knows
//!   which key to ask for. Nothing of a record is on disk in clear.
//! - [`Wal::append`] returns once its records are fsynced. Appends that arrive while an fsync is
//!   under way are written together and share the next fsync (group commit); the records of one
//!   append are in one group, and a group is replayed whole or not at all.
//! - [`Wal::open`] replays: it returns the records after the last checkpoint, truncates a torn
//!   final group left by a crash, and fails on any other damage, naming the file and offset.
//! - [`Wal::checkpoint`] records that everything up to a sequence number is durably in the
//!   store and its catalog; files holding only such records are deleted.
//!
//! The format (version 1) and the crash protocol are specified in `docs/ingest.md`.

mod files;
mod format;
mod layout;
mod peek;
mod record;
mod recover;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use logvault_crypto::Key256;

use crate::IngestError;
use crate::batcher::SeqRange;

pub use layout::{LayoutUpgrade, upgrade_shared_layout, workspace_dir};
pub use peek::{Pending, needs_replay, pending};
pub use record::MAX_REQUEST_KEY_LEN;

/// Which kind of key a frame is sealed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WalKeyScheme {
    /// A key of an account under the service key (MMK).
    Service,
    /// A key of an account under a customer key (CMK).
    Customer,
}

impl WalKeyScheme {
    fn code(self) -> u8 {
        match self {
            Self::Service => 1,
            Self::Customer => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Service),
            2 => Some(Self::Customer),
            _ => None,
        }
    }
}

/// Names the key a frame is sealed under: never key material, only where to get it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WalKeyRef {
    /// Service or customer key.
    pub scheme: WalKeyScheme,
    /// The storage account whose key it is.
    pub account: String,
}

impl fmt::Display for WalKeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            WalKeyScheme::Service => "service",
            WalKeyScheme::Customer => "customer",
        };
        write!(f, "{scheme}:{}", self.account)
    }
}

/// A key to seal frames with, and its reference.
pub struct WalKey {
    key_ref: WalKeyRef,
    key: Key256,
}

impl WalKey {
    /// A key for frames, e.g. `Aek::derive_purpose_key("wal")` of the account named by
    /// `key_ref`.
    ///
    /// # Errors
    /// [`IngestError::InvalidOption`] for an empty account name or one over 1024 bytes.
    pub fn new(key_ref: WalKeyRef, key: Key256) -> Result<Self, IngestError> {
        if key_ref.account.is_empty() || key_ref.account.len() > format::MAX_ACCOUNT {
            return Err(IngestError::InvalidOption {
                reason: format!("log key account must be 1 to {} bytes", format::MAX_ACCOUNT),
            });
        }
        Ok(Self { key_ref, key })
    }

    /// Which key this is.
    pub fn key_ref(&self) -> &WalKeyRef {
        &self.key_ref
    }
}

impl fmt::Debug for WalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WalKey({}, REDACTED)", self.key_ref)
    }
}

/// Why a keyring cannot give the key a frame names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalKeyError {
    /// The key exists but cannot be had now (a vault outage): the opening of the log fails, and
    /// nothing is cut or skipped.
    Unavailable(String),
    /// No such key can exist (the reference names no account that could have one): a frame
    /// naming it cannot be authentic, so it is treated as damaged, like a frame that fails
    /// authentication (cut when it is the torn tail, an error elsewhere).
    Unknown(String),
}

impl From<String> for WalKeyError {
    fn from(reason: String) -> Self {
        Self::Unavailable(reason)
    }
}

/// Gives replay the keys its frames are sealed under.
pub trait WalKeyring {
    /// The key named by `key_ref`: `Ok(Some)` if it can be had; `Ok(None)` if it is revoked,
    /// in which case the frames under it are kept in the log, neither replayed nor passed by a
    /// checkpoint, until an open can get the key again (they were acknowledged: R-E3);
    /// [`WalKeyError::Unavailable`] if it cannot be had now (a vault outage), which fails the
    /// opening of the log; [`WalKeyError::Unknown`] if no such key exists.
    ///
    /// Replay asks only for the keys of frames whose header is plausible where it stands (its
    /// sequence and group numbers), so damaged bytes rarely reach the keyring; when they do,
    /// `Unknown` keeps a damaged torn tail from reading as a vault outage.
    fn key(&self, key_ref: &WalKeyRef) -> Result<Option<Arc<WalKey>>, WalKeyError>;
}

impl<F, E> WalKeyring for F
where
    F: Fn(&WalKeyRef) -> Result<Option<Arc<WalKey>>, E>,
    E: Into<WalKeyError>,
{
    fn key(&self, key_ref: &WalKeyRef) -> Result<Option<Arc<WalKey>>, WalKeyError> {
        self(key_ref).map_err(Into::into)
    }
}

/// Tuning of the log.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// Size after which the log moves on to a new file.
    pub max_file_bytes: u64,
    /// Most bytes of records written in one group (one fsync); a larger single append is still
    /// written whole.
    pub max_group_bytes: usize,
    /// How long the committer waits for more appends before writing a group (PostgreSQL's
    /// `commit_delay`). Zero writes at once; appends arriving during an fsync are grouped
    /// anyway.
    pub commit_delay: Duration,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            max_file_bytes: 64 << 20,
            max_group_bytes: 32 << 20,
            commit_delay: Duration::ZERO,
        }
    }
}

/// Counters of a log since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records appended.
    pub records: u64,
    /// Appends acknowledged.
    pub appends: u64,
    /// Groups written.
    pub groups: u64,
    /// fsyncs of log files (one per group; directory fsyncs not counted).
    pub fsyncs: u64,
    /// Bytes written to log files.
    pub bytes: u64,
}

/// One record to append.
#[derive(Debug, Clone, Copy)]
pub struct WalRecord<'a> {
    /// The table the rows are for.
    pub table: &'a str,
    /// The parsed rows.
    pub batch: &'a RecordBatch,
}

/// A record given back by replay.
#[derive(Debug, Clone)]
pub struct RecoveredRecord {
    /// Its sequence number.
    pub seq: u64,
    /// Its table.
    pub table: String,
    /// Its rows.
    pub batch: RecordBatch,
    /// The key it was sealed under: its storage account is where its rows belong.
    pub key: WalKeyRef,
}

/// A torn final group that replay cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The file.
    pub path: PathBuf,
    /// Where the file now ends.
    pub offset: u64,
    /// How many bytes were cut.
    pub bytes: u64,
}

/// What replay found.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// The records after the checkpoint, in sequence order: acknowledged, not yet known to be in
    /// the store.
    pub records: Vec<RecoveredRecord>,
    /// The checkpoint: every record up to it is in the store and catalog.
    pub checkpoint: u64,
    /// The torn tail that was cut, if any.
    pub torn: Option<TornTail>,
    /// Records after the checkpoint sealed under a key that is revoked now. They were
    /// acknowledged, so they are not dropped: they stay in the log, are not among `records`, and
    /// no checkpoint passes them ([`Wal::checkpoint`] stops before `held_from`) until a later
    /// open gets their key and replays them.
    pub held_revoked: u64,
    /// The sequence number of the first held record.
    pub held_from: Option<u64>,
    /// The sequence number the next append gets: a batcher fed only by new appends resumes
    /// after `next_seq - 1`.
    pub next_seq: u64,
    /// The request keys logged with [`Wal::append_keyed`] in every group still on disk whose
    /// frames could be read (also those at or before the checkpoint), oldest first.
    pub request_keys: Vec<String>,
}

/// The write-ahead log of one workspace.
pub struct Wal {
    workspace: String,
    /// The first record held under a revoked key: checkpoints stop before it.
    hold: Option<u64>,
    shared: Arc<writer::Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("workspace", &self.workspace)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Wal {
    /// Opens (or creates) the log of `workspace` in `dir`, replaying what it holds.
    ///
    /// # Errors
    /// [`IngestError::WalIo`] if the directory or a file cannot be read or written;
    /// [`IngestError::WalCorrupt`] for damage other than a torn final group;
    /// [`IngestError::WalKeyUnavailable`] if the keyring cannot give a key now.
    pub fn open(
        dir: &Path,
        workspace: &str,
        options: WalOptions,
        keyring: &dyn WalKeyring,
    ) -> Result<(Self, Recovery), IngestError> {
        if options.max_file_bytes == 0 || options.max_group_bytes == 0 {
            return Err(IngestError::InvalidOption {
                reason: "log file and group sizes must be positive".into(),
            });
        }
        files::create_dir(dir, workspace)?;
        let recovered = recover::recover(dir, workspace, keyring)?;
        let (shared, thread) = writer::start(dir, workspace, options, &recovered)?;
        let recovery = Recovery {
            next_seq: recovered.next_seq,
            records: recovered.records,
            checkpoint: recovered.checkpoint,
            torn: recovered.torn,
            held_revoked: recovered.held_revoked,
            held_from: recovered.held_from,
            request_keys: recovered.request_keys,
        };
        Ok((
            Self {
                workspace: workspace.to_owned(),
                hold: recovered.held_from,
                shared,
                thread: Some(thread),
            },
            recovery,
        ))
    }

    /// Appends records sealed under `key`; returns their sequence numbers once they are
    /// fsynced. The records are one group: after a crash, all of them are replayed or none.
    ///
    /// # Errors
    /// [`IngestError::WalEncode`] if there are no records, or one cannot be encoded or sealed;
    /// [`IngestError::WalClosed`] if the log is closed or an earlier write failed.
    pub async fn append(
        &self,
        key: &Arc<WalKey>,
        records: &[WalRecord<'_>],
    ) -> Result<SeqRange, IngestError> {
        self.append_keyed(key, records, &[]).await
    }

    /// As [`Wal::append`], and logs `request_keys` (the idempotency keys of the client requests
    /// whose rows these are) with the group's first record: a later open gives them back in
    /// [`Recovery::request_keys`], so that a retried request is known after a crash.
    ///
    /// # Errors
    /// As [`Wal::append`]; also a key longer than [`MAX_REQUEST_KEY_LEN`] bytes, or more than
    /// 65,535 keys.
    pub async fn append_keyed(
        &self,
        key: &Arc<WalKey>,
        records: &[WalRecord<'_>],
        request_keys: &[String],
    ) -> Result<SeqRange, IngestError> {
        if records.is_empty() {
            return Err(IngestError::WalEncode {
                workspace: self.workspace.clone(),
                reason: "an append needs at least one record".into(),
            });
        }
        let encoded = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let keys = if i == 0 { request_keys } else { &[] };
                record::encode(r.table, r.batch, keys)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| IngestError::WalEncode {
                workspace: self.workspace.clone(),
                reason,
            })?;
        let receiver = self.shared.submit(Arc::clone(key), encoded)?;
        receiver.await.map_err(|_| self.closed())?
    }

    /// Records that every record up to `through` is durably in the store and the catalog, and
    /// deletes the files that hold nothing newer. A checkpoint never passes a record held under
    /// a revoked key ([`Recovery::held_from`]): it stops just before it.
    ///
    /// # Errors
    /// [`IngestError::WalIo`] if the checkpoint cannot be written; [`IngestError::WalClosed`].
    pub async fn checkpoint(&self, through: u64) -> Result<(), IngestError> {
        let through = match self.hold {
            Some(held) => through.min(held.saturating_sub(1)),
            None => through,
        };
        let receiver = self.shared.checkpoint(through)?;
        receiver.await.map_err(|_| self.closed())?
    }

    /// Counters since the log was opened.
    pub fn stats(&self) -> WalStats {
        self.shared.stats()
    }

    /// Writes what is pending and stops the committer.
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.close();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(workspace = %self.workspace, "write-ahead log committer panicked");
        }
    }

    fn closed(&self) -> IngestError {
        IngestError::WalClosed {
            workspace: self.workspace.clone(),
            reason: "the committer stopped".into(),
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.stop();
    }
}
