//! The query suite on one node against a Ballista cluster of this machine (issue 23,
//! `docs/distributed.md`): a scheduler and executors in this process on loopback ports, each
//! executor with its own store and keyring over the home's storage and vault, as
//! `InProcessCluster` starts them. Two clusters run side by side: one with logvault's encrypted
//! shuffle (what every logvault executor runs) and one with Ballista's plaintext shuffle, so
//! the cost of the shuffle's encryption is a ratio of its own. A trivial query (a count of the
//! small inventory table) measures the fixed cost of a distributed job (submission, planning on
//! the scheduler, scheduling, polling, fetching the result).
//!
//! Every system's answer is checked equal to the single node's; figures are medians of
//! interleaved runs (single node, encrypted cluster, plaintext cluster, in turn) after one
//! warm-up run each. The query node's hot cache is off, so every system reads and decrypts the
//! segments from storage.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datafusion::prelude::SessionContext;
use logvault::store::{KeyringConfig, Store, StoreConfig};
use logvault::{Engine, HomeConfig};
use logvault_distributed::{ExecutorSpec, InProcessCluster, ShuffleMode, distributed_context};
use serde::{Deserialize, Serialize};

use crate::answers::Answer;
use crate::ingest::{self, DataFormat, INVENTORY_TABLE, LOG_TABLE};
use crate::queries::{self, QueryDef};
use crate::setup::{self, Protection, WORKSPACE};
use crate::stats::{format_ms, format_ratio, median, ratio};

/// What `logvault-bench distributed` runs.
#[derive(Debug, Clone)]
pub struct DistributedOptions {
    /// Rows of the logs table.
    pub rows: u64,
    /// Measured runs per query and system.
    pub repeats: usize,
    /// Executors per cluster.
    pub executors: usize,
    /// Task slots per executor.
    pub slots: usize,
    /// Generator seed.
    pub seed: u64,
    /// Inputs and the home.
    pub work: PathBuf,
    /// Where distributed.md and distributed.json go.
    pub out: PathBuf,
}

/// One query's medians.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DistributedRow {
    /// The query's name.
    pub query: String,
    /// Single node, median ms.
    pub single_ms: f64,
    /// The cluster with the encrypted shuffle, median ms.
    pub encrypted_ms: f64,
    /// The cluster with Ballista's plaintext shuffle, median ms.
    pub plaintext_ms: f64,
    /// Bytes the encrypted cluster's executors wrote to their work directories per run
    /// (shuffle files, sealed), median.
    pub shuffle_bytes: u64,
    /// Rows of the answer.
    pub rows: usize,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DistributedResults {
    /// Rows of the logs table.
    pub rows: u64,
    /// Measured runs per query and system.
    pub repeats: usize,
    /// Executors per cluster and task slots per executor.
    pub executors: usize,
    /// Task slots per executor.
    pub slots: usize,
    /// Seconds to ingest the logs.
    pub ingest_secs: f64,
    /// The trivial query (fixed cost of a job), then the suite.
    pub queries: Vec<DistributedRow>,
    /// The machine's load average (1, 5, 15 minutes) when the queries started and ended:
    /// other work on the machine makes every figure noisier.
    pub load: [String; 2],
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "[distributed] {line}");
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

async fn run_once(ctx: &SessionContext, sql: &str) -> anyhow::Result<(f64, Answer)> {
    let started = Instant::now();
    let answer = queries::answer(ctx, sql).await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok((ms, answer))
}

/// A store of its own for an executor, over the engine's storage root and vault.
async fn executor_store(engine: &Engine) -> anyhow::Result<Arc<Store>> {
    let store = engine.store();
    Ok(Arc::new(
        Store::open(
            store.root().clone(),
            engine.key_vault(),
            store.service_binding(),
            StoreConfig {
                keyring: KeyringConfig::default(),
                ..StoreConfig::default()
            },
            engine.clock().clone(),
        )
        .await?,
    ))
}

async fn cluster(
    engine: &Engine,
    options: &DistributedOptions,
    shuffle: ShuffleMode,
) -> anyhow::Result<InProcessCluster> {
    let mut specs = Vec::new();
    for i in 0..options.executors {
        specs.push(ExecutorSpec {
            name: format!("executor-{}", i + 1),
            store: executor_store(engine).await?,
            vcores: options.slots,
        });
    }
    Ok(InProcessCluster::start_with(specs, shuffle).await?)
}

/// Runs the comparison and writes its report.
///
/// # Errors
/// Set-up, ingest and query errors, and any answer that differs from the single node's.
pub async fn run(options: &DistributedOptions) -> anyhow::Result<DistributedResults> {
    let inputs = options.work.join("inputs");
    let logs = ingest::input_file(&inputs, options.rows, options.seed, DataFormat::Ndjson)?;
    let inventory = ingest::inventory_file(&inputs)?;
    let parquet_dir = options.work.join("concurrency-parquet");
    std::fs::create_dir_all(&parquet_dir)?;
    let logs_parquet = parquet_dir.join(format!("logs-{}.parquet", options.rows));
    let inventory_parquet = parquet_dir.join("inventory.parquet");
    if !logs_parquet.exists() {
        ingest::parse_to_parquet(&logs, DataFormat::Ndjson, &logs_parquet)?;
    }
    queries::write_inventory_parquet(
        &inventory_parquet,
        crate::generator::GenOptions::default().hosts,
    )?;
    let params = queries::discover_params(&logs_parquet, &inventory_parquet).await?;

    // A home under a customer key (executors unwrap it at the vault), hot cache off.
    let home = options.work.join("distributed-home");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home)?;
    let mut config = HomeConfig::new_local();
    config.timings.async_operation_secs = 0;
    config.hot_cache.memory_bytes = 0;
    std::fs::write(
        home.join("config.json"),
        serde_json::to_vec_pretty(&config)?,
    )?;
    let engine = Engine::open(&home).await?;
    setup::prepare_workspace(&engine, Protection::Customer).await?;
    let started = Instant::now();
    for (table, file) in [(LOG_TABLE, &logs), (INVENTORY_TABLE, &inventory)] {
        crate::concurrency::ingest_file(&engine, table, file).await?;
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    say(&format!(
        "ingested {} rows in {ingest_secs:.1} s",
        options.rows
    ));

    let encrypted = cluster(&engine, options, ShuffleMode::Encrypted).await?;
    let plaintext = cluster(&engine, options, ShuffleMode::BallistaPlaintext).await?;
    let session = engine.query_session(WORKSPACE).await?;
    let single = session.context().clone();
    let on_encrypted = distributed_context(&session, encrypted.scheduler())?;
    let on_plaintext = distributed_context(&session, plaintext.scheduler())?;
    let work_dirs: Vec<PathBuf> = encrypted
        .executors()
        .iter()
        .map(|e| e.work_dir.clone())
        .collect();
    let written = || work_dirs.iter().map(|d| dir_bytes(d)).sum::<u64>();

    let mut suite = vec![QueryDef {
        name: "job_overhead".into(),
        title: "trivial: count of the 50-row inventory".into(),
        sql: format!(r#"SELECT COUNT(*) AS n FROM "{INVENTORY_TABLE}""#),
    }];
    suite.extend(queries::suite(&params));
    let load_before = load_average();
    let mut rows = Vec::new();
    for q in &suite {
        let (_, expected) = run_once(&single, &q.sql).await?;
        for (name, ctx) in [("encrypted", &on_encrypted), ("plaintext", &on_plaintext)] {
            let (_, got) = run_once(ctx, &q.sql).await?;
            if let Some(diff) = got.difference(&expected) {
                anyhow::bail!("{}: the {name} cluster's answer differs: {diff}", q.name);
            }
        }
        let (mut s, mut e, mut p, mut bytes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..options.repeats.max(1) {
            s.push(run_once(&single, &q.sql).await?.0);
            let before = written();
            e.push(run_once(&on_encrypted, &q.sql).await?.0);
            bytes.push(written().saturating_sub(before) as f64);
            p.push(run_once(&on_plaintext, &q.sql).await?.0);
        }
        let row = DistributedRow {
            query: q.name.clone(),
            single_ms: median(&s).unwrap_or(f64::NAN),
            encrypted_ms: median(&e).unwrap_or(f64::NAN),
            plaintext_ms: median(&p).unwrap_or(f64::NAN),
            shuffle_bytes: median(&bytes).unwrap_or(0.0) as u64,
            rows: expected.rows.len(),
        };
        say(&format!(
            "{}: single {}, encrypted cluster {} ({}), plaintext cluster {}, {} B shuffled",
            row.query,
            format_ms(row.single_ms),
            format_ms(row.encrypted_ms),
            format_ratio(ratio(row.encrypted_ms, row.single_ms)),
            format_ms(row.plaintext_ms),
            row.shuffle_bytes
        ));
        rows.push(row);
    }
    let results = DistributedResults {
        rows: options.rows,
        repeats: options.repeats,
        executors: options.executors,
        slots: options.slots,
        ingest_secs,
        queries: rows,
        load: [load_before, load_average()],
    };
    crate::report::write_report(&options.out, "distributed", &results, &markdown(&results))?;
    drop((on_encrypted, on_plaintext, encrypted, plaintext));
    let _ = std::fs::remove_dir_all(&home);
    Ok(results)
}

fn geomean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((0.0, 0usize), |(s, n), v| (s + v.ln(), n + 1));
    (n > 0).then(|| (sum / n as f64).exp())
}

/// The report's markdown.
pub fn markdown(r: &DistributedResults) -> String {
    let mut md = format!(
        "# Distributed queries: one node against a Ballista cluster on the same machine\n\n\
         {} rows (customer key), {} measured runs per query and system after one warm-up, \
         medians. Cluster: a scheduler and {} executors with {} task slot(s) each, in the \
         benchmark's process on loopback (`logvault-bench distributed`); the query node's hot \
         cache off. *Encrypted*: logvault's shuffle; *plaintext*: Ballista's own (its ratio to \
         encrypted is the shuffle encryption's cost). Every answer was checked equal to the \
         single node's. Load average at the start and the end: {} / {}.\n\n\
         | query | single node | cluster, encrypted shuffle | vs single | cluster, plaintext shuffle | encrypted vs plaintext | shuffle written | answer rows |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
        r.rows, r.repeats, r.executors, r.slots, r.load[0], r.load[1]
    );
    for q in &r.queries {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.1} MB | {} |\n",
            q.query,
            format_ms(q.single_ms),
            format_ms(q.encrypted_ms),
            format_ratio(ratio(q.encrypted_ms, q.single_ms)),
            format_ms(q.plaintext_ms),
            format_ratio(ratio(q.encrypted_ms, q.plaintext_ms)),
            q.shuffle_bytes as f64 / 1e6,
            q.rows
        ));
    }
    let suite = || r.queries.iter().filter(|q| q.query != "job_overhead");
    md.push_str(&format!(
        "\nGeometric mean over the suite: cluster (encrypted) vs single node {}, encrypted vs \
         plaintext shuffle {}.\n",
        format_ratio(geomean(suite().map(|q| q.encrypted_ms / q.single_ms))),
        format_ratio(geomean(suite().map(|q| q.encrypted_ms / q.plaintext_ms))),
    ));
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_has_a_row_per_query_and_the_suite_s_geomean() {
        let row = |query: &str, single: f64, enc: f64| DistributedRow {
            query: query.into(),
            single_ms: single,
            encrypted_ms: enc,
            plaintext_ms: enc / 2.0,
            shuffle_bytes: 2_000_000,
            rows: 3,
        };
        let r = DistributedResults {
            rows: 1000,
            repeats: 3,
            executors: 2,
            slots: 1,
            ingest_secs: 1.0,
            load: ["0.1 0.2 0.3".into(), "1.0 1.0 1.0".into()],
            queries: vec![
                row("job_overhead", 1.0, 50.0),
                row("a", 100.0, 200.0),
                row("b", 100.0, 800.0),
            ],
        };
        let md = markdown(&r);
        assert!(
            md.contains("| a | 100 ms | 200 ms | 2.00× | 100 ms | 2.00× | 2.0 MB | 3 |"),
            "{md}"
        );
        // The geomean of 2× and 8× is 4×; the job's overhead row is not in it.
        assert!(
            md.contains("vs single node 4.00×, encrypted vs plaintext shuffle 2.00×"),
            "{md}"
        );
    }
}
