//! Outages, soft delete and purge (manual and on the clock), the audit log, and the service key.

use crate::common::{Fixture, perms};
use chrono::Duration;
use logvault_crypto::Aek;
use logvault_kms::local::{
    AuditOperation, AuditOutcome, CreateVaultOptions, OutageMode, SERVICE_KEY, SERVICE_PRINCIPAL,
    SERVICE_VAULT, UpdateVaultOptions,
};
use logvault_kms::{KeyRef, KeyType, KeyVault, PrincipalId, VaultErrorKind};

#[tokio::test]
async fn every_outage_mode_is_transient_seen_by_other_handles_and_none_restores() {
    let f = Fixture::new();
    f.recoverable_vault("contoso");
    let who = f.granted("contoso", "cluster-id");
    let key = f.key("contoso", "cmk", KeyType::Oct, None);
    let aek = Aek::generate().unwrap();
    let wrapped = f
        .vault
        .wrap_key(&who, &key, &aek.to_secret())
        .await
        .unwrap();
    // Another handle on the same directory, as another process would have.
    let other = f.reopen();
    let mut messages = Vec::new();
    for (mode, text) in [
        (OutageMode::Timeout, "timed out"),
        (
            OutageMode::Refused,
            "connection to contoso.vault.local:443 refused",
        ),
        (OutageMode::Dns, "name resolution failure"),
    ] {
        f.vault.set_outage("contoso", mode).unwrap();
        let errs = [
            other
                .unwrap_key(&who, &wrapped)
                .await
                .map(|_| ())
                .unwrap_err(),
            other
                .wrap_key(&who, &key, &aek.to_secret())
                .await
                .map(|_| ())
                .unwrap_err(),
            other.get_key(&who, &key).await.map(|_| ()).unwrap_err(),
            other
                .vault_properties(&who, &key)
                .await
                .map(|_| ())
                .unwrap_err(),
        ];
        for err in errs {
            assert_eq!(err.kind(), VaultErrorKind::Transient, "{mode}: {err}");
            assert!(!err.is_revocation());
            assert!(err.to_string().contains(text), "{mode}: {err}");
        }
        messages.push(text);
        assert_eq!(other.vault_info("contoso").unwrap().outage, mode);
    }
    // An outage wins over a revocation: the vault cannot even say no.
    f.vault
        .set_key_enabled("contoso", "cmk", None, false)
        .unwrap();
    assert_eq!(
        other
            .unwrap_key(&who, &wrapped)
            .await
            .map(|_| ())
            .unwrap_err()
            .kind(),
        VaultErrorKind::Transient
    );
    f.vault
        .set_key_enabled("contoso", "cmk", None, true)
        .unwrap();
    f.vault.set_outage("contoso", OutageMode::None).unwrap();
    let back = other.unwrap_key(&who, &wrapped).await.unwrap();
    assert_eq!(
        Aek::from_secret(&back).unwrap().fingerprint(),
        aek.fingerprint()
    );
    assert_eq!(
        f.vault
            .set_outage("nokv", OutageMode::Dns)
            .unwrap_err()
            .kind(),
        VaultErrorKind::NotFound
    );
}

#[tokio::test]
async fn purge_is_refused_under_purge_protection_and_allowed_without() {
    let f = Fixture::new();
    f.recoverable_vault("protected");
    f.vault
        .create_vault("unprotected", &CreateVaultOptions::default())
        .unwrap();
    for vault in ["protected", "unprotected"] {
        f.key(vault, "k", KeyType::Oct, None);
        // Purging a key that is not deleted is refused too.
        assert_eq!(
            f.vault.purge_key(vault, "k").unwrap_err().kind(),
            VaultErrorKind::NotFound
        );
        let deleted = f.vault.delete_key(vault, "k").unwrap();
        assert_eq!(deleted.deleted, Some(crate::common::t0()));
        assert_eq!(
            deleted.scheduled_purge_date,
            Some(crate::common::t0() + Duration::days(14))
        );
        // The name stays taken while the key is deleted.
        let err = f
            .vault
            .create_key(vault, "k", KeyType::Oct, None)
            .unwrap_err();
        assert_eq!(err.kind(), VaultErrorKind::Conflict);
        assert!(err.to_string().contains("recover or purge"), "{err}");
    }
    let err = f.vault.purge_key("protected", "k").unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Conflict);
    assert!(err.to_string().contains("purge protection"), "{err}");
    assert!(
        f.vault
            .key_properties("protected", "k")
            .unwrap()
            .deleted
            .is_some()
    );

    f.vault.purge_key("unprotected", "k").unwrap();
    assert_eq!(
        f.vault
            .key_properties("unprotected", "k")
            .unwrap_err()
            .kind(),
        VaultErrorKind::NotFound
    );
    assert_eq!(
        f.vault.recover_key("unprotected", "k").unwrap_err().kind(),
        VaultErrorKind::NotFound
    );
    // The name is free again.
    f.vault
        .create_key("unprotected", "k", KeyType::Oct, None)
        .unwrap();

    // Without soft delete, delete is for good.
    f.vault
        .create_vault(
            "nosoft",
            &CreateVaultOptions {
                soft_delete: false,
                ..CreateVaultOptions::default()
            },
        )
        .unwrap();
    f.key("nosoft", "k", KeyType::Oct, None);
    f.vault.delete_key("nosoft", "k").unwrap();
    assert_eq!(
        f.vault.recover_key("nosoft", "k").unwrap_err().kind(),
        VaultErrorKind::NotFound
    );
    // Protection can be turned on, never off.
    let info = f
        .vault
        .update_vault(
            "unprotected",
            &UpdateVaultOptions {
                purge_protection: Some(true),
                ..UpdateVaultOptions::default()
            },
        )
        .unwrap();
    assert!(info.recoverable);
    let off = UpdateVaultOptions {
        purge_protection: Some(false),
        ..UpdateVaultOptions::default()
    };
    assert_eq!(
        f.vault
            .update_vault("unprotected", &off)
            .unwrap_err()
            .kind(),
        VaultErrorKind::BadRequest
    );
}

#[tokio::test]
async fn deleted_keys_are_purged_when_the_retention_period_ends() {
    let f = Fixture::new();
    f.recoverable_vault("contoso");
    let who = f.granted("contoso", "cluster-id");
    let key = f.key("contoso", "cmk", KeyType::Oct, None);
    let wrapped = f
        .vault
        .wrap_key(&who, &key, &Aek::generate().unwrap().to_secret())
        .await
        .unwrap();
    f.vault.delete_key("contoso", "cmk").unwrap();

    f.clock.advance(Duration::days(14) - Duration::seconds(1));
    assert_eq!(
        f.vault
            .unwrap_key(&who, &wrapped)
            .await
            .map(|_| ())
            .unwrap_err()
            .kind(),
        VaultErrorKind::Deleted
    );
    assert!(f.vault.list_keys("contoso").unwrap()[0].deleted.is_some());

    f.clock.advance(Duration::seconds(1));
    assert_eq!(
        f.vault
            .unwrap_key(&who, &wrapped)
            .await
            .map(|_| ())
            .unwrap_err()
            .kind(),
        VaultErrorKind::NotFound
    );
    assert!(f.vault.list_keys("contoso").unwrap().is_empty());
    assert_eq!(
        f.vault.recover_key("contoso", "cmk").unwrap_err().kind(),
        VaultErrorKind::NotFound
    );
    // The purge is persisted by the next write, and the name is free again.
    f.vault
        .create_key("contoso", "cmk", KeyType::Oct, None)
        .unwrap();
    assert_eq!(
        f.reopen().list_keys("contoso").unwrap()[0].versions.len(),
        1
    );

    // A vault with a longer retention keeps its deleted keys longer.
    f.vault
        .create_vault(
            "longkv",
            &CreateVaultOptions {
                purge_protection: true,
                retention_days: Some(90),
                ..CreateVaultOptions::default()
            },
        )
        .unwrap();
    f.key("longkv", "k", KeyType::Oct, None);
    f.vault.delete_key("longkv", "k").unwrap();
    f.clock.advance(Duration::days(89));
    f.vault.recover_key("longkv", "k").unwrap();
}

#[tokio::test]
async fn the_audit_log_records_every_call_with_its_outcome() {
    let f = Fixture::new();
    f.recoverable_vault("contoso");
    let who = f.granted("contoso", "cluster-id");
    let stranger = f.principal("stranger");
    let key = f.key("contoso", "cmk", KeyType::Oct, None);
    let v1 = f.vault.key_properties("contoso", "cmk").unwrap().version;
    let aek = Aek::generate().unwrap().to_secret();

    f.vault.get_key(&who, &key).await.unwrap();
    f.clock.advance(Duration::seconds(10));
    let w = f.vault.wrap_key(&who, &key, &aek).await.unwrap();
    f.vault.unwrap_key(&who, &w).await.unwrap();
    assert!(f.vault.unwrap_key(&stranger, &w).await.is_err());
    f.vault
        .set_key_enabled("contoso", "cmk", None, false)
        .unwrap();
    assert!(f.vault.wrap_key(&who, &key, &aek).await.is_err());
    f.vault.set_outage("contoso", OutageMode::Dns).unwrap();
    assert!(f.vault.vault_properties(&who, &key).await.is_err());
    // Administrative operations are not trait calls and are not in this log.
    f.vault.set_outage("contoso", OutageMode::None).unwrap();

    let log = f.vault.audit_log("contoso").unwrap();
    let summary: Vec<_> = log
        .iter()
        .map(|e| (e.operation, e.outcome, e.error_kind))
        .collect();
    assert_eq!(
        summary,
        [
            (AuditOperation::Get, AuditOutcome::Success, None),
            (AuditOperation::WrapKey, AuditOutcome::Success, None),
            (AuditOperation::UnwrapKey, AuditOutcome::Success, None),
            (
                AuditOperation::UnwrapKey,
                AuditOutcome::Failure,
                Some(VaultErrorKind::Forbidden)
            ),
            (
                AuditOperation::WrapKey,
                AuditOutcome::Failure,
                Some(VaultErrorKind::Disabled)
            ),
            (
                AuditOperation::GetVault,
                AuditOutcome::Failure,
                Some(VaultErrorKind::Transient)
            ),
        ]
    );
    assert_eq!(log[0].time, crate::common::t0());
    assert_eq!(log[1].time, crate::common::t0() + Duration::seconds(10));
    assert_eq!(log[1].version, v1, "the version used is recorded");
    assert_eq!(
        log[4].version, "latest",
        "a failed call records the version asked for"
    );
    assert_eq!(log[2].principal, who.0);
    assert_eq!(log[3].principal, stranger.0);
    assert!(log.iter().all(|e| e.vault == "contoso" && e.key == "cmk"));
    assert!(log[3].error.as_deref().unwrap_or("").contains("unwrapKey"));
}

#[tokio::test]
async fn the_service_key_is_created_once_usable_and_protected() {
    let f = Fixture::new();
    let service = f.vault.ensure_service_key().unwrap();
    assert_eq!(service.key, KeyRef::latest(SERVICE_VAULT, SERVICE_KEY));
    assert_eq!(service.principal, PrincipalId(SERVICE_PRINCIPAL.into()));
    let again = f.reopen().ensure_service_key().unwrap();
    assert_eq!(again, service);
    let props = f.vault.key_properties(SERVICE_VAULT, SERVICE_KEY).unwrap();
    assert_eq!(
        props.versions.len(),
        1,
        "idempotent: no second key or version"
    );
    assert!(f.vault.vault_info(SERVICE_VAULT).unwrap().recoverable);

    let aek = Aek::generate().unwrap();
    let w = f
        .vault
        .wrap_key(&service.principal, &service.key, &aek.to_secret())
        .await
        .unwrap();
    let back = f.vault.unwrap_key(&service.principal, &w).await.unwrap();
    assert_eq!(
        Aek::from_secret(&back).unwrap().fingerprint(),
        aek.fingerprint()
    );

    let refusals = [
        f.vault.delete_key(SERVICE_VAULT, SERVICE_KEY).map(|_| ()),
        f.vault
            .set_key_enabled(SERVICE_VAULT, SERVICE_KEY, None, false)
            .map(|_| ()),
        f.vault.purge_key(SERVICE_VAULT, SERVICE_KEY).map(|_| ()),
        f.vault
            .create_vault(SERVICE_VAULT, &CreateVaultOptions::default())
            .map(|_| ()),
        f.vault
            .delete_policy(SERVICE_VAULT, &service.principal)
            .map(|_| ()),
        f.vault
            .set_policy(SERVICE_VAULT, &service.principal, &perms(&["get"]))
            .map(|_| ()),
    ];
    for r in refusals {
        let err = r.unwrap_err();
        assert_eq!(err.kind(), VaultErrorKind::BadRequest, "{err}");
        assert!(err.to_string().contains("logvault"), "{err}");
    }
    // Rotation is allowed: the service rotates its own key.
    f.vault.rotate_key(SERVICE_VAULT, SERVICE_KEY).unwrap();
    assert!(f.vault.unwrap_key(&service.principal, &w).await.is_ok());
    // The service principal holds nothing in other vaults.
    f.recoverable_vault("contoso");
    let key = f.key("contoso", "cmk", KeyType::Oct, None);
    assert_eq!(
        f.vault
            .get_key(&service.principal, &key)
            .await
            .unwrap_err()
            .kind(),
        VaultErrorKind::Forbidden
    );
}

#[tokio::test]
async fn state_survives_a_restart() {
    let f = Fixture::new();
    f.recoverable_vault("contoso");
    let who = f.granted("contoso", "cluster-id");
    let key = f.key("contoso", "cmk", KeyType::Rsa, Some(2048));
    f.vault.rotate_key("contoso", "cmk").unwrap();
    let aek = Aek::generate().unwrap();
    let w = f
        .vault
        .wrap_key(&who, &key, &aek.to_secret())
        .await
        .unwrap();
    let before = f.vault.vault_info("contoso").unwrap();
    drop(f.vault.clone());

    let reopened = f.reopen();
    assert_eq!(reopened.vault_info("contoso").unwrap(), before);
    assert_eq!(
        reopened
            .key_properties("contoso", "cmk")
            .unwrap()
            .versions
            .len(),
        2
    );
    let back = reopened.unwrap_key(&who, &w).await.unwrap();
    assert_eq!(
        Aek::from_secret(&back).unwrap().fingerprint(),
        aek.fingerprint()
    );
    assert_eq!(reopened.audit_log("contoso").unwrap().len(), 2);
    assert_eq!(reopened.list_vaults().unwrap().len(), 1);
}
