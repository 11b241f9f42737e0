//! Replay: reading the log files back after a restart or a crash.
//!
//! Only one group is ever being written at a time (the committer writes a group, fsyncs it, and
//! only then acknowledges it and starts the next one), and only into the newest file. So a crash
//! can damage only the last group of the newest file, and that group was not acknowledged. The
//! rules follow:
//! - in the newest file, from the first frame that is incomplete, fails authentication, or is
//!   out of sequence, to the end, the bytes are a torn group and are cut off (the file is
//!   truncated at the end of its last complete group), provided no frame of a later group can
//!   be found after the damage (resynchronising on the frame magic and authenticating); a later
//!   group means the damage is in acknowledged data, which is an error;
//! - a group whose frames end without the end-of-group flag is torn in the same way;
//! - any damage in another file, a file of another workspace, of an unknown version, or a gap
//!   in the sequence numbers (between files, between the checkpoint and the oldest file, or an
//!   older file that holds no frame at all), is an error naming the file and offset.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use logvault_crypto::aead;

use super::files::{corrupt, io_err, list, read_checkpoint, sync_dir};
use super::format::{
    FRAME_HEADER_FIXED, FRAME_MAGIC, FrameHeader, HeaderError, frame_aad, parse_file_header,
    parse_frame_header,
};
use super::{RecoveredRecord, TornTail, WalKey, WalKeyError, WalKeyRef, WalKeyring, record};

/// The smallest frame: a header without account and an empty sealed body.
const MIN_FRAME: usize = FRAME_HEADER_FIXED + aead::SEAL_OVERHEAD;
use crate::IngestError;

/// What replay found, for the committer and the caller.
pub(super) struct Recovered {
    pub(super) records: Vec<RecoveredRecord>,
    pub(super) checkpoint: u64,
    pub(super) next_seq: u64,
    /// The files that hold frames, by first sequence number.
    pub(super) files: Vec<(u64, PathBuf)>,
    pub(super) torn: Option<TornTail>,
    pub(super) held_revoked: u64,
    pub(super) held_from: Option<u64>,
    pub(super) request_keys: Vec<String>,
}

struct Keys<'k> {
    keyring: &'k dyn WalKeyring,
    workspace: &'k str,
    /// `Err` for a key that cannot exist (the frame naming it is damaged).
    cache: HashMap<WalKeyRef, Result<Option<Arc<WalKey>>, String>>,
}

impl Keys<'_> {
    /// The key `key_ref` names: `Ok(Ok(None))` when revoked, `Ok(Err(reason))` when no such key
    /// exists; `Err` when it cannot be had now, which fails the opening of the log.
    fn get(
        &mut self,
        key_ref: &WalKeyRef,
    ) -> Result<Result<Option<Arc<WalKey>>, String>, IngestError> {
        if let Some(k) = self.cache.get(key_ref) {
            return Ok(k.clone());
        }
        let key = match self.keyring.key(key_ref) {
            Ok(key) => Ok(key),
            Err(WalKeyError::Unknown(reason)) => Err(format!(
                "the frame names key {key_ref}, which does not exist ({reason})"
            )),
            Err(WalKeyError::Unavailable(reason)) => {
                return Err(IngestError::WalKeyUnavailable {
                    workspace: self.workspace.to_owned(),
                    key: key_ref.to_string(),
                    reason,
                });
            }
        };
        if let Ok(None) = key {
            tracing::warn!(workspace = self.workspace, key = %key_ref, "log key revoked; its records stay in the log until it is back");
        }
        self.cache.insert(key_ref.clone(), key.clone());
        Ok(key)
    }
}

/// A frame that is complete and authentic (or sealed under a revoked key).
struct Frame {
    header: FrameHeader,
    /// `None` when its key is revoked.
    plaintext: Option<Vec<u8>>,
    end: usize,
}

/// Reads the frame at `pos`; the inner error is why it is not a good frame. `plausible` judges
/// the header (its numbers where it stands) before the keyring is asked for its key, so that
/// damaged headers are told as damage, not as a key to fetch.
fn read_frame(
    bytes: &[u8],
    pos: usize,
    keys: &mut Keys<'_>,
    checkpoint: u64,
    plausible: &dyn Fn(&FrameHeader) -> Result<(), String>,
) -> Result<Result<Frame, String>, IngestError> {
    let header = match parse_frame_header(&bytes[pos..]) {
        Ok(h) => h,
        Err(HeaderError::Short) => return Ok(Err("frame header is truncated".into())),
        Err(HeaderError::Bad(reason)) => return Ok(Err(reason)),
    };
    if let Err(reason) = plausible(&header) {
        return Ok(Err(reason));
    }
    let body_start = pos + header.len;
    let end = body_start + header.body_len;
    if end > bytes.len() {
        return Ok(Err(format!(
            "frame of {} bytes is truncated at {} bytes",
            end - pos,
            bytes.len() - pos
        )));
    }
    let key = match keys.get(&header.key) {
        Ok(key) => key,
        // A checkpointed frame (its rows are in segments) needs no key: one that cannot be had
        // now (revoked and evicted, say) must not stop the log. It is read as held.
        Err(IngestError::WalKeyUnavailable { .. }) if header.seq <= checkpoint => Ok(None),
        Err(e) => return Err(e),
    };
    let key = match key {
        Ok(Some(key)) => key,
        Ok(None) => {
            return Ok(Ok(Frame {
                header,
                plaintext: None,
                end,
            }));
        }
        Err(reason) => return Ok(Err(reason)),
    };
    let aad = frame_aad(keys.workspace, &bytes[pos..body_start]);
    let plaintext = match aead::open(&key.key, &aad, &bytes[body_start..end], "log frame") {
        Ok(p) => p,
        Err(_) => return Ok(Err("frame fails authentication".into())),
    };
    Ok(Ok(Frame {
        header,
        plaintext: Some(plaintext),
        end,
    }))
}

struct FileScan {
    records: Vec<RecoveredRecord>,
    last_seq: Option<u64>,
    /// Where the good frames end.
    valid_end: usize,
    torn: bool,
    held_revoked: u64,
    held_from: Option<u64>,
    request_keys: Vec<String>,
}

pub(super) fn recover(
    dir: &Path,
    workspace: &str,
    keyring: &dyn WalKeyring,
) -> Result<Recovered, IngestError> {
    let checkpoint = read_checkpoint(dir, workspace)?;
    let listed = list(dir, workspace)?;
    let mut keys = Keys {
        keyring,
        workspace,
        cache: HashMap::new(),
    };
    let mut out = Recovered {
        records: Vec::new(),
        checkpoint,
        next_seq: checkpoint + 1,
        files: Vec::new(),
        torn: None,
        held_revoked: 0,
        held_from: None,
        request_keys: Vec::new(),
    };
    // Files are deleted only when all their records are checkpointed, so the oldest file left
    // starts at or before the first record after the checkpoint.
    if let Some((first, path)) = listed.first()
        && *first > checkpoint + 1
    {
        return Err(corrupt(
            workspace,
            path,
            0,
            format!(
                "records {} to {} are missing: the checkpoint is at {checkpoint}",
                checkpoint + 1,
                first - 1
            ),
        ));
    }
    let mut expected_first: Option<u64> = None;
    for (i, (first_seq, path)) in listed.iter().enumerate() {
        let newest = i + 1 == listed.len();
        let bytes = fs::read(path).map_err(|e| io_err(workspace, path, e))?;
        if let Some(expected) = expected_first
            && *first_seq != expected
        {
            return Err(corrupt(
                workspace,
                path,
                0,
                format!("sequence gap: the file starts at {first_seq}, {expected} was expected"),
            ));
        }
        let scan = scan_file(
            &bytes, path, *first_seq, workspace, newest, checkpoint, &mut keys,
        )?;
        out.held_revoked += scan.held_revoked;
        out.held_from = out.held_from.or(scan.held_from);
        out.records.extend(scan.records);
        out.request_keys.extend(scan.request_keys);
        out.next_seq = out.next_seq.max(*first_seq);
        if let Some(last) = scan.last_seq {
            out.next_seq = out.next_seq.max(last + 1);
            expected_first = Some(last + 1);
        }
        if scan.torn {
            let cut = (bytes.len() - scan.valid_end) as u64;
            tracing::warn!(workspace, path = %path.display(), offset = scan.valid_end, bytes = cut, "cutting a torn group off the write-ahead log");
            out.torn = Some(TornTail {
                path: path.clone(),
                offset: scan.valid_end as u64,
                bytes: cut,
            });
        }
        if scan.last_seq.is_none() {
            // No complete frame. The newest file: created, then nothing acknowledged (or its
            // first group torn). An older one held every record up to the next file's first,
            // so it is damage (a file cut to its header, say) unless all of them are
            // checkpointed: skipping it would lose acknowledged records silently.
            if let Some((next_first, _)) = listed.get(i + 1)
                && next_first.saturating_sub(1) > checkpoint
            {
                return Err(corrupt(
                    workspace,
                    path,
                    bytes.len() as u64,
                    format!(
                        "the file holds no records, but the next log file starts at {next_first}: \
                         records {} to {} are missing",
                        (*first_seq).max(checkpoint + 1),
                        next_first - 1
                    ),
                ));
            }
            fs::remove_file(path).map_err(|e| io_err(workspace, path, e))?;
            sync_dir(dir, workspace)?;
        } else {
            if scan.torn {
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| io_err(workspace, path, e))?;
                f.set_len(scan.valid_end as u64)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| io_err(workspace, path, e))?;
            }
            out.files.push((*first_seq, path.clone()));
        }
    }
    Ok(out)
}

fn scan_file(
    bytes: &[u8],
    path: &Path,
    first_seq: u64,
    workspace: &str,
    newest: bool,
    checkpoint: u64,
    keys: &mut Keys<'_>,
) -> Result<FileScan, IngestError> {
    let header = match parse_file_header(bytes) {
        Ok(h) => h,
        // A crash while the newest file was being created.
        Err(HeaderError::Short) if newest => return Ok(torn_file()),
        Err(HeaderError::Bad(_)) if newest && bytes.iter().all(|&b| b == 0) => {
            return Ok(torn_file());
        }
        Err(HeaderError::Short) => {
            return Err(corrupt(
                workspace,
                path,
                0,
                "file header is truncated".into(),
            ));
        }
        Err(HeaderError::Bad(reason)) => return Err(corrupt(workspace, path, 0, reason)),
    };
    if header.workspace != workspace {
        return Err(corrupt(
            workspace,
            path,
            0,
            format!("the file belongs to workspace {:?}", header.workspace),
        ));
    }
    if header.first_seq != first_seq {
        return Err(corrupt(
            workspace,
            path,
            0,
            format!("the header says the file starts at {}", header.first_seq),
        ));
    }
    let mut scan = FileScan {
        records: Vec::new(),
        last_seq: None,
        valid_end: header.len,
        torn: false,
        held_revoked: 0,
        held_from: None,
        request_keys: Vec::new(),
    };
    let (mut pos, mut expected, mut committed_group) = (header.len, first_seq, 0u64);
    let mut group: Vec<Frame> = Vec::new();
    loop {
        let problem = if pos == bytes.len() {
            if group.is_empty() {
                return Ok(scan);
            }
            "the file ends inside a group".to_owned()
        } else {
            let in_place = |h: &FrameHeader| {
                if h.seq != expected {
                    Err(format!(
                        "frame has sequence number {} where {expected} was expected",
                        h.seq
                    ))
                } else if h.group != committed_group + 1 {
                    Err(format!(
                        "frame has group number {} where {} was expected",
                        h.group,
                        committed_group + 1
                    ))
                } else {
                    Ok(())
                }
            };
            match read_frame(bytes, pos, keys, checkpoint, &in_place)? {
                Ok(f) => {
                    pos = f.end;
                    expected += 1;
                    let end_of_group = f.header.end_of_group();
                    group.push(f);
                    if end_of_group {
                        committed_group += 1;
                        scan.valid_end = pos;
                        commit_group(&mut scan, group.drain(..), checkpoint, workspace, path)?;
                    }
                    continue;
                }
                Err(reason) => reason,
            }
        };
        if !newest {
            return Err(corrupt(workspace, path, pos as u64, problem));
        }
        if let Some(later) =
            later_group(bytes, pos, expected, committed_group + 1, checkpoint, keys)?
        {
            return Err(corrupt(
                workspace,
                path,
                pos as u64,
                format!("{problem}, and an acknowledged group follows at offset {later}"),
            ));
        }
        scan.torn = true;
        return Ok(scan);
    }
}

fn torn_file() -> FileScan {
    FileScan {
        records: Vec::new(),
        last_seq: None,
        valid_end: 0,
        torn: true,
        held_revoked: 0,
        held_from: None,
        request_keys: Vec::new(),
    }
}

fn commit_group(
    scan: &mut FileScan,
    frames: impl Iterator<Item = Frame>,
    checkpoint: u64,
    workspace: &str,
    path: &Path,
) -> Result<(), IngestError> {
    for frame in frames {
        let seq = frame.header.seq;
        scan.last_seq = Some(seq);
        if seq <= checkpoint {
            // Stored already; its request keys still tell a retried request after a crash.
            // A record whose keys do not read is passed over: it is not replayed.
            if let Some(plaintext) = &frame.plaintext
                && let Ok(keys) = record::request_keys(plaintext)
            {
                scan.request_keys.extend(keys);
            }
            continue;
        }
        let Some(plaintext) = frame.plaintext else {
            // Acknowledged under a key that is revoked now: kept for when it is back (R-E3).
            scan.held_revoked += 1;
            scan.held_from.get_or_insert(seq);
            continue;
        };
        let record::Decoded {
            table,
            batch,
            request_keys,
        } = record::decode(&plaintext).map_err(|reason| {
            corrupt(
                workspace,
                path,
                (frame.end - frame.header.len - frame.header.body_len) as u64,
                format!("record {seq} does not decode: {reason}"),
            )
        })?;
        scan.request_keys.extend(request_keys);
        scan.records.push(RecoveredRecord {
            seq,
            table,
            batch,
            key: frame.header.key.clone(),
        });
    }
    Ok(())
}

/// The offset of an authentic frame after `from` that belongs to a later group than the one
/// being written when the crash happened (`in_flight`, whose first unread frame was `expected`).
/// Only headers whose numbers could follow are authenticated: a later frame's sequence and
/// group numbers exceed the ones at `from` by at most the number of frames that fit between.
fn later_group(
    bytes: &[u8],
    from: usize,
    expected: u64,
    in_flight: u64,
    checkpoint: u64,
    keys: &mut Keys<'_>,
) -> Result<Option<usize>, IngestError> {
    let mut at = from + 1;
    while let Some(found) = bytes.get(at..).and_then(|rest| {
        rest.windows(FRAME_MAGIC.len())
            .position(|w| w == FRAME_MAGIC)
    }) {
        let pos = at + found;
        let room = ((bytes.len() - from) / MIN_FRAME) as u64;
        let could_follow = |h: &FrameHeader| {
            let seq_ok = h.seq >= expected && h.seq - expected <= room;
            let group_ok = h.group > in_flight && h.group - in_flight <= room;
            if seq_ok && group_ok {
                Ok(())
            } else {
                Err("not a later frame".to_owned())
            }
        };
        if let Ok(frame) = read_frame(bytes, pos, keys, checkpoint, &could_follow)?
            && frame.plaintext.is_some()
        {
            return Ok(Some(pos));
        }
        at = pos + 1;
    }
    Ok(None)
}
