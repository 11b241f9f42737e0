//! The committer: one thread per log that writes groups of frames and fsyncs them.
//!
//! Appenders queue their encoded records and wait. The committer takes everything queued (up to
//! [`WalOptions::max_group_bytes`]), numbers and seals the frames, writes them with one write,
//! fsyncs once, and answers every appender of the group. While it fsyncs, new appends queue up
//! and form the next group: that is group commit, one fsync for many appends. A failed write or
//! fsync is never retried (the page cache may have dropped the data): the log stops accepting
//! appends and must be reopened, which replays from the files.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use logvault_crypto::aead;
use tokio::sync::oneshot;

use super::files::{io_err, sync_dir, write_checkpoint, write_synced};
use super::format::{file_header, file_name, frame_aad, frame_header};
use super::recover::Recovered;
use super::{WalKey, WalOptions, WalStats};
use crate::IngestError;
use crate::batcher::SeqRange;

type AppendReply = oneshot::Sender<Result<SeqRange, IngestError>>;
type CheckpointReply = oneshot::Sender<Result<(), IngestError>>;
/// A group to write and the checkpoints to apply after it.
type Work = (Vec<Pending>, Vec<(u64, CheckpointReply)>);

struct Pending {
    key: Arc<WalKey>,
    records: Vec<Vec<u8>>,
    bytes: usize,
    reply: AppendReply,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    checkpoints: Vec<(u64, CheckpointReply)>,
    closing: bool,
    /// Why the log stopped accepting appends.
    failed: Option<String>,
    stats: WalStats,
    #[cfg(test)]
    paused: bool,
}

/// What appenders and the committer share.
pub(super) struct Shared {
    workspace: String,
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn refuse(&self, q: &Queue) -> Option<IngestError> {
        let reason = match (&q.failed, q.closing) {
            (Some(reason), _) => reason.clone(),
            (None, true) => "the log was closed".to_owned(),
            (None, false) => return None,
        };
        Some(IngestError::WalClosed {
            workspace: self.workspace.clone(),
            reason,
        })
    }

    pub(super) fn submit(
        &self,
        key: Arc<WalKey>,
        records: Vec<Vec<u8>>,
    ) -> Result<oneshot::Receiver<Result<SeqRange, IngestError>>, IngestError> {
        let (reply, receiver) = oneshot::channel();
        let bytes = records.iter().map(Vec::len).sum();
        let mut q = self.lock();
        if let Some(e) = self.refuse(&q) {
            return Err(e);
        }
        q.pending.push(Pending {
            key,
            records,
            bytes,
            reply,
        });
        drop(q);
        self.wake.notify_one();
        Ok(receiver)
    }

    pub(super) fn checkpoint(
        &self,
        through: u64,
    ) -> Result<oneshot::Receiver<Result<(), IngestError>>, IngestError> {
        let (reply, receiver) = oneshot::channel();
        let mut q = self.lock();
        if let Some(e) = self.refuse(&q) {
            return Err(e);
        }
        q.checkpoints.push((through, reply));
        drop(q);
        self.wake.notify_one();
        Ok(receiver)
    }

    pub(super) fn stats(&self) -> WalStats {
        self.lock().stats
    }

    pub(super) fn close(&self) {
        self.lock().closing = true;
        self.wake.notify_all();
    }

    #[cfg(test)]
    pub(super) fn pause(&self, paused: bool) {
        self.lock().paused = paused;
        self.wake.notify_all();
    }

    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.lock().pending.len()
    }
}

struct Committer {
    shared: Arc<Shared>,
    dir: PathBuf,
    options: WalOptions,
    file: File,
    path: PathBuf,
    file_len: u64,
    /// Files with frames (the active one last once it has any), by first sequence number.
    files: Vec<(u64, PathBuf)>,
    next_seq: u64,
    next_group: u64,
    checkpoint: u64,
}

/// Opens a new active file after replay and starts the committer thread.
pub(super) fn start(
    dir: &Path,
    workspace: &str,
    options: WalOptions,
    recovered: &Recovered,
) -> Result<(Arc<Shared>, std::thread::JoinHandle<()>), IngestError> {
    let shared = Arc::new(Shared {
        workspace: workspace.to_owned(),
        queue: Mutex::new(Queue::default()),
        wake: Condvar::new(),
    });
    let (file, path, file_len) = create_file(dir, workspace, recovered.next_seq)?;
    let mut committer = Committer {
        shared: Arc::clone(&shared),
        dir: dir.to_owned(),
        options,
        file,
        path,
        file_len,
        files: recovered.files.clone(),
        next_seq: recovered.next_seq,
        next_group: 1,
        checkpoint: recovered.checkpoint,
    };
    committer.delete_checkpointed()?;
    let thread = std::thread::Builder::new()
        .name(format!("wal-{workspace}"))
        .spawn(move || committer.run())
        .map_err(|e| io_err(workspace, dir, e))?;
    Ok((shared, thread))
}

fn create_file(
    dir: &Path,
    workspace: &str,
    first_seq: u64,
) -> Result<(File, PathBuf, u64), IngestError> {
    let path = dir.join(file_name(first_seq));
    let header = file_header(workspace, first_seq);
    let file = write_synced(&path, workspace, &header, true)?;
    sync_dir(dir, workspace)?;
    Ok((file, path, header.len() as u64))
}

impl Committer {
    fn workspace(&self) -> &str {
        &self.shared.workspace
    }

    fn run(mut self) {
        while let Some((group, checkpoints)) = self.next_work() {
            if !group.is_empty() {
                self.commit(group);
            }
            for (through, reply) in checkpoints {
                let result = self.apply_checkpoint(through);
                if reply.send(result).is_err() {
                    tracing::debug!("checkpoint requester went away");
                }
            }
        }
    }

    /// Waits for work; `None` once closing and nothing is left.
    fn next_work(&self) -> Option<Work> {
        let shared = &self.shared;
        let mut q = shared.lock();
        loop {
            #[cfg(test)]
            let paused = q.paused && !q.closing;
            #[cfg(not(test))]
            let paused = false;
            if !paused && (!q.pending.is_empty() || !q.checkpoints.is_empty()) {
                break;
            }
            if q.closing && q.pending.is_empty() && q.checkpoints.is_empty() {
                return None;
            }
            q = shared.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
        if !self.options.commit_delay.is_zero() && !q.pending.is_empty() {
            drop(q);
            std::thread::sleep(self.options.commit_delay);
            q = shared.lock();
        }
        let mut bytes = 0;
        let mut take = 0;
        for p in &q.pending {
            if take > 0 && bytes + p.bytes > self.options.max_group_bytes {
                break;
            }
            bytes += p.bytes;
            take += 1;
        }
        let group: Vec<Pending> = q.pending.drain(..take).collect();
        let checkpoints = std::mem::take(&mut q.checkpoints);
        Some((group, checkpoints))
    }

    fn commit(&mut self, group: Vec<Pending>) {
        if let Some(reason) = self.shared.lock().failed.clone() {
            return self.fail_all(group, &reason);
        }
        let first_seq = self.next_seq;
        let (buf, ranges) = match self.seal_group(&group) {
            Ok(sealed) => sealed,
            Err(e) => {
                self.next_seq = first_seq;
                for p in group {
                    let _ = p.reply.send(Err(IngestError::WalEncode {
                        workspace: self.workspace().to_owned(),
                        reason: e.clone(),
                    }));
                }
                return;
            }
        };
        if let Err(e) = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data())
        {
            let reason = format!("writing {} failed: {e}", self.path.display());
            tracing::error!(workspace = self.workspace(), %reason, "write-ahead log stopped");
            self.shared.lock().failed = Some(reason.clone());
            return self.fail_all(group, &reason);
        }
        if self.files.last().is_none_or(|(_, p)| *p != self.path) {
            self.files.push((first_seq, self.path.clone()));
        }
        self.file_len += buf.len() as u64;
        self.next_group += 1;
        {
            let mut q = self.shared.lock();
            q.stats.groups += 1;
            q.stats.fsyncs += 1;
            q.stats.bytes += buf.len() as u64;
            q.stats.appends += group.len() as u64;
            q.stats.records += group.iter().map(|p| p.records.len() as u64).sum::<u64>();
        }
        // Rotating before acknowledging keeps the files predictable for whoever waits on an
        // append; a failed rotation stops later appends, not this durable group.
        if self.file_len >= self.options.max_file_bytes
            && let Err(e) = self.rotate()
        {
            let reason = e.to_string();
            tracing::error!(workspace = self.workspace(), %reason, "write-ahead log stopped");
            self.shared.lock().failed = Some(reason);
        }
        for (p, range) in group.into_iter().zip(ranges) {
            // An appender that went away simply does not hear its acknowledgement.
            let _ = p.reply.send(Ok(range));
        }
    }

    /// Numbers and seals the frames of a group into one buffer; the range of each append.
    fn seal_group(&mut self, group: &[Pending]) -> Result<(Vec<u8>, Vec<SeqRange>), String> {
        let total: usize = group.iter().map(|p| p.records.len()).sum();
        let mut buf = Vec::with_capacity(group.iter().map(|p| p.bytes + 128).sum());
        let mut ranges = Vec::with_capacity(group.len());
        let mut written = 0;
        for p in group {
            let first = self.next_seq;
            for plaintext in &p.records {
                written += 1;
                let body_len = plaintext.len() + aead::SEAL_OVERHEAD;
                let header = frame_header(
                    body_len,
                    self.next_seq,
                    self.next_group,
                    written == total,
                    p.key.key_ref(),
                );
                let aad = frame_aad(self.workspace(), &header);
                buf.extend_from_slice(&header);
                aead::seal_into(&p.key.key, &aad, plaintext, &mut buf)
                    .map_err(|e| format!("sealing record {}: {e}", self.next_seq))?;
                self.next_seq += 1;
            }
            ranges.push(SeqRange {
                first,
                last: self.next_seq.saturating_sub(1).max(first),
            });
        }
        Ok((buf, ranges))
    }

    fn fail_all(&self, group: Vec<Pending>, reason: &str) {
        for p in group {
            let _ = p.reply.send(Err(IngestError::WalClosed {
                workspace: self.workspace().to_owned(),
                reason: reason.to_owned(),
            }));
        }
    }

    fn rotate(&mut self) -> Result<(), IngestError> {
        let (file, path, len) = create_file(&self.dir, self.workspace(), self.next_seq)?;
        self.file = file;
        self.path = path;
        self.file_len = len;
        self.next_group = 1;
        Ok(())
    }

    fn apply_checkpoint(&mut self, through: u64) -> Result<(), IngestError> {
        let through = through.min(self.next_seq.saturating_sub(1));
        if through <= self.checkpoint {
            return Ok(());
        }
        write_checkpoint(&self.dir, self.workspace(), through)?;
        self.checkpoint = through;
        self.delete_checkpointed()
    }

    /// Deletes the files (never the active one) whose records are all checkpointed: a file's
    /// records end where the next file's begin.
    fn delete_checkpointed(&mut self) -> Result<(), IngestError> {
        let mut deleted = false;
        while self.files.first().is_some_and(|(_, p)| *p != self.path) {
            let next_first = self.files.get(1).map_or(self.next_seq, |(s, _)| *s);
            let (_, path) = &self.files[0];
            if next_first.saturating_sub(1) > self.checkpoint {
                break;
            }
            std::fs::remove_file(path).map_err(|e| io_err(self.workspace(), path, e))?;
            self.files.remove(0);
            deleted = true;
        }
        if deleted {
            sync_dir(&self.dir, self.workspace())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use logvault_crypto::Key256;

    use crate::wal::{Wal, WalKey, WalKeyRef, WalKeyScheme, WalOptions, WalRecord};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_queued_during_a_commit_share_one_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let key_ref = WalKeyRef {
            scheme: WalKeyScheme::Service,
            account: "acct".into(),
        };
        let key = Arc::new(WalKey::new(key_ref, Key256::generate().unwrap()).unwrap());
        let ring = |_: &WalKeyRef| Ok::<_, String>(None);
        let (wal, _) = Wal::open(dir.path(), "ws-one", WalOptions::default(), &ring).unwrap();
        let batch =
            RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from(vec![1, 2, 3])) as _)])
                .unwrap();
        // Hold the committer as if it were inside a long fsync, and queue appends meanwhile.
        wal.shared.pause(true);
        let wal = Arc::new(wal);
        let appenders = 20;
        let mut handles = Vec::new();
        for _ in 0..appenders {
            let (wal, key, batch) = (Arc::clone(&wal), Arc::clone(&key), batch.clone());
            handles.push(tokio::spawn(async move {
                let records = [WalRecord {
                    table: "T",
                    batch: &batch,
                }];
                wal.append(&key, &records).await.unwrap()
            }));
        }
        while wal.shared.queued() < appenders {
            tokio::task::yield_now().await;
        }
        wal.shared.pause(false);
        let mut firsts = Vec::new();
        for h in handles {
            firsts.push(h.await.unwrap().first);
        }
        firsts.sort_unstable();
        assert_eq!(firsts, (1..=appenders as u64).collect::<Vec<_>>());
        let stats = wal.stats();
        assert_eq!(
            (stats.appends, stats.groups, stats.fsyncs),
            (appenders as u64, 1, 1)
        );
    }

    /// A group of many frames (1,500 records in one append) is written whole with one fsync,
    /// and every record reads back in order, under its key.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_of_many_frames_is_written_whole_with_one_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let key_ref = WalKeyRef {
            scheme: WalKeyScheme::Customer,
            account: "cluster-acct".into(),
        };
        let key = Arc::new(WalKey::new(key_ref.clone(), Key256::generate().unwrap()).unwrap());
        let ring = {
            let key = Arc::clone(&key);
            move |r: &WalKeyRef| Ok::<_, String>((*r == key_ref).then(|| Arc::clone(&key)))
        };
        let (wal, _) = Wal::open(dir.path(), "ws-many", WalOptions::default(), &ring).unwrap();
        let batches: Vec<RecordBatch> = (0..1500i64)
            .map(|i| {
                RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from(vec![i, i * 7])) as _)])
                    .unwrap()
            })
            .collect();
        let records: Vec<WalRecord<'_>> = batches
            .iter()
            .map(|batch| WalRecord { table: "T", batch })
            .collect();
        let range = wal.append(&key, &records).await.unwrap();
        assert_eq!((range.first, range.last), (1, 1500));
        let stats = wal.stats();
        assert_eq!((stats.records, stats.fsyncs), (1500, 1));
        let bytes = stats.bytes;
        wal.close();
        fn log_bytes(dir: &std::path::Path) -> u64 {
            std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .map(|p| {
                    if p.is_dir() {
                        log_bytes(&p)
                    } else if p.extension().is_some_and(|x| x == "lvw") {
                        std::fs::metadata(p).unwrap().len()
                    } else {
                        0
                    }
                })
                .sum()
        }
        let on_disk = log_bytes(dir.path());
        assert!(
            on_disk > bytes,
            "{on_disk} bytes on disk for {bytes} of frames"
        );
        let (_, recovery) = Wal::open(dir.path(), "ws-many", WalOptions::default(), &ring).unwrap();
        assert_eq!(recovery.records.len(), 1500);
        for (i, r) in recovery.records.iter().enumerate() {
            assert_eq!(r.seq, i as u64 + 1);
            assert_eq!(r.batch, batches[i], "record {}", r.seq);
        }
    }
}
