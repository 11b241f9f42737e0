//! The local vault's files: damage is reported (never read as an empty vault), and concurrent
//! writers through separate handles (as separate processes would be) never lose an update.

use std::fs;
use std::sync::Arc;

use crate::common::{Fixture, perms};
use logvault_crypto::Aek;
use logvault_kms::{KeyRef, KeyType, KeyVault, VaultErrorKind};

#[tokio::test]
async fn a_damaged_vault_file_is_reported_and_left_alone() {
    let f = Fixture::new();
    f.recoverable_vault("contoso");
    let who = f.granted("contoso", "cluster-id");
    let key = f.key("contoso", "cmk", KeyType::Oct, None);
    let path = f.dir.path().join("vault/vaults/contoso/vault.json");
    let good = fs::read(&path).unwrap();

    let mut flipped = good.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x04;
    let truncated = good[..good.len() * 2 / 3].to_vec();
    for (bad, why) in [(flipped, "checksum"), (truncated, "truncated")] {
        fs::write(&path, &bad).unwrap();
        let errors = [
            f.vault.vault_info("contoso").map(|_| ()).unwrap_err(),
            f.vault
                .rotate_key("contoso", "cmk")
                .map(|_| ())
                .unwrap_err(),
            f.vault.list_vaults().map(|_| ()).unwrap_err(),
            f.vault
                .wrap_key(&who, &key, &Aek::generate().unwrap().to_secret())
                .await
                .map(|_| ())
                .unwrap_err(),
        ];
        for err in errors {
            assert_eq!(err.kind(), VaultErrorKind::Internal, "{err}");
            assert!(!err.is_revocation());
            let text = err.to_string();
            assert!(text.contains("vaults/contoso/vault.json"), "{text}");
            assert!(text.contains(why), "{text}");
        }
        assert_eq!(
            fs::read(&path).unwrap(),
            bad,
            "a damaged file is never rewritten"
        );
    }
    // Creating the vault again does not paper over the damage.
    assert_eq!(
        f.vault
            .create_vault("contoso", &Default::default())
            .unwrap_err()
            .kind(),
        VaultErrorKind::Conflict
    );
    fs::write(&path, &good).unwrap();
    assert_eq!(f.vault.list_keys("contoso").unwrap().len(), 1);

    // A damaged audit log is reported with its line.
    let audit = f.dir.path().join("vault/vaults/contoso/audit.jsonl");
    fs::write(&audit, b"{\"time\":").unwrap();
    let err = f.vault.audit_log("contoso").unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Internal);
    assert!(err.to_string().contains("line 1"), "{err}");

    // A damaged master key stops the vault from opening instead of making a new one.
    let master = f.dir.path().join("vault/master.key");
    let mut m = fs::read(&master).unwrap();
    m[8] ^= 1;
    fs::write(&master, &m).unwrap();
    let err =
        logvault_kms::LocalVault::open(&f.dir.path().join("vault"), Arc::new(f.clock.clone()))
            .unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Internal);
    assert!(err.to_string().contains("master.key"), "{err}");
}

#[test]
fn concurrent_writers_never_lose_an_update() {
    let f = Fixture::new();
    f.recoverable_vault("contoso");
    f.key("contoso", "shared", KeyType::Oct, None);
    const THREADS: usize = 4;
    const EACH: usize = 8;
    let principals: Vec<_> = (0..THREADS)
        .map(|t| f.principal(&format!("writer-{t}")))
        .collect();
    std::thread::scope(|s| {
        for (t, principal) in principals.iter().enumerate() {
            // Each thread has its own handle, hence its own lock file descriptions, as a
            // separate process would.
            let vault = f.reopen();
            s.spawn(move || {
                for i in 0..EACH {
                    vault
                        .create_key("contoso", &format!("k-{t}-{i}"), KeyType::Oct, None)
                        .unwrap();
                    vault.rotate_key("contoso", "shared").unwrap();
                }
                vault
                    .set_policy("contoso", principal, &perms(&["get", "wrapKey"]))
                    .unwrap();
            });
        }
    });
    let keys = f.vault.list_keys("contoso").unwrap();
    assert_eq!(keys.len(), 1 + THREADS * EACH);
    let shared = f.vault.key_properties("contoso", "shared").unwrap();
    assert_eq!(shared.versions.len(), 1 + THREADS * EACH);
    let info = f.vault.vault_info("contoso").unwrap();
    assert_eq!(info.access_policies.len(), THREADS);
}

#[tokio::test]
async fn concurrent_calls_are_each_audited_on_a_whole_line() {
    let f = Fixture::new();
    f.recoverable_vault("contoso");
    let who = f.granted("contoso", "cluster-id");
    f.key("contoso", "cmk", KeyType::Oct, None);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let vault = f.reopen();
        let who = who.clone();
        tasks.push(tokio::spawn(async move {
            let key = KeyRef::latest("contoso", "cmk");
            for _ in 0..10 {
                let w = vault
                    .wrap_key(&who, &key, &Aek::generate().unwrap().to_secret())
                    .await
                    .unwrap();
                vault.unwrap_key(&who, &w).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(f.vault.audit_log("contoso").unwrap().len(), 80);
}

/// Rewrites vault `contoso`'s file with `edit` applied to its body and a correct header, as a
/// hand edit that recomputes the checksum would.
#[allow(clippy::unwrap_used)] // test support
fn hand_edit(dir: &std::path::Path, edit: impl FnOnce(&mut serde_json::Value)) {
    use sha2::{Digest, Sha256};
    let path = dir.join("vaults").join("contoso").join("vault.json");
    let text = std::fs::read(&path).unwrap();
    let nl = text.iter().position(|b| *b == b'\n').unwrap();
    let mut body: serde_json::Value = serde_json::from_slice(&text[nl + 1..]).unwrap();
    edit(&mut body);
    let body = serde_json::to_vec_pretty(&body).unwrap();
    let header = serde_json::json!({
        "format": "logvault.vault", "version": 1, "bytes": body.len(),
        "sha256": hex::encode(Sha256::digest(&body)),
    });
    let mut out = header.to_string().into_bytes();
    out.push(b'\n');
    out.extend_from_slice(&body);
    std::fs::write(&path, out).unwrap();
}

/// Regression (found by fuzzing the vault's files): a retention period out of its range, or a
/// deletion time near the end of time, made the purge date overflow, and every read of the
/// vault panicked instead of reporting the damaged file.
#[test]
fn a_vault_file_whose_purge_dates_overflow_is_an_error_not_a_panic() {
    let fx = Fixture::new();
    let vault = &fx.vault;
    let dir = fx.vault.dir();
    vault
        .create_vault(
            "contoso",
            &logvault_kms::local::CreateVaultOptions::default(),
        )
        .unwrap();
    vault
        .create_key("contoso", "old", KeyType::Oct, None)
        .unwrap();
    vault.delete_key("contoso", "old").unwrap();
    let file = dir.join("vaults").join("contoso").join("vault.json");
    let original = fs::read(&file).unwrap();
    for (field, edit) in [
        (
            "softDeleteRetentionDays",
            Box::new(|v: &mut serde_json::Value| v["softDeleteRetentionDays"] = u32::MAX.into())
                as Box<dyn FnOnce(&mut serde_json::Value)>,
        ),
        (
            "deleted",
            Box::new(|v: &mut serde_json::Value| {
                v["keys"]["old"]["deleted"] = "+262142-12-31T23:59:59Z".into()
            }),
        ),
    ] {
        fs::write(&file, &original).unwrap();
        hand_edit(dir, edit);
        let err = vault.list_keys("contoso").unwrap_err();
        assert_eq!(err.kind(), VaultErrorKind::Internal, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("vault.json")
                && text.contains(if field == "deleted" { "old" } else { field }),
            "{text}"
        );
    }
}
