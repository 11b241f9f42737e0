//! The files of a log directory: log files, the checkpoint, and directory fsyncs.
//!
//! The checkpoint file (`checkpoint`, 25 bytes) is `"LVWALCKP"`, a version byte (2), the
//! checkpointed sequence number (u64 LE) and a check value: the first 8 bytes of the SHA-256 of
//! the 17 bytes before it. It holds no log data. It is replaced atomically (written beside,
//! fsynced, renamed, directory fsynced), so it is always the old or the new one. Version 1 (the
//! same without the check value, 17 bytes) is still read: a damaged number in it cannot be told.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::format::parse_file_name;
use crate::IngestError;

const CHECKPOINT: &str = "checkpoint";
const CHECKPOINT_TMP: &str = "checkpoint.tmp";
const CHECKPOINT_MAGIC: &[u8; 8] = b"LVWALCKP";
/// The checkpoint file's version: 2 adds the check value (version 1 files are still read).
const CHECKPOINT_VERSION: u8 = 2;

/// The check value of a checkpoint file's first 17 bytes.
fn checkpoint_check(head: &[u8]) -> [u8; 8] {
    let digest = Sha256::digest(head);
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

pub(super) fn io_err(workspace: &str, path: &Path, source: std::io::Error) -> IngestError {
    IngestError::WalIo {
        workspace: workspace.to_owned(),
        path: path.to_owned(),
        source,
    }
}

pub(super) fn corrupt(workspace: &str, path: &Path, offset: u64, reason: String) -> IngestError {
    IngestError::WalCorrupt {
        workspace: workspace.to_owned(),
        path: path.to_owned(),
        offset,
        reason,
    }
}

pub(super) fn create_dir(dir: &Path, workspace: &str) -> Result<(), IngestError> {
    fs::create_dir_all(dir).map_err(|e| io_err(workspace, dir, e))
}

/// fsyncs a directory, so that files created, renamed or removed in it stay so.
pub(super) fn sync_dir(dir: &Path, workspace: &str) -> Result<(), IngestError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(workspace, dir, e))
}

/// The log files of a directory, by first sequence number.
pub(super) fn list(dir: &Path, workspace: &str) -> Result<Vec<(u64, PathBuf)>, IngestError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_err(workspace, dir, e))? {
        let entry = entry.map_err(|e| io_err(workspace, dir, e))?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_file_name) {
            files.push((first, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

pub(super) fn read_checkpoint(dir: &Path, workspace: &str) -> Result<u64, IngestError> {
    let path = dir.join(CHECKPOINT);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(workspace, &path, e)),
    };
    let damaged = |what: &str| {
        corrupt(
            workspace,
            &path,
            0,
            format!(
                "{what}; the records after it cannot be told: delete this file to replay the \
                 whole log (the catalog skips what it already holds)"
            ),
        )
    };
    let version = match (bytes.len(), bytes.get(..8), bytes.get(8)) {
        (17, Some(magic), Some(1)) if magic == CHECKPOINT_MAGIC => 1,
        (25, Some(magic), Some(&CHECKPOINT_VERSION)) if magic == CHECKPOINT_MAGIC => 2,
        _ => return Err(damaged("not a checkpoint file of version 1 or 2")),
    };
    if version == 2 && bytes[17..25] != checkpoint_check(&bytes[..17]) {
        return Err(damaged(
            "the checkpoint file fails its check value (damaged)",
        ));
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&bytes[9..17]);
    Ok(u64::from_le_bytes(seq))
}

pub(super) fn write_checkpoint(dir: &Path, workspace: &str, seq: u64) -> Result<(), IngestError> {
    let tmp = dir.join(CHECKPOINT_TMP);
    let mut bytes = Vec::with_capacity(25);
    bytes.extend_from_slice(CHECKPOINT_MAGIC);
    bytes.push(CHECKPOINT_VERSION);
    bytes.extend_from_slice(&seq.to_le_bytes());
    let check = checkpoint_check(&bytes);
    bytes.extend_from_slice(&check);
    write_synced(&tmp, workspace, &bytes, false)?;
    let path = dir.join(CHECKPOINT);
    fs::rename(&tmp, &path).map_err(|e| io_err(workspace, &path, e))?;
    sync_dir(dir, workspace)
}

/// Writes `bytes` to a file and fsyncs it: a new file (`append` then goes on after the bytes), or
/// a file replaced whole.
pub(super) fn write_synced(
    path: &Path,
    workspace: &str,
    bytes: &[u8],
    create_new: bool,
) -> Result<File, IngestError> {
    let mut options = OpenOptions::new();
    if create_new {
        options.create_new(true).append(true);
    } else {
        options.write(true).create(true).truncate(true);
    }
    let mut f = options.open(path).map_err(|e| io_err(workspace, path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err(workspace, path, e))?;
    Ok(f)
}
