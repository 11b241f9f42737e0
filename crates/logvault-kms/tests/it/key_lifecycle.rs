//! The local vault's keys through the `KeyVault` trait: round trips per key type and version,
//! and every way an unwrap is refused, each with its own kind.
#![allow(clippy::unwrap_used)]

use crate::common::{Fixture, perms};
use logvault_crypto::Aek;
use logvault_kms::local::{CRYPTO_SERVICE_ENCRYPTION_USER, CreateVaultOptions};
use logvault_kms::{KeyRef, KeyType, KeyVault, VaultErrorKind, WrappedKey};

/// Wraps a fresh AEK and checks that unwrapping gives it back.
async fn round_trip(
    f: &Fixture,
    who: &logvault_kms::PrincipalId,
    key: &KeyRef,
) -> (Aek, WrappedKey) {
    let aek = Aek::generate().unwrap();
    let wrapped = f.vault.wrap_key(who, key, &aek.to_secret()).await.unwrap();
    let back = Aek::from_secret(&f.vault.unwrap_key(who, &wrapped).await.unwrap()).unwrap();
    assert_eq!(back.fingerprint(), aek.fingerprint());
    (aek, wrapped)
}

#[tokio::test]
async fn each_key_type_wraps_with_v1_rotates_and_both_versions_unwrap() {
    let f = Fixture::new();
    f.recoverable_vault("contoso");
    let who = f.granted("contoso", "cluster-id");
    for (name, kty, size, alg, len) in [
        ("aes", KeyType::Oct, None, "A256GCM", 32 + 28),
        ("rsa2048", KeyType::Rsa, None, "RSA-OAEP-256", 256),
        ("rsa3072", KeyType::Rsa, Some(3072), "RSA-OAEP-256", 384),
        ("rsa4096", KeyType::Rsa, Some(4096), "RSA-OAEP-256", 512),
    ] {
        let key = f.key("contoso", name, kty, size);
        let v1 = f.vault.key_properties("contoso", name).unwrap().version;
        let (aek1, w1) = round_trip(&f, &who, &key).await;
        assert_eq!((w1.version.as_str(), w1.alg.as_str()), (v1.as_str(), alg));
        assert_eq!(w1.value.len(), len, "{name}");

        let rotated = f.vault.rotate_key("contoso", name).unwrap();
        let v2 = rotated.version.clone();
        assert_ne!(v1, v2);
        assert_eq!(rotated.versions.len(), 2);
        assert_eq!(rotated.versions[0].version, v1, "oldest first");
        assert!(rotated.kid.ends_with(&format!("/keys/{name}/{v2}")));

        let (_, w2) = round_trip(&f, &who, &key).await;
        assert_eq!(w2.version, v2, "wrap uses the latest version");
        // The blob wrapped with v1 still unwraps, with v1.
        let back = f.vault.unwrap_key(&who, &w1).await.unwrap();
        assert_eq!(
            Aek::from_secret(&back).unwrap().fingerprint(),
            aek1.fingerprint()
        );
        // An explicit version wraps with that version.
        let pinned = KeyRef {
            version: Some(v1.clone()),
            ..key.clone()
        };
        let (_, w3) = round_trip(&f, &who, &pinned).await;
        assert_eq!(w3.version, v1);
        // A blob survives JSON, as the store persists it.
        let json = serde_json::to_string(&w1).unwrap();
        let parsed: WrappedKey = serde_json::from_str(&json).unwrap();
        assert!(f.vault.unwrap_key(&who, &parsed).await.is_ok());
    }
}

#[tokio::test]
async fn unwrap_refusals_each_have_their_kind_and_lift_when_undone() {
    let f = Fixture::new();
    f.recoverable_vault("contoso");
    let who = f.granted("contoso", "by-policy");
    let key = f.key("contoso", "cmk", KeyType::Oct, None);
    let (_, w1) = round_trip(&f, &who, &key).await;
    let v1 = w1.version.clone();
    f.vault.rotate_key("contoso", "cmk").unwrap();
    let kind = |r: Result<logvault_crypto::SecretBytes, logvault_kms::VaultError>| {
        r.map(|_| ()).unwrap_err().kind()
    };

    // A disabled key: every version refused.
    f.vault
        .set_key_enabled("contoso", "cmk", None, false)
        .unwrap();
    let err = f.vault.unwrap_key(&who, &w1).await.unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Disabled);
    assert!(err.is_revocation());
    assert!(
        err.to_string()
            .ends_with("key cmk in vault contoso is disabled"),
        "{err}"
    );
    f.vault
        .set_key_enabled("contoso", "cmk", None, true)
        .unwrap();
    assert!(f.vault.unwrap_key(&who, &w1).await.is_ok());

    // A disabled version: that version refused, the latest still wraps.
    f.vault
        .set_key_enabled("contoso", "cmk", Some(&v1), false)
        .unwrap();
    let err = f.vault.unwrap_key(&who, &w1).await.unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Disabled);
    assert!(err.to_string().contains(&v1), "{err}");
    round_trip(&f, &who, &key).await;
    f.vault
        .set_key_enabled("contoso", "cmk", Some(&v1), true)
        .unwrap();

    // A deleted key.
    f.vault.delete_key("contoso", "cmk").unwrap();
    let err = f.vault.unwrap_key(&who, &w1).await.unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Deleted);
    assert!(
        err.to_string().contains("recoverable until 2026-03-15"),
        "{err}"
    );
    f.vault.recover_key("contoso", "cmk").unwrap();
    assert!(
        f.vault.unwrap_key(&who, &w1).await.is_ok(),
        "recovered key works again"
    );

    // A removed access policy.
    f.vault.delete_policy("contoso", &who).unwrap();
    let err = f.vault.unwrap_key(&who, &w1).await.unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Forbidden);
    assert!(err.to_string().contains("unwrapKey"), "{err}");

    // A removed role.
    let by_role = f.principal("by-role");
    f.vault
        .assign_role("contoso", &by_role, CRYPTO_SERVICE_ENCRYPTION_USER)
        .unwrap();
    assert!(f.vault.unwrap_key(&by_role, &w1).await.is_ok());
    assert!(f.vault.get_key(&by_role, &key).await.is_ok());
    f.vault
        .delete_role_assignment("contoso", &by_role, CRYPTO_SERVICE_ENCRYPTION_USER)
        .unwrap();
    assert_eq!(
        kind(f.vault.unwrap_key(&by_role, &w1).await),
        VaultErrorKind::Forbidden
    );

    // A cluster's system-assigned identity, deleted with its cluster: its policy stays, but it
    // can no longer authenticate.
    let cluster_id = "/subscriptions/local/resourceGroups/local/providers/Microsoft.OperationalInsights/clusters/c1";
    let system = f
        .vault
        .identities()
        .create_system_assigned(cluster_id, "local", "local")
        .unwrap()
        .principal_id;
    f.vault
        .set_policy("contoso", &system, &perms(&["get", "wrapKey", "unwrapKey"]))
        .unwrap();
    assert!(f.vault.unwrap_key(&system, &w1).await.is_ok());
    f.vault
        .identities()
        .delete_system_assigned(cluster_id)
        .unwrap();
    let err = f
        .vault
        .unwrap_key(&system, &w1)
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Forbidden);
    assert!(err.to_string().contains("not a known identity"), "{err}");

    // A principal that never had permission, and one with only wrapKey.
    let stranger = f.principal("stranger");
    assert_eq!(
        kind(f.vault.unwrap_key(&stranger, &w1).await),
        VaultErrorKind::Forbidden
    );
    let wrap_only = f.principal("wrap-only");
    f.vault
        .set_policy("contoso", &wrap_only, &perms(&["wrapKey"]))
        .unwrap();
    let aek = Aek::generate().unwrap();
    let w = f
        .vault
        .wrap_key(&wrap_only, &key, &aek.to_secret())
        .await
        .unwrap();
    assert_eq!(
        kind(f.vault.unwrap_key(&wrap_only, &w).await),
        VaultErrorKind::Forbidden
    );
    assert_eq!(
        f.vault.get_key(&wrap_only, &key).await.unwrap_err().kind(),
        VaultErrorKind::Forbidden
    );
}

#[tokio::test]
async fn get_and_vault_properties_need_get_and_report_state() {
    let f = Fixture::new();
    f.vault
        .create_vault("plainkv", &CreateVaultOptions::default())
        .unwrap();
    let who = f.principal("getter");
    f.vault
        .set_policy("plainkv", &who, &perms(&["get"]))
        .unwrap();
    let key = f.key("plainkv", "k1", KeyType::Oct, None);
    let props = f.vault.vault_properties(&who, &key).await.unwrap();
    assert_eq!(props.uri, "https://plainkv.vault.local");
    assert!(props.soft_delete && !props.purge_protection && !props.is_recoverable());
    // A disabled key can still be read (and says it is disabled), but not used.
    f.vault
        .set_key_enabled("plainkv", "k1", None, false)
        .unwrap();
    let got = f.vault.get_key(&who, &key).await.unwrap();
    assert!(!got.enabled);
    assert_eq!(got.kty, KeyType::Oct);
    let missing_version = KeyRef {
        version: Some("nope".into()),
        ..key.clone()
    };
    assert_eq!(
        f.vault
            .get_key(&who, &missing_version)
            .await
            .unwrap_err()
            .kind(),
        VaultErrorKind::NotFound
    );
    let stranger = f.principal("stranger");
    assert_eq!(
        f.vault
            .vault_properties(&stranger, &key)
            .await
            .unwrap_err()
            .kind(),
        VaultErrorKind::Forbidden
    );
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let f = Fixture::new();
    f.recoverable_vault("contoso");
    let who = f.granted("contoso", "user1");
    let oct = f.key("contoso", "aes", KeyType::Oct, None);
    let rsa = f.key("contoso", "rsa", KeyType::Rsa, None);
    let aek = Aek::generate().unwrap().to_secret();
    let check = |err: logvault_kms::VaultError, kind: VaultErrorKind, text: &str| {
        assert_eq!(err.kind(), kind, "{err}");
        assert!(err.to_string().contains(text), "{err} lacks {text:?}");
    };

    let unknown_vault = KeyRef::latest("nokv", "aes");
    check(
        f.vault
            .wrap_key(&who, &unknown_vault, &aek)
            .await
            .unwrap_err(),
        VaultErrorKind::NotFound,
        "vault nokv not found",
    );
    check(
        f.vault
            .wrap_key(&who, &KeyRef::latest("contoso", "nokey"), &aek)
            .await
            .unwrap_err(),
        VaultErrorKind::NotFound,
        "key nokey",
    );
    check(
        f.vault
            .wrap_key(&who, &KeyRef::latest("../etc", "aes"), &aek)
            .await
            .unwrap_err(),
        VaultErrorKind::BadRequest,
        "invalid vault name",
    );
    check(
        f.vault
            .create_key("contoso", "bad/name", KeyType::Oct, None)
            .unwrap_err(),
        VaultErrorKind::BadRequest,
        "invalid key name",
    );
    check(
        f.vault
            .create_key("contoso", "aes", KeyType::Oct, None)
            .unwrap_err(),
        VaultErrorKind::Conflict,
        "already exists",
    );
    check(
        f.vault
            .create_vault("contoso", &CreateVaultOptions::default())
            .unwrap_err(),
        VaultErrorKind::Conflict,
        "vault contoso already exists",
    );
    check(
        f.vault
            .create_key("contoso", "small", KeyType::Oct, Some(128))
            .unwrap_err(),
        VaultErrorKind::BadRequest,
        "256 bits",
    );
    check(
        f.vault
            .create_vault(
                "nopp",
                &CreateVaultOptions {
                    soft_delete: false,
                    purge_protection: true,
                    ..CreateVaultOptions::default()
                },
            )
            .unwrap_err(),
        VaultErrorKind::BadRequest,
        "purge protection needs soft delete",
    );
    // The wrong key type for a blob, a blob for a version that does not exist, a tampered blob.
    let mut w = f.vault.wrap_key(&who, &oct, &aek).await.unwrap();
    let mut as_rsa = w.clone();
    as_rsa.key = "rsa".into();
    as_rsa.version = f.vault.key_properties("contoso", "rsa").unwrap().version;
    check(
        f.vault.unwrap_key(&who, &as_rsa).await.unwrap_err(),
        VaultErrorKind::BadRequest,
        "unwraps RSA-OAEP-256, not A256GCM",
    );
    let mut other_version = w.clone();
    other_version.version = "0123".into();
    check(
        f.vault.unwrap_key(&who, &other_version).await.unwrap_err(),
        VaultErrorKind::NotFound,
        "version 0123",
    );
    w.value[20] ^= 1;
    check(
        f.vault.unwrap_key(&who, &w).await.unwrap_err(),
        VaultErrorKind::BadRequest,
        "does not authenticate",
    );
    let rsa_w = f.vault.wrap_key(&who, &rsa, &aek).await.unwrap();
    assert_eq!(rsa_w.alg, "RSA-OAEP-256");
    check(
        f.vault
            .set_key_enabled("contoso", "aes", Some("nope"), false)
            .unwrap_err(),
        VaultErrorKind::NotFound,
        "version nope",
    );
    check(
        f.vault
            .set_policy("contoso", &who, &perms(&["export"]))
            .unwrap_err(),
        VaultErrorKind::BadRequest,
        "unknown key permission",
    );
    check(
        f.vault
            .set_policy(
                "contoso",
                &logvault_kms::PrincipalId("ghost".into()),
                &perms(&["get"]),
            )
            .unwrap_err(),
        VaultErrorKind::BadRequest,
        "not a known identity",
    );
    check(
        f.vault.assign_role("contoso", &who, "Owner").unwrap_err(),
        VaultErrorKind::BadRequest,
        "unknown role",
    );
    f.vault
        .assign_role("contoso", &who, CRYPTO_SERVICE_ENCRYPTION_USER)
        .unwrap();
    check(
        f.vault
            .assign_role("contoso", &who, CRYPTO_SERVICE_ENCRYPTION_USER)
            .unwrap_err(),
        VaultErrorKind::Conflict,
        "already exists",
    );
}
