//! Key operations on a workspace under a customer key: rotation at several data sizes (nothing
//! is rewritten, so it should not depend on the size), and how long a revocation takes to take
//! effect and a restore to resume service, with the key monitor running and a short key check
//! interval.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use logvault::ingest::Format;
use logvault::{Engine, IngestOptions};
use serde::{Deserialize, Serialize};

use crate::answers::{Answer, Cell};
use crate::ingest::LOG_TABLE;
use crate::setup::{self, CLUSTER, HomeTimings, KEY, Protection, VAULT, WORKSPACE};
use crate::stats::median;
use crate::sys;

/// The probe table polled during revocation and restore.
const PROBE_TABLE: &str = "KeyProbe";

/// Rotations at one data size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationResult {
    /// Rows in the workspace.
    pub rows: u64,
    /// Bytes of NDJSON ingested.
    pub raw_bytes: u64,
    /// Bytes stored (encrypted segments and catalog).
    pub stored_bytes: u64,
    /// Milliseconds of each rotation: the cluster's key update to the new version (validation,
    /// re-wrap of the account key), the wait for it, and a forced key check (unwrap).
    pub rotation_ms: Vec<f64>,
    /// Median of `rotation_ms`.
    pub median_ms: f64,
    /// Milliseconds the vault took to create each new key version (RSA-2048; not logvault).
    pub new_version_ms: Vec<f64>,
    /// Files under the storage directory changed by the rotations, and their bytes.
    pub files_changed: usize,
    /// Bytes of those files.
    pub bytes_changed: u64,
    /// Rows counted after the rotations (must equal `rows`).
    pub rows_after: u64,
}

/// Revocations and restores, each timed from the vault change to the observed effect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationResult {
    /// The key check interval configured, seconds (min, max).
    pub key_check_secs: (i64, i64),
    /// How often the harness polled, milliseconds.
    pub poll_ms: u64,
    /// Key disabled → queries refused, ms per trial.
    pub revoke_query_ms: Vec<f64>,
    /// Key disabled → ingestion dropped, ms per trial.
    pub revoke_ingest_ms: Vec<f64>,
    /// Key enabled → queries answered, ms per trial.
    pub restore_query_ms: Vec<f64>,
    /// Key enabled → ingestion accepted, ms per trial.
    pub restore_ingest_ms: Vec<f64>,
}

/// What the key operation benchmark measures.
#[derive(Debug, Clone)]
pub struct KeyOpsOptions {
    /// Where the generated inputs are.
    pub data_dir: PathBuf,
    /// Where homes go.
    pub work_dir: PathBuf,
    /// Seed of the generated data.
    pub seed: u64,
    /// Data sizes, rows.
    pub sizes: Vec<u64>,
    /// Rotations per size.
    pub rotations: usize,
    /// Revocation/restore trials (at the smallest size).
    pub revocations: usize,
    /// Key check interval, seconds.
    pub key_check_secs: (i64, i64),
}

/// Rotation results per size, and the revocation trials.
///
/// # Errors
/// Set-up, engine and vault errors; a revocation or restore that takes no effect within the
/// bound; a count that changes across rotations.
pub async fn run(
    options: &KeyOpsOptions,
    progress: &dyn Fn(&str),
) -> anyhow::Result<(Vec<RotationResult>, RevocationResult)> {
    let mut rotations = Vec::new();
    let mut revocation = None;
    let mut sizes = options.sizes.clone();
    sizes.sort_unstable();
    for (i, &rows) in sizes.iter().enumerate() {
        let home = options.work_dir.join(format!("keyops-{rows}"));
        if home.exists() {
            std::fs::remove_dir_all(&home)?;
        }
        let engine = setup::open_home(
            &home,
            HomeTimings {
                key_check_secs: Some(options.key_check_secs),
            },
        )
        .await?;
        setup::prepare_workspace(&engine, Protection::Customer).await?;
        let input = crate::ingest::input_file(
            &options.data_dir,
            rows,
            options.seed,
            crate::ingest::DataFormat::Ndjson,
        )?;
        progress(&format!("key operations: ingesting {rows} rows"));
        let report = engine
            .ingest(
                WORKSPACE,
                LOG_TABLE,
                BufReader::with_capacity(1 << 20, File::open(&input)?),
                &IngestOptions::new(Format::JsonLines),
                None,
            )
            .await?;
        if report.accepted != rows {
            bail!("ingested {} rows of {rows}", report.accepted);
        }
        progress(&format!(
            "key operations: {} rotations at {rows} rows",
            options.rotations
        ));
        rotations.push(
            rotate(
                &engine,
                &home,
                rows,
                std::fs::metadata(&input)?.len(),
                options.rotations,
            )
            .await?,
        );
        if i == 0 && options.revocations > 0 {
            progress(&format!(
                "key operations: {} revocations",
                options.revocations
            ));
            revocation = Some(revoke_and_restore(&engine, options).await?);
        }
        drop(engine);
        std::fs::remove_dir_all(&home)?;
    }
    Ok((rotations, revocation.unwrap_or_default()))
}

/// Each file under `dir` with its size and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, Option<SystemTime>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(path),
                Ok(m) => {
                    out.insert(path, (m.len(), m.modified().ok()));
                }
                Err(_) => {}
            }
        }
    }
    out
}

async fn count_rows(engine: &Engine, table: &str) -> anyhow::Result<u64> {
    let session = engine.query_session(WORKSPACE).await?;
    let batches = session
        .context()
        .sql(&format!(r#"SELECT COUNT(*) AS n FROM "{table}""#))
        .await?
        .collect()
        .await?;
    match Answer::from_batches(&batches)?
        .rows
        .first()
        .and_then(|r| r.first())
    {
        Some(Cell::Int(n)) => Ok(u64::try_from(*n)?),
        other => bail!("unexpected count {other:?}"),
    }
}

async fn rotate(
    engine: &Engine,
    home: &Path,
    rows: u64,
    raw_bytes: u64,
    times: usize,
) -> anyhow::Result<RotationResult> {
    let storage = home.join("storage");
    let before = snapshot(&storage);
    let mut rotation_ms = Vec::new();
    let mut new_version_ms = Vec::new();
    for _ in 0..times {
        let started = Instant::now();
        let key = engine.vault().rotate_key(VAULT, KEY)?;
        new_version_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let started = Instant::now();
        setup::set_key_version(engine, &key.version).await?;
        let status = engine.check_key(CLUSTER, true).await?;
        rotation_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if status.key_version_in_use.as_deref() != Some(key.version.as_str()) {
            bail!(
                "after rotation the cluster uses key version {:?}, not {}",
                status.key_version_in_use,
                key.version
            );
        }
    }
    let after = snapshot(&storage);
    let changed: Vec<&PathBuf> = before
        .iter()
        .filter(|(path, meta)| after.get(*path) != Some(meta))
        .map(|(path, _)| path)
        .collect();
    let bytes_changed = changed
        .iter()
        .filter_map(|p| after.get(*p).map(|m| m.0))
        .sum();
    let rows_after = count_rows(engine, LOG_TABLE).await?;
    if rows_after != rows {
        bail!("{rows_after} rows readable after rotation, expected {rows}");
    }
    Ok(RotationResult {
        rows,
        raw_bytes,
        stored_bytes: sys::dir_size(&storage),
        median_ms: median(&rotation_ms).unwrap_or(f64::NAN),
        rotation_ms,
        new_version_ms,
        files_changed: changed.len(),
        bytes_changed,
        rows_after,
    })
}

/// Whether a probe query succeeds now.
async fn query_ok(engine: &Engine) -> bool {
    count_rows(engine, PROBE_TABLE).await.is_ok()
}

/// Whether a one-row ingestion is accepted now (not dropped, not refused).
async fn ingest_ok(engine: &Engine) -> bool {
    matches!(ingest_one(engine).await, Ok(true))
}

async fn ingest_one(engine: &Engine) -> anyhow::Result<bool> {
    let row = format!(
        "{{\"TimeGenerated\":\"{}\",\"Probe\":1}}\n",
        chrono::Utc::now().to_rfc3339()
    );
    let report = engine
        .ingest(
            WORKSPACE,
            PROBE_TABLE,
            std::io::Cursor::new(row),
            &IngestOptions::new(Format::JsonLines),
            None,
        )
        .await?;
    Ok(report.accepted == 1)
}

/// Polls until both probes report `want`; milliseconds from `since` to each first doing so.
async fn wait_for(
    engine: &Engine,
    want: bool,
    since: Instant,
    bound: Duration,
    poll: Duration,
) -> anyhow::Result<(f64, f64)> {
    let (mut query_at, mut ingest_at) = (None, None);
    while query_at.is_none() || ingest_at.is_none() {
        if since.elapsed() > bound {
            bail!(
                "the key change took no effect within {}s (queries: {}, ingestion: {})",
                bound.as_secs(),
                query_at.is_some(),
                ingest_at.is_some()
            );
        }
        if query_at.is_none() && query_ok(engine).await == want {
            query_at = Some(since.elapsed().as_secs_f64() * 1000.0);
        }
        if ingest_at.is_none() && ingest_ok(engine).await == want {
            ingest_at = Some(since.elapsed().as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(poll).await;
    }
    Ok((query_at.unwrap_or_default(), ingest_at.unwrap_or_default()))
}

async fn revoke_and_restore(
    engine: &Engine,
    options: &KeyOpsOptions,
) -> anyhow::Result<RevocationResult> {
    let poll = Duration::from_millis(100);
    let bound = Duration::from_secs(u64::try_from(options.key_check_secs.1 * 5 + 30)?);
    let mut result = RevocationResult {
        key_check_secs: options.key_check_secs,
        poll_ms: 100,
        ..RevocationResult::default()
    };
    if !ingest_ok(engine).await || !query_ok(engine).await {
        bail!("the workspace is not usable before revocation");
    }
    let monitor = engine.spawn_key_monitor();
    for _ in 0..options.revocations {
        let since = Instant::now();
        engine.vault().set_key_enabled(VAULT, KEY, None, false)?;
        let (q, i) = wait_for(engine, false, since, bound, poll)
            .await
            .context("revocation")?;
        result.revoke_query_ms.push(q);
        result.revoke_ingest_ms.push(i);
        let since = Instant::now();
        engine.vault().set_key_enabled(VAULT, KEY, None, true)?;
        let (q, i) = wait_for(engine, true, since, bound, poll)
            .await
            .context("restore")?;
        result.restore_query_ms.push(q);
        result.restore_ingest_ms.push(i);
    }
    monitor.abort();
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_see_changed_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"1").unwrap();
        let before = snapshot(dir.path());
        std::fs::write(dir.path().join("a"), b"22").unwrap();
        std::fs::write(dir.path().join("b"), b"3").unwrap();
        let after = snapshot(dir.path());
        assert_eq!(before.len(), 1);
        assert_eq!(after.len(), 2);
        assert_ne!(
            before.get(&dir.path().join("a")),
            after.get(&dir.path().join("a"))
        );
    }
}
