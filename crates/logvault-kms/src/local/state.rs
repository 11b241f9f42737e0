//! The persisted state of one local vault (`vaults/NAME/vault.json`) and lookups on it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::local::access::{AccessPolicy, RoleAssignment};
use crate::local::outage::OutageMode;
use crate::types::b64;
use crate::{KeyProperties, KeyType, KeyVersionProperties, VaultError, VaultProperties};

/// The `format` tag in the header of a vault file.
pub(crate) const VAULT_FORMAT: &str = "logvault.vault";

/// The host suffix of local vault URIs: `https://NAME.vault.local`.
pub const VAULT_DOMAIN: &str = "vault.local";

/// The URI of the local vault `name`.
pub fn vault_uri(name: &str) -> String {
    format!("https://{name}.{VAULT_DOMAIN}")
}

/// Everything one vault keeps, as written to its file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VaultState {
    pub(crate) name: String,
    pub(crate) region: String,
    pub(crate) tenant: String,
    pub(crate) soft_delete: bool,
    pub(crate) purge_protection: bool,
    pub(crate) soft_delete_retention_days: u32,
    pub(crate) created: DateTime<Utc>,
    #[serde(default)]
    pub(crate) outage: OutageMode,
    #[serde(default)]
    pub(crate) keys: BTreeMap<String, KeyRecord>,
    #[serde(default)]
    pub(crate) access_policies: Vec<AccessPolicy>,
    #[serde(default)]
    pub(crate) role_assignments: Vec<RoleAssignment>,
}

/// One key and its versions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KeyRecord {
    pub(crate) kty: KeyType,
    pub(crate) size: u32,
    pub(crate) enabled: bool,
    pub(crate) created: DateTime<Utc>,
    pub(crate) updated: DateTime<Utc>,
    #[serde(default)]
    pub(crate) deleted: Option<DateTime<Utc>>,
    /// Oldest first; the last one is the latest.
    pub(crate) versions: Vec<VersionRecord>,
}

/// One version of a key: its material, sealed under the vault's master key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VersionRecord {
    pub(crate) version: String,
    pub(crate) enabled: bool,
    pub(crate) created: DateTime<Utc>,
    /// The key material sealed with AES-256-GCM under the master key, bound to
    /// `vault/key/version` (see `keys::material_aad`).
    #[serde(with = "b64")]
    pub(crate) sealed: Vec<u8>,
}

/// What a vault looks like to its owner: its properties, permissions and outage mode (never its
/// keys' material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultInfo {
    /// Name, URI, region, tenant, soft delete and purge protection (flattened in JSON).
    #[serde(flatten)]
    pub properties: VaultProperties,
    /// How long a deleted key stays recoverable, in days.
    pub soft_delete_retention_days: u32,
    /// Whether keys here qualify as customer keys (R-A2: soft delete and purge protection).
    pub recoverable: bool,
    /// When the vault was created.
    pub created: DateTime<Utc>,
    /// The injected outage, `none` when the vault is reachable.
    pub outage: OutageMode,
    /// How many keys it holds (deleted ones included).
    pub key_count: usize,
    /// Its access policies.
    pub access_policies: Vec<AccessPolicy>,
    /// Its role assignments.
    pub role_assignments: Vec<RoleAssignment>,
}

impl VaultState {
    /// The retention period of deleted keys.
    pub(crate) fn retention(&self) -> Duration {
        Duration::days(i64::from(self.soft_delete_retention_days))
    }

    /// Checks what the file may hold that the code relies on, beyond its checksum (which a hand
    /// edit recomputes): a retention of 7 to 90 days, and purge dates that are times at all.
    pub(crate) fn check(&self) -> Result<(), String> {
        if !(7..=90).contains(&self.soft_delete_retention_days) {
            return Err(format!(
                "softDeleteRetentionDays is {}, not 7 to 90",
                self.soft_delete_retention_days
            ));
        }
        for (name, key) in &self.keys {
            if let Some(deleted) = key.deleted
                && deleted.checked_add_signed(self.retention()).is_none()
            {
                return Err(format!(
                    "key {name} was deleted at {deleted}, which leaves no purge date"
                ));
            }
        }
        Ok(())
    }

    /// Drops keys whose retention period has run out by `now`; returns their names.
    pub(crate) fn purge_expired(&mut self, now: DateTime<Utc>) -> Vec<String> {
        let retention = self.retention();
        let expired: Vec<String> = self
            .keys
            .iter()
            .filter(|(_, k)| k.deleted.is_some_and(|d| d + retention <= now))
            .map(|(name, _)| name.clone())
            .collect();
        for name in &expired {
            self.keys.remove(name);
        }
        expired
    }

    /// The vault's properties as the trait reports them.
    pub(crate) fn properties(&self) -> VaultProperties {
        VaultProperties {
            name: self.name.clone(),
            uri: vault_uri(&self.name),
            region: self.region.clone(),
            tenant: self.tenant.clone(),
            soft_delete: self.soft_delete,
            purge_protection: self.purge_protection,
        }
    }

    /// The owner's view of the vault.
    pub(crate) fn info(&self) -> VaultInfo {
        VaultInfo {
            properties: self.properties(),
            soft_delete_retention_days: self.soft_delete_retention_days,
            recoverable: self.soft_delete && self.purge_protection,
            created: self.created,
            outage: self.outage,
            key_count: self.keys.len(),
            access_policies: self.access_policies.clone(),
            role_assignments: self.role_assignments.clone(),
        }
    }

    fn key_not_found(&self, key: &str, version: &str) -> VaultError {
        VaultError::KeyNotFound {
            vault: self.name.clone(),
            key: key.to_owned(),
            version: version.to_owned(),
        }
    }

    /// The key `name`, deleted or not.
    pub(crate) fn any_key(&self, name: &str) -> Result<&KeyRecord, VaultError> {
        self.keys
            .get(name)
            .ok_or_else(|| self.key_not_found(name, "latest"))
    }

    /// The key `name`, mutable, deleted or not.
    pub(crate) fn any_key_mut(&mut self, name: &str) -> Result<&mut KeyRecord, VaultError> {
        let missing = self.key_not_found(name, "latest");
        self.keys.get_mut(name).ok_or(missing)
    }

    /// The key `name`, which must not be deleted.
    pub(crate) fn live_key(&self, name: &str) -> Result<&KeyRecord, VaultError> {
        let key = self.any_key(name)?;
        if let Some(deleted) = key.deleted {
            return Err(VaultError::Deleted {
                vault: self.name.clone(),
                key: name.to_owned(),
                purge_date: logvault_core::display_time(deleted + self.retention()),
            });
        }
        Ok(key)
    }

    /// The key `name` (not deleted), mutable.
    pub(crate) fn live_key_mut(&mut self, name: &str) -> Result<&mut KeyRecord, VaultError> {
        self.live_key(name)?;
        self.any_key_mut(name)
    }

    /// The version `version` (or the latest) of a live key.
    pub(crate) fn version(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(&KeyRecord, &VersionRecord), VaultError> {
        let key = self.live_key(name)?;
        let found = match version {
            None => key.versions.last(),
            Some(v) => key.versions.iter().find(|r| r.version == v),
        };
        let found = found.ok_or_else(|| self.key_not_found(name, version.unwrap_or("latest")))?;
        Ok((key, found))
    }

    /// The version of a live key, checked usable: the key and the version must be enabled.
    pub(crate) fn usable_version(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(&KeyRecord, &VersionRecord), VaultError> {
        let (key, ver) = self.version(name, version)?;
        if !key.enabled {
            return Err(VaultError::Disabled {
                vault: self.name.clone(),
                key: name.to_owned(),
                version: None,
            });
        }
        if !ver.enabled {
            return Err(VaultError::Disabled {
                vault: self.name.clone(),
                key: name.to_owned(),
                version: Some(ver.version.clone()),
            });
        }
        Ok((key, ver))
    }

    /// The properties of key `name` (deleted or not).
    pub(crate) fn key_properties(&self, name: &str) -> Result<KeyProperties, VaultError> {
        let key = self.any_key(name)?;
        let latest = key.versions.last().ok_or_else(|| VaultError::Internal {
            vault: self.name.clone(),
            reason: format!("key {name} has no version"),
        })?;
        Ok(KeyProperties {
            name: name.to_owned(),
            vault: self.name.clone(),
            kid: kid(&self.name, name, &latest.version),
            kty: key.kty,
            size: key.size,
            enabled: key.enabled,
            version: latest.version.clone(),
            versions: key
                .versions
                .iter()
                .map(|v| KeyVersionProperties {
                    version: v.version.clone(),
                    enabled: v.enabled,
                    created: v.created,
                })
                .collect(),
            created: key.created,
            deleted: key.deleted,
            scheduled_purge_date: key.deleted.map(|d| d + self.retention()),
        })
    }
}

/// The key identifier of one version: `https://VAULT.vault.local/keys/NAME/VERSION`.
pub fn kid(vault: &str, key: &str, version: &str) -> String {
    format!("{}/keys/{key}/{version}", vault_uri(vault))
}
