//! The local vault: the key vault logvault embeds as its default.
//!
//! Several named vaults live in one directory (the logvault home's `vault/`):
//!
//! ```text
//! vault/
//!   master.key              the root key (mode 0600) every key version is sealed under
//!   identities.json         the identity directory (user- and system-assigned identities)
//!   vaults/NAME/vault.json  one vault: properties, keys (sealed), permissions, outage mode
//!   vaults/NAME/audit.jsonl its audit log, append-only
//!   vaults/NAME/lock        the lock file its writers take
//! ```
//!
//! The format is specified in `docs/vault-format.md`. The vault is split by concept: persistence
//! (`store`, `state`), keys (`keys`), permissions (`access`), the audit log (`audit`), outage
//! injection (`outage`), the reserved service key (`service`) and the trait calls (`ops`).
//!
//! Administrative operations (create a vault or key, rotate, enable, disable, delete, set a
//! policy, assign a role) are the owner's and take no principal; the trait calls (get, wrap,
//! unwrap) are checked against the vault's permissions, outage and key states, and audited.

mod access;
mod audit;
#[cfg(test)]
mod hygiene_tests;
mod keys;
mod ops;
mod outage;
mod service;
mod state;
pub(crate) mod store;

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use logvault_core::{NameKind, SharedClock, validate_name};
use logvault_crypto::{Key256, master};

pub use access::{
    AccessPolicy, CRYPTO_SERVICE_ENCRYPTION_USER, CRYPTO_SERVICE_ENCRYPTION_USER_ID, KeyPermission,
    RoleAssignment, vault_resource_id,
};
pub use audit::{AuditEntry, AuditOperation, AuditOutcome};
pub use keys::{ALG_A256GCM, ALG_RSA_OAEP_256};
pub use ops::RsaPublicKey;
pub use outage::OutageMode;
pub(crate) use service::reserved;
pub use service::{SERVICE_KEY, SERVICE_PRINCIPAL, SERVICE_VAULT, ServiceKey};
pub use state::{VAULT_DOMAIN, VaultInfo, kid, vault_uri};

use crate::VaultError;
use crate::identity::IdentityDirectory;
use state::{VAULT_FORMAT, VaultState};

/// Default retention of soft-deleted keys, in days (the service's 14-day soft-delete period).
pub const DEFAULT_RETENTION_DAYS: u32 = 14;

/// How to create a vault. The defaults: region and tenant `local`, soft delete on, purge
/// protection off (as in Azure, where purge protection must be asked for), 14-day retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateVaultOptions {
    /// The region.
    pub region: String,
    /// The tenant.
    pub tenant: String,
    /// Keep deleted keys recoverable for the retention period.
    pub soft_delete: bool,
    /// Refuse purges of deleted keys until the retention period ends (needs soft delete).
    pub purge_protection: bool,
    /// The retention period of deleted keys in days (7 to 90); `None` for 14.
    pub retention_days: Option<u32>,
}

impl Default for CreateVaultOptions {
    fn default() -> Self {
        Self {
            region: "local".into(),
            tenant: "local".into(),
            soft_delete: true,
            purge_protection: false,
            retention_days: None,
        }
    }
}

/// A change to a vault's protection. As in Azure, soft delete and purge protection can be turned
/// on but never off again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateVaultOptions {
    /// Turn soft delete on (`Some(false)` is refused once it is on).
    pub soft_delete: Option<bool>,
    /// Turn purge protection on (`Some(false)` is refused once it is on).
    pub purge_protection: Option<bool>,
}

struct Inner {
    dir: PathBuf,
    master: Key256,
    clock: SharedClock,
    identities: IdentityDirectory,
}

/// The local vault: the embedded default implementation of [`crate::KeyVault`], plus the owner's
/// administrative operations. Cheap to clone (shared state); every call reads the files, so
/// several processes on one home see each other's changes.
#[derive(Clone)]
pub struct LocalVault {
    inner: Arc<Inner>,
}

impl fmt::Debug for LocalVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalVault")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

/// The files of one vault.
pub(crate) struct VaultPaths {
    pub(crate) dir: PathBuf,
    pub(crate) state: PathBuf,
    pub(crate) lock: PathBuf,
    pub(crate) audit: PathBuf,
}

impl LocalVault {
    /// Opens the local vault in `dir` (created on first use, mode 0700, with its master key).
    ///
    /// # Errors
    /// [`VaultError::Internal`] if the directory or the master key file cannot be created or
    /// read (a damaged master key is reported, never replaced).
    pub fn open(dir: &Path, clock: SharedClock) -> Result<Self, VaultError> {
        let fail = |reason: String| VaultError::Internal {
            vault: dir.display().to_string(),
            reason,
        };
        fs::create_dir_all(dir.join("vaults")).map_err(|e| fail(e.to_string()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| fail(e.to_string()))?;
        let master = master::load_or_create_root_key(&dir.join("master.key"))
            .map_err(|e| fail(e.to_string()))?;
        let identities = IdentityDirectory::new(dir, clock.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                master,
                clock,
                identities,
            }),
        })
    }

    /// The directory the vault lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The directory of identities (user-assigned and system-assigned).
    pub fn identities(&self) -> &IdentityDirectory {
        &self.inner.identities
    }

    pub(crate) fn master(&self) -> &Key256 {
        &self.inner.master
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    pub(crate) fn paths(&self, vault: &str) -> Result<VaultPaths, VaultError> {
        validate_name(NameKind::Vault, vault)?;
        let dir = self.inner.dir.join("vaults").join(vault);
        Ok(VaultPaths {
            state: dir.join("vault.json"),
            lock: dir.join("lock"),
            audit: dir.join("audit.jsonl"),
            dir,
        })
    }

    /// Reads vault `vault`, with keys past their retention period dropped.
    pub(crate) fn load(&self, vault: &str) -> Result<VaultState, VaultError> {
        let paths = self.paths(vault)?;
        let mut state = store::read_doc::<VaultState>(&paths.state, VAULT_FORMAT)
            .map_err(|e| VaultError::Internal {
                vault: vault.to_owned(),
                reason: e.describe(),
            })?
            .ok_or_else(|| VaultError::VaultNotFound {
                vault: vault.to_owned(),
            })?;
        if state.name != vault {
            return Err(VaultError::Internal {
                vault: vault.to_owned(),
                reason: format!(
                    "file {} holds vault {:?}",
                    paths.state.display(),
                    state.name
                ),
            });
        }
        state.check().map_err(|reason| VaultError::Internal {
            vault: vault.to_owned(),
            reason: format!("file {}: {reason}", paths.state.display()),
        })?;
        state.purge_expired(self.now());
        Ok(state)
    }

    /// Read-modify-write of vault `vault` under its lock; nothing is written if `f` fails.
    pub(crate) fn update<T>(
        &self,
        vault: &str,
        f: impl FnOnce(&mut VaultState) -> Result<T, VaultError>,
    ) -> Result<T, VaultError> {
        let paths = self.paths(vault)?;
        if !paths.state.exists() {
            return Err(VaultError::VaultNotFound {
                vault: vault.to_owned(),
            });
        }
        let _guard = store::lock(&paths.lock).map_err(|e| internal(vault, &e))?;
        let mut state = self.load(vault)?;
        let out = f(&mut state)?;
        store::write_doc(&paths.state, VAULT_FORMAT, &state).map_err(|e| internal(vault, &e))?;
        Ok(out)
    }

    /// Creates vault `name`.
    ///
    /// # Errors
    /// [`VaultError::InvalidInput`] for a bad vault, region or tenant name;
    /// [`VaultError::BadRequest`] for purge protection without soft delete, a retention outside
    /// 7-90 days, or the reserved service vault's name; [`VaultError::Conflict`] if it exists.
    pub fn create_vault(
        &self,
        name: &str,
        options: &CreateVaultOptions,
    ) -> Result<VaultInfo, VaultError> {
        reserved::guard_vault_name(name)?;
        self.create_vault_unguarded(name, options)
    }

    pub(crate) fn create_vault_unguarded(
        &self,
        name: &str,
        options: &CreateVaultOptions,
    ) -> Result<VaultInfo, VaultError> {
        let paths = self.paths(name)?;
        validate_name(NameKind::Region, &options.region)?;
        validate_name(NameKind::Tenant, &options.tenant)?;
        if options.purge_protection && !options.soft_delete {
            return Err(VaultError::BadRequest {
                vault: name.to_owned(),
                reason: "purge protection needs soft delete".into(),
            });
        }
        let retention = options.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS);
        check_retention(name, retention)?;
        fs::create_dir_all(&paths.dir).map_err(|e| VaultError::Internal {
            vault: name.to_owned(),
            reason: format!("directory {}: {e}", paths.dir.display()),
        })?;
        let _guard = store::lock(&paths.lock).map_err(|e| internal(name, &e))?;
        if paths.state.exists() {
            return Err(VaultError::Conflict {
                resource: format!("vault {name}"),
                reason: "already exists".into(),
            });
        }
        let state = VaultState {
            name: name.to_owned(),
            region: options.region.clone(),
            tenant: options.tenant.clone(),
            soft_delete: options.soft_delete,
            purge_protection: options.purge_protection,
            soft_delete_retention_days: retention,
            created: self.now(),
            outage: OutageMode::None,
            keys: Default::default(),
            access_policies: Vec::new(),
            role_assignments: Vec::new(),
        };
        store::write_doc(&paths.state, VAULT_FORMAT, &state).map_err(|e| internal(name, &e))?;
        Ok(state.info())
    }

    /// The owner's view of vault `name`.
    ///
    /// # Errors
    /// [`VaultError::VaultNotFound`], or [`VaultError::Internal`] if its file is damaged.
    pub fn vault_info(&self, name: &str) -> Result<VaultInfo, VaultError> {
        Ok(self.load(name)?.info())
    }

    /// Every vault, by name (the reserved service vault included).
    ///
    /// # Errors
    /// [`VaultError::Internal`] if the directory cannot be read or a vault's file is damaged.
    pub fn list_vaults(&self) -> Result<Vec<VaultInfo>, VaultError> {
        let root = self.inner.dir.join("vaults");
        let entries = fs::read_dir(&root).map_err(|e| VaultError::Internal {
            vault: root.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| VaultError::Internal {
                vault: root.display().to_string(),
                reason: e.to_string(),
            })?;
            if let Some(name) = entry.file_name().to_str()
                && validate_name(NameKind::Vault, name).is_ok()
                && entry.path().join("vault.json").exists()
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        names.iter().map(|n| self.vault_info(n)).collect()
    }

    /// Turns on soft delete or purge protection of vault `name`.
    ///
    /// # Errors
    /// [`VaultError::BadRequest`] when asked to turn either off once on, or purge protection
    /// on without soft delete; [`VaultError::VaultNotFound`].
    pub fn update_vault(
        &self,
        name: &str,
        options: &UpdateVaultOptions,
    ) -> Result<VaultInfo, VaultError> {
        self.update(name, |state| {
            let bad = |reason: &str| VaultError::BadRequest {
                vault: name.to_owned(),
                reason: reason.to_owned(),
            };
            if let Some(on) = options.soft_delete {
                if state.soft_delete && !on {
                    return Err(bad("soft delete cannot be turned off once on"));
                }
                state.soft_delete = on;
            }
            if let Some(on) = options.purge_protection {
                if state.purge_protection && !on {
                    return Err(bad("purge protection cannot be turned off once on"));
                }
                state.purge_protection = on;
            }
            if state.purge_protection && !state.soft_delete {
                return Err(bad("purge protection needs soft delete"));
            }
            Ok(state.info())
        })
    }
}

fn internal(vault: &str, e: &store::StoreError) -> VaultError {
    VaultError::Internal {
        vault: vault.to_owned(),
        reason: e.describe(),
    }
}

fn check_retention(vault: &str, days: u32) -> Result<(), VaultError> {
    if (7..=90).contains(&days) {
        Ok(())
    } else {
        Err(VaultError::BadRequest {
            vault: vault.to_owned(),
            reason: format!("soft delete retention must be 7 to 90 days, got {days}"),
        })
    }
}
