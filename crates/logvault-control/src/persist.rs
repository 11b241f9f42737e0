//! A JSON state file that several processes update safely.
//!
//! Every update takes an exclusive lock on a sibling `.lock` file, reads the current document,
//! applies the change and replaces the file atomically (write a temporary file, fsync, rename,
//! fsync the directory). Readers never see a half-written file, and two processes racing on the
//! same resource serialize instead of losing an update. A damaged file is reported, never reset.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ControlError;

/// A JSON document on disk, updated under a lock.
#[derive(Debug, Clone)]
pub(crate) struct StateFile {
    path: PathBuf,
    lock_path: PathBuf,
}

impl StateFile {
    pub(crate) fn new(path: PathBuf) -> Self {
        let lock_path = path.with_extension("lock");
        Self { path, lock_path }
    }

    fn storage_error(&self, reason: impl ToString) -> ControlError {
        ControlError::Storage {
            path: self.path.display().to_string(),
            reason: reason.to_string(),
        }
    }

    fn lock(&self) -> Result<File, ControlError> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(|e| self.storage_error(e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(|e| self.storage_error(e))?;
        file.lock().map_err(|e| self.storage_error(e))?;
        Ok(file)
    }

    /// Reads the document; a missing file reads as `T::default()`.
    pub(crate) fn read<T: DeserializeOwned + Default>(&self) -> Result<T, ControlError> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| self.storage_error(format!("corrupted state file: {e}"))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(T::default()),
            Err(e) => Err(self.storage_error(e)),
        }
    }

    /// Applies `change` to the document under the lock, and writes it back if `change` succeeds
    /// and reports that it changed something.
    pub(crate) fn update<T, R>(
        &self,
        change: impl FnOnce(&mut T) -> Result<(R, bool), ControlError>,
    ) -> Result<R, ControlError>
    where
        T: Serialize + DeserializeOwned + Default,
    {
        let _lock = self.lock()?;
        let mut doc: T = self.read()?;
        let (result, changed) = change(&mut doc)?;
        if changed {
            self.replace(&doc)?;
        }
        Ok(result)
    }

    /// The document's bytes as they are on disk; `None` if there is no file yet.
    pub(crate) fn read_bytes(&self) -> Result<Option<Vec<u8>>, ControlError> {
        match fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.storage_error(e)),
        }
    }

    /// Replaces the document with `bytes` under the lock, unless it holds them already; says
    /// whether it replaced it. The caller has checked that `bytes` is a valid document.
    pub(crate) fn replace_bytes(&self, bytes: &[u8]) -> Result<bool, ControlError> {
        let _lock = self.lock()?;
        if self.read_bytes()?.as_deref() == Some(bytes) {
            return Ok(false);
        }
        logvault_core::fsutil::write_atomic(&self.path, bytes)
            .map_err(|e| self.storage_error(e))?;
        Ok(true)
    }

    fn replace<T: Serialize>(&self, doc: &T) -> Result<(), ControlError> {
        let bytes = serde_json::to_vec_pretty(doc).map_err(|e| self.storage_error(e))?;
        logvault_core::fsutil::write_atomic(&self.path, &bytes).map_err(|e| self.storage_error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    #[test]
    fn concurrent_updates_are_never_lost() {
        let dir = tempfile::tempdir().unwrap();
        let file = Arc::new(StateFile::new(dir.path().join("state.json")));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let file = Arc::clone(&file);
                std::thread::spawn(move || {
                    for i in 0..25 {
                        file.update(|doc: &mut BTreeMap<String, u32>| {
                            doc.insert(format!("{t}-{i}"), i);
                            *doc.entry("count".into()).or_default() += 1;
                            Ok(((), true))
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let doc: BTreeMap<String, u32> = file.read().unwrap();
        assert_eq!(doc["count"], 200);
        assert_eq!(doc.len(), 201);
    }

    #[test]
    fn corrupted_file_is_reported_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, "{\"a\": 1").unwrap();
        let file = StateFile::new(path.clone());
        let err = file
            .read::<BTreeMap<String, u32>>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("corrupted") && err.contains("state.json"),
            "{err}"
        );
        let err = file
            .update(|_: &mut BTreeMap<String, u32>| Ok(((), true)))
            .unwrap_err();
        assert!(err.to_string().contains("corrupted"));
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"a\": 1");
    }
}
