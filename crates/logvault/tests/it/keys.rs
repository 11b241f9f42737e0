//! Key schemes through link, rotation and unlink (R-D3, R-B7, R-G4, R-G5, R-G6).

use std::collections::BTreeMap;

use logvault::keys::KeyState;
use logvault::store::KeyScheme;
use sha2::{Digest, Sha256};

use crate::common::{CLUSTER, Home, KEY, VAULT, WS, home};

fn hash_tree(dir: &std::path::Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains("/segments/") {
                out.insert(
                    p.display().to_string(),
                    hex::encode(Sha256::digest(std::fs::read(&p).unwrap())),
                );
            }
        }
    }
    out
}

async fn schemes(h: &Home) -> Vec<KeyScheme> {
    h.engine
        .store()
        .catalog()
        .manifest(WS, "AppLogs")
        .await
        .unwrap()
        .segments
        .into_iter()
        .map(|s| s.key_scheme)
        .collect()
}

#[tokio::test]
async fn service_key_then_customer_key_versions_then_service_key_all_read_in_one_query() {
    let h = home().await;
    h.workspace(WS);
    assert_eq!(
        h.ingest(WS, "AppLogs", &Home::lines("mmk1", 0, 10))
            .await
            .account,
        "service"
    );

    h.cluster_with_key(true, None).await;
    h.engine.control().link_workspace(WS, CLUSTER).unwrap();
    let r = h
        .ingest(WS, "AppLogs", &Home::lines("cmkv1", 100, 10))
        .await;
    assert_eq!((r.accepted, r.account.as_str()), (10, "cluster-cluster-01"));
    let v1 = h.engine.vault().key_properties(VAULT, KEY).unwrap().version;

    // Autorotation: a new version in the vault is picked up at the next check, and the account
    // key is re-wrapped by it; no segment is rewritten.
    let before = hash_tree(h.dir.path());
    let v2 = h.engine.vault().rotate_key(VAULT, KEY).unwrap().version;
    assert_ne!(v1, v2);
    h.pass_check_interval();
    let status = h.engine.check_key(CLUSTER, false).await.unwrap();
    assert_eq!(status.key_version_in_use.as_deref(), Some(v2.as_str()));
    assert_eq!(status.rotations, 1);
    assert_eq!(
        hash_tree(h.dir.path()),
        before,
        "rotation rewrote a segment"
    );
    h.ingest(WS, "AppLogs", &Home::lines("cmkv2", 200, 10))
        .await;

    h.engine.control().unlink_workspace(WS).unwrap();
    assert_eq!(
        h.ingest(WS, "AppLogs", &Home::lines("mmk2", 300, 10))
            .await
            .account,
        "service"
    );

    let got = schemes(&h).await;
    let versions: Vec<String> = got
        .iter()
        .map(|s| match s {
            KeyScheme::Service { .. } => "service".to_owned(),
            KeyScheme::Customer {
                cluster,
                key_version,
                ..
            } => {
                assert_eq!(cluster, CLUSTER);
                key_version.clone()
            }
        })
        .collect();
    assert_eq!(versions, ["service", v1.as_str(), v2.as_str(), "service"]);

    // One query over all of it, from a fresh process, with v1 disabled: rotation moved the
    // account key to v2, so nothing depends on v1 any more.
    h.engine
        .vault()
        .set_key_enabled(VAULT, KEY, Some(&v1), false)
        .unwrap();
    let engine = h.reopen().await;
    let tags = h
        .column(
            &engine,
            WS,
            "SELECT Tag || ':' || CAST(count(*) AS VARCHAR) FROM AppLogs GROUP BY Tag ORDER BY Tag",
        )
        .await
        .unwrap();
    assert_eq!(tags, ["cmkv1:10", "cmkv2:10", "mmk1:10", "mmk2:10"]);
}

/// A vault with a recoverable key, its first version returned.
async fn vault_with_key(h: &Home) -> String {
    h.engine
        .vault()
        .create_vault(
            VAULT,
            &logvault::kms::local::CreateVaultOptions {
                region: "local".into(),
                tenant: "local".into(),
                soft_delete: true,
                purge_protection: true,
                retention_days: None,
            },
        )
        .unwrap();
    h.engine
        .vault()
        .create_key(VAULT, KEY, logvault::kms::KeyType::Oct, None)
        .unwrap()
        .version
}

fn update_to(version: &str) -> logvault::control::ClusterUpdate {
    logvault::control::ClusterUpdate {
        key: Some(logvault::control::KeyVaultProperties {
            key_vault_uri: format!("https://{VAULT}.vault.local"),
            key_name: KEY.into(),
            key_version: version.into(),
        }),
        ..Default::default()
    }
}

fn set_enabled(h: &Home, version: &str, enabled: bool) {
    h.engine
        .vault()
        .set_key_enabled(VAULT, KEY, Some(version), enabled)
        .unwrap();
}

/// The seed's recovery from a disabled explicit key version (R-G5): "Update new key identifier
/// details in the cluster to resume data ingestion and ability to query data."
///
/// Regression: the update failed with "400 Failed to validate key in Key Vault", because the
/// account key was wrapped only under the disabled version.
#[tokio::test]
async fn a_cluster_revoked_by_its_disabled_explicit_version_resumes_once_updated_to_a_newer_one() {
    let h = home().await;
    h.workspace(WS);
    let v1 = vault_with_key(&h).await;
    h.cluster_with_key(false, Some(&v1)).await;
    h.engine.control().link_workspace(WS, CLUSTER).unwrap();
    h.ingest(WS, "AppLogs", &Home::lines("a", 0, 5)).await;

    // A new version in the vault: the explicit version is kept; the next check also keeps a
    // standby copy of the account key under the new version.
    let v2 = h.engine.vault().rotate_key(VAULT, KEY).unwrap().version;
    h.pass_check_interval();
    let status = h.engine.check_key(CLUSTER, false).await.unwrap();
    assert_eq!(status.key_version_in_use.as_deref(), Some(v1.as_str()));
    assert_eq!(status.key_state, KeyState::Active);
    let account = logvault::store::AccountId::cluster(CLUSTER).unwrap();
    let key = logvault::kms::KeyRef::latest(VAULT, KEY);
    let keyring = h.engine.store().keyring();
    assert_eq!(
        keyring.standby_versions(&account, &key).await.unwrap(),
        vec![v2.clone()]
    );
    // A standby copy is not used while the cluster names v1: v1 still wraps the key in use.
    assert_eq!(
        keyring
            .latest_record(&account)
            .await
            .unwrap()
            .wrapped_by
            .version,
        Some(v1.clone())
    );

    // Disabling the version in use revokes (R-G5): ingestion dropped, queries refused.
    set_enabled(&h, &v1, false);
    h.pass_check_interval();
    let r = h.ingest(WS, "AppLogs", &Home::lines("b", 10, 5)).await;
    assert_eq!((r.accepted, r.dropped), (0, 5));
    assert_eq!(
        h.engine.check_key(CLUSTER, false).await.unwrap().key_state,
        KeyState::Revoked
    );
    assert!(h.count(&h.engine, WS, "AppLogs").await.is_err());

    // The customer updates the cluster to v2: ingestion and queries resume, v1 stays disabled.
    h.engine
        .control()
        .update_cluster(CLUSTER, update_to(&v2))
        .await
        .unwrap();
    h.pass_check_interval();
    let status = h.engine.check_key(CLUSTER, false).await.unwrap();
    assert_eq!(status.key_state, KeyState::Active, "{status:?}");
    assert_eq!(status.key_version_in_use.as_deref(), Some(v2.as_str()));
    h.ingest(WS, "AppLogs", &Home::lines("c", 20, 5)).await;
    let tags = h
        .column(
            &h.engine,
            WS,
            "SELECT Tag || ':' || CAST(count(*) AS VARCHAR) FROM AppLogs GROUP BY Tag ORDER BY Tag",
        )
        .await
        .unwrap();
    assert_eq!(
        tags,
        ["a:5", "c:5"],
        "old data readable under v2, dropped rows absent"
    );
    // The standby copy became the account key's record and is gone as a standby.
    assert!(
        keyring
            .standby_versions(&account, &key)
            .await
            .unwrap()
            .is_empty()
    );
    // A fresh process reads everything with v1 still disabled.
    let engine = h.reopen().await;
    assert_eq!(h.count(&engine, WS, "AppLogs").await.unwrap(), 10);
}

/// When the newer version did not exist before the explicit version was disabled, there is no
/// copy of the account key under it: the update says why and what to do, and doing it works.
#[tokio::test]
async fn updating_to_a_version_made_after_the_revocation_says_what_to_do() {
    let h = home().await;
    h.workspace(WS);
    let v1 = vault_with_key(&h).await;
    h.cluster_with_key(false, Some(&v1)).await;
    h.engine.control().link_workspace(WS, CLUSTER).unwrap();
    h.ingest(WS, "AppLogs", &Home::lines("a", 0, 5)).await;

    set_enabled(&h, &v1, false);
    h.pass_check_interval();
    assert_eq!(
        h.engine.check_key(CLUSTER, false).await.unwrap().key_state,
        KeyState::Revoked
    );
    let v2 = h.engine.vault().rotate_key(VAULT, KEY).unwrap().version;
    let err = h
        .engine
        .control()
        .update_cluster(CLUSTER, update_to(&v2))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("400 Failed to validate key"), "{err}");
    assert!(
        err.contains(&format!("enable version {v1} again")) && err.contains("no copy under"),
        "{err}"
    );

    // What the message says: enable v1, update to v2, disable v1.
    set_enabled(&h, &v1, true);
    h.engine
        .control()
        .update_cluster(CLUSTER, update_to(&v2))
        .await
        .unwrap();
    set_enabled(&h, &v1, false);
    h.pass_check_interval();
    let status = h.engine.check_key(CLUSTER, false).await.unwrap();
    assert_eq!(status.key_state, KeyState::Active);
    assert_eq!(status.key_version_in_use.as_deref(), Some(v2.as_str()));
    h.ingest(WS, "AppLogs", &Home::lines("c", 20, 5)).await;
    assert_eq!(h.count(&h.engine, WS, "AppLogs").await.unwrap(), 10);
}
