//! The server's small state files under `HOME/server/` (tokens issued, data collection rules):
//! one JSON document each, changed under a lock file and replaced atomically, so that two
//! processes (a `logvault token create` while the server runs) never lose an update; read
//! without a lock, and re-read by a running server when the file changes.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ServerError;

/// One JSON state file.
#[derive(Debug)]
pub(crate) struct StateFile<T> {
    what: &'static str,
    path: PathBuf,
    /// The document as last read, and the file's identity then (modified time, length).
    cached: Mutex<Option<(FileStamp, T)>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

fn stamp(path: &Path) -> std::io::Result<Option<FileStamp>> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(FileStamp {
            modified: m.modified().ok(),
            len: m.len(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(&m),
        })),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl<T: Serialize + DeserializeOwned + Default + Clone> StateFile<T> {
    pub(crate) fn new(what: &'static str, path: PathBuf) -> Self {
        Self {
            what,
            path,
            cached: Mutex::new(None),
        }
    }

    fn error(&self, reason: impl ToString) -> ServerError {
        ServerError::state(self.what, &self.path, reason)
    }

    fn read_file(&self) -> Result<T, ServerError> {
        match fs::read(&self.path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| self.error(format!("corrupted: {e}")))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(T::default()),
            Err(e) => Err(self.error(e)),
        }
    }

    /// The document, read again only if the file changed since the last read (a stat per
    /// call).
    pub(crate) fn load(&self) -> Result<T, ServerError> {
        let now = stamp(&self.path).map_err(|e| self.error(e))?;
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let (Some(now), Some((then, doc))) = (&now, cached.as_ref())
            && now == then
        {
            return Ok(doc.clone());
        }
        let doc = self.read_file()?;
        if let Some(now) = now {
            *cached = Some((now, doc.clone()));
        }
        Ok(doc)
    }

    /// Changes the document under the lock: `change` gets the current document and returns
    /// what to answer; the document is written back (atomically) if `change` succeeds.
    pub(crate) fn update<R>(
        &self,
        change: impl FnOnce(&mut T) -> Result<R, ServerError>,
    ) -> Result<R, ServerError> {
        let _lock = self.lock()?;
        let mut doc = self.read_file()?;
        let answer = change(&mut doc)?;
        let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| self.error(e))?;
        logvault::core::fsutil::write_atomic(&self.path, &bytes).map_err(|e| self.error(e))?;
        Ok(answer)
    }

    fn lock(&self) -> Result<File, ServerError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| self.error(e))?;
        let name = self
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("state");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!(".{name}.lock")))
            .map_err(|e| self.error(e))?;
        file.lock().map_err(|e| self.error(e))?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_update_by_another_handle_is_seen_by_a_cached_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server/doc.json");
        let reader: StateFile<Vec<u32>> = StateFile::new("doc", path.clone());
        let writer: StateFile<Vec<u32>> = StateFile::new("doc", path.clone());
        assert!(reader.load().unwrap().is_empty());
        writer
            .update(|d| {
                d.push(1);
                Ok(())
            })
            .unwrap();
        assert_eq!(reader.load().unwrap(), vec![1]);
        writer
            .update(|d| {
                d.push(2);
                Ok(())
            })
            .unwrap();
        assert_eq!(reader.load().unwrap(), vec![1, 2]);
        let refused: Result<(), _> = writer.update(|d| {
            d.push(3);
            Err(ServerError::refused(409, "no"))
        });
        assert!(refused.is_err());
        assert_eq!(reader.load().unwrap(), vec![1, 2]);
        fs::write(&path, b"{not json").unwrap();
        assert!(reader.load().unwrap_err().to_string().contains("corrupted"));
    }
}
