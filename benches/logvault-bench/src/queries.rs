//! The log query suite, and its runs on DataFusion over plaintext Parquet (the baseline) and on
//! logvault workspaces.
//!
//! The SQL is the same for every system (DataFusion and DuckDB): identifiers are quoted, results
//! aliased and totally ordered, times returned as epoch seconds. A *cold* run opens everything
//! from nothing in this process (logvault: the engine, its vault and keys, the workspace
//! session; DataFusion: a session with the Parquet tables registered) and runs the query once; a
//! *warm* run repeats the query in an open session. The files are in the OS page cache either
//! way: cold means a cold engine, not a cold disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use datafusion::common::TableReference;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use logvault::Engine;
use logvault::query::{SessionOptions, new_session};
use serde::{Deserialize, Serialize};

use crate::answers::{Answer, Cell};
use crate::ingest::{INVENTORY_TABLE, LOG_TABLE};
use crate::setup::{self, HomeTimings, WORKSPACE};

/// One query of the suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryDef {
    /// Short name (chart label, JSON key).
    pub name: String,
    /// What it does, for the report.
    pub title: String,
    /// The SQL, the same for every system.
    pub sql: String,
}

/// Values the suite takes from the data: a request id to look up and a narrow time window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteParams {
    /// An existing `RequestId`.
    pub needle: String,
    /// Start of the time window (RFC 3339, UTC).
    pub window_start: String,
    /// End of the time window (exclusive).
    pub window_end: String,
}

/// The suite for `params`.
pub fn suite(params: &SuiteParams) -> Vec<QueryDef> {
    let q = |name: &str, title: &str, sql: String| QueryDef {
        name: name.into(),
        title: title.into(),
        sql,
    };
    let logs = LOG_TABLE;
    let inventory = INVENTORY_TABLE;
    vec![
        q(
            "count_by_level",
            "count by level",
            format!(
                r#"SELECT "Level" AS level, COUNT(*) AS n FROM "{logs}" GROUP BY "Level" ORDER BY level"#
            ),
        ),
        q(
            "errors_per_hour",
            "errors per hour",
            format!(
                r#"SELECT date_part('epoch', date_trunc('hour', "TimeGenerated")) AS hour, COUNT(*) AS errors FROM "{logs}" WHERE "Level" IN ('ERROR', 'CRITICAL') GROUP BY date_trunc('hour', "TimeGenerated") ORDER BY hour"#
            ),
        ),
        q(
            "message_search",
            "substring search in Message",
            format!(
                r#"SELECT "Service" AS service, COUNT(*) AS n FROM "{logs}" WHERE "Message" LIKE '%timed out after 4%' GROUP BY "Service" ORDER BY service"#
            ),
        ),
        q(
            "request_lookup",
            "needle lookup by RequestId",
            format!(
                r#"SELECT "Host" AS host, "Level" AS level, "Message" AS message, "LatencyMs" AS latency FROM "{logs}" WHERE "RequestId" = '{}' ORDER BY host"#,
                params.needle
            ),
        ),
        q(
            "top_hosts",
            "top-10 hosts with average latency",
            format!(
                r#"SELECT "Host" AS host, COUNT(*) AS n, AVG("LatencyMs") AS avg_latency FROM "{logs}" GROUP BY "Host" ORDER BY n DESC, host LIMIT 10"#
            ),
        ),
        q(
            "window_level",
            "10-minute window, level WARN",
            format!(
                r#"SELECT "Service" AS service, COUNT(*) AS n, MAX("LatencyMs") AS max_latency FROM "{logs}" WHERE "TimeGenerated" >= '{}' AND "TimeGenerated" < '{}' AND "Level" = 'WARN' GROUP BY "Service" ORDER BY service"#,
                params.window_start, params.window_end
            ),
        ),
        q(
            "distinct_users",
            "distinct count of UserId",
            format!(r#"SELECT COUNT(DISTINCT "UserId") AS users FROM "{logs}""#),
        ),
        q(
            "join_inventory",
            "errors per datacenter (join with HostInventory)",
            format!(
                r#"SELECT i."Datacenter" AS datacenter, COUNT(*) AS n, AVG(l."LatencyMs") AS avg_latency FROM "{logs}" l JOIN "{inventory}" i ON l."Host" = i."Host" WHERE l."Level" IN ('ERROR', 'CRITICAL') GROUP BY i."Datacenter" ORDER BY datacenter"#
            ),
        ),
    ]
}

/// Where a system reads the data from.
#[derive(Debug, Clone)]
pub enum Source {
    /// DataFusion over plaintext Parquet files (logvault's session settings, no store).
    DataFusion {
        /// The logs.
        logs: PathBuf,
        /// The host inventory.
        inventory: PathBuf,
    },
    /// A logvault home with [`WORKSPACE`].
    Logvault {
        /// The home.
        home: PathBuf,
    },
}

/// An open session: a DataFusion context, and the engine behind it if any.
struct Opened {
    ctx: SessionContext,
    engine: Option<Engine>,
}

impl Source {
    async fn open(&self) -> anyhow::Result<Opened> {
        match self {
            Self::DataFusion { logs, inventory } => {
                let options = SessionOptions::at(chrono::Utc::now());
                let ctx = new_session(&options, Arc::new(RuntimeEnv::default()));
                for (name, path) in [(LOG_TABLE, logs), (INVENTORY_TABLE, inventory)] {
                    ctx.register_parquet(
                        TableReference::bare(name),
                        path.to_string_lossy(),
                        ParquetReadOptions::default(),
                    )
                    .await?;
                }
                Ok(Opened { ctx, engine: None })
            }
            Self::Logvault { home } => {
                let engine = setup::open_home(
                    home,
                    HomeTimings {
                        key_check_secs: None,
                    },
                )
                .await?;
                let session = engine.query_session(WORKSPACE).await?;
                Ok(Opened {
                    ctx: session.context().clone(),
                    engine: Some(engine),
                })
            }
        }
    }
}

/// Runs `sql` to the end; the answer.
pub(crate) async fn answer(ctx: &SessionContext, sql: &str) -> anyhow::Result<Answer> {
    let batches = ctx
        .sql(sql)
        .await
        .with_context(|| format!("planning {sql}"))?
        .collect()
        .await
        .with_context(|| format!("running {sql}"))?;
    Answer::from_batches(&batches)
}

/// How often to run each query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repeats {
    /// Cold runs per round (each from a new session).
    pub cold: usize,
    /// Warm runs per round (in one session, after a cold one).
    pub warm: usize,
    /// Rounds: each query runs on every system in turn, `rounds` times; the runs of all rounds
    /// are pooled. Reports written before rounds existed had one.
    #[serde(default = "one_round")]
    pub rounds: usize,
}

fn one_round() -> usize {
    1
}

/// The runs of one query on one system.
#[derive(Debug, Clone)]
pub struct QueryRun {
    /// The query's name.
    pub query: String,
    /// Milliseconds of each cold run.
    pub cold_ms: Vec<f64>,
    /// Milliseconds of each warm run.
    pub warm_ms: Vec<f64>,
    /// Milliseconds of each hot run (logvault with a memory tier only: the warm session again
    /// once the hot cache has settled).
    pub hot_ms: Vec<f64>,
    /// The answer of the last run (all runs must agree; checked).
    pub answer: Answer,
}

impl QueryRun {
    /// Adds `other`'s runs of the same query (another round) to these.
    ///
    /// # Errors
    /// If `other` is another query, or its answer differs from this one's.
    pub fn pool(&mut self, other: QueryRun) -> anyhow::Result<()> {
        anyhow::ensure!(
            other.query == self.query,
            "pooling runs of {} into {}",
            other.query,
            self.query
        );
        check_stable(&self.query, &other.answer, &mut self.answer, false)?;
        self.cold_ms.extend(other.cold_ms);
        self.warm_ms.extend(other.warm_ms);
        self.hot_ms.extend(other.hot_ms);
        Ok(())
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Runs `query` on `source` (one round of `repeats`): `repeats.cold` times from a new session,
/// then `repeats.warm` times in the last one, then (logvault with a memory tier) `repeats.warm`
/// times more once its hot cache has settled. The session is closed before this returns, so
/// nothing of it runs in the background beside the next system's runs.
///
/// # Errors
/// Open, plan and execution errors; answers that change between runs.
pub async fn run_query(
    source: &Source,
    query: &QueryDef,
    repeats: Repeats,
) -> anyhow::Result<QueryRun> {
    let mut run = QueryRun {
        query: query.name.clone(),
        cold_ms: Vec::new(),
        warm_ms: Vec::new(),
        hot_ms: Vec::new(),
        answer: Answer::default(),
    };
    let mut last: Option<Opened> = None;
    for _ in 0..repeats.cold.max(1) {
        drop(last.take());
        let started = Instant::now();
        let opened = source.open().await?;
        let got = answer(&opened.ctx, &query.sql).await?;
        run.cold_ms.push(ms(started));
        check_stable(&query.name, &got, &mut run.answer, run.cold_ms.len() == 1)?;
        last = Some(opened);
    }
    let opened = last.context("no session")?;
    for _ in 0..repeats.warm {
        let started = Instant::now();
        let got = answer(&opened.ctx, &query.sql).await?;
        run.warm_ms.push(ms(started));
        check_stable(&query.name, &got, &mut run.answer, false)?;
    }
    if let Some(engine) = opened
        .engine
        .as_ref()
        .filter(|e| e.hot_cache().config().memory_bytes > 0)
    {
        // Promotions wait for queries to be quiet; this is that quiet.
        engine.hot_cache().settle().await;
        for _ in 0..repeats.warm {
            let started = Instant::now();
            let got = answer(&opened.ctx, &query.sql).await?;
            run.hot_ms.push(ms(started));
            check_stable(&query.name, &got, &mut run.answer, false)?;
        }
    }
    Ok(run)
}

/// How `repeat` times a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepeatMode {
    /// In one session, after a first run (as `run`'s warm runs).
    Warm,
    /// In one session whose memory tier was filled first (as `run`'s hot runs).
    Hot,
    /// Each run from a new session, opening it timed (as `run`'s cold runs).
    Cold,
}

/// Runs `sql` on `source` `times` times as `mode` says (a loop for profiling one query): the
/// milliseconds of each run, and of opening the session in each (cold runs only).
///
/// # Errors
/// Open, plan and execution errors; `Hot` without a memory tier.
pub async fn repeat(
    source: &Source,
    sql: &str,
    times: usize,
    mode: RepeatMode,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let mut out = Vec::with_capacity(times);
    if mode == RepeatMode::Cold {
        let mut opening = Vec::with_capacity(times);
        for _ in 0..times {
            let started = Instant::now();
            let opened = source.open().await?;
            opening.push(ms(started));
            answer(&opened.ctx, sql).await?;
            out.push(ms(started));
        }
        return Ok((out, opening));
    }
    let opened = source.open().await?;
    if mode == RepeatMode::Hot {
        let engine = opened
            .engine
            .as_ref()
            .filter(|e| e.hot_cache().config().memory_bytes > 0)
            .context("--hot needs a logvault home with a memory tier")?;
        answer(&opened.ctx, sql).await?;
        let started = Instant::now();
        engine.hot_cache().settle().await;
        let status = engine.hot_cache().status();
        use std::io::Write as _;
        writeln!(
            std::io::stderr(),
            "memory tier: {} segments, {:.1} MiB (settled in {:.0} ms)",
            status.memory_entries,
            status.memory_bytes as f64 / (1024.0 * 1024.0),
            ms(started)
        )?;
    }
    for _ in 0..times {
        let started = Instant::now();
        answer(&opened.ctx, sql).await?;
        out.push(ms(started));
    }
    Ok((out, Vec::new()))
}

fn check_stable(query: &str, got: &Answer, kept: &mut Answer, first: bool) -> anyhow::Result<()> {
    if first {
        *kept = got.clone();
    } else if let Some(diff) = got.difference(kept) {
        anyhow::bail!("query {query} changed its answer between runs: {diff}");
    }
    Ok(())
}

/// Reads the suite's parameters off the baseline data: the `RequestId` two thirds of the way
/// through the file, and a 10-minute window starting at the middle of the time range.
///
/// # Errors
/// If the data is empty or cannot be read.
pub async fn discover_params(logs: &Path, inventory: &Path) -> anyhow::Result<SuiteParams> {
    let source = Source::DataFusion {
        logs: logs.to_owned(),
        inventory: inventory.to_owned(),
    };
    discover_params_in(&source).await
}

/// [`discover_params`] off any source (a logvault home's rows are in the order of its segments,
/// so its needle is another existing request id).
///
/// # Errors
/// If the data is empty or cannot be read.
pub async fn discover_params_in(source: &Source) -> anyhow::Result<SuiteParams> {
    let opened = source.open().await?;
    let range = answer(
        &opened.ctx,
        &format!(
            r#"SELECT CAST(MIN("TimeGenerated") AS BIGINT) AS lo, CAST(MAX("TimeGenerated") AS BIGINT) AS hi, COUNT(*) AS n FROM "{LOG_TABLE}""#
        ),
    )
    .await?;
    let row = range.rows.first().context("no rows in the baseline")?;
    let (Some(Cell::Int(lo)), Some(Cell::Int(hi)), Some(Cell::Int(n))) =
        (row.first(), row.get(1), row.get(2))
    else {
        anyhow::bail!("unexpected time range answer {range:?}");
    };
    let mid = lo + (hi - lo) / 2;
    let start = mid - mid.rem_euclid(60_000_000);
    let micros = |t: i64| {
        chrono::DateTime::from_timestamp_micros(t)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .context("time out of range")
    };
    let needle = answer(
        &opened.ctx,
        &format!(
            r#"SELECT "RequestId" AS id FROM "{LOG_TABLE}" LIMIT 1 OFFSET {}"#,
            n * 2 / 3
        ),
    )
    .await?;
    let Some(Cell::Str(needle)) = needle.rows.first().and_then(|r| r.first()).cloned() else {
        anyhow::bail!("no request id found");
    };
    Ok(SuiteParams {
        needle,
        window_start: micros(start)?,
        window_end: micros(start + 600_000_000)?,
    })
}

/// Writes the host inventory as a plaintext Parquet file (the baseline's `HostInventory`).
///
/// # Errors
/// I/O and encoding errors.
pub fn write_inventory_parquet(path: &Path, hosts: usize) -> anyhow::Result<()> {
    let batch = crate::generator::host_inventory(hosts);
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        batch.schema(),
        None,
    )?;
    w.write(&batch)?;
    w.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_has_the_eight_queries_with_parameters() {
        let params = SuiteParams {
            needle: "abc".into(),
            window_start: "2026-01-01T01:00:00Z".into(),
            window_end: "2026-01-01T01:10:00Z".into(),
        };
        let s = suite(&params);
        assert_eq!(s.len(), 8);
        assert!(s.iter().any(|q| q.sql.contains("'abc'")));
        assert!(s.iter().any(|q| q.sql.contains("2026-01-01T01:10:00Z")));
        let mut names: Vec<_> = s.iter().map(|q| q.name.clone()).collect();
        names.dedup();
        assert_eq!(names.len(), 8);
    }
}
