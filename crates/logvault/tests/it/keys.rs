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

#[tokio::test]
async fn explicit_version_is_kept_until_the_cluster_is_updated_and_disabling_it_revokes() {
    let h = home().await;
    h.workspace(WS);
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
    let v1 = h
        .engine
        .vault()
        .create_key(VAULT, KEY, logvault::kms::KeyType::Oct, None)
        .unwrap()
        .version;
    h.cluster_with_key(false, Some(&v1)).await;
    h.engine.control().link_workspace(WS, CLUSTER).unwrap();
    h.ingest(WS, "AppLogs", &Home::lines("a", 0, 5)).await;

    let v2 = h.engine.vault().rotate_key(VAULT, KEY).unwrap().version;
    h.pass_check_interval();
    let status = h.engine.check_key(CLUSTER, false).await.unwrap();
    assert_eq!(
        status.key_version_in_use.as_deref(),
        Some(v1.as_str()),
        "explicit version kept"
    );
    assert_eq!(status.key_state, KeyState::Active);

    // Disabling the old version before updating the cluster is revocation (R-G5).
    h.engine
        .vault()
        .set_key_enabled(VAULT, KEY, Some(&v1), false)
        .unwrap();
    h.pass_check_interval();
    let r = h.ingest(WS, "AppLogs", &Home::lines("b", 10, 5)).await;
    assert_eq!((r.accepted, r.dropped), (0, 5));
    assert_eq!(
        h.engine.check_key(CLUSTER, false).await.unwrap().key_state,
        KeyState::Revoked
    );

    // Updating the cluster to v2 needs the account key unwrapped by v1: with v1 disabled the
    // update cannot re-wrap it, and says so; enabling v1 for the update, then disabling it,
    // works.
    let update = || logvault::control::ClusterUpdate {
        key: Some(logvault::control::KeyVaultProperties {
            key_vault_uri: format!("https://{VAULT}.vault.local"),
            key_name: KEY.into(),
            key_version: v2.clone(),
        }),
        ..Default::default()
    };
    let err = h
        .engine
        .control()
        .update_cluster(CLUSTER, update())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Failed to validate key"), "{err}");
    h.engine
        .vault()
        .set_key_enabled(VAULT, KEY, Some(&v1), true)
        .unwrap();
    h.engine
        .control()
        .update_cluster(CLUSTER, update())
        .await
        .unwrap();
    h.engine
        .vault()
        .set_key_enabled(VAULT, KEY, Some(&v1), false)
        .unwrap();
    h.pass_check_interval();
    let status = h.engine.check_key(CLUSTER, false).await.unwrap();
    assert_eq!(status.key_state, KeyState::Active);
    assert_eq!(status.key_version_in_use.as_deref(), Some(v2.as_str()));
    h.ingest(WS, "AppLogs", &Home::lines("c", 20, 5)).await;
    assert_eq!(h.count(&h.engine, WS, "AppLogs").await.unwrap(), 10);
}
