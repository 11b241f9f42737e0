//! Numbered, write-once records: how the store updates shared state without losing updates.
//!
//! A sequence of records (wrapped account keys, catalog manifests) lives in one directory as
//! objects named by a zero-padded number (`00000000000000000007.json`). A writer reads the latest
//! number `n` and creates `n + 1` with `PutMode::Create`; if another writer got there first the
//! object store answers `AlreadyExists`, and the loser reads again and retries. This works on
//! every object_store backend (the local filesystem has no `PutMode::Update`) and keeps history.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::StoreError;

/// How many times a conditional update is retried before giving up.
pub(crate) const MAX_ATTEMPTS: u32 = 64;

/// Digits in a record's number, so that names sort as numbers.
const DIGITS: usize = 20;

/// A directory of numbered records in an object store.
#[derive(Debug, Clone)]
pub(crate) struct RecordLog {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    ext: &'static str,
    /// What the records are, for error messages.
    what: String,
}

/// The outcome of creating a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Created {
    /// The record was written.
    Yes,
    /// Another writer had already written that number.
    Lost,
}

impl RecordLog {
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        dir: Path,
        ext: &'static str,
        what: String,
    ) -> Self {
        Self {
            store,
            dir,
            ext,
            what,
        }
    }

    pub(crate) fn what(&self) -> &str {
        &self.what
    }

    fn path(&self, n: u64) -> Path {
        self.dir.clone().join(format!("{n:0DIGITS$}{}", self.ext))
    }

    /// Every record number present, ascending. Objects with other names (an interrupted
    /// upload's leftovers) are ignored.
    pub(crate) async fn numbers(&self) -> Result<Vec<u64>, StoreError> {
        Ok(self.listed().await?.into_iter().map(|(n, _)| n).collect())
    }

    /// Every record present with its last-modified time (the store's clock), ascending by
    /// number.
    pub(crate) async fn listed(&self) -> Result<Vec<(u64, DateTime<Utc>)>, StoreError> {
        let metas: Vec<_> = self
            .store
            .list(Some(&self.dir))
            .try_collect()
            .await
            .map_err(|e| StoreError::storage(&self.what, &e))?;
        let mut out: Vec<(u64, DateTime<Utc>)> = metas
            .iter()
            .filter_map(|m| {
                let name = m.location.filename()?;
                let digits = name.strip_suffix(self.ext)?;
                if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some((digits.parse().ok()?, m.last_modified))
            })
            .collect();
        out.sort_unstable_by_key(|(n, _)| *n);
        Ok(out)
    }

    /// The highest record number, if any.
    pub(crate) async fn latest_number(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.numbers().await?.last().copied())
    }

    /// The bytes of record `n`; `None` if it does not exist.
    pub(crate) async fn get(&self, n: u64) -> Result<Option<Bytes>, StoreError> {
        let path = self.path(n);
        match self.store.get(&path).await {
            Ok(r) => r.bytes().await.map(Some),
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => Err(e),
        }
        .map_err(|e| StoreError::storage(format!("{} (record {n})", self.what), &e))
    }

    /// The latest record and its number; `None` if there is none yet.
    pub(crate) async fn latest(&self) -> Result<Option<(u64, Bytes)>, StoreError> {
        Ok(self.latest_listed().await?.map(|(n, bytes, _)| (n, bytes)))
    }

    /// The latest record, its number, and the listing it was found in.
    pub(crate) async fn latest_listed(
        &self,
    ) -> Result<Option<(u64, Bytes, Vec<(u64, DateTime<Utc>)>)>, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let listed = self.listed().await?;
            let Some(&(n, _)) = listed.last() else {
                return Ok(None);
            };
            // Deleted since it was listed (records far behind the latest are deleted as old,
            // `catalog::MANIFEST_VERSIONS_KEPT`): list again.
            if let Some(bytes) = self.get(n).await? {
                return Ok(Some((n, bytes, listed)));
            }
        }
        Err(StoreError::Conflict {
            what: self.what.clone(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Deletes record `n` (absent already is fine).
    pub(crate) async fn delete(&self, n: u64) -> Result<(), StoreError> {
        match self.store.delete(&self.path(n)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::storage(
                format!("{} (record {n})", self.what),
                &e,
            )),
        }
    }

    /// Creates record `n`, unless it already exists.
    pub(crate) async fn create(&self, n: u64, bytes: Vec<u8>) -> Result<Created, StoreError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&self.path(n), PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(Created::Yes),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::Lost),
            Err(e) => Err(StoreError::storage(
                format!("{} (record {n})", self.what),
                &e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn create_is_exclusive_and_latest_is_highest() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let log = RecordLog::new(store.clone(), Path::from("d"), ".json", "t".into());
        assert_eq!(log.latest().await.unwrap(), None);
        assert_eq!(log.create(1, b"a".to_vec()).await.unwrap(), Created::Yes);
        assert_eq!(log.create(1, b"b".to_vec()).await.unwrap(), Created::Lost);
        assert_eq!(log.create(2, b"c".to_vec()).await.unwrap(), Created::Yes);
        // Stray objects in the directory are ignored.
        store
            .put(&Path::from("d/notes.txt"), PutPayload::from_static(b"x"))
            .await
            .unwrap();
        store
            .put(&Path::from("d/12.json"), PutPayload::from_static(b"x"))
            .await
            .unwrap();
        assert_eq!(log.numbers().await.unwrap(), vec![1, 2]);
        let (n, bytes) = log.latest().await.unwrap().unwrap();
        assert_eq!((n, &bytes[..]), (2, &b"c"[..]));
        assert_eq!(&log.get(1).await.unwrap().unwrap()[..], b"a");
        assert!(log.get(3).await.unwrap().is_none());
    }
}
