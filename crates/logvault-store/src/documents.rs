//! Sealed documents: small JSON artifacts of a workspace (saved queries and functions, query
//! history, alert rules, fired alerts, search jobs) kept in a storage account under that
//! account's key (format in `docs/format.md`, "Documents", version 1).
//!
//! A document lives at `<account>/documents/<path>` of the storage root. It is the magic
//! `LVD1` followed by an AES-256-GCM blob sealed under a purpose key derived from the account
//! key (HKDF label `logvault documents v1`), its associated data binding the account and the
//! path, so a document cannot be moved to another path or account unnoticed. Each document is
//! one object, written whole, so writers of different documents never race.

use futures::TryStreamExt;
use logvault_crypto::{Aek, aead};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::layout::{AccountId, account_prefix};
use crate::{Store, StoreError};

/// Format version of sealed documents (the magic's digit).
pub const DOCUMENT_FORMAT_VERSION: u32 = 1;
const MAGIC: &[u8; 4] = b"LVD1";
const PURPOSE: &str = "logvault documents v1";
const DIR: &str = "documents";

fn object_path(account: &AccountId, path: &str) -> Result<Path, StoreError> {
    let bad = |reason: &str| StoreError::InvalidName {
        kind: "document path",
        name: path.to_owned(),
        reason: reason.to_owned(),
    };
    if path.is_empty() {
        return Err(bad("is empty"));
    }
    let mut out = account_prefix(account).join(DIR);
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(bad("has an empty, `.` or `..` component"));
        }
        if !part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(bad("may hold only letters, digits, `-`, `_`, `.` and `/`"));
        }
        out = out.join(part);
    }
    Ok(out)
}

fn aad(account: &AccountId, path: &str) -> Vec<u8> {
    format!("logvault-document-v{DOCUMENT_FORMAT_VERSION}|{account}|{path}").into_bytes()
}

impl Store {
    /// Writes (or replaces) the document at `path` of `account`, sealed under `aek` (the
    /// account's key, which the caller obtained through its key gate).
    ///
    /// # Errors
    /// [`StoreError::InvalidName`] for a bad path; crypto and storage errors.
    pub async fn put_document(
        &self,
        account: &AccountId,
        aek: &Aek,
        path: &str,
        body: &[u8],
    ) -> Result<(), StoreError> {
        let object = object_path(account, path)?;
        let what = format!("document {path} of storage account {account}");
        let key = aek
            .derive_purpose_key(PURPOSE)
            .map_err(|e| StoreError::crypto(&what, &e))?;
        let sealed = aead::seal(&key, &aad(account, path), body)
            .map_err(|e| StoreError::crypto(&what, &e))?;
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&sealed);
        self.root()
            .put(&object, bytes.into())
            .await
            .map_err(|e| StoreError::storage(&what, &e))?;
        Ok(())
    }

    /// Reads and opens the document at `path` of `account`; `None` if there is none.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a document that does not authenticate under `aek` (altered,
    /// moved, or sealed under another key); storage errors.
    pub async fn get_document(
        &self,
        account: &AccountId,
        aek: &Aek,
        path: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let object = object_path(account, path)?;
        let what = format!("document {path} of storage account {account}");
        let bytes = match self.root().get(&object).await {
            Ok(got) => got
                .bytes()
                .await
                .map_err(|e| StoreError::storage(&what, &e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(StoreError::storage(&what, &e)),
        };
        let Some(sealed) = bytes.strip_prefix(MAGIC.as_slice()) else {
            return Err(StoreError::Corrupt {
                what,
                reason: format!("not a version {DOCUMENT_FORMAT_VERSION} sealed document"),
            });
        };
        let key = aek
            .derive_purpose_key(PURPOSE)
            .map_err(|e| StoreError::crypto(&what, &e))?;
        aead::open(&key, &aad(account, path), sealed, &what)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                what: what.clone(),
                reason: e.to_string(),
            })
    }

    /// The paths of the documents under `prefix` of `account` (a directory, no trailing
    /// `/`), sorted. Needs no key.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list_documents(
        &self,
        account: &AccountId,
        prefix: &str,
    ) -> Result<Vec<String>, StoreError> {
        let base = account_prefix(account).join(DIR);
        let dir = object_path(account, prefix)?;
        let what = format!("documents {prefix} of storage account {account}");
        let metas: Vec<_> = self
            .root()
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| StoreError::storage(&what, &e))?;
        let mut out: Vec<String> = metas
            .into_iter()
            .filter_map(|m| {
                m.location.prefix_match(&base).map(|parts| {
                    parts
                        .map(|p| p.as_ref().to_owned())
                        .collect::<Vec<_>>()
                        .join("/")
                })
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Deletes the document at `path` of `account` (nothing if there is none).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn delete_document(&self, account: &AccountId, path: &str) -> Result<(), StoreError> {
        let object = object_path(account, path)?;
        match self.root().delete(&object).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::storage(
                format!("document {path} of storage account {account}"),
                &e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_documents_directory() {
        let account = AccountId::service();
        assert!(object_path(&account, "ws-one/savedSearches/q1").is_ok());
        for bad in ["", "../x", "a//b", "a/./b", "a b", "a/%2e%2e"] {
            assert!(object_path(&account, bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_associated_data_binds_account_and_path() {
        let a = AccountId::service();
        let b = AccountId::storage("byos1").unwrap();
        assert_ne!(aad(&a, "x/y"), aad(&b, "x/y"));
        assert_ne!(aad(&a, "x/y"), aad(&a, "x/z"));
    }
}
