//! Standby copies of an account key, wrapped under newer versions of the customer's key.
//!
//! A cluster set to an explicit key version (no autorotation) keeps its account key wrapped only
//! under that version. If the customer then disables that version, the cluster is revoked
//! (R-G5), and the seed's remedy, "update new key identifier details in the cluster", needs the
//! account key under the new version: but the only copy is under the disabled one. So while the
//! cluster's key is active, the key lifecycle also wraps the account key under each newer enabled
//! version of the same key ([`Keyring::ensure_standby_copies`]). A standby copy is never used to
//! read data; it is used once, when the cluster is updated to name its version
//! ([`Keyring::rewrap_aek`] falls back to it when the current copy no longer unwraps), and then
//! becomes the account key's next record.
//!
//! Standby copies are the same JSON records as the account key's numbered records (format in
//! `docs/format.md`), one object per key version under
//! `<account>/keys/aek-standby/<vault>/<key>/<version>.json`, written create-if-absent.

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::{KeyRecordFile, Keyring, check_value};
use crate::StoreError;
use crate::error::parse_versioned;
use crate::keyring::{KEY_RECORD_FORMAT_VERSION, KekBinding};
use crate::layout::{AccountId, account_prefix};
use logvault_crypto::SecretBytes;
use logvault_kms::{KeyRef, PrincipalId};

/// Where standby copies live in an account.
const STANDBY_DIR: &str = "aek-standby";

fn standby_path(account: &AccountId, key: &KeyRef, version: &str) -> Path {
    account_prefix(account)
        .join("keys")
        .join(STANDBY_DIR)
        .join(key.vault.as_str())
        .join(key.name.as_str())
        .join(format!("{version}.json"))
}

fn what(account: &AccountId, key: &KeyRef, version: &str) -> String {
    format!(
        "standby copy of the account key of storage account {account} under key {}/{} version \
         {version}",
        key.vault, key.name
    )
}

impl Keyring {
    /// Makes sure the account key has a standby copy under each of `versions` of `key` (wrapped
    /// on behalf of `principal`), using the account key in the cache: one `wrapKey` call per
    /// missing copy, none for copies already there. Returns how many were written.
    ///
    /// # Errors
    /// [`StoreError::NoAccountKey`] if the account key is not in the cache (the caller has just
    /// unwrapped it); vault refusals to wrap; storage errors.
    pub async fn ensure_standby_copies(
        &self,
        account: &AccountId,
        key: &KeyRef,
        principal: &PrincipalId,
        versions: &[String],
    ) -> Result<usize, StoreError> {
        let Some(cached) = self.cache.get(account) else {
            return Err(StoreError::NoAccountKey {
                account: account.to_string(),
            });
        };
        let mut written = 0;
        for version in versions {
            let path = standby_path(account, key, version);
            match self.root.head(&path).await {
                Ok(_) => continue,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(StoreError::storage(what(account, key, version), &e)),
            }
            let binding = KekBinding {
                key: KeyRef {
                    version: Some(version.clone()),
                    ..key.clone()
                },
                principal: principal.clone(),
            };
            let check = check_value(&cached.aek, account, cached.record.epoch)?;
            let mut file = self
                .wrap(
                    account,
                    "aek",
                    &binding,
                    &cached.aek.to_secret(),
                    Some(check),
                )
                .await?;
            file.epoch = cached.record.epoch;
            let bytes = serde_json::to_vec_pretty(&file)
                .map_err(|e| StoreError::corrupt(what(account, key, version), e.to_string()))?;
            let options = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            match self
                .root
                .put_opts(&path, PutPayload::from(bytes), options)
                .await
            {
                Ok(_) => written += 1,
                // Another process wrote it first: the same key under the same version.
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(StoreError::storage(what(account, key, version), &e)),
            }
            tracing::info!(%account, key = %binding.key, "wrote a standby copy of the account key");
        }
        Ok(written)
    }

    /// The versions of `key` under which the account key has a standby copy.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn standby_versions(
        &self,
        account: &AccountId,
        key: &KeyRef,
    ) -> Result<Vec<String>, StoreError> {
        use futures::TryStreamExt;
        let dir = account_prefix(account)
            .join("keys")
            .join(STANDBY_DIR)
            .join(key.vault.as_str())
            .join(key.name.as_str());
        let metas: Vec<_> = self
            .root
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| StoreError::storage(format!("standby copies of {account}"), &e))?;
        let mut out: Vec<String> = metas
            .iter()
            .filter_map(|m| {
                m.location
                    .filename()?
                    .strip_suffix(".json")
                    .map(str::to_owned)
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// The account key from its standby copy under `binding`'s exact key version, unwrapped on
    /// behalf of `binding`'s principal and checked to be this account's; `None` if there is no
    /// such copy.
    pub(super) async fn standby_secret(
        &self,
        account: &AccountId,
        binding: &KekBinding,
    ) -> Result<Option<(KeyRecordFile, SecretBytes)>, StoreError> {
        let Some(version) = binding.key.version.as_deref() else {
            return Ok(None);
        };
        let path = standby_path(account, &binding.key, version);
        let what = what(account, &binding.key, version);
        let bytes = match self.root.get(&path).await {
            Ok(got) => got
                .bytes()
                .await
                .map_err(|e| StoreError::storage(what.clone(), &e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(StoreError::storage(what, &e)),
        };
        let mut file: KeyRecordFile = parse_versioned(&bytes, &what, KEY_RECORD_FORMAT_VERSION)?;
        if &file.account != account || file.purpose != "aek" {
            return Err(StoreError::corrupt(
                what,
                format!(
                    "it is a {} key of storage account {}",
                    file.purpose, file.account
                ),
            ));
        }
        // The identity that unwraps is the cluster's now, whoever it was wrapped for.
        file.binding.principal = binding.principal.clone();
        let secret = self.unwrap_checked(account, &file).await?;
        Ok(Some((file, secret)))
    }

    /// Deletes the standby copy under `key`'s exact version, once it became the account key's
    /// record (a missing copy is not an error).
    pub(super) async fn drop_standby(&self, account: &AccountId, key: &KeyRef) {
        let Some(version) = key.version.as_deref() else {
            return;
        };
        let path = standby_path(account, key, version);
        match self.root.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(%account, key = %key, error = %e, "could not delete a used standby copy")
            }
        }
    }
}
