//! Embedding logvault: open a home, set up a customer key, ingest, query with DataFusion, and
//! watch the key decide what can be read.
//!
//! `cargo run -p logvault --example embed`
#![allow(clippy::print_stdout)] // an example program prints what it does

use futures::StreamExt;
use logvault::control::{ClusterSpec, ClusterUpdate, KeyVaultProperties, WorkspaceSpec};
use logvault::ingest::Format;
use logvault::kms::KeyType;
use logvault::kms::local::CreateVaultOptions;
use logvault::{Engine, IngestOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(dir.path()).await?;

    // A workspace, and logs under the service key.
    engine
        .control()
        .create_workspace(WorkspaceSpec::new("app-logs"))?;
    let lines = (0..1000)
        .map(|i| {
            format!(
                r#"{{"TimeGenerated":"2026-01-01T00:{:02}:{:02}Z","Level":"{}","Latency":{}}}"#,
                i / 60 % 60,
                i % 60,
                if i % 10 == 0 { "ERROR" } else { "INFO" },
                i % 97
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let report = engine
        .ingest(
            "app-logs",
            "AppLogs",
            std::io::Cursor::new(lines.clone()),
            &IngestOptions::new(Format::JsonLines),
            None,
        )
        .await?;
    println!(
        "ingested {} rows under the {} account",
        report.accepted, report.account
    );

    // A customer key: vault, key, cluster, permission, key on the cluster, link.
    let vault = engine.vault();
    vault.create_vault(
        "app-kv",
        &CreateVaultOptions {
            region: "local".into(),
            tenant: "local".into(),
            soft_delete: true,
            purge_protection: true,
            retention_days: None,
        },
    )?;
    vault.create_key("app-kv", "app-cmk", KeyType::Oct, None)?;
    let cluster = engine
        .control()
        .create_cluster(ClusterSpec::new("app-cluster"))
        .await?;
    let principal = cluster
        .identity
        .principal_id
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no principal"))?;
    vault.set_policy(
        "app-kv",
        &principal,
        &["get".into(), "wrapKey".into(), "unwrapKey".into()],
    )?;
    engine
        .control()
        .wait_cluster("app-cluster", std::time::Duration::from_secs(30))
        .await?;
    engine
        .control()
        .update_cluster(
            "app-cluster",
            ClusterUpdate {
                key: Some(KeyVaultProperties {
                    key_vault_uri: "https://app-kv.vault.local".into(),
                    key_name: "app-cmk".into(),
                    key_version: String::new(),
                }),
                ..ClusterUpdate::default()
            },
        )
        .await?;
    engine
        .control()
        .wait_cluster("app-cluster", std::time::Duration::from_secs(30))
        .await?;
    engine.control().link_workspace("app-logs", "app-cluster")?;
    let report = engine
        .ingest(
            "app-logs",
            "AppLogs",
            std::io::Cursor::new(lines.clone()),
            &IngestOptions::new(Format::JsonLines),
            None,
        )
        .await?;
    println!(
        "ingested {} rows under the {} account",
        report.accepted, report.account
    );

    // DataFusion over both: the session has the workspace's tables registered.
    let session = engine.query_session("app-logs").await?;
    let df = session
        .context()
        .sql("SELECT Level, count(*) AS n, avg(Latency) AS avg_latency FROM AppLogs GROUP BY Level ORDER BY Level")
        .await?;
    df.show().await?;

    // Or as a stream of record batches.
    let mut stream = engine
        .query(
            "app-logs",
            "SELECT count(*) FROM AppLogs WHERE TimeGenerated > ago('30d')",
        )
        .await?;
    while let Some(batch) = stream.next().await {
        println!("{} row(s) in a batch", batch?.num_rows());
    }

    // Revoke: the next key check refuses reads.
    vault.set_key_enabled("app-kv", "app-cmk", None, false)?;
    let status = engine.check_key("app-cluster", true).await?;
    println!("key state after disabling: {:?}", status.key_state);
    match engine.query_session("app-logs").await {
        Err(e) => println!("query refused: {e}"),
        Ok(_) => anyhow::bail!("a revoked key must refuse queries"),
    }
    Ok(())
}
