//! The key vault: where customer keys (KEKs) live.
//!
//! This crate owns:
//! - the [`KeyVault`] trait, the one interface through which logvault uses a customer's key:
//!   get a key's properties (never its material), wrap and unwrap an account key, always on
//!   behalf of a principal. Real vaults implement it (Key Vault's REST API: the crate
//!   `logvault-keyvault-client`; a PKCS#11 HSM would be another);
//! - [`VaultError`] and its [`VaultErrorKind`], which tell a revoked key (forbidden, disabled,
//!   deleted) from a vault that is merely unreachable (transient): the key lifecycle depends on it;
//! - the local vault that logvault embeds as its default (several named vaults in the logvault
//!   home, key versions, permissions, soft delete, outage injection and an audit log).
//!
//! A customer key, granted to a cluster's identity, wrapping and unwrapping an account key:
//!
//! ```
//! use std::sync::Arc;
//! use logvault_core::SystemClock;
//! use logvault_crypto::Aek;
//! use logvault_kms::local::{CreateVaultOptions, LocalVault};
//! use logvault_kms::{IdentityOptions, KeyRef, KeyType, KeyVault};
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let vault = LocalVault::open(dir.path(), Arc::new(SystemClock))?;
//! let options = CreateVaultOptions { purge_protection: true, ..Default::default() };
//! vault.create_vault("contoso", &options)?;
//! vault.create_key("contoso", "cmk", KeyType::Oct, None)?;
//! let cluster = vault.identities().create_user_assigned("cluster-id", &IdentityOptions::default())?;
//! let grant = ["get", "wrapKey", "unwrapKey"].map(String::from);
//! vault.set_policy("contoso", &cluster.principal_id, &grant)?;
//!
//! let key = KeyRef::from_uri("https://contoso.vault.local", "cmk", None)?;
//! let aek = Aek::generate()?;
//! let wrapped = vault.wrap_key(&cluster.principal_id, &key, &aek.to_secret()).await?;
//! let unwrapped = vault.unwrap_key(&cluster.principal_id, &wrapped).await?;
//! assert_eq!(Aek::from_secret(&unwrapped)?.fingerprint(), aek.fingerprint());
//!
//! vault.set_key_enabled("contoso", "cmk", None, false)?; // revocation
//! let err = vault.unwrap_key(&cluster.principal_id, &wrapped).await.unwrap_err();
//! assert!(err.is_revocation());
//! # Ok::<(), anyhow::Error>(())
//! # })?;
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! It must never: export key material, print or log it, or decide what a failed unwrap means for
//! data (that is the key lifecycle's job above it). Raw key bytes stay inside `logvault-crypto`'s
//! types; this crate only moves them between the vault's sealed storage and the crypto calls.

mod error;
pub mod identity;
pub mod local;
mod types;

pub use error::{VaultError, VaultErrorKind};
pub use identity::{Identity, IdentityDirectory, IdentityKind, IdentityOptions};
pub use local::{LocalVault, ServiceKey};
pub use types::{
    KeyProperties, KeyRef, KeyType, KeyVersionProperties, PrincipalId, VaultProperties, WrappedKey,
};

use async_trait::async_trait;
use logvault_crypto::SecretBytes;

/// A key vault as logvault uses it. Every call is made on behalf of `principal` and checked
/// against the vault's permissions (access policies or role assignments).
#[async_trait]
pub trait KeyVault: Send + Sync + std::fmt::Debug {
    /// The properties of the vault that holds `key` (region, tenant, soft delete, purge
    /// protection). Needs the Get permission on keys, as in Azure Key Vault.
    async fn vault_properties(
        &self,
        principal: &PrincipalId,
        key: &KeyRef,
    ) -> Result<VaultProperties, VaultError>;

    /// A key's properties: its versions, which is the latest, and whether each is enabled.
    /// Needs Get. Never returns key material.
    async fn get_key(
        &self,
        principal: &PrincipalId,
        key: &KeyRef,
    ) -> Result<KeyProperties, VaultError>;

    /// Wraps (encrypts) `plaintext` with `key` (its latest version when none is given). Needs
    /// Wrap Key. The result records which key and version wrapped it.
    async fn wrap_key(
        &self,
        principal: &PrincipalId,
        key: &KeyRef,
        plaintext: &SecretBytes,
    ) -> Result<WrappedKey, VaultError>;

    /// Unwraps a blob made by [`KeyVault::wrap_key`], with the key version recorded in it.
    /// Needs Unwrap Key; fails if that key or version is disabled or deleted.
    async fn unwrap_key(
        &self,
        principal: &PrincipalId,
        wrapped: &WrappedKey,
    ) -> Result<SecretBytes, VaultError>;
}
