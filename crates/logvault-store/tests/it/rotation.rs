//! R-B7: rotation re-wraps the account key; no byte of any segment changes; all stays readable.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::Duration;
use logvault_kms::{KeyRef, PrincipalId, VaultErrorKind};
use logvault_store::{AccountId, KekBinding, SegmentLocation, StoreError};
use sha2::{Digest, Sha256};

use crate::common::*;

fn hashes(root: &std::path::Path) -> BTreeMap<PathBuf, String> {
    files(root)
        .into_iter()
        .map(|f| {
            let digest = Sha256::digest(std::fs::read(&f).unwrap());
            (f, hex::encode(digest))
        })
        .collect()
}

#[tokio::test]
async fn rotation_rewraps_without_touching_segments() {
    let h = Harness::new().await;
    let cluster = h.cluster_account(true).await;
    let mut locs: Vec<SegmentLocation> = Vec::new();
    for (i, account) in [AccountId::service(), cluster.clone(), cluster.clone()]
        .iter()
        .enumerate()
    {
        let (entry, m) = h
            .store
            .append(
                account,
                WS,
                TABLE,
                vec![log_batch(t0() + Duration::hours(i as i64), 1000, "r")],
            )
            .await
            .unwrap();
        locs.push(m.location(&entry));
    }
    let before = hashes(&h.storage());
    let segment_files = before
        .keys()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .count();
    assert_eq!(segment_files, 3);

    // A new version of the customer key (explicit version), then a different key altogether.
    let v2 = h.vault.add_version(CUSTOMER_VAULT, CUSTOMER_KEY);
    let record = h
        .store
        .rotate_account_key(&cluster, &customer_binding(Some(&v2)))
        .await
        .unwrap();
    assert_eq!(
        (record.seq, record.wrapped_by.version.as_deref()),
        (2, Some("2"))
    );
    h.vault.add_version(CUSTOMER_VAULT, "cmk-next");
    let other = KekBinding {
        key: KeyRef::latest(CUSTOMER_VAULT, "cmk-next"),
        principal: PrincipalId("cluster-prod1-identity".into()),
    };
    let record = h.store.rotate_account_key(&cluster, &other).await.unwrap();
    assert_eq!(record.seq, 3);
    assert_eq!(record.wrapped_by.name, "cmk-next");
    // And the service key's rotation.
    let sv2 = h.vault.add_version(SERVICE_VAULT, SERVICE_KEY);
    h.store
        .rotate_service_key(&service_binding())
        .await
        .unwrap();

    // Every file that existed is byte for byte the same; the only new files are key records.
    let after = hashes(&h.storage());
    for (path, hash) in &before {
        assert_eq!(after.get(path), Some(hash), "{} changed", path.display());
    }
    let added: Vec<_> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    assert_eq!(added.len(), 4, "{added:?}"); // 2 cluster AEK, 1 service AEK, 1 infra key
    assert!(
        added
            .iter()
            .all(|p| p.components().any(|c| c.as_os_str() == "keys")),
        "{added:?}"
    );
    let history = h.store.keyring().history(&cluster).await.unwrap();
    let versions: Vec<_> = history
        .iter()
        .map(|r| {
            (
                r.wrapped_by.name.clone(),
                r.wrapped_by.version.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        [
            ("cmk".to_owned(), "1".to_owned()),
            ("cmk".into(), "2".into()),
            ("cmk-next".into(), "1".into())
        ]
    );
    assert_eq!(
        h.store
            .keyring()
            .latest_record(&AccountId::service())
            .await
            .unwrap()
            .wrapped_by
            .version,
        Some(sv2)
    );

    // The old key is disabled: a fresh process (nothing cached) still reads everything, through
    // the newest wrapped copy.
    h.vault
        .fail(CUSTOMER_KEY, None, Some(VaultErrorKind::Disabled));
    h.vault
        .fail(SERVICE_KEY, Some("1"), Some(VaultErrorKind::Disabled));
    let fresh = h.reopen().await;
    for loc in &locs {
        let rows = concat(&fresh.read_segment(loc, None).await.unwrap()).num_rows();
        assert_eq!(rows, 1000);
    }
    // New data is still written and read under the rotated key.
    let (entry, m) = fresh
        .append(&cluster, WS, TABLE, vec![log_batch(t0(), 10, "after")])
        .await
        .unwrap();
    assert!(matches!(
        &entry.key_scheme,
        logvault_store::KeyScheme::Customer { key, key_version, .. } if key == "cmk-next" && key_version == "1"
    ));
    assert_eq!(
        fresh.read_segment(&m.location(&entry), None).await.unwrap()[0].num_rows(),
        10
    );
}

#[tokio::test]
async fn rotation_needs_the_current_key() {
    let h = Harness::new().await;
    let cluster = h.cluster_account(false).await;
    let v2 = h.vault.add_version(CUSTOMER_VAULT, CUSTOMER_KEY);
    h.vault
        .fail(CUSTOMER_KEY, Some("1"), Some(VaultErrorKind::Forbidden));
    let err = h
        .store
        .rotate_account_key(&cluster, &customer_binding(Some(&v2)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Vault {
                kind: VaultErrorKind::Forbidden,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(cluster.as_str()), "{err}");
    assert_eq!(h.store.keyring().history(&cluster).await.unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_rotations_are_all_kept() {
    let h = Harness::new().await;
    let cluster = h.cluster_account(false).await;
    let other = h.reopen().await;
    let v2 = h.vault.add_version(CUSTOMER_VAULT, CUSTOMER_KEY);
    let (one, two) = (customer_binding(Some(&v2)), customer_binding(None));
    let (a, b) = tokio::join!(
        h.store.rotate_account_key(&cluster, &one),
        other.rotate_account_key(&cluster, &two),
    );
    a.unwrap();
    b.unwrap();
    let seqs: Vec<u64> = h
        .store
        .keyring()
        .history(&cluster)
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
}

#[tokio::test]
async fn cache_expiry_outage_and_revocation() {
    let h = Harness::new().await;
    let cluster = h.cluster_account(false).await;
    let keyring = h.store.keyring();
    let unwraps = h.vault.unwraps();
    // Fresh in the cache: no vault call.
    keyring.aek(&cluster).await.unwrap();
    assert_eq!(h.vault.unwraps(), unwraps);
    // Past the expiry: unwrapped again.
    h.clock.advance(Duration::seconds(61));
    keyring.aek(&cluster).await.unwrap();
    assert_eq!(h.vault.unwraps(), unwraps + 1);
    // Vault unreachable after expiry: the cached key stays in use (R-B6).
    h.clock.advance(Duration::seconds(61));
    h.vault
        .fail(CUSTOMER_KEY, None, Some(VaultErrorKind::Transient));
    keyring.aek(&cluster).await.unwrap();
    assert!(keyring.cached_aek(&cluster).is_some());
    // Revoked: evicted and refused.
    h.vault
        .fail(CUSTOMER_KEY, None, Some(VaultErrorKind::Forbidden));
    let err = keyring.refresh_aek(&cluster).await.unwrap_err();
    assert!(err.is_revocation(), "{err}");
    assert!(keyring.cached_aek(&cluster).is_none());
    let err = h
        .store
        .append(&cluster, WS, TABLE, vec![log_batch(t0(), 5, "x")])
        .await
        .unwrap_err();
    assert!(
        err.is_revocation() && err.to_string().contains("cluster-prod1"),
        "{err}"
    );
    // Back: resumes.
    h.vault.fail(CUSTOMER_KEY, None, None);
    h.store
        .append(&cluster, WS, TABLE, vec![log_batch(t0(), 5, "x")])
        .await
        .unwrap();
}
