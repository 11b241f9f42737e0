//! The [`KeyVault`] trait calls of the local vault: each one is checked, in order, for the
//! vault's existence, an injected outage (transient), the principal's identity and permission
//! (forbidden), and the key's state (not found, deleted, disabled), then performed and audited.
//!
//! The calls do small, short file reads and one synced append to the audit log inline; they take
//! no lock on the vault's state (writers replace it atomically).

use async_trait::async_trait;
use logvault_crypto::SecretBytes;

use crate::local::audit::{self, AuditEntry, AuditOperation};
use crate::local::state::VaultState;
use crate::local::{KeyPermission, LocalVault, SERVICE_PRINCIPAL};
use crate::{
    KeyProperties, KeyRef, KeyVault, PrincipalId, VaultError, VaultProperties, WrappedKey,
};

/// One trait call to audit: who, what, on which key and version.
struct Call<'a> {
    principal: &'a PrincipalId,
    operation: AuditOperation,
    vault: &'a str,
    key: &'a str,
    version: Option<&'a str>,
}

impl LocalVault {
    /// Runs `f` on the vault's state after the outage check, then audits the outcome. `f`
    /// returns the version it used and its result.
    fn audited<T>(
        &self,
        call: &Call<'_>,
        f: impl FnOnce(&VaultState) -> Result<(String, T), VaultError>,
    ) -> Result<T, VaultError> {
        self.audited_as(call, true, f)
    }

    /// As [`LocalVault::audited`]; `identity` says whether the caller must be an identity of the
    /// directory (trait calls) or was authenticated by the caller of this crate (the Key Vault
    /// API's bearer tokens, whose roles authorize the call).
    fn audited_as<T>(
        &self,
        call: &Call<'_>,
        identity: bool,
        f: impl FnOnce(&VaultState) -> Result<(String, T), VaultError>,
    ) -> Result<T, VaultError> {
        let time = self.now();
        let state = match self.load(call.vault) {
            Ok(state) => state,
            // No such vault (or an invalid name): there is no log to write to.
            Err(e @ (VaultError::VaultNotFound { .. } | VaultError::InvalidInput(_))) => {
                return Err(e);
            }
            Err(e) => {
                let failed: Result<T, VaultError> = Err(e);
                self.record(call, time, call.version.unwrap_or("latest"), &failed)?;
                return failed;
            }
        };
        let result = state
            .check_reachable()
            .and_then(|()| {
                if identity {
                    self.authenticate(call)
                } else {
                    Ok(())
                }
            })
            .and_then(|()| f(&state));
        let version = match &result {
            Ok((v, _)) => v.clone(),
            Err(_) => call.version.unwrap_or("latest").to_owned(),
        };
        self.record(call, time, &version, &result)?;
        tracing::debug!(
            vault = call.vault,
            key = call.key,
            version = %version,
            principal = %call.principal,
            operation = ?call.operation,
            error = result.as_ref().err().map(|e| e.kind().to_string()),
            "vault call"
        );
        result.map(|(_, out)| out)
    }

    /// Fails unless the caller is the service principal or an identity of the directory: a
    /// deleted identity cannot authenticate even if policies still name it.
    fn authenticate(&self, call: &Call<'_>) -> Result<(), VaultError> {
        if call.principal.0 == SERVICE_PRINCIPAL
            || self.identities().by_principal(call.principal)?.is_some()
        {
            Ok(())
        } else {
            Err(VaultError::UnknownPrincipal {
                vault: call.vault.to_owned(),
                principal: call.principal.0.clone(),
            })
        }
    }

    fn record<T>(
        &self,
        call: &Call<'_>,
        time: chrono::DateTime<chrono::Utc>,
        version: &str,
        result: &Result<T, VaultError>,
    ) -> Result<(), VaultError> {
        let entry = AuditEntry::new(
            time,
            call.principal,
            call.operation,
            (call.vault, call.key, version),
            result,
        );
        audit::append(&self.paths(call.vault)?.audit, &entry)
    }
}

/// The public half of an RSA key version, as a JSON Web Key carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    /// The modulus, big-endian.
    pub n: Vec<u8>,
    /// The public exponent, big-endian.
    pub e: Vec<u8>,
}

impl LocalVault {
    /// The public half of version `version` (or the latest) of RSA key `name`; `None` for an
    /// `oct` key. The owner's view: no permission check, deleted keys included.
    ///
    /// # Errors
    /// [`VaultError::KeyNotFound`], [`VaultError::VaultNotFound`], [`VaultError::Internal`] if
    /// the material does not open.
    pub fn public_key(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<RsaPublicKey>, VaultError> {
        let state = self.load(vault)?;
        let key = state.any_key(name)?;
        let ver = match version {
            None => key.versions.last(),
            Some(v) => key.versions.iter().find(|r| r.version == v),
        }
        .ok_or_else(|| VaultError::KeyNotFound {
            vault: vault.to_owned(),
            key: name.to_owned(),
            version: version.unwrap_or("latest").to_owned(),
        })?;
        match super::keys::open_material(self.master(), vault, name, key.kty, ver)? {
            super::keys::Material::Rsa(k) => {
                let (n, e) = k.public_parts();
                Ok(Some(RsaPublicKey { n, e }))
            }
            super::keys::Material::Oct(_) => Ok(None),
        }
    }

    /// Wraps `plaintext` for a caller the embedder authenticated and authorized (the Key Vault
    /// API's token roles): the vault's outage and the key's state apply, access policies do not;
    /// audited under `caller`.
    ///
    /// # Errors
    /// As [`KeyVault::wrap_key`], without [`VaultError::Forbidden`].
    pub fn wrap_for(
        &self,
        caller: &PrincipalId,
        key: &KeyRef,
        plaintext: &SecretBytes,
    ) -> Result<WrappedKey, VaultError> {
        let call = Call {
            principal: caller,
            operation: AuditOperation::WrapKey,
            vault: &key.vault,
            key: &key.name,
            version: key.version.as_deref(),
        };
        self.audited_as(&call, false, |state| {
            let (rec, ver) = state.usable_version(&key.name, key.version.as_deref())?;
            let wrapped = super::keys::wrap(self.master(), state, &key.name, rec, ver, plaintext)?;
            Ok((ver.version.clone(), wrapped))
        })
    }

    /// Unwraps `wrapped` for a caller the embedder authenticated and authorized, as
    /// [`LocalVault::wrap_for`].
    ///
    /// # Errors
    /// As [`KeyVault::unwrap_key`], without [`VaultError::Forbidden`].
    pub fn unwrap_for(
        &self,
        caller: &PrincipalId,
        wrapped: &WrappedKey,
    ) -> Result<SecretBytes, VaultError> {
        let call = Call {
            principal: caller,
            operation: AuditOperation::UnwrapKey,
            vault: &wrapped.vault,
            key: &wrapped.key,
            version: Some(&wrapped.version),
        };
        self.audited_as(&call, false, |state| {
            let (rec, ver) = state.usable_version(&wrapped.key, Some(&wrapped.version))?;
            let secret = super::keys::unwrap(self.master(), state, rec, ver, wrapped)?;
            Ok((ver.version.clone(), secret))
        })
    }
}

#[async_trait]
impl KeyVault for LocalVault {
    async fn vault_properties(
        &self,
        principal: &PrincipalId,
        key: &KeyRef,
    ) -> Result<VaultProperties, VaultError> {
        let call = Call {
            principal,
            operation: AuditOperation::GetVault,
            vault: &key.vault,
            key: &key.name,
            version: key.version.as_deref(),
        };
        self.audited(&call, |state| {
            state.check_permission(principal, KeyPermission::Get)?;
            Ok((key.version_or_latest().to_owned(), state.properties()))
        })
    }

    async fn get_key(
        &self,
        principal: &PrincipalId,
        key: &KeyRef,
    ) -> Result<KeyProperties, VaultError> {
        let call = Call {
            principal,
            operation: AuditOperation::Get,
            vault: &key.vault,
            key: &key.name,
            version: key.version.as_deref(),
        };
        self.audited(&call, |state| {
            state.check_permission(principal, KeyPermission::Get)?;
            let (_, ver) = state.version(&key.name, key.version.as_deref())?;
            Ok((ver.version.clone(), state.key_properties(&key.name)?))
        })
    }

    async fn wrap_key(
        &self,
        principal: &PrincipalId,
        key: &KeyRef,
        plaintext: &SecretBytes,
    ) -> Result<WrappedKey, VaultError> {
        let call = Call {
            principal,
            operation: AuditOperation::WrapKey,
            vault: &key.vault,
            key: &key.name,
            version: key.version.as_deref(),
        };
        self.audited(&call, |state| {
            state.check_permission(principal, KeyPermission::WrapKey)?;
            let (rec, ver) = state.usable_version(&key.name, key.version.as_deref())?;
            let wrapped = super::keys::wrap(self.master(), state, &key.name, rec, ver, plaintext)?;
            Ok((ver.version.clone(), wrapped))
        })
    }

    async fn unwrap_key(
        &self,
        principal: &PrincipalId,
        wrapped: &WrappedKey,
    ) -> Result<SecretBytes, VaultError> {
        let call = Call {
            principal,
            operation: AuditOperation::UnwrapKey,
            vault: &wrapped.vault,
            key: &wrapped.key,
            version: Some(&wrapped.version),
        };
        self.audited(&call, |state| {
            state.check_permission(principal, KeyPermission::UnwrapKey)?;
            let (rec, ver) = state.usable_version(&wrapped.key, Some(&wrapped.version))?;
            let secret = super::keys::unwrap(self.master(), state, rec, ver, wrapped)?;
            Ok((ver.version.clone(), secret))
        })
    }
}
