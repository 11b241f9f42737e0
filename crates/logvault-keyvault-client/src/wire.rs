//! Key Vault's JSON, read leniently (unknown fields ignored) and turned into the kms crate's
//! types: key bundles, key items of the versions list, wrap and unwrap results, errors.

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, Utc};
use logvault_kms::{KeyProperties, KeyType, KeyVersionProperties, VaultProperties};
use serde::Deserialize;

/// base64url, padded or not, as Key Vault and its clients write it.
pub(crate) const B64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A key's attributes (`exp`, `nbf`, `created` in seconds since the epoch).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Attributes {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    created: Option<i64>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    recovery_level: Option<String>,
}

impl Attributes {
    /// Usable now: enabled, not expired, not before its start (an expired or not yet valid
    /// version counts as disabled: Key Vault refuses it).
    fn usable(&self, now: DateTime<Utc>) -> bool {
        let now = now.timestamp();
        self.enabled.unwrap_or(false)
            && self.exp.is_none_or(|exp| exp > now)
            && self.nbf.is_none_or(|nbf| nbf <= now)
    }

    fn created(&self) -> DateTime<Utc> {
        self.created
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Jwk {
    kid: String,
    kty: String,
    #[serde(default)]
    n: Option<String>,
}

/// A key bundle: `{"key": JWK, "attributes"}`.
#[derive(Debug, Deserialize)]
pub(crate) struct KeyBundle {
    key: Jwk,
    #[serde(default)]
    attributes: Attributes,
}

/// An item of a list: `{"kid", "attributes"}`.
#[derive(Debug, Deserialize)]
pub(crate) struct KeyItem {
    kid: String,
    #[serde(default)]
    attributes: Attributes,
}

/// A page of a list.
#[derive(Debug, Deserialize)]
pub(crate) struct Page {
    #[serde(default)]
    pub(crate) value: Vec<KeyItem>,
    #[serde(default, rename = "nextLink")]
    pub(crate) next_link: Option<String>,
}

/// A wrap or unwrap result: `{"kid", "value"}` (base64url). The value is borrowed from the
/// answer's zeroized buffer.
#[derive(Debug, Deserialize)]
pub(crate) struct OperationResult<'a> {
    #[serde(default)]
    pub(crate) kid: Option<String>,
    #[serde(borrow)]
    pub(crate) value: &'a str,
}

/// The last segment of a key id (`.../keys/NAME/VERSION`): the version.
pub(crate) fn kid_version(kid: &str) -> Option<&str> {
    let mut parts = kid.trim_end_matches('/').rsplit('/');
    let version = parts.next()?;
    let _name = parts.next()?;
    (parts.next() == Some("keys") && !version.is_empty()).then_some(version)
}

impl KeyBundle {
    /// The version this bundle is of.
    pub(crate) fn version(&self) -> Option<&str> {
        kid_version(&self.key.kid)
    }

    /// The key's type, if logvault knows it.
    pub(crate) fn kty(&self) -> Option<KeyType> {
        match self.key.kty.as_str() {
            "RSA" | "RSA-HSM" => Some(KeyType::Rsa),
            "oct" | "oct-HSM" => Some(KeyType::Oct),
            _ => None,
        }
    }

    /// The vault's recoverability as its keys report it (`recoveryLevel`): soft delete when
    /// the level is recoverable, purge protection when it is recoverable and not purgeable.
    pub(crate) fn vault_properties(
        &self,
        name: &str,
        uri: &str,
        region: &str,
        tenant: &str,
    ) -> VaultProperties {
        let level = self
            .attributes
            .recovery_level
            .as_deref()
            .unwrap_or("Purgeable");
        let soft_delete = level.contains("Recoverable");
        VaultProperties {
            name: name.to_owned(),
            uri: uri.to_owned(),
            region: region.to_owned(),
            tenant: tenant.to_owned(),
            soft_delete,
            purge_protection: soft_delete && !level.contains("Purgeable"),
        }
    }

    /// The key's properties from its latest bundle (`self`) and its versions. Versions come
    /// oldest first (by creation, the list's order between equals), the latest last; a version
    /// that is disabled, expired or not yet valid is not `enabled`, and the key is `enabled` when
    /// its latest version is.
    pub(crate) fn properties(
        &self,
        vault: &str,
        name: &str,
        items: &[KeyItem],
        now: DateTime<Utc>,
    ) -> Option<KeyProperties> {
        let latest = self.version()?.to_owned();
        let kty = self.kty()?;
        let mut versions: Vec<KeyVersionProperties> = items
            .iter()
            .filter_map(|item| {
                Some(KeyVersionProperties {
                    version: kid_version(&item.kid)?.to_owned(),
                    enabled: item.attributes.usable(now),
                    created: item.attributes.created(),
                })
            })
            .collect();
        if !versions.iter().any(|v| v.version == latest) {
            versions.push(KeyVersionProperties {
                version: latest.clone(),
                enabled: self.attributes.usable(now),
                created: self.attributes.created(),
            });
        }
        versions.sort_by_key(|v| (v.version == latest, v.created));
        let size = match (kty, &self.key.n) {
            (KeyType::Rsa, Some(n)) => B64URL
                .decode(n)
                .ok()
                .and_then(|n| u32::try_from(n.len() * 8).ok())
                .unwrap_or(0),
            (KeyType::Rsa, None) => 0,
            (KeyType::Oct, _) => 256,
        };
        Some(KeyProperties {
            name: name.to_owned(),
            vault: vault.to_owned(),
            kid: self.key.kid.clone(),
            kty,
            size,
            enabled: self.attributes.usable(now),
            version: latest,
            created: versions
                .first()
                .map_or_else(|| self.attributes.created(), |v| v.created),
            versions,
            deleted: None,
            scheduled_purge_date: None,
        })
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default, alias = "innerError")]
    innererror: Option<Box<ErrorDetail>>,
}

/// What an error answer says: its code, its innermost code, its message.
pub(crate) struct VaultRefusal {
    pub(crate) code: String,
    pub(crate) inner_code: Option<String>,
    pub(crate) message: String,
}

/// Reads Key Vault's `{"error": {"code", "message", "innererror"?}}`; anything else gives empty
/// codes and a short excerpt of the body as the message.
pub(crate) fn refusal(body: &[u8]) -> VaultRefusal {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => {
            let mut inner = error.innererror.as_deref();
            let mut inner_code = None;
            while let Some(detail) = inner {
                inner_code = Some(detail.code.clone());
                inner = detail.innererror.as_deref();
            }
            VaultRefusal {
                code: error.code,
                inner_code,
                message: error.message,
            }
        }
        Err(_) => VaultRefusal {
            code: String::new(),
            inner_code: None,
            message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        },
    }
}

/// An error answer as text for a message: `Code: message`.
pub(crate) fn error_message(body: &[u8]) -> String {
    let r = refusal(body);
    match (r.code.is_empty(), r.message.is_empty()) {
        (true, true) => "no error body".into(),
        (true, false) => r.message,
        (false, true) => r.code,
        (false, false) => format!("{}: {}", r.code, r.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(json: &str) -> KeyBundle {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn key_ids_give_their_version() {
        assert_eq!(kid_version("https://h:1/keys/k/v1"), Some("v1"));
        assert_eq!(
            kid_version("https://kv.vault.azure.net/keys/k/v1/"),
            Some("v1")
        );
        assert_eq!(kid_version("https://h:1/keys/k"), None);
        assert_eq!(kid_version("v1"), None);
    }

    #[test]
    fn properties_order_versions_and_treat_expired_ones_as_disabled() {
        let now = DateTime::from_timestamp(2_000, 0).unwrap();
        let latest = bundle(
            r#"{"key": {"kid": "https://h/keys/k/v3", "kty": "RSA-HSM", "n": "AAAA"},
                "attributes": {"enabled": true, "created": 300, "recoveryLevel": "Recoverable"}}"#,
        );
        let items: Vec<KeyItem> = serde_json::from_str(
            r#"[{"kid": "https://h/keys/k/v3", "attributes": {"enabled": true, "created": 300}},
                {"kid": "https://h/keys/k/v1", "attributes": {"enabled": true, "created": 100}},
                {"kid": "https://h/keys/k/v2", "attributes": {"enabled": true, "created": 200, "exp": 1000}},
                {"kid": "https://h/keys/k/v4", "attributes": {"enabled": true, "created": 300, "nbf": 3000}}]"#,
        )
        .unwrap();
        let p = latest.properties("kv", "k", &items, now).unwrap();
        let order: Vec<(&str, bool)> = p
            .versions
            .iter()
            .map(|v| (v.version.as_str(), v.enabled))
            .collect();
        assert_eq!(
            order,
            [("v1", true), ("v2", false), ("v4", false), ("v3", true)]
        );
        assert_eq!(
            (p.version.as_str(), p.kty, p.size, p.enabled),
            ("v3", KeyType::Rsa, 24, true)
        );
        assert_eq!(p.created.timestamp(), 100);
        let vp = latest.vault_properties("kv", "https://h/vaults/kv", "local", "t");
        assert!(vp.is_recoverable());
        for (level, soft, purge) in [
            ("Recoverable+Purgeable", true, false),
            ("Purgeable", false, false),
            ("CustomizedRecoverable+ProtectedSubscription", true, true),
        ] {
            let b = bundle(&format!(
                r#"{{"key": {{"kid": "https://h/keys/k/v", "kty": "oct"}},
                    "attributes": {{"recoveryLevel": "{level}"}}}}"#
            ));
            let vp = b.vault_properties("kv", "u", "r", "t");
            assert_eq!(
                (vp.soft_delete, vp.purge_protection),
                (soft, purge),
                "{level}"
            );
        }
        let ec = bundle(r#"{"key": {"kid": "https://h/keys/k/v", "kty": "EC"}}"#);
        assert!(ec.properties("kv", "k", &[], now).is_none());
    }

    #[test]
    fn errors_give_their_innermost_code() {
        let r = refusal(
            br#"{"error": {"code": "Forbidden", "message": "Operation unwrapKey is not allowed on a disabled key.",
                 "innerError": {"code": "KeyDisabled"}}}"#,
        );
        assert_eq!(
            (r.code.as_str(), r.inner_code.as_deref()),
            ("Forbidden", Some("KeyDisabled"))
        );
        assert_eq!(
            error_message(br#"{"error": {"code": "KeyNotFound", "message": "m"}}"#),
            "KeyNotFound: m"
        );
        assert_eq!(
            error_message(b"<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
        assert_eq!(error_message(b""), "no error body");
    }
}
