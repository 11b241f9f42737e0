//! Distributed queries on an in-process Ballista cluster (a scheduler and two executors on
//! loopback ports, each executor with its own store, keyring and runtime over the home's
//! storage and vault), against the single-node engine on the same workspace: `Syslog` under
//! the service key, `SecurityEvent` under a customer key.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow::array::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use chrono::{Duration, TimeZone, Utc};
use datafusion::dataframe::DataFrame;
use datafusion::prelude::SessionContext;
use logvault::control::{ClusterSpec, ClusterUpdate, KeyVaultProperties, WorkspaceSpec};
use logvault::ingest::Format;
use logvault::kms::KeyType;
use logvault::kms::local::CreateVaultOptions;
use logvault::store::{AccountId, Store, StoreConfig};
use logvault::{Engine, HomeConfig, IngestOptions};
use logvault_core::{TestClock, Timings};
use logvault_distributed::{ExecutorSpec, InProcessCluster, ShuffleMode, distributed_context};

const VAULT: &str = "kv-dist";
const KEY: &str = "cmk";
const CLUSTER: &str = "cluster-01";
const WS: &str = "ws-dist";

struct Home {
    _dir: tempfile::TempDir,
    clock: TestClock,
    engine: Engine,
}

fn data(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(file)
}

async fn ingest(engine: &Engine, file: &str, table: &str, format: Format) -> Result<()> {
    let input = std::io::BufReader::new(std::fs::File::open(data(file))?);
    let r = engine
        .ingest(WS, table, input, &IngestOptions::new(format), None)
        .await?;
    if r.accepted == 0 || r.dropped != 0 {
        bail!("{table}: {r:?}");
    }
    Ok(())
}

/// A workspace with `Syslog` under the service key, then linked to a cluster whose customer
/// key protects `SecurityEvent`.
async fn home() -> Result<Home> {
    let dir = tempfile::tempdir()?;
    let config = HomeConfig {
        version: 1,
        timings: Timings {
            async_operation_secs: 0,
            ..Timings::default()
        },
        ..HomeConfig::default()
    };
    std::fs::write(dir.path().join("config.json"), serde_json::to_vec(&config)?)?;
    let clock = TestClock::new(
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .context("time")?,
    );
    let engine = Engine::builder(dir.path())
        .clock(Arc::new(clock.clone()))
        .open()
        .await?;
    engine.control().create_workspace(WorkspaceSpec::new(WS))?;
    ingest(&engine, "Syslog.csv", "Syslog", Format::Csv).await?;

    let vault = engine.vault();
    vault.create_vault(
        VAULT,
        &CreateVaultOptions {
            region: "local".into(),
            tenant: "local".into(),
            soft_delete: true,
            purge_protection: true,
            retention_days: None,
        },
    )?;
    vault.create_key(VAULT, KEY, KeyType::Oct, None)?;
    let cluster = engine
        .control()
        .create_cluster(ClusterSpec::new(CLUSTER))
        .await?;
    let principal = cluster.identity.principal_id.context("cluster identity")?;
    vault.set_policy(
        VAULT,
        &principal,
        &["get".into(), "wrapKey".into(), "unwrapKey".into()],
    )?;
    engine
        .control()
        .update_cluster(
            CLUSTER,
            ClusterUpdate {
                key: Some(KeyVaultProperties {
                    key_vault_uri: format!("https://{VAULT}.vault.local"),
                    key_name: KEY.into(),
                    key_version: String::new(),
                }),
                ..ClusterUpdate::default()
            },
        )
        .await?;
    engine.control().link_workspace(WS, CLUSTER)?;
    ingest(
        &engine,
        "SecurityEvent.jsonl",
        "SecurityEvent",
        Format::JsonLines,
    )
    .await?;
    Ok(Home {
        _dir: dir,
        clock,
        engine,
    })
}

/// An executor's own store over the home's storage root and vault (what a separate executor
/// process opens): a keyring of its own, which has no key until it asks the vault.
async fn executor_store(h: &Home) -> Result<Arc<Store>> {
    let store = h.engine.store();
    Ok(Arc::new(
        Store::open(
            store.root().clone(),
            h.engine.key_vault(),
            store.service_binding(),
            StoreConfig::default(),
            h.engine.clock().clone(),
        )
        .await?,
    ))
}

async fn cluster(h: &Home) -> Result<(InProcessCluster, Vec<Arc<Store>>)> {
    cluster_with(h, ShuffleMode::Encrypted).await
}

async fn cluster_with(
    h: &Home,
    shuffle: ShuffleMode,
) -> Result<(InProcessCluster, Vec<Arc<Store>>)> {
    let mut stores = Vec::new();
    let mut specs = Vec::new();
    for name in ["executor-1", "executor-2"] {
        let store = executor_store(h).await?;
        stores.push(store.clone());
        specs.push(ExecutorSpec {
            name: name.into(),
            store,
            vcores: 2,
        });
    }
    Ok((InProcessCluster::start_with(specs, shuffle).await?, stores))
}

fn text(batches: &[RecordBatch]) -> Result<String> {
    Ok(pretty_format_batches(batches)?.to_string())
}

async fn sql(ctx: &SessionContext, sql: &str) -> Result<String> {
    let batches = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        ctx.sql(sql).await?.collect().await
    })
    .await
    .with_context(|| format!("no answer in 30 s: {sql}"))??;
    text(&batches)
}

const SQL: &[&str] = &[
    "SELECT Computer, count(*) AS n FROM Syslog GROUP BY Computer ORDER BY Computer",
    "SELECT EventID, count(*) AS n, min(TimeGenerated) AS first FROM SecurityEvent \
     GROUP BY EventID ORDER BY EventID",
    "SELECT count(*) AS n FROM Syslog WHERE SeverityLevel = 'info' AND \
     TimeGenerated >= TIMESTAMP '2019-07-08T00:00:00Z'",
    "SELECT TimeGenerated, Computer, SyslogMessage FROM Syslog \
     ORDER BY TimeGenerated DESC, SyslogMessage LIMIT 5",
    "SELECT count(*) AS n FROM SecurityEvent WHERE TimeGenerated > ago('100000d')",
    "SELECT s.Computer, count(*) AS n FROM Syslog s JOIN \
     (SELECT DISTINCT Computer FROM Syslog WHERE SeverityLevel = 'info') e \
     ON s.Computer = e.Computer GROUP BY s.Computer ORDER BY s.Computer",
];

const KQL: &[&str] = &[
    "Syslog | summarize n = count() by Computer | sort by Computer asc",
    "SecurityEvent | where EventID == 4624 | summarize n = count() by Account | sort by Account asc",
    "SecurityEvent | project TimeGenerated, Computer, EventID | sort by TimeGenerated desc | take 5",
    "union Syslog, SecurityEvent | summarize n = count() by Computer | sort by Computer asc",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sql_and_kql_on_a_cluster_answer_as_one_node_under_both_keys() -> Result<()> {
    let h = home().await?;
    let (cluster, stores) = cluster(&h).await?;
    let session = h.engine.query_session(WS).await?;
    let remote = distributed_context(&session, cluster.scheduler())?;

    for q in SQL {
        let local = sql(session.context(), q).await?;
        let distributed = sql(&remote, q)
            .await
            .with_context(|| format!("distributed: {q}"))?;
        assert!(local.lines().count() > 4, "{q} returned nothing:\n{local}");
        assert_eq!(distributed, local, "{q}");
    }
    for q in KQL {
        let plan = h.engine.plan_kql(WS, q).await?.plan;
        let local = text(
            &DataFrame::new(session.context().state(), plan.clone())
                .collect()
                .await?,
        )?;
        let distributed = text(
            &DataFrame::new(remote.state(), plan)
                .collect()
                .await
                .with_context(|| format!("distributed: {q}"))?,
        )?;
        assert!(local.lines().count() > 4, "{q} returned nothing:\n{local}");
        assert_eq!(distributed, local, "{q}");
    }

    // Every stage output went through the encrypted shuffle: files exist, and each is in the
    // encrypted format.
    let files = shuffle_files(&cluster)?;
    assert!(files.len() >= 4, "too few shuffle files: {files:?}");
    for f in &files {
        if let Some(bytes) = read_if_present(f)? {
            assert!(
                bytes.starts_with(b"LVSH"),
                "{} is not encrypted",
                f.display()
            );
        }
    }

    // The executors read both accounts with keys they got from the vault themselves.
    for account in [AccountId::service(), AccountId::cluster(CLUSTER)?] {
        assert!(
            stores
                .iter()
                .any(|s| s.keyring().cached_aek(&account).is_some()),
            "no executor unwrapped the key of {account}"
        );
    }
    Ok(())
}

/// Regression (found by `logvault-bench distributed` at 1M rows): the scan node the codec sends
/// was an opaque leaf, so Ballista's scheduler could not restrict a task to its file groups
/// (`restrict_plan_to_partitions`), every task read the whole table, and a table of several
/// segments spread over several tasks was counted once per task.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_of_many_segments_is_counted_once_on_a_cluster() -> Result<()> {
    const COPIES: usize = 6;
    let h = home().await?;
    for _ in 0..COPIES {
        ingest(&h.engine, "Syslog.csv", "SyslogCopies", Format::Csv).await?;
    }
    let tables = h.engine.tables(WS).await?;
    let copies = tables
        .iter()
        .find(|t| t.name == "SyslogCopies")
        .context("no SyslogCopies table")?;
    assert_eq!(
        copies.segments, COPIES,
        "one segment per ingestion expected"
    );
    let (cluster, _stores) = cluster(&h).await?;
    let session = h.engine.query_session(WS).await?;
    let remote = distributed_context(&session, cluster.scheduler())?;
    // One file group per segment, more than one task's slots (two executors of two): the
    // scheduler hands the scan's partitions to several tasks.
    remote
        .state_ref()
        .write()
        .config_mut()
        .options_mut()
        .execution
        .target_partitions = 8;
    for q in [
        "SELECT count(*) AS n, count(DISTINCT SyslogMessage) AS d FROM SyslogCopies",
        "SELECT Computer, count(*) AS n FROM SyslogCopies GROUP BY Computer ORDER BY Computer",
    ] {
        let local = sql(session.context(), q).await?;
        let distributed = sql(&remote, q)
            .await
            .with_context(|| format!("distributed: {q}"))?;
        assert_eq!(distributed, local, "{q}");
    }
    let total = sql(session.context(), "SELECT count(*) AS n FROM SyslogCopies").await?;
    let single = sql(session.context(), "SELECT count(*) AS n FROM Syslog").await?;
    let n = |t: &str| -> Result<usize> {
        t.lines()
            .nth(3)
            .and_then(|l| l.trim_matches(|c| c == '|' || c == ' ').parse().ok())
            .with_context(|| format!("no count in {t}"))
    };
    assert_eq!(n(&total)?, COPIES * n(&single)?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kql_function_the_cluster_cannot_rebuild_is_refused_by_name() -> Result<()> {
    let h = home().await?;
    let (cluster, _stores) = cluster(&h).await?;
    let session = h.engine.query_session(WS).await?;
    let remote = distributed_context(&session, cluster.scheduler())?;
    // KQL's `hash_sha256` is one of its row functions: types and a function pointer that its
    // name does not carry.
    let plan = h
        .engine
        .plan_kql(
            WS,
            "Syslog | extend h = hash_sha256(Computer) | summarize n = count() by h",
        )
        .await?
        .plan;
    let local = DataFrame::new(session.context().state(), plan.clone())
        .collect()
        .await?;
    assert!(!local.is_empty());
    let err = DataFrame::new(remote.state(), plan)
        .collect()
        .await
        .err()
        .context("a KQL row function was sent by name")?
        .to_string();
    // The scheduler refuses it with logvault's named error (in Ballista's debug form).
    assert!(
        err.contains("UnsupportedFunction") && err.contains("hash_sha256"),
        "{err}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_at_the_vault_fails_a_distributed_query_on_the_executors() -> Result<()> {
    let h = home().await?;
    let (cluster, stores) = tokio::time::timeout(std::time::Duration::from_secs(30), cluster(&h))
        .await
        .context("the cluster did not start in 30 s")??;
    // The query node admitted both accounts before the revocation: only the executors can stop
    // the query now.
    let session = h.engine.query_session(WS).await?;
    let remote = distributed_context(&session, cluster.scheduler())?;
    let q = "SELECT max(Account) AS a, count(*) AS n FROM SecurityEvent";
    let before = sql(&remote, q).await?;
    assert_eq!(before, sql(session.context(), q).await?);

    h.engine.vault().set_key_enabled(VAULT, KEY, None, false)?;
    // The executors' cached keys expire (60 s): they ask the vault again, which refuses.
    h.clock.advance(Duration::seconds(61));
    let err = sql(&remote, q)
        .await
        .err()
        .context("a query of revoked data succeeded on the cluster")?
        .to_string();
    let account = AccountId::cluster(CLUSTER)?;
    // Ballista reports the executor's error in its debug form: logvault's named error, the
    // account, and the vault's answer.
    assert!(
        err.contains("KeyUnavailable {")
            && err.contains(&format!("account: \"{account}\""))
            && err.contains("is disabled"),
        "{err}"
    );
    // The executor that was refused dropped the key (one that was not asked since keeps its
    // expired copy until its next use, when it asks the vault first).
    assert!(
        stores
            .iter()
            .any(|s| s.keyring().cached_aek(&account).is_none()),
        "every executor kept the revoked key"
    );
    // Data under the service key still answers.
    let q = "SELECT count(*) AS n FROM Syslog";
    assert_eq!(sql(&remote, q).await?, sql(session.context(), q).await?);
    Ok(())
}

/// Every file under the executors' work directories.
fn shuffle_files(cluster: &InProcessCluster) -> Result<Vec<std::path::PathBuf>> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
        // The scheduler has a finished job's intermediate stages removed meanwhile.
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for e in cluster.executors() {
        walk(&e.work_dir, &mut out)?;
    }
    Ok(out)
}

/// A shuffle file's bytes, or `None` if the scheduler had it removed since it was listed (it
/// drops a finished job's intermediate stages).
fn read_if_present(path: &std::path::Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Values of `Syslog` that a query grouping by message moves through every stage's output.
const NEEDLES: &[&str] = &[
    "pam_unix(sudo:session)",
    "tailfilereader.rb",
    "CUSTOM_LOG_BLOB",
];

/// The files holding one of [`NEEDLES`] in clear, and how many files there are.
async fn plaintext_after_a_query(shuffle: ShuffleMode) -> Result<(Vec<String>, usize)> {
    let h = home().await?;
    let (cluster, _stores) = cluster_with(&h, shuffle).await?;
    let session = h.engine.query_session(WS).await?;
    let remote = distributed_context(&session, cluster.scheduler())?;
    // Uncompressed shuffle files, so that nothing but encryption hides a value.
    remote
        .state_ref()
        .write()
        .config_mut()
        .options_mut()
        .set("ballista.shuffle.compression.codec", "none")?;
    let q = "SELECT SyslogMessage, count(*) AS n FROM Syslog GROUP BY SyslogMessage \
             ORDER BY SyslogMessage";
    let local = sql(session.context(), q).await?;
    assert!(local.contains(NEEDLES[0]), "{local}");
    assert_eq!(sql(&remote, q).await?, local);
    let files = shuffle_files(&cluster)?;
    let mut found = Vec::new();
    for f in &files {
        let Some(bytes) = read_if_present(f)? else {
            continue;
        };
        for needle in NEEDLES {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(format!("{needle} in {}", f.display()));
            }
        }
    }
    Ok((found, files.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_table_value_rests_in_clear_in_an_executors_work_directory() -> Result<()> {
    let (found, files) = plaintext_after_a_query(ShuffleMode::Encrypted).await?;
    assert!(files >= 2, "the query left {files} shuffle files to search");
    assert!(found.is_empty(), "plaintext in shuffle files: {found:?}");
    // The control: Ballista's own engine leaves the same values in clear in the same place.
    let (found, files) = plaintext_after_a_query(ShuffleMode::BallistaPlaintext).await?;
    assert!(files >= 2, "Ballista's engine left {files} shuffle files");
    assert!(
        found.len() >= NEEDLES.len(),
        "the search does not see Ballista's plaintext: {found:?}"
    );
    Ok(())
}

/// Fetches a partition file from an executor's Flight service, as another executor's reader
/// does (`flight`: Flight `do_get`; otherwise Ballista's block transport), and counts its rows.
async fn fetch(
    port: u16,
    file: &std::path::Path,
    work_dir: &std::path::Path,
    flight: bool,
) -> Result<usize> {
    use ballista_core::client::BallistaClient;
    use ballista_core::serde::scheduler::{PartitionId, ShuffleLayout};
    use futures::TryStreamExt;
    // <work>/<job>/<stage>/<partition>/data-<file>.arrow
    let rel: Vec<String> = file
        .strip_prefix(work_dir)?
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let [job, stage, partition, name] = rel.as_slice() else {
        bail!("unexpected shuffle path {}", file.display());
    };
    let file_id: u64 = name
        .strip_prefix("data-")
        .and_then(|n| n.strip_suffix(".arrow"))
        .context("file id")?
        .parse()?;
    let mut client = BallistaClient::try_new("localhost", port, 16 << 20, false, None, 1, 0, 0, 0)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let id = PartitionId {
        job_id: job.as_str().into(),
        stage_id: stage.parse()?,
        partition_id: partition.parse()?,
    };
    let stream = client
        .fetch_partition(
            "executor",
            &id,
            Some(file_id),
            ShuffleLayout::Passthrough,
            flight,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let batches: Vec<RecordBatch> = stream.try_collect().await?;
    Ok(batches.iter().map(RecordBatch::num_rows).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tampered_shuffle_file_fails_its_fetch_naming_the_partition() -> Result<()> {
    let h = home().await?;
    let (cluster, _stores) = cluster(&h).await?;
    let session = h.engine.query_session(WS).await?;
    let remote = distributed_context(&session, cluster.scheduler())?;
    let q = "SELECT Computer, count(*) AS n FROM Syslog GROUP BY Computer ORDER BY Computer";
    assert_eq!(sql(&remote, q).await?, sql(session.context(), q).await?);

    // A file of the job's last stage, which the scheduler keeps for the client after the job
    // (it drops intermediate stages' files).
    let stage_of = |f: &std::path::Path, dir: &std::path::Path| -> Option<usize> {
        f.strip_prefix(dir)
            .ok()?
            .iter()
            .nth(1)?
            .to_str()?
            .parse()
            .ok()
    };
    let files = shuffle_files(&cluster)?;
    let (executor, file) = cluster
        .executors()
        .iter()
        .flat_map(|e| {
            files
                .iter()
                .filter(|f| f.starts_with(&e.work_dir))
                .map(move |f| (e, f.clone()))
        })
        .max_by_key(|(e, f)| stage_of(f, &e.work_dir))
        .context("no executor wrote a shuffle file")?;
    // Untouched, the file is served (both transports) and holds rows.
    for flight in [true, false] {
        let rows = fetch(executor.flight_port, &file, &executor.work_dir, flight).await?;
        assert!(rows > 0, "{} served no rows", file.display());
    }
    let rel: Vec<String> = file
        .strip_prefix(&executor.work_dir)?
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let named = format!(
        "job {} stage {} partition {} file {}",
        rel[0],
        rel[1],
        rel[2],
        rel[3]
            .trim_start_matches("data-")
            .trim_end_matches(".arrow")
    );
    let mut bytes = std::fs::read(&file)?;
    let at = bytes.len() - 20;
    bytes[at] ^= 0x40;
    std::fs::write(&file, &bytes)?;
    for flight in [true, false] {
        let err = fetch(executor.flight_port, &file, &executor.work_dir, flight)
            .await
            .err()
            .context("a tampered shuffle file was served")?;
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&named) && msg.contains("fails authentication"),
            "flight={flight}: {msg}"
        );
    }
    Ok(())
}
