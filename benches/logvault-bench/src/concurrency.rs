//! One engine, many clients: N concurrent query streams on a customer-key workspace while an
//! ingest runs, against the same N streams over DataFusion on the plaintext Parquet of the same
//! rows. Reports queries per second and p50/p99 latency per concurrency level, and the ingest's
//! rows per second alone and during the logvault streams.
//!
//! Each stream is a client with a session of its own (opened once, as a connection would be),
//! running the suite's queries in turn, each to its last batch. The streams of one level run
//! for a fixed time; queries still running at the end are finished and counted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use datafusion::common::TableReference;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use logvault::query::{SessionOptions, new_session};
use logvault::{Engine, IngestOptions};
use serde::Serialize;

use crate::ingest::{self, DataFormat, INVENTORY_TABLE, LOG_TABLE};
use crate::queries::{self, QueryDef};
use crate::setup::{self, HomeTimings, Protection, WORKSPACE};
use crate::stats::percentile;

/// What to run.
#[derive(Debug, Clone)]
pub struct ConcurrencyOptions {
    /// Rows of the queried data.
    pub rows: u64,
    /// Rows of the ingest that runs beside the queries.
    pub ingest_rows: u64,
    /// Concurrent streams per level.
    pub streams: Vec<usize>,
    /// How long each level runs, per system.
    pub seconds: u64,
    /// Generated inputs and homes.
    pub work: PathBuf,
    /// Where `concurrency.md` and `concurrency.json` go.
    pub out: PathBuf,
    /// Generator seed.
    pub seed: u64,
    /// How much lower the query streams' CPU priority is than the ingest's (the nice
    /// increment of `logvault::QueryRuntime`; `logvault serve` uses 10, 0 is equal).
    pub query_priority: i32,
}

/// One level on one system.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Level {
    /// `datafusion-parquet` or `logvault-cmk`.
    pub system: String,
    /// Concurrent streams.
    pub streams: usize,
    /// Queries completed.
    pub queries: usize,
    /// Queries per second.
    pub qps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Rows per second of the ingest running beside the streams (logvault only).
    pub ingest_rows_per_sec: Option<f64>,
}

/// The run's results.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConcurrencyResults {
    /// Rows queried.
    pub rows: u64,
    /// Rows ingested beside the streams.
    pub ingest_rows: u64,
    /// Seconds per level.
    pub seconds: u64,
    /// Ingest rows per second with no query running.
    pub ingest_alone_rows_per_sec: f64,
    /// The query streams' priority below the ingest's (nice increment).
    pub query_priority: i32,
    /// Every level of both systems.
    pub levels: Vec<Level>,
}

/// A progress line on stderr (the harness's binary owns the terminal; this is its library).
fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

async fn run_to_end(ctx: &SessionContext, sql: &str) -> anyhow::Result<usize> {
    let batches = ctx
        .sql(sql)
        .await
        .with_context(|| format!("planning {sql}"))?
        .collect()
        .await
        .with_context(|| format!("running {sql}"))?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

/// Runs `streams` clients on the query runtime `on`, each with the session `open` gives it, for
/// `seconds`; returns every query's latency in ms and the wall time.
async fn level<F, Fut>(
    on: &logvault::QueryRuntime,
    streams: usize,
    seconds: u64,
    suite: &[QueryDef],
    open: F,
) -> anyhow::Result<(Vec<f64>, f64)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<SessionContext>>,
{
    let mut sessions = Vec::with_capacity(streams);
    for _ in 0..streams {
        sessions.push(open().await?);
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, ctx) in sessions.into_iter().enumerate() {
        let suite: Vec<String> = suite.iter().map(|q| q.sql.clone()).collect();
        tasks.spawn_on(
            async move {
                let mut latencies = Vec::new();
                let mut next = i;
                while Instant::now() < deadline {
                    let sql = &suite[next % suite.len()];
                    next += 1;
                    let t = Instant::now();
                    run_to_end(&ctx, sql).await?;
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                anyhow::Ok(latencies)
            },
            on.handle(),
        );
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done??);
    }
    all.sort_by(f64::total_cmp);
    Ok((all, started.elapsed().as_secs_f64()))
}

/// Ingests the NDJSON `file` into `table` of the benchmark's workspace: rows accepted, seconds.
pub(crate) async fn ingest_file(
    engine: &Engine,
    table: &str,
    file: &Path,
) -> anyhow::Result<(u64, f64)> {
    let reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(file)?);
    let started = Instant::now();
    let report = engine
        .ingest(
            WORKSPACE,
            table,
            reader,
            &IngestOptions::new(DataFormat::Ndjson.parser_format()?),
            None,
        )
        .await?;
    Ok((report.accepted, started.elapsed().as_secs_f64()))
}

/// Runs the concurrency benchmark and writes its report.
///
/// # Errors
/// Set-up, ingest and query errors.
pub async fn run(options: &ConcurrencyOptions) -> anyhow::Result<ConcurrencyResults> {
    let inputs = options.work.join("inputs");
    let logs = ingest::input_file(&inputs, options.rows, options.seed, DataFormat::Ndjson)?;
    let extra = ingest::input_file(
        &inputs,
        options.ingest_rows,
        options.seed + 1,
        DataFormat::Ndjson,
    )?;
    let inventory = ingest::inventory_file(&inputs)?;
    let parquet_dir = options.work.join("concurrency-parquet");
    std::fs::create_dir_all(&parquet_dir)?;
    let logs_parquet = parquet_dir.join(format!("logs-{}.parquet", options.rows));
    let inventory_parquet = parquet_dir.join("inventory.parquet");
    ingest::parse_to_parquet(&logs, DataFormat::Ndjson, &logs_parquet)?;
    queries::write_inventory_parquet(
        &inventory_parquet,
        crate::generator::GenOptions::default().hosts,
    )?;

    let home = options.work.join("concurrency-home");
    let _ = std::fs::remove_dir_all(&home);
    let engine = setup::open_home(
        &home,
        HomeTimings {
            key_check_secs: None,
        },
    )
    .await?;
    setup::prepare_workspace(&engine, Protection::Customer).await?;
    ingest_file(&engine, LOG_TABLE, &logs).await?;
    ingest_file(&engine, INVENTORY_TABLE, &inventory).await?;
    let params = queries::discover_params(&logs_parquet, &inventory_parquet).await?;
    let suite = queries::suite(&params);

    let (alone_rows, alone_secs) = ingest_file(&engine, "ExtraAlone", &extra).await?;
    let ingest_alone = alone_rows as f64 / alone_secs;
    say(&format!("ingest alone: {ingest_alone:.0} rows/s"));

    // Both systems' streams run on a query runtime (threads of their own, one per core, below
    // the ingest's priority by `query_priority`), as `logvault serve` runs its query API.
    let query_runtime = logvault::QueryRuntime::new(0, options.query_priority)?;
    let mut levels = Vec::new();
    for &streams in &options.streams {
        let (lat, wall) = level(&query_runtime, streams, options.seconds, &suite, || async {
            let ctx = new_session(
                &SessionOptions::at(chrono::Utc::now()),
                Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default()),
            );
            for (name, path) in [
                (LOG_TABLE, &logs_parquet),
                (INVENTORY_TABLE, &inventory_parquet),
            ] {
                ctx.register_parquet(
                    TableReference::bare(name),
                    path.to_string_lossy(),
                    ParquetReadOptions::default(),
                )
                .await?;
            }
            Ok(ctx)
        })
        .await?;
        levels.push(summary("datafusion-parquet", streams, &lat, wall, None));

        // logvault: the same streams on one engine, with an ingest running beside them.
        let ingest_engine = engine.clone();
        let extra_file = extra.clone();
        let table = format!("Extra{streams}");
        let beside =
            tokio::spawn(async move { ingest_file(&ingest_engine, &table, &extra_file).await });
        let (lat, wall) = level(&query_runtime, streams, options.seconds, &suite, || async {
            Ok(engine.query_session(WORKSPACE).await?.context().clone())
        })
        .await?;
        let (rows, secs) = beside.await??;
        levels.push(summary(
            "logvault-cmk",
            streams,
            &lat,
            wall,
            Some(rows as f64 / secs),
        ));
    }
    let results = ConcurrencyResults {
        rows: options.rows,
        ingest_rows: options.ingest_rows,
        seconds: options.seconds,
        ingest_alone_rows_per_sec: ingest_alone,
        query_priority: options.query_priority,
        levels,
    };
    crate::report::write_report(&options.out, "concurrency", &results, &markdown(&results))?;
    Ok(results)
}

fn summary(system: &str, streams: usize, sorted: &[f64], wall: f64, ingest: Option<f64>) -> Level {
    let level = Level {
        system: system.into(),
        streams,
        queries: sorted.len(),
        qps: sorted.len() as f64 / wall.max(f64::EPSILON),
        p50_ms: percentile(sorted, 50.0),
        p99_ms: percentile(sorted, 99.0),
        ingest_rows_per_sec: ingest,
    };
    say(&format!(
        "{system} x{streams}: {:.1} q/s, p50 {:.1} ms, p99 {:.1} ms{}",
        level.qps,
        level.p50_ms,
        level.p99_ms,
        ingest
            .map(|r| format!(", ingest beside {r:.0} rows/s"))
            .unwrap_or_default()
    ));
    level
}

/// The report: per level, throughput and latency of both systems and their ratio.
pub fn markdown(r: &ConcurrencyResults) -> String {
    let mut out = format!(
        "# Concurrency: one engine, many query streams, an ingest beside them\n\n\
         {} rows queried (customer key), {} rows ingested beside the logvault streams, {} s per \
         level and system. Baseline: DataFusion over the plaintext Parquet of the same rows, \
         same session settings. Ingest alone: {:.0} rows/s. Both systems' query streams run on a \
         query runtime whose threads are {} nice steps below the ingest's.\n\n\
         | streams | DataFusion q/s | logvault q/s | ratio | DataFusion p50 / p99 ms | logvault p50 / p99 ms | ingest beside, rows/s (vs alone) |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        r.rows, r.ingest_rows, r.seconds, r.ingest_alone_rows_per_sec, r.query_priority
    );
    let streams: Vec<usize> = r.levels.iter().map(|l| l.streams).collect();
    let mut seen = std::collections::BTreeSet::new();
    for n in streams {
        if !seen.insert(n) {
            continue;
        }
        let find = |system: &str| {
            r.levels
                .iter()
                .find(|l| l.streams == n && l.system == system)
        };
        let (Some(base), Some(lv)) = (find("datafusion-parquet"), find("logvault-cmk")) else {
            continue;
        };
        let beside = lv.ingest_rows_per_sec.unwrap_or(0.0);
        out.push_str(&format!(
            "| {n} | {:.1} | {:.1} | {:.2}x | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} ({:.2}x) |\n",
            base.qps,
            lv.qps,
            lv.qps / base.qps.max(f64::EPSILON),
            base.p50_ms,
            base.p99_ms,
            lv.p50_ms,
            lv.p99_ms,
            beside,
            beside / r.ingest_alone_rows_per_sec.max(f64::EPSILON)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks_of_the_sorted_latencies() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 51.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
