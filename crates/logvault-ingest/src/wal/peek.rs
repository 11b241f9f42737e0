//! Whether a log holds anything to replay, read from the clear frame headers only: no key, no
//! write, so that a reader (a query) can tell without opening the log, which would start a new
//! log file. Only the headers are read, each where the frame before it ends: a query does not
//! read the log's records (a log file grows to `WalOptions::max_file_bytes` before the next one
//! starts, and `logvault ingest` leaves its last one, all of it checkpointed).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::files::{io_err, list, read_checkpoint};
use super::format::{
    FILE_HEADER_FIXED, FRAME_HEADER_FIXED, MAX_ACCOUNT, parse_file_header, parse_frame_header,
};
use crate::IngestError;

/// Fills `buf` from `at` with `read_at` until it is full or the bytes end; how many it read.
fn fill(
    read_at: &mut impl FnMut(u64, &mut [u8]) -> io::Result<usize>,
    at: u64,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match read_at(at + got as u64, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The highest sequence number among the complete frames of a log file of `len` bytes from
/// `at` (where its header ends), and whether bytes follow the last complete frame (a torn tail
/// that opening would cut). Reads each frame's header through `read_at` and skips its body.
fn scan_frames(
    len: u64,
    mut at: u64,
    mut read_at: impl FnMut(u64, &mut [u8]) -> io::Result<usize>,
) -> io::Result<(Option<u64>, bool)> {
    let mut last = None;
    let mut header = [0u8; FRAME_HEADER_FIXED + MAX_ACCOUNT];
    while at < len {
        let want = usize::try_from(len - at).map_or(header.len(), |n| n.min(header.len()));
        let got = fill(&mut read_at, at, &mut header[..want])?;
        let Ok(frame) = parse_frame_header(&header[..got]) else {
            return Ok((last, true));
        };
        let end = at
            .saturating_add(frame.len as u64)
            .saturating_add(frame.body_len as u64);
        if end > len {
            return Ok((last, true));
        }
        last = Some(last.map_or(frame.seq, |l: u64| l.max(frame.seq)));
        at = end;
    }
    Ok((last, false))
}

/// [`scan_frames`] over a log file's bytes in memory.
pub(super) fn scan_seqs(bytes: &[u8], at: usize) -> (Option<u64>, bool) {
    let read_at = |offset: u64, buf: &mut [u8]| {
        let from = usize::try_from(offset).map_or(bytes.len(), |o| o.min(bytes.len()));
        let n = buf.len().min(bytes.len() - from);
        buf[..n].copy_from_slice(&bytes[from..from + n]);
        Ok(n)
    };
    match scan_frames(bytes.len() as u64, at as u64, read_at) {
        Ok(found) => found,
        // Reading memory does not fail.
        Err(_) => (None, true),
    }
}

/// What one log file holds: `None` when its header does not parse, else the highest sequence
/// number of its complete frames and whether a torn tail follows them.
fn scan_file(file: &File) -> io::Result<Option<(Option<u64>, bool)>> {
    let len = file.metadata()?.len();
    let mut read_at = |at: u64, buf: &mut [u8]| file.read_at(buf, at);
    let mut head = vec![0u8; FILE_HEADER_FIXED];
    let got = fill(&mut read_at, 0, &mut head)?;
    if got < FILE_HEADER_FIXED {
        return Ok(None);
    }
    // The workspace name's length ends the fixed part.
    let name = usize::from(u16::from_le_bytes([head[16], head[17]]));
    head.resize(FILE_HEADER_FIXED + name, 0);
    let got = FILE_HEADER_FIXED
        + fill(
            &mut read_at,
            FILE_HEADER_FIXED as u64,
            &mut head[FILE_HEADER_FIXED..],
        )?;
    let Ok(header) = parse_file_header(&head[..got]) else {
        return Ok(None);
    };
    scan_frames(len, header.len as u64, read_at).map(Some)
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
        let file = match File::open(&path) {
            Ok(file) => file,
            // Deleted by a writer's checkpoint since it was listed (this reads without the
            // log's lock): its records are in segments.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(workspace, &path, e)),
        };
        match scan_file(&file).map_err(|e| io_err(workspace, &path, e))? {
            None => out.repair = true,
            Some((last, torn)) => {
                out.repair |= torn;
                out.records |= last.is_some_and(|seq| seq > checkpoint);
            }
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Write as _;

    use proptest::prelude::*;

    use super::*;
    use crate::wal::format::{file_header, frame_header};
    use crate::wal::{WalKeyRef, WalKeyScheme};

    /// How the scan read a log before it read headers only: the whole file in memory, walked
    /// frame by frame.
    fn reference(bytes: &[u8]) -> Option<(Option<u64>, bool)> {
        let header = parse_file_header(bytes).ok()?;
        let mut at = header.len;
        let mut last = None;
        while at < bytes.len() {
            let Ok(frame) = parse_frame_header(&bytes[at..]) else {
                return Some((last, true));
            };
            let end = at + frame.len + frame.body_len;
            if end > bytes.len() {
                return Some((last, true));
            }
            last = Some(last.map_or(frame.seq, |l: u64| l.max(frame.seq)));
            at = end;
        }
        Some((last, false))
    }

    /// A log file of frames with bodies of `bodies` bytes (numbered from `first`), under an
    /// account name of `account` bytes.
    fn log_file(first: u64, bodies: &[usize], account: usize) -> Vec<u8> {
        let key = WalKeyRef {
            scheme: WalKeyScheme::Service,
            account: "a".repeat(account.max(1)),
        };
        let mut bytes = file_header("ws-peek", first);
        for (i, &body) in bodies.iter().enumerate() {
            let body = body.max(logvault_crypto::aead::SEAL_OVERHEAD);
            bytes.extend(frame_header(body, first + i as u64, 1, true, &key));
            bytes.extend(std::iter::repeat_n(0x5a, body));
        }
        bytes
    }

    fn scan_on_disk(bytes: &[u8]) -> Option<(Option<u64>, bool)> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        scan_file(&file).unwrap()
    }

    #[test]
    fn a_scan_reads_the_headers_not_the_bodies() {
        let bytes = log_file(7, &[1 << 20; 12], 40);
        let header = parse_file_header(&bytes).unwrap();
        let mut read = 0usize;
        let found = scan_frames(bytes.len() as u64, header.len as u64, |at, buf| {
            let at = usize::try_from(at).unwrap();
            let n = buf.len().min(bytes.len() - at);
            buf[..n].copy_from_slice(&bytes[at..at + n]);
            read += n;
            Ok(n)
        })
        .unwrap();
        assert_eq!(found, (Some(18), false));
        assert!(
            read <= 12 * (FRAME_HEADER_FIXED + MAX_ACCOUNT),
            "{read} bytes read of a {} byte log",
            bytes.len()
        );
        assert_eq!(scan_on_disk(&bytes), Some((Some(18), false)));
    }

    proptest! {
        /// On any log file, whole, cut anywhere, or with a byte changed, reading the headers
        /// from disk finds what walking the whole file in memory finds.
        #[test]
        fn reading_headers_from_disk_finds_what_the_whole_file_shows(
            bodies in proptest::collection::vec(0usize..3000, 0..8),
            account in 0usize..80,
            cut in any::<prop::sample::Index>(),
            flip in any::<Option<(prop::sample::Index, u8)>>(),
        ) {
            let mut bytes = log_file(3, &bodies, account);
            if let Some((at, xor)) = flip {
                let at = at.index(bytes.len());
                bytes[at] ^= xor;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            let expected = reference(&bytes);
            prop_assert_eq!(scan_on_disk(&bytes), expected);
            if let Some(found) = expected {
                let header = parse_file_header(&bytes).unwrap();
                prop_assert_eq!(scan_seqs(&bytes, header.len), found);
            }
        }
    }
}
