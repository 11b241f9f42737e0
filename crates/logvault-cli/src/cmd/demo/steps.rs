//! The demo's steps, on the engine, with evidence.

use std::collections::BTreeMap;
use std::time::Instant;

use arrow::array::RecordBatch;
use logvault::control::{ClusterSpec, ClusterUpdate, KeyVaultProperties, WorkspaceSpec};
use logvault::ingest::Format;
use logvault::keys::{KeyState, KeyStatus};
use logvault::kms::KeyType;
use logvault::kms::local::{CreateVaultOptions, OutageMode};
use logvault::store::KeyScheme;
use logvault::{Engine, EngineError, IngestOptions, IngestReport};

use super::Narrator;

const WS: &str = "contoso-logs";
const VAULT: &str = "contoso-kv";
const KEY: &str = "contoso-cmk";
const CLUSTER: &str = "contoso-cluster";

const SYSLOG: &[u8] = include_bytes!("../../../../../data/Syslog.csv");
const SECURITY: &[u8] = include_bytes!("../../../../../data/SecurityEvent.jsonl");
const NETWORK: &str = include_str!("../../../../../data/AzureNetworkAnalytics_CL.csv");

/// The network sample in four CSV chunks (each with the header).
fn network_chunk(i: usize) -> String {
    let mut lines = NETWORK.lines();
    let header = lines.next().unwrap_or_default();
    let rows: Vec<&str> = lines.collect();
    let size = rows.len().div_ceil(4);
    let mut out = String::from(header);
    for r in rows.iter().skip(i * size).take(size) {
        out.push('\n');
        out.push_str(r);
    }
    out.push('\n');
    out
}

async fn ingest(
    engine: &Engine,
    table: &str,
    bytes: &[u8],
    format: Format,
) -> anyhow::Result<IngestReport> {
    Ok(engine
        .ingest(
            WS,
            table,
            std::io::Cursor::new(bytes.to_vec()),
            // The bundled files are loaded as `logvault ingest FILE` loads a file.
            &IngestOptions::load(format),
            None,
        )
        .await?)
}

async fn query(engine: &Engine, sql: &str) -> Result<Vec<RecordBatch>, EngineError> {
    let session = engine.query_session(WS).await?;
    let df = session
        .context()
        .sql(sql)
        .await
        .map_err(|e| EngineError::Query(e.into()))?;
    df.collect().await.map_err(|e| EngineError::Query(e.into()))
}

fn show(n: &Narrator, batches: &[RecordBatch]) {
    if let Ok(t) = arrow::util::pretty::pretty_format_batches(batches) {
        for line in t.to_string().lines() {
            n.say(&format!("   {line}"));
        }
    }
}

fn first_i64(batches: &[RecordBatch]) -> i64 {
    batches
        .first()
        .and_then(|b| arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Int64).ok())
        .and_then(|a| {
            a.as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(-1)
}

/// Rows in every table of the workspace, by one query over all of them.
async fn total_rows(engine: &Engine) -> Result<i64, EngineError> {
    let session = engine.query_session(WS).await?;
    let sql = session
        .tables()
        .iter()
        .map(|t| format!("SELECT count(*) AS n FROM {t}"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let df = session
        .context()
        .sql(&format!("SELECT sum(n) FROM ({sql})"))
        .await
        .map_err(|e| EngineError::Query(e.into()))?;
    Ok(first_i64(
        &df.collect()
            .await
            .map_err(|e| EngineError::Query(e.into()))?,
    ))
}

/// The catalog's segments of the workspace: (table, account, key scheme, rows).
async fn segments(engine: &Engine) -> anyhow::Result<Vec<(String, String, String, u64)>> {
    let catalog = engine.store().catalog();
    let mut out = Vec::new();
    for table in catalog.tables(WS).await? {
        for s in catalog.manifest(WS, &table).await?.segments {
            let scheme = match s.key_scheme {
                KeyScheme::Service { .. } => "service key (MMK)".to_owned(),
                KeyScheme::Customer {
                    vault,
                    key,
                    key_version,
                    ..
                } => {
                    format!(
                        "customer key {vault}/{key} v{}",
                        &key_version[..8.min(key_version.len())]
                    )
                }
            };
            out.push((table.clone(), s.account.to_string(), scheme, s.rows));
        }
    }
    Ok(out)
}

fn show_segments(n: &Narrator, segs: &[(String, String, String, u64)]) {
    let rows: Vec<Vec<String>> = segs
        .iter()
        .map(|(t, a, k, r)| vec![t.clone(), a.clone(), k.clone(), r.to_string()])
        .collect();
    for line in
        crate::output::table(&["TABLE", "ACCOUNT", "ENCRYPTED UNDER", "ROWS"], &rows).lines()
    {
        n.say(&format!("   {line}"));
    }
}

/// Hashes of every segment file on local storage (to prove rotation rewrites nothing).
fn segment_hashes(engine: &Engine) -> BTreeMap<String, u64> {
    use std::hash::{Hash, Hasher};
    let mut out = BTreeMap::new();
    let mut stack = vec![engine.home().dir("storage")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains("/segments/") {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::fs::read(&p).unwrap_or_default().hash(&mut h);
                out.insert(p.display().to_string(), h.finish());
            }
        }
    }
    out
}

/// Waits until the background key monitor reports a state that satisfies `done`.
async fn wait_for(
    engine: &Engine,
    n: &Narrator,
    done: impl Fn(&KeyStatus) -> bool,
) -> anyhow::Result<(KeyStatus, f64)> {
    let start = Instant::now();
    loop {
        let status = engine
            .key_states()?
            .into_iter()
            .find(|s| s.cluster == CLUSTER)
            .ok_or_else(|| anyhow::anyhow!("no key state for {CLUSTER}"))?;
        if done(&status) {
            return Ok((status, start.elapsed().as_secs_f64()));
        }
        if start.elapsed() > n.wait() {
            anyhow::bail!(
                "the key monitor did not get there in {}s (state {:?})",
                n.wait().as_secs(),
                status.key_state
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Every step, in order.
pub(crate) async fn run_all(engine: &Engine, n: &mut Narrator) -> anyhow::Result<()> {
    let control = engine.control();
    let mut acknowledged: i64 = 0;

    n.heading("1. a workspace under the service key");
    control.create_workspace(WorkspaceSpec::new(WS))?;
    let r = ingest(engine, "Syslog", SYSLOG, Format::Csv).await?;
    acknowledged += r.accepted as i64;
    n.say(&format!(
        "   ingested {} Syslog rows into {} ({} segment)",
        r.accepted, r.account, r.segments
    ));
    let b = query(engine, "SELECT SeverityLevel, count(*) AS events FROM Syslog GROUP BY SeverityLevel ORDER BY events DESC").await?;
    show(n, &b);
    let segs = segments(engine).await?;
    n.check(
        "1 service key",
        "data is encrypted with the service key before any link",
        format!("{} segment(s), all under the service key", segs.len()),
        r.accepted == 100 && segs.iter().all(|s| s.2.starts_with("service")),
    );

    n.heading(
        "2. a vault, a key, a cluster with a system identity, permissions, the key, the link",
    );
    let vault = engine.vault();
    let info = vault.create_vault(
        VAULT,
        &CreateVaultOptions {
            region: "local".into(),
            tenant: "local".into(),
            soft_delete: true,
            purge_protection: true,
            retention_days: None,
        },
    )?;
    let key = vault.create_key(VAULT, KEY, KeyType::Rsa, Some(3072))?;
    n.say(&format!(
        "   vault {} (soft delete, purge protection); key {} (RSA 3072, version {})",
        info.properties.uri, key.name, key.version
    ));
    let err = control
        .create_cluster(ClusterSpec {
            key: Some(key_props()),
            ..ClusterSpec::new(CLUSTER)
        })
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    n.check(
        "2 key at creation",
        "a system-assigned cluster cannot take a key at creation (400)",
        &err,
        err.starts_with("400 "),
    );
    let cluster = control.create_cluster(ClusterSpec::new(CLUSTER)).await?;
    let cluster = control.wait_cluster(&cluster.name, n.wait()).await?;
    let principal = cluster
        .identity
        .principal_id
        .clone()
        .ok_or_else(|| anyhow::anyhow!("cluster has no principal"))?;
    n.say(&format!(
        "   cluster {} is {:?}, identity principal {principal}",
        cluster.name,
        cluster.provisioning_state()
    ));
    let err = control
        .update_cluster(
            CLUSTER,
            ClusterUpdate {
                key: Some(key_props()),
                ..Default::default()
            },
        )
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    n.check(
        "2 no permission",
        "key update without Get/Wrap/Unwrap fails (400 Failed to validate key)",
        &err,
        err.starts_with("400 Failed to validate key in Key Vault"),
    );
    vault.set_policy(
        VAULT,
        &principal,
        &["get".into(), "wrapKey".into(), "unwrapKey".into()],
    )?;
    control
        .update_cluster(
            CLUSTER,
            ClusterUpdate {
                key: Some(key_props()),
                ..Default::default()
            },
        )
        .await?;
    let cluster = control.wait_cluster(CLUSTER, n.wait()).await?;
    control.link_workspace(WS, CLUSTER)?;
    n.check(
        "2 provisioned and linked",
        "key update succeeds asynchronously, then the workspace links",
        format!(
            "cluster {:?}, workspace linked to {}",
            cluster.provisioning_state(),
            CLUSTER
        ),
        cluster.is_provisioned() && control.get_workspace(WS)?.cluster.as_deref() == Some(CLUSTER),
    );

    n.heading("3. new data under the customer key; one query reads both");
    let r = ingest(engine, "SecurityEvent", SECURITY, Format::JsonLines).await?;
    acknowledged += r.accepted as i64;
    n.say(&format!(
        "   ingested {} SecurityEvent rows into {}",
        r.accepted, r.account
    ));
    let b = query(engine, "SELECT 'Syslog (service key)' AS source, count(*) AS events FROM Syslog UNION ALL SELECT 'SecurityEvent (customer key)', count(*) FROM SecurityEvent").await?;
    show(n, &b);
    let segs = segments(engine).await?;
    show_segments(n, &segs);
    n.check(
        "3 mixed keys",
        "old rows (service key) and new rows (customer key) in one query",
        format!("{} rows", total_rows(engine).await?),
        total_rows(engine).await? == acknowledged
            && segs.iter().any(|s| s.2.starts_with("customer")),
    );

    n.heading("4. key rotation (autorotation): a new version, picked up by the key monitor");
    let before = segment_hashes(engine);
    let (status, _) = wait_for(engine, n, |s| {
        s.key_state == KeyState::Active && s.key_version_in_use.is_some()
    })
    .await?;
    let old_version = status.key_version_in_use.clone().unwrap_or_default();
    let new_version = vault.rotate_key(VAULT, KEY)?.version;
    let (status, secs) = wait_for(engine, n, |s| {
        s.key_version_in_use.as_deref() == Some(new_version.as_str())
    })
    .await?;
    n.say(&format!(
        "   version {} -> {} picked up in {secs:.1}s",
        short_id(&old_version),
        short_id(&new_version)
    ));
    let after = segment_hashes(engine);
    let rewritten = before
        .iter()
        .filter(|(p, h)| after.get(*p) != Some(h))
        .count();
    let r = ingest(
        engine,
        "AzureNetworkAnalytics_CL",
        network_chunk(0).as_bytes(),
        Format::Csv,
    )
    .await?;
    acknowledged += r.accepted as i64;
    let total = total_rows(engine).await?;
    n.check(
        "4 rotation",
        "the account key is re-wrapped by the new version; no segment rewritten; all readable",
        format!(
            "{rewritten} of {} segments rewritten, {total} rows readable, {} rotation(s)",
            before.len(),
            status.rotations
        ),
        rewritten == 0 && total == acknowledged && status.rotations >= 1,
    );

    n.heading("5. revocation: the key is disabled in the vault");
    engine.hot_cache().settle().await;
    let hot_before = engine.status(Some(WS)).await?.workspaces[0].hot_cache;
    n.say(&format!(
        "   hot cache before: {} bytes on disk, {} in memory",
        hot_before.disk_bytes, hot_before.memory_bytes
    ));
    vault.set_key_enabled(VAULT, KEY, None, false)?;
    let (status, secs) = wait_for(engine, n, |s| s.key_state == KeyState::Revoked).await?;
    n.say(&format!(
        "   revoked after {secs:.1}s: {}",
        status.reason.clone().unwrap_or_default()
    ));
    let chunk = network_chunk(1);
    let r = ingest(
        engine,
        "AzureNetworkAnalytics_CL",
        chunk.as_bytes(),
        Format::Csv,
    )
    .await?;
    n.say(&format!(
        "   ingest: accepted {}, dropped {} ({})",
        r.accepted,
        r.dropped,
        r.reason.clone().unwrap_or_default()
    ));
    let q = total_rows(engine).await;
    let qerr = q.err().map(|e| e.to_string()).unwrap_or_default();
    n.say(&format!("   query: error: {qerr}"));
    let st = engine.status(Some(WS)).await?;
    let hot = st.workspaces[0].hot_cache;
    n.check(
        "5 revoked",
        "ingestion dropped and counted, queries refused naming cluster and key, hot cache purged",
        format!(
            "{} dropped (counter {}), query refused, hot cache {} -> {} bytes",
            r.dropped,
            st.workspaces[0].dropped_rows,
            hot_before.disk_bytes + hot_before.memory_bytes,
            hot.disk_bytes + hot.memory_bytes
        ),
        r.accepted == 0
            && r.dropped > 0
            && st.workspaces[0].dropped_rows == r.dropped
            && qerr.contains(CLUSTER)
            && qerr.contains(KEY)
            && status.purges >= 1
            && hot_before.disk_bytes > 0
            && hot.disk_bytes == 0
            && hot.memory_bytes == 0,
    );

    n.heading("6. restore: the key is enabled again");
    vault.set_key_enabled(VAULT, KEY, None, true)?;
    let (_, secs) = wait_for(engine, n, |s| s.key_state == KeyState::Active).await?;
    n.say(&format!("   active again after {secs:.1}s"));
    let r = ingest(
        engine,
        "AzureNetworkAnalytics_CL",
        chunk.as_bytes(),
        Format::Csv,
    )
    .await?;
    acknowledged += r.accepted as i64;
    let total = total_rows(engine).await?;
    n.check(
        "6 restored",
        "ingestion and queries resume; nothing acknowledged is lost",
        format!("the dropped chunk re-sent: {} accepted; {total} rows readable (acknowledged {acknowledged})", r.accepted),
        r.accepted > 0 && total == acknowledged,
    );

    n.heading("7. a vault outage: the cached account key stays in use");
    vault.set_outage(VAULT, OutageMode::Timeout)?;
    let (status, _) = wait_for(engine, n, |s| s.key_state == KeyState::Degraded).await?;
    n.say(&format!(
        "   degraded: {}",
        status.reason.clone().unwrap_or_default()
    ));
    let r = ingest(
        engine,
        "AzureNetworkAnalytics_CL",
        network_chunk(2).as_bytes(),
        Format::Csv,
    )
    .await?;
    acknowledged += r.accepted as i64;
    let total = total_rows(engine).await?;
    vault.set_outage(VAULT, OutageMode::None)?;
    let (_, secs) = wait_for(engine, n, |s| s.key_state == KeyState::Active).await?;
    n.check(
        "7 outage",
        "ingestion and queries go on under the cached key; the key is verified after",
        format!("{} rows ingested during the outage, {total} readable; active again {secs:.1}s after it ended", r.accepted),
        r.accepted > 0 && total == acknowledged,
    );

    n.heading("8. unlink: new data under the service key again");
    control.unlink_workspace(WS)?;
    let r = ingest(
        engine,
        "AzureNetworkAnalytics_CL",
        network_chunk(3).as_bytes(),
        Format::Csv,
    )
    .await?;
    acknowledged += r.accepted as i64;
    let segs = segments(engine).await?;
    show_segments(n, &segs);
    let total = total_rows(engine).await?;
    n.check(
        "8 unlinked",
        "new data under the service key; queries still see all of it",
        format!(
            "last segment under {}, {total} rows readable",
            segs.last().map(|s| s.2.as_str()).unwrap_or("?")
        ),
        r.account == "service" && total == acknowledged,
    );
    Ok(())
}

fn key_props() -> KeyVaultProperties {
    KeyVaultProperties {
        key_vault_uri: format!("https://{VAULT}.vault.local"),
        key_name: KEY.into(),
        key_version: String::new(),
    }
}

fn short_id(s: &str) -> &str {
    &s[..8.min(s.len())]
}
