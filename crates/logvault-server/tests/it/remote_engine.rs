//! A second home whose vault is the first home's server (`config.json`'s `vault`): its cluster
//! takes the served key, its workspace ingests and queries under it; the key disabled at the
//! server stops both within the check interval of the second home's key monitor; the key
//! enabled again resumes them; the server stopped is an outage, through which it goes on.

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use chrono::{Duration, TimeZone, Utc};
use logvault::control::{ClusterSpec, ClusterUpdate, KeyVaultProperties, WorkspaceSpec};
use logvault::keys::KeyState;
use logvault::keyvault_client::CredentialConfig;
use logvault::{Engine, HomeConfig, IngestOptions};
use logvault_core::TestClock;

use crate::common::{Options, eventually, serve, timings};
use crate::remote_vault::{REMOTE_KEY, REMOTE_VAULT, remote_config, remote_setup};

const WS_B: &str = "ws-remote";
const CLUSTER_B: &str = "cluster-remote";

async fn ingest(engine: &Engine, tag: &str, n: usize) -> logvault::IngestReport {
    let payload: String = (0..n)
        .map(|i| {
            format!(
                "{{\"TimeGenerated\":\"2026-03-01T10:00:0{i}Z\",\"Tag\":\"{tag}\",\"Seq\":{i}}}\n"
            )
        })
        .collect();
    let options = IngestOptions::new(logvault::ingest::Format::JsonLines);
    engine
        .ingest(
            WS_B,
            "AppEvents",
            std::io::Cursor::new(payload.into_bytes()),
            &options,
            None,
        )
        .await
        .unwrap()
}

async fn count(engine: &Engine) -> Result<i64, String> {
    let session = engine
        .query_session(WS_B)
        .await
        .map_err(|e| e.to_string())?;
    let batches = session
        .context()
        .sql("SELECT count(*) FROM AppEvents")
        .await
        .map_err(|e| e.to_string())?
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(batches[0].column(0).as_primitive::<Int64Type>().value(0))
}

fn state(engine: &Engine) -> KeyState {
    engine
        .key_states()
        .unwrap()
        .into_iter()
        .find(|s| s.cluster == CLUSTER_B)
        .map(|s| s.key_state)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_home_on_another_home_s_vault_ingests_queries_and_follows_revocation_and_restore() {
    let mut s = serve(Options::default()).await;
    let remote = remote_setup(&s);

    // Home B: `config.json` names the server's vault; the token is in a file of the home.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vault.token"), &remote.token).unwrap();
    let mut vault = remote_config(&s);
    vault.credential = CredentialConfig::Token {
        token_env: None,
        token_file: Some("vault.token".into()),
    };
    let config = HomeConfig {
        version: 1,
        timings: timings(),
        vault: Some(vault),
        ..HomeConfig::default()
    };
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
    let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
    let b = Engine::builder(dir.path())
        .clock(Arc::new(clock.clone()))
        .open()
        .await
        .unwrap();
    b.control()
        .create_workspace(WorkspaceSpec::new(WS_B))
        .unwrap();
    b.control()
        .create_cluster(ClusterSpec::new(CLUSTER_B))
        .await
        .unwrap();
    b.control()
        .update_cluster(
            CLUSTER_B,
            ClusterUpdate {
                key: Some(KeyVaultProperties {
                    key_vault_uri: format!("{}/vaults/{REMOTE_VAULT}", s.url),
                    key_name: REMOTE_KEY.into(),
                    key_version: String::new(),
                }),
                ..ClusterUpdate::default()
            },
        )
        .await
        .unwrap();
    b.control().link_workspace(WS_B, CLUSTER_B).unwrap();
    let monitor = b.spawn_key_monitor();

    let report = ingest(&b, "before", 3).await;
    assert_eq!((report.accepted, report.dropped), (3, 0), "{report:?}");
    assert_eq!(report.account, format!("cluster-{CLUSTER_B}"));
    assert_eq!(count(&b).await, Ok(3));
    // The account key was wrapped by the served vault, under its identity's policy.
    let audit = s.engine.vault().audit_log(REMOTE_VAULT).unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.principal == remote.principal.0 && e.key == REMOTE_KEY),
        "{audit:?}"
    );

    // Revocation at the server: home B's monitor notices at its next check.
    s.engine
        .vault()
        .set_key_enabled(REMOTE_VAULT, REMOTE_KEY, None, false)
        .unwrap();
    assert_eq!(
        state(&b),
        KeyState::Active,
        "nothing checked before the interval"
    );
    clock.advance(Duration::seconds(timings().key_check_max_secs + 1));
    eventually("home B's key monitor sees the revocation", || async {
        state(&b) == KeyState::Revoked
    })
    .await;
    let report = ingest(&b, "during", 2).await;
    assert_eq!((report.accepted, report.dropped), (0, 2), "{report:?}");
    let refused = count(&b).await.unwrap_err();
    assert!(refused.contains(CLUSTER_B), "{refused}");

    // Restore: enabled again, the next check resumes both.
    s.engine
        .vault()
        .set_key_enabled(REMOTE_VAULT, REMOTE_KEY, None, true)
        .unwrap();
    clock.advance(Duration::seconds(timings().key_check_max_secs + 1));
    eventually("home B's key monitor sees the restore", || async {
        state(&b) == KeyState::Active
    })
    .await;
    let report = ingest(&b, "after", 2).await;
    assert_eq!((report.accepted, report.dropped), (2, 0), "{report:?}");
    assert_eq!(count(&b).await, Ok(5));

    // The serving home stopped: an outage, not a revocation. Home B is degraded and goes on
    // with its cached account key (R-B6).
    s.shutdown().await;
    clock.advance(Duration::seconds(timings().key_check_max_secs + 1));
    eventually("home B's key monitor sees the outage", || async {
        state(&b) == KeyState::Degraded
    })
    .await;
    let report = ingest(&b, "outage", 1).await;
    assert_eq!((report.accepted, report.dropped), (1, 0), "{report:?}");
    assert_eq!(count(&b).await, Ok(6));
    monitor.abort();
}
