//! Keys and their versions: creation, rotation, enable/disable, soft delete, recovery and purge,
//! and the wrap and unwrap that a version's material performs.
//!
//! Material is generated here, sealed at once under the vault's master key (bound to
//! `vault/key/version`), and opened only for the duration of one wrap or unwrap.

use logvault_core::{NameKind, validate_name};
use logvault_crypto::rsa_oaep::RSA_SIZES;
use logvault_crypto::{CryptoError, Key256, RsaKey, SecretBytes, aead, master};

use crate::local::state::{KeyRecord, VaultState, VersionRecord};
use crate::local::{LocalVault, reserved};
use crate::{KeyProperties, KeyType, VaultError, WrappedKey};

/// The wrapping algorithm of `oct` keys.
pub const ALG_A256GCM: &str = "A256GCM";
/// The wrapping algorithm of RSA keys.
pub const ALG_RSA_OAEP_256: &str = "RSA-OAEP-256";
/// The largest plaintext an `oct` key wraps, in bytes.
const MAX_OCT_WRAP: usize = 1024;

/// A key version's material, opened for one operation.
pub(crate) enum Material {
    Oct(Key256),
    Rsa(Box<RsaKey>),
}

fn material_aad(vault: &str, key: &str, version: &str) -> Vec<u8> {
    format!("logvault/vault-key/v1/{vault}/{key}/{version}").into_bytes()
}

fn wrap_aad(vault: &str, key: &str, version: &str) -> Vec<u8> {
    format!("logvault/wrap/v1/{vault}/{key}/{version}").into_bytes()
}

/// The size of a new key, checked against its type (`oct`: 256; RSA: 2048 by default, 3072, 4096).
fn checked_size(vault: &str, kty: KeyType, size: Option<u32>) -> Result<u32, VaultError> {
    let bad = |reason: String| bad_request(vault, reason);
    match (kty, size) {
        (KeyType::Oct, None | Some(256)) => Ok(256),
        (KeyType::Oct, Some(n)) => Err(bad(format!("an oct key is 256 bits, not {n}"))),
        (KeyType::Rsa, None) => Ok(2048),
        (KeyType::Rsa, Some(n)) if RSA_SIZES.contains(&n) => Ok(n),
        (KeyType::Rsa, Some(n)) => Err(bad(format!(
            "an RSA key is 2048, 3072 or 4096 bits, not {n}"
        ))),
    }
}

fn bad_request(vault: &str, reason: String) -> VaultError {
    VaultError::BadRequest {
        vault: vault.to_owned(),
        reason,
    }
}

fn crypto_internal(vault: &str, what: &str, e: CryptoError) -> VaultError {
    VaultError::Internal {
        vault: vault.to_owned(),
        reason: format!("{what}: {e}"),
    }
}

/// Generates the material of a new version and seals it under `master`.
fn new_sealed_material(
    master_key: &Key256,
    vault: &str,
    key: &str,
    version: &str,
    kty: KeyType,
    size: u32,
) -> Result<Vec<u8>, VaultError> {
    let aad = material_aad(vault, key, version);
    let what = format!("key {key} version {version}");
    let sealed = match kty {
        KeyType::Oct => Key256::generate().and_then(|k| master::seal_key(master_key, &aad, &k)),
        KeyType::Rsa => RsaKey::generate(size).and_then(|k| k.seal(master_key, &aad)),
    };
    sealed.map_err(|e| crypto_internal(vault, &what, e))
}

pub(crate) fn open_material(
    master_key: &Key256,
    vault: &str,
    key: &str,
    kty: KeyType,
    ver: &VersionRecord,
) -> Result<Material, VaultError> {
    let aad = material_aad(vault, key, &ver.version);
    let context = format!("sealed material of key {key} version {}", ver.version);
    let opened = match kty {
        KeyType::Oct => {
            master::open_key(master_key, &aad, &ver.sealed, &context).map(Material::Oct)
        }
        KeyType::Rsa => RsaKey::open(master_key, &aad, &ver.sealed, &context)
            .map(|k| Material::Rsa(Box::new(k))),
    };
    opened.map_err(|e| crypto_internal(vault, "cannot open key material", e))
}

/// Wraps `plaintext` with the given version of `key_name`.
pub(crate) fn wrap(
    master_key: &Key256,
    state: &VaultState,
    key_name: &str,
    key: &KeyRecord,
    ver: &VersionRecord,
    plaintext: &SecretBytes,
) -> Result<WrappedKey, VaultError> {
    let vault = state.name.as_str();
    let bad = |reason: String| bad_request(vault, reason);
    let (alg, value) = match open_material(master_key, vault, key_name, key.kty, ver)? {
        Material::Oct(k) => {
            if plaintext.is_empty() || plaintext.len() > MAX_OCT_WRAP {
                return Err(bad(format!(
                    "an oct key wraps 1 to {MAX_OCT_WRAP} bytes, got {}",
                    plaintext.len()
                )));
            }
            let aad = wrap_aad(vault, key_name, &ver.version);
            let sealed = aead::seal_secret(&k, &aad, plaintext)
                .map_err(|e| crypto_internal(vault, "wrap", e))?;
            (ALG_A256GCM, sealed)
        }
        Material::Rsa(k) => (
            ALG_RSA_OAEP_256,
            k.wrap(plaintext)
                .map_err(|e| bad(format!("key {key_name}: {e}")))?,
        ),
    };
    Ok(WrappedKey {
        vault: vault.to_owned(),
        key: key_name.to_owned(),
        version: ver.version.clone(),
        alg: alg.to_owned(),
        value,
    })
}

/// Unwraps `wrapped` with the version it names.
pub(crate) fn unwrap(
    master_key: &Key256,
    state: &VaultState,
    key: &KeyRecord,
    ver: &VersionRecord,
    wrapped: &WrappedKey,
) -> Result<SecretBytes, VaultError> {
    let vault = state.name.as_str();
    let bad = |reason: String| bad_request(vault, reason);
    let expected = match key.kty {
        KeyType::Oct => ALG_A256GCM,
        KeyType::Rsa => ALG_RSA_OAEP_256,
    };
    if wrapped.alg != expected {
        return Err(bad(format!(
            "key {} is {} and unwraps {expected}, not {}",
            wrapped.key, key.kty, wrapped.alg
        )));
    }
    let context = format!(
        "wrapped key for {}/{} version {}",
        wrapped.vault, wrapped.key, wrapped.version
    );
    let not_ours = |_| {
        bad(format!(
            "{context} does not authenticate (altered, or not wrapped by this key version)"
        ))
    };
    match open_material(master_key, vault, &wrapped.key, key.kty, ver)? {
        Material::Oct(k) => {
            let aad = wrap_aad(vault, &wrapped.key, &wrapped.version);
            aead::open_secret(&k, &aad, &wrapped.value, &context).map_err(not_ours)
        }
        Material::Rsa(k) => k.unwrap(&wrapped.value, &context).map_err(not_ours),
    }
}

fn new_version_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl LocalVault {
    /// Creates key `name` in `vault` with one version. `size` defaults to 256 for `oct` and 2048
    /// for RSA.
    ///
    /// # Errors
    /// [`VaultError::InvalidInput`], [`VaultError::BadRequest`] for a bad size or a reserved vault,
    /// [`VaultError::Conflict`] if the name is taken (by a live or a soft-deleted key),
    /// [`VaultError::VaultNotFound`].
    pub fn create_key(
        &self,
        vault: &str,
        name: &str,
        kty: KeyType,
        size: Option<u32>,
    ) -> Result<KeyProperties, VaultError> {
        reserved::guard_vault(vault, "get new keys")?;
        self.create_key_unguarded(vault, name, kty, size)
    }

    pub(crate) fn create_key_unguarded(
        &self,
        vault: &str,
        name: &str,
        kty: KeyType,
        size: Option<u32>,
    ) -> Result<KeyProperties, VaultError> {
        validate_name(NameKind::Key, name)?;
        let size = checked_size(vault, kty, size)?;
        self.load(vault)?;
        let version = new_version_id();
        // Generate outside the lock: an RSA key can take a while.
        let sealed = new_sealed_material(self.master(), vault, name, &version, kty, size)?;
        let now = self.now();
        self.update(vault, |state| {
            if let Some(existing) = state.keys.get(name) {
                let reason = if existing.deleted.is_some() {
                    "is deleted but not purged; recover or purge it first"
                } else {
                    "already exists"
                };
                return Err(VaultError::Conflict {
                    resource: format!("key {name} in vault {vault}"),
                    reason: reason.into(),
                });
            }
            state.keys.insert(
                name.to_owned(),
                KeyRecord {
                    kty,
                    size,
                    enabled: true,
                    created: now,
                    updated: now,
                    deleted: None,
                    versions: vec![VersionRecord {
                        version,
                        enabled: true,
                        created: now,
                        sealed,
                    }],
                },
            );
            state.key_properties(name)
        })
    }

    /// Adds a new version to key `name`; it becomes the latest. Older versions stay usable.
    ///
    /// # Errors
    /// [`VaultError::KeyNotFound`], [`VaultError::Deleted`], [`VaultError::VaultNotFound`].
    pub fn rotate_key(&self, vault: &str, name: &str) -> Result<KeyProperties, VaultError> {
        let state = self.load(vault)?;
        let key = state.live_key(name)?;
        let (kty, size) = (key.kty, key.size);
        let version = new_version_id();
        let sealed = new_sealed_material(self.master(), vault, name, &version, kty, size)?;
        let now = self.now();
        self.update(vault, |state| {
            let key = state.live_key_mut(name)?;
            if key.kty != kty {
                return Err(VaultError::Conflict {
                    resource: format!("key {name} in vault {vault}"),
                    reason: "was replaced while rotating; try again".into(),
                });
            }
            key.versions.push(VersionRecord {
                version,
                enabled: true,
                created: now,
                sealed,
            });
            key.updated = now;
            state.key_properties(name)
        })
    }

    /// Enables or disables key `name` as a whole, or only `version` of it.
    ///
    /// # Errors
    /// [`VaultError::KeyNotFound`] (also for an unknown version), [`VaultError::Deleted`],
    /// [`VaultError::BadRequest`] when disabling the service key, [`VaultError::VaultNotFound`].
    pub fn set_key_enabled(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
        enabled: bool,
    ) -> Result<KeyProperties, VaultError> {
        if !enabled {
            reserved::guard_vault(vault, "have keys disabled")?;
        }
        let now = self.now();
        self.update(vault, |state| {
            let (_, _) = state.version(name, version)?;
            let key = state.live_key_mut(name)?;
            match version {
                None => key.enabled = enabled,
                Some(v) => {
                    for ver in key.versions.iter_mut().filter(|r| r.version == v) {
                        ver.enabled = enabled;
                    }
                }
            }
            key.updated = now;
            state.key_properties(name)
        })
    }

    /// Deletes key `name`: soft (recoverable until the retention period ends) when the vault has
    /// soft delete, for good otherwise.
    ///
    /// # Errors
    /// [`VaultError::KeyNotFound`], [`VaultError::Deleted`] if it already is,
    /// [`VaultError::BadRequest`] for the service key, [`VaultError::VaultNotFound`].
    pub fn delete_key(&self, vault: &str, name: &str) -> Result<KeyProperties, VaultError> {
        reserved::guard_vault(vault, "have keys deleted")?;
        let now = self.now();
        self.update(vault, |state| {
            state.live_key(name)?;
            let mut props = state.key_properties(name)?;
            if state.soft_delete {
                state.any_key_mut(name)?.deleted = Some(now);
                props = state.key_properties(name)?;
            } else {
                state.keys.remove(name);
                props.deleted = Some(now);
            }
            Ok(props)
        })
    }

    /// Recovers soft-deleted key `name`, with its versions and their enabled flags.
    ///
    /// # Errors
    /// [`VaultError::ResourceNotFound`] if there is no such deleted key (never deleted, or
    /// purged), [`VaultError::VaultNotFound`].
    pub fn recover_key(&self, vault: &str, name: &str) -> Result<KeyProperties, VaultError> {
        let now = self.now();
        self.update(vault, |state| {
            let key = state
                .keys
                .get_mut(name)
                .filter(|k| k.deleted.is_some())
                .ok_or_else(|| VaultError::ResourceNotFound {
                    resource: format!("deleted key {name} in vault {vault}"),
                })?;
            key.deleted = None;
            key.updated = now;
            state.key_properties(name)
        })
    }

    /// Purges soft-deleted key `name` for good.
    ///
    /// # Errors
    /// [`VaultError::Conflict`] while the vault has purge protection;
    /// [`VaultError::ResourceNotFound`] if there is no such deleted key;
    /// [`VaultError::BadRequest`] for the service key; [`VaultError::VaultNotFound`].
    pub fn purge_key(&self, vault: &str, name: &str) -> Result<KeyProperties, VaultError> {
        reserved::guard_vault(vault, "have keys purged")?;
        self.update(vault, |state| {
            let props = match state.keys.get(name) {
                Some(k) if k.deleted.is_some() => state.key_properties(name)?,
                _ => {
                    return Err(VaultError::ResourceNotFound {
                        resource: format!("deleted key {name} in vault {vault}"),
                    });
                }
            };
            if state.purge_protection {
                let date = props
                    .scheduled_purge_date
                    .map(|d| d.to_rfc3339())
                    .unwrap_or_default();
                return Err(VaultError::Conflict {
                    resource: format!("key {name} in vault {vault}"),
                    reason: format!(
                        "cannot be purged: the vault has purge protection (it will be purged on {date})"
                    ),
                });
            }
            state.keys.remove(name);
            Ok(props)
        })
    }

    /// The properties of key `name`, deleted or not (the owner's view; no permission check).
    ///
    /// # Errors
    /// [`VaultError::KeyNotFound`], [`VaultError::VaultNotFound`].
    pub fn key_properties(&self, vault: &str, name: &str) -> Result<KeyProperties, VaultError> {
        self.load(vault)?.key_properties(name)
    }

    /// Every key of `vault` by name, soft-deleted ones included (their `deleted` is set).
    ///
    /// # Errors
    /// [`VaultError::VaultNotFound`], or [`VaultError::Internal`] if its file is damaged.
    pub fn list_keys(&self, vault: &str) -> Result<Vec<KeyProperties>, VaultError> {
        let state = self.load(vault)?;
        state.keys.keys().map(|k| state.key_properties(k)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked_per_type() {
        assert_eq!(checked_size("v", KeyType::Oct, None).unwrap(), 256);
        assert_eq!(checked_size("v", KeyType::Rsa, None).unwrap(), 2048);
        assert_eq!(checked_size("v", KeyType::Rsa, Some(4096)).unwrap(), 4096);
        assert!(checked_size("v", KeyType::Oct, Some(128)).is_err());
        assert!(checked_size("v", KeyType::Rsa, Some(1024)).is_err());
    }
}
