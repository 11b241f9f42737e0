//! The JSON of the Key Vault keys API: key bundles (with the RSA public key, so that the SDK
//! wraps locally), key items of lists, deleted key bundles.

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use logvault::kms::local::{RsaPublicKey, VaultInfo};
use logvault::kms::{KeyProperties, KeyType, KeyVersionProperties};
use serde_json::{Value, json};

/// base64url as Key Vault writes it (no padding).
pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url as clients send it, padded or not.
pub(crate) fn from_b64url(text: &str) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(text.trim()).ok()
}

fn epoch(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

/// The recovery level Key Vault reports for a vault's keys.
fn recovery(info: &VaultInfo) -> Value {
    let level = match (
        info.properties.soft_delete,
        info.properties.purge_protection,
    ) {
        (true, true) => "Recoverable",
        (true, false) => "Recoverable+Purgeable",
        _ => "Purgeable",
    };
    let mut out = json!({ "recoveryLevel": level });
    if info.properties.soft_delete {
        out["recoverableDays"] = info.soft_delete_retention_days.into();
    }
    out
}

/// The key's id (`kid`): `BASE/keys/NAME[/VERSION]`, at the server's root (see the module
/// documentation of `crate::keyvault`).
pub(crate) fn kid(base: &str, name: &str, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("{base}/keys/{name}/{v}"),
        None => format!("{base}/keys/{name}"),
    }
}

fn attributes(info: &VaultInfo, key: &KeyProperties, ver: &KeyVersionProperties) -> Value {
    let mut attributes = json!({
        "enabled": key.enabled && ver.enabled,
        "created": epoch(ver.created),
        "updated": epoch(ver.created),
        "exportable": false,
    });
    if let (Some(obj), Value::Object(r)) = (attributes.as_object_mut(), recovery(info)) {
        obj.extend(r);
    }
    attributes
}

/// The version `version` (or the latest) of `key`.
pub(crate) fn version<'a>(
    key: &'a KeyProperties,
    version: Option<&str>,
) -> Option<&'a KeyVersionProperties> {
    match version {
        None => key.versions.last(),
        Some(v) => key.versions.iter().find(|k| k.version == v),
    }
}

/// A key bundle: `{"key": JWK, "attributes", "tags"}`.
pub(crate) fn key_bundle(
    base: &str,
    info: &VaultInfo,
    key: &KeyProperties,
    ver: &KeyVersionProperties,
    public: Option<&RsaPublicKey>,
) -> Value {
    let mut jwk = json!({
        "kid": kid(base, &key.name, Some(&ver.version)),
        "kty": match key.kty { KeyType::Rsa => "RSA", KeyType::Oct => "oct" },
        "key_ops": match key.kty {
            KeyType::Rsa => json!(["encrypt", "decrypt", "wrapKey", "unwrapKey"]),
            KeyType::Oct => json!(["wrapKey", "unwrapKey"]),
        },
    });
    if let Some(p) = public {
        jwk["n"] = b64url(&p.n).into();
        jwk["e"] = b64url(&p.e).into();
    }
    json!({
        "key": jwk,
        "attributes": attributes(info, key, ver),
        "tags": {},
    })
}

/// A deleted key bundle: the bundle plus when it was deleted and will be purged.
pub(crate) fn deleted_bundle(base: &str, mut bundle: Value, key: &KeyProperties) -> Value {
    bundle["recoveryId"] = format!("{base}/deletedkeys/{}", key.name).into();
    if let Some(d) = key.deleted {
        bundle["deletedDate"] = epoch(d).into();
    }
    if let Some(p) = key.scheduled_purge_date {
        bundle["scheduledPurgeDate"] = epoch(p).into();
    }
    bundle
}

/// A key item of a list: its id without a version (or with one, in a list of versions).
pub(crate) fn key_item(
    base: &str,
    info: &VaultInfo,
    key: &KeyProperties,
    ver: &KeyVersionProperties,
    with_version: bool,
) -> Value {
    let mut item = json!({
        "kid": kid(base, &key.name, with_version.then_some(ver.version.as_str())),
        "attributes": attributes(info, key, ver),
        "tags": {},
    });
    if key.deleted.is_some() {
        item = deleted_bundle(base, item, key);
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_padded_or_not() {
        let bytes = [0xfbu8, 0xff, 0x01];
        assert_eq!(b64url(&bytes), "-_8B");
        assert_eq!(from_b64url("-_8B").as_deref(), Some(&bytes[..]));
        assert_eq!(from_b64url("AQ==").as_deref(), Some(&[1u8][..]));
        assert_eq!(from_b64url("AQ").as_deref(), Some(&[1u8][..]));
        assert_eq!(from_b64url("A+/="), None);
        assert_eq!(kid("https://h:1", "k", Some("v1")), "https://h:1/keys/k/v1");
    }
}
