//! Whether a log holds anything to replay, read from the clear frame headers only: no key, no
//! write, so that a reader (a query) can tell without opening the log, which would start a new
//! log file.

use std::fs;
use std::path::Path;

use super::files::{io_err, list, read_checkpoint};
use super::format::{parse_file_header, parse_frame_header};
use crate::IngestError;

/// The highest sequence number among the complete frames of a log file's bytes after its header,
/// and whether bytes follow the last complete frame (a torn tail that opening would cut).
pub(super) fn scan_seqs(bytes: &[u8], mut at: usize) -> (Option<u64>, bool) {
    let mut last = None;
    while at < bytes.len() {
        let Ok(frame) = parse_frame_header(&bytes[at..]) else {
            return (last, true);
        };
        let end = at.saturating_add(frame.len).saturating_add(frame.body_len);
        if end > bytes.len() {
            return (last, true);
        }
        last = Some(last.map_or(frame.seq, |l: u64| l.max(frame.seq)));
        at = end;
    }
    (last, false)
}

/// What a log holds that opening it would deal with, read from the clear frame headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pending {
    /// Complete frames after the checkpoint: acknowledged records (or a final group that a
    /// crash left whole) to replay.
    pub records: bool,
    /// A torn tail to cut or a header that does not parse (damage to repair or report).
    pub repair: bool,
}

impl Pending {
    /// Whether opening the log would do anything.
    pub fn any(self) -> bool {
        self.records || self.repair
    }
}

/// What the log of `workspace` in `dir` holds after its checkpoint ([`Pending`]). A missing
/// directory holds nothing. It takes no lock: a writer may be appending or checkpointing
/// meanwhile (its tail may look torn, which only asks for a replay the lock then defers to that
/// writer).
///
/// # Errors
/// [`IngestError::WalIo`] if the directory or a file cannot be read.
pub fn pending(dir: &Path, workspace: &str) -> Result<Pending, IngestError> {
    let mut out = Pending::default();
    if !dir.is_dir() {
        return Ok(out);
    }
    let checkpoint = read_checkpoint(dir, workspace)?;
    for (_, path) in list(dir, workspace)? {
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            // Deleted by a writer's checkpoint since it was listed (this reads without the
            // log's lock): its records are in segments.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(workspace, &path, e)),
        };
        let Ok(header) = parse_file_header(&bytes) else {
            out.repair = true;
            continue;
        };
        let (last, torn) = scan_seqs(&bytes, header.len);
        out.repair |= torn;
        out.records |= last.is_some_and(|seq| seq > checkpoint);
    }
    Ok(out)
}

/// Whether the log of `workspace` in `dir` holds records after its checkpoint, or damage that
/// opening it would repair or report ([`pending`]).
///
/// # Errors
/// As [`pending`].
pub fn needs_replay(dir: &Path, workspace: &str) -> Result<bool, IngestError> {
    pending(dir, workspace).map(Pending::any)
}
