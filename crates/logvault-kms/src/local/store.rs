//! Persistence of the local vault: versioned, checksummed JSON documents, replaced atomically
//! under a lock file.
//!
//! A document file is one header line and a JSON body (format in `docs/vault-format.md`):
//!
//! ```text
//! {"format":"logvault.vault","version":1,"bytes":1234,"sha256":"<hex of the body>"}
//! { ...body... }
//! ```
//!
//! Readers take no lock: a writer replaces the file with `rename`, so a reader sees the old or
//! the new document, never half of one. Writers serialize their read-modify-write with an
//! exclusive lock on a separate lock file (`flock`, which also excludes other threads of the same
//! process because each opens its own file description). A header or checksum that does not match
//! is reported as damage, never read as an empty vault.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// The version of the document format this code writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Header {
    format: String,
    version: u32,
    bytes: usize,
    sha256: String,
}

/// What went wrong with a document file; the caller turns it into the right error variant.
#[derive(Debug)]
pub(crate) struct StoreError {
    pub(crate) path: PathBuf,
    pub(crate) reason: String,
}

impl StoreError {
    fn new(path: &Path, reason: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    /// `file PATH: REASON`, for error messages.
    pub(crate) fn describe(&self) -> String {
        format!("file {}: {}", self.path.display(), self.reason)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads the document at `path`: `Ok(None)` if the file does not exist.
///
/// # Errors
/// A [`StoreError`] if the file cannot be read, is truncated, fails its checksum, is of another
/// format or a newer version, or its body does not parse.
pub(crate) fn read_doc<T: DeserializeOwned>(
    path: &Path,
    format: &str,
) -> Result<Option<T>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::new(path, e.to_string())),
    };
    let corrupt = |why: &str| StoreError::new(path, format!("corrupted: {why}"));
    let newline = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| corrupt("no header line (truncated?)"))?;
    let (head, body) = (&bytes[..newline], &bytes[newline + 1..]);
    let header: Header =
        serde_json::from_slice(head).map_err(|e| corrupt(&format!("bad header: {e}")))?;
    if header.format != format {
        return Err(corrupt(&format!(
            "format {:?}, expected {format:?}",
            header.format
        )));
    }
    if header.version > FORMAT_VERSION {
        return Err(StoreError::new(
            path,
            format!(
                "format version {} is newer than this logvault ({FORMAT_VERSION})",
                header.version
            ),
        ));
    }
    if body.len() != header.bytes {
        return Err(corrupt(&format!(
            "body is {} bytes, header says {} (truncated?)",
            body.len(),
            header.bytes
        )));
    }
    if sha256_hex(body) != header.sha256 {
        return Err(corrupt("checksum mismatch"));
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| corrupt(&format!("bad body: {e}")))
}

/// Writes `doc` to `path` atomically: a temporary file in the same directory, fsync, rename over
/// the old file, fsync the directory.
///
/// # Errors
/// A [`StoreError`] if any step fails; the old file is then left as it was.
pub(crate) fn write_doc<T: Serialize>(
    path: &Path,
    format: &str,
    doc: &T,
) -> Result<(), StoreError> {
    let body = serde_json::to_vec_pretty(doc).map_err(|e| StoreError::new(path, e.to_string()))?;
    let header = Header {
        format: format.to_owned(),
        version: FORMAT_VERSION,
        bytes: body.len(),
        sha256: sha256_hex(&body),
    };
    let mut text = serde_json::to_vec(&header).map_err(|e| StoreError::new(path, e.to_string()))?;
    text.push(b'\n');
    text.extend_from_slice(&body);
    write_atomic(path, &text)
}

/// Replaces `path` with `bytes` atomically (fsync, rename, directory fsync).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    logvault_core::fsutil::write_atomic(path, bytes)
        .map_err(|e| StoreError::new(path, e.to_string()))
}

/// An exclusive lock on a lock file, released when dropped (closing the file releases it).
#[derive(Debug)]
pub(crate) struct LockGuard {
    _file: File,
}

/// Takes the exclusive lock on `path`, creating the lock file if needed; blocks until it is free.
///
/// # Errors
/// A [`StoreError`] if the lock file cannot be created or locked.
pub(crate) fn lock(path: &Path) -> Result<LockGuard, StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StoreError::new(path, e.to_string()))?;
    file.lock()
        .map_err(|e| StoreError::new(path, format!("cannot lock: {e}")))?;
    Ok(LockGuard { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Doc {
        n: u32,
        s: String,
    }

    #[test]
    fn round_trip_missing_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.json");
        assert_eq!(read_doc::<Doc>(&path, "t").unwrap(), None);
        let doc = Doc {
            n: 1,
            s: "a".into(),
        };
        write_doc(&path, "t", &doc).unwrap();
        assert_eq!(read_doc::<Doc>(&path, "t").unwrap(), Some(doc));
        write_doc(
            &path,
            "t",
            &Doc {
                n: 2,
                s: "b".into(),
            },
        )
        .unwrap();
        assert_eq!(read_doc::<Doc>(&path, "t").unwrap().unwrap().n, 2);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn damage_is_reported_not_read_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.json");
        write_doc(
            &path,
            "t",
            &Doc {
                n: 7,
                s: "seven".into(),
            },
        )
        .unwrap();
        let good = fs::read(&path).unwrap();

        let cases: Vec<(Vec<u8>, &str)> = vec![
            (good[..good.len() - 3].to_vec(), "truncated"),
            (good[..10].to_vec(), "no header"),
            (Vec::new(), "no header"),
            (
                {
                    let mut b = good.clone();
                    let at = b.len() - 5;
                    b[at] ^= 0x01;
                    b
                },
                "checksum",
            ),
        ];
        for (bytes, why) in cases {
            fs::write(&path, &bytes).unwrap();
            let err = read_doc::<Doc>(&path, "t").unwrap_err();
            assert!(err.reason.contains(why), "{why}: {}", err.describe());
            assert!(err.describe().contains("d.json"));
        }
        fs::write(&path, &good).unwrap();
        assert!(
            read_doc::<Doc>(&path, "other")
                .unwrap_err()
                .reason
                .contains("format")
        );
        let newer =
            String::from_utf8(good.clone())
                .unwrap()
                .replacen("\"version\":1", "\"version\":9", 1);
        fs::write(&path, newer).unwrap();
        assert!(
            read_doc::<Doc>(&path, "t")
                .unwrap_err()
                .reason
                .contains("newer")
        );
    }

    #[test]
    fn lock_excludes_other_holders() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let guard = lock(&path).unwrap();
        let other = File::open(&path).unwrap();
        assert!(other.try_lock().is_err(), "a second holder must wait");
        drop(guard);
        assert!(other.try_lock().is_ok());
    }
}
