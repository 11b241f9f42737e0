//! The plain data exchanged with a vault.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::VaultError;

/// The id of a principal (an identity) on whose behalf a vault call is made: a user-assigned
/// identity's principal id, a cluster's system-assigned principal id, or the service itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrincipalId(pub String);

impl fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which key (and optionally which version) a call is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyRef {
    /// The vault's name.
    pub vault: String,
    /// The key's name.
    pub name: String,
    /// A specific version, or `None` for the latest.
    pub version: Option<String>,
}

impl KeyRef {
    /// A reference to the latest version of `name` in `vault`.
    pub fn latest(vault: &str, name: &str) -> Self {
        Self {
            vault: vault.to_owned(),
            name: name.to_owned(),
            version: None,
        }
    }

    /// A reference from the cluster's key properties: a vault URI such as
    /// `https://contoso.vault.local` (the vault's name is the first label of the host), a key name
    /// and an optional version (empty means the latest).
    ///
    /// # Errors
    /// [`VaultError::BadRequest`] if the URI is not `https://NAME.DOMAIN[/]`.
    pub fn from_uri(
        vault_uri: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<Self, VaultError> {
        let bad = |reason: &str| VaultError::BadRequest {
            vault: vault_uri.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = vault_uri
            .strip_prefix("https://")
            .ok_or_else(|| bad("vault uri must start with https://"))?;
        let host = rest.strip_suffix('/').unwrap_or(rest);
        // The form `logvault serve` answers the Key Vault API on: https://HOST[:PORT]/vaults/NAME.
        if let Some((authority, path)) = host.split_once('/') {
            let vault = path
                .strip_prefix("vaults/")
                .filter(|v| !authority.is_empty() && !v.is_empty() && !v.contains('/'))
                .ok_or_else(|| {
                    bad("vault uri must be https://NAME.DOMAIN or https://HOST[:PORT]/vaults/NAME")
                })?;
            if name.is_empty() {
                return Err(bad("key name is empty"));
            }
            return Ok(Self {
                vault: vault.to_owned(),
                name: name.to_owned(),
                version: version.filter(|v| !v.is_empty()).map(str::to_owned),
            });
        }
        if host.is_empty() {
            return Err(bad("vault uri must be https://NAME.DOMAIN with no path"));
        }
        let vault = host.split('.').next().unwrap_or_default();
        if vault.is_empty() || !host.contains('.') {
            return Err(bad("vault uri must be https://NAME.DOMAIN"));
        }
        if name.is_empty() {
            return Err(bad("key name is empty"));
        }
        Ok(Self {
            vault: vault.to_owned(),
            name: name.to_owned(),
            version: version.filter(|v| !v.is_empty()).map(str::to_owned),
        })
    }

    /// The version, or `latest`.
    pub fn version_or_latest(&self) -> &str {
        self.version.as_deref().unwrap_or("latest")
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.vault,
            self.name,
            self.version_or_latest()
        )
    }
}

/// Key types, as Azure Key Vault names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyType {
    /// A symmetric AES-256 key; wraps with AES-256-GCM.
    #[serde(rename = "oct")]
    Oct,
    /// An RSA key; wraps with RSA-OAEP-256.
    #[serde(rename = "RSA")]
    Rsa,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Oct => "oct",
            Self::Rsa => "RSA",
        })
    }
}

/// The properties of a vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultProperties {
    /// The vault's name.
    pub name: String,
    /// Its URI, e.g. `https://contoso.vault.local`.
    pub uri: String,
    /// Its region.
    pub region: String,
    /// Its tenant.
    pub tenant: String,
    /// Whether deleted keys stay recoverable for a period.
    pub soft_delete: bool,
    /// Whether purging a deleted key is refused until the period ends.
    pub purge_protection: bool,
}

impl VaultProperties {
    /// Whether keys in this vault are recoverable (R-A2: both flags on).
    pub fn is_recoverable(&self) -> bool {
        self.soft_delete && self.purge_protection
    }
}

/// One version of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyVersionProperties {
    /// The version's id.
    pub version: String,
    /// Whether this version is enabled.
    pub enabled: bool,
    /// When it was created.
    pub created: DateTime<Utc>,
}

/// The properties of a key (never its material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyProperties {
    /// The key's name.
    pub name: String,
    /// The vault's name.
    pub vault: String,
    /// The key identifier of the latest version: `https://VAULT.vault.local/keys/NAME/VERSION`.
    pub kid: String,
    /// Its type.
    pub kty: KeyType,
    /// Its size in bits.
    pub size: u32,
    /// Whether the key as a whole is enabled.
    pub enabled: bool,
    /// The latest version.
    pub version: String,
    /// Every version, oldest first.
    pub versions: Vec<KeyVersionProperties>,
    /// When the key was created.
    pub created: DateTime<Utc>,
    /// When the key was soft-deleted, if it is.
    pub deleted: Option<DateTime<Utc>>,
    /// When a soft-deleted key will be purged for good, if it is deleted.
    pub scheduled_purge_date: Option<DateTime<Utc>>,
}

/// An account key wrapped by a vault key. It records which key and version wrapped it, so that
/// unwrap uses that version even after the key has been rotated.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WrappedKey {
    /// The vault's name.
    pub vault: String,
    /// The key's name.
    pub key: String,
    /// The version that wrapped it.
    pub version: String,
    /// The wrapping algorithm (`A256GCM` or `RSA-OAEP-256`).
    pub alg: String,
    /// The wrapped bytes, base64 in JSON.
    #[serde(with = "b64")]
    pub value: Vec<u8>,
}

impl WrappedKey {
    /// The key reference of the exact version that wrapped this blob.
    pub fn key_ref(&self) -> KeyRef {
        KeyRef {
            vault: self.vault.clone(),
            name: self.key.clone(),
            version: Some(self.version.clone()),
        }
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("vault", &self.vault)
            .field("key", &self.key)
            .field("version", &self.version)
            .field("alg", &self.alg)
            .field("len", &self.value.len())
            .finish()
    }
}

pub(crate) mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ref_from_uri() {
        let k = KeyRef::from_uri("https://contoso.vault.local/", "cmk", Some("")).unwrap();
        assert_eq!(
            (k.vault.as_str(), k.name.as_str(), k.version),
            ("contoso", "cmk", None)
        );
        let k = KeyRef::from_uri("https://127.0.0.1:8443/vaults/contoso/", "cmk", None).unwrap();
        assert_eq!((k.vault.as_str(), k.version), ("contoso", None));
        for bad in [
            "https://127.0.0.1:8443/vaults/",
            "https://127.0.0.1:8443/keys/contoso",
            "https://127.0.0.1:8443/vaults/a/b",
        ] {
            assert!(KeyRef::from_uri(bad, "cmk", None).is_err(), "{bad}");
        }
        let k = KeyRef::from_uri("https://contoso.vault.azure.net", "cmk", Some("v2")).unwrap();
        assert_eq!(k.version.as_deref(), Some("v2"));
        for bad in [
            "http://contoso.vault.local",
            "https://",
            "https://contoso",
            "https://a.b/keys",
        ] {
            assert!(KeyRef::from_uri(bad, "cmk", None).is_err(), "{bad}");
        }
    }

    #[test]
    fn wrapped_key_json_round_trip_hides_nothing_secret_in_debug() {
        let w = WrappedKey {
            vault: "v".into(),
            key: "k".into(),
            version: "1".into(),
            alg: "A256GCM".into(),
            value: vec![1, 2, 3],
        };
        let json = serde_json::to_string(&w).unwrap();
        assert!(json.contains("\"value\":\"AQID\""), "{json}");
        assert_eq!(serde_json::from_str::<WrappedKey>(&json).unwrap(), w);
        assert!(!format!("{w:?}").contains("[1, 2, 3]"));
    }
}
