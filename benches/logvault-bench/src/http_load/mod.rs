//! The HTTP load benchmark (`logvault-bench http-load`): `logvault serve` under a customer key,
//! fed over HTTPS by 1, 8 and 64 concurrent connections (Logs Ingestion API batches and
//! OTLP/JSON) while 4 clients run queries, against `logvault ingest`'s path (the same rows from
//! an NDJSON file into a workspace under a customer key) in the same run.
//!
//! Each case runs a new server in a child process (`logvault-bench serve-case`), so that its peak
//! memory is its own and not the load generator's. After each case the rows stored are counted
//! over the query API: every acknowledged row must be there exactly once.

pub mod client;
pub mod server;

mod args;
pub use args::HttpLoadArgs;

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::ingest::{CaseOutcome, DataFormat, IngestTarget};
use crate::stats::{format_ms, format_ratio, ratio};
use crate::sys::Machine;
use client::Protocol;
use server::{Started, Stopped};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Concurrent ingestion connections, one case each.
    pub connections: Vec<usize>,
    /// The protocols, one case per protocol and level.
    pub protocols: Vec<Protocol>,
    /// Seconds of load per case.
    pub seconds: u64,
    /// Query clients running beside the senders.
    pub query_clients: usize,
    /// Rows per request (the `rows` shape).
    pub rows_per_request: usize,
    /// Request shapes, one case each.
    pub shapes: Vec<client::Shape>,
    /// Distinct generated rows the bodies are cut from (sent round robin).
    pub pool_rows: u64,
    /// Rows of the file ingestion baseline.
    pub baseline_rows: u64,
    /// Runs of the file ingestion baseline (the median is compared with; at least one).
    pub baseline_repeats: usize,
    /// How each case's server runs.
    pub server: server::CaseServer,
    /// Rows per second the senders of a case send together, paced (`None`: as fast as the
    /// server acknowledges).
    pub rate: Option<u64>,
    /// Scratch directory.
    pub work: PathBuf,
    /// Where `http-load.md` and `http-load.json` go.
    pub out: PathBuf,
}

/// One case's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadCase {
    /// The protocol's label.
    pub protocol: String,
    /// How requests were cut (rows per request, or what the SDK sends).
    #[serde(default)]
    pub shape: String,
    /// Mean rows per request.
    #[serde(default)]
    pub rows_per_request: f64,
    /// Mean request body as sent, bytes (after gzip when gzipped).
    #[serde(default)]
    pub body_bytes: f64,
    /// CPU seconds of the load generator (this process: senders, query clients) during the case.
    #[serde(default)]
    pub generator_cpu_secs: Option<f64>,
    /// Concurrent connections.
    pub connections: usize,
    /// Seconds the senders ran.
    pub seconds: f64,
    /// Rows acknowledged.
    pub rows: u64,
    /// Rows stored, counted after the case over the query API.
    pub stored_rows: u64,
    /// Acknowledged rows per second.
    pub rows_per_sec: f64,
    /// Acknowledged request bytes per second, in MB (10^6).
    pub mb_per_sec: f64,
    /// Acknowledged requests.
    pub requests: u64,
    /// Acknowledgement latency, median and 99th percentile, ms.
    pub ack_p50_ms: Option<f64>,
    /// See `ack_p50_ms`.
    pub ack_p99_ms: Option<f64>,
    /// Requests refused with 429/503 (and sent again).
    pub retries: u64,
    /// Queries answered meanwhile.
    pub queries: u64,
    /// Queries that failed.
    pub query_failures: u64,
    /// Query latency, median and 99th percentile, ms.
    pub query_p50_ms: Option<f64>,
    /// See `query_p50_ms`.
    pub query_p99_ms: Option<f64>,
    /// The server's peak memory and CPU.
    pub server: Stopped,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadReport {
    /// The machine.
    pub machine: Machine,
    /// When it ran (RFC 3339).
    pub date: String,
    /// Rows per request.
    pub rows_per_request: usize,
    /// Query clients per case.
    pub query_clients: usize,
    /// The query they run.
    pub query: String,
    /// The server's background compaction period in seconds (0: off; absent in runs before
    /// the compactor).
    #[serde(default)]
    pub compact_secs: Option<u64>,
    /// The server's query threads' nice increment (absent in runs before it could be set: 10).
    #[serde(default)]
    pub query_priority: Option<i32>,
    /// Milliseconds every storage request of the server waited (absent: 0).
    #[serde(default)]
    pub storage_latency_ms: Option<u64>,
    /// Rows per second the senders were paced at (absent: as fast as acknowledged).
    #[serde(default)]
    pub rate: Option<u64>,
    /// The baseline: `logvault ingest`'s path, NDJSON file to a customer-key workspace (the run
    /// with the median rows/s).
    pub file_ingest: CaseOutcome,
    /// Rows/s of every run of the baseline (absent in runs that made one).
    #[serde(default)]
    pub file_ingest_runs: Vec<f64>,
    /// The cases.
    pub cases: Vec<LoadCase>,
}

/// The run with the median rows/s, and every run's rows/s in the order they ran.
fn median_run(runs: Vec<CaseOutcome>) -> anyhow::Result<(CaseOutcome, Vec<f64>)> {
    let rate = |c: &CaseOutcome| c.rows as f64 / c.wall_secs.max(f64::MIN_POSITIVE);
    let rates: Vec<f64> = runs.iter().map(rate).collect();
    let mut sorted = runs;
    sorted.sort_by(|a, b| rate(a).total_cmp(&rate(b)));
    let middle = sorted.len() / 2;
    let median = sorted
        .into_iter()
        .nth(middle)
        .context("the file baseline ran no time")?;
    Ok((median, rates))
}

/// The query clients' KQL over `table`.
fn query_of(table: &str) -> String {
    format!("{table} | summarize n = count() by bin(TimeGenerated, 1h) | top 24 by n")
}

/// A running server child.
struct ServerChild {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl ServerChild {
    fn start(exe: &Path, home: &Path, options: &LoadOptions) -> anyhow::Result<(Self, Started)> {
        let mut child = Command::new(exe)
            .arg("serve-case")
            .arg("--home")
            .arg(home)
            .arg("--compact-secs")
            .arg(options.server.compact_secs.to_string())
            .arg("--query-priority")
            .arg(options.server.query_priority.to_string())
            .arg("--storage-latency-ms")
            .arg(options.server.storage_latency_ms.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a server child")?;
        let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let started: Started = serde_json::from_str(line.trim())
            .with_context(|| format!("the server child printed {line:?}"))?;
        Ok((Self { child, stdout }, started))
    }

    fn stop(mut self) -> anyhow::Result<Stopped> {
        drop(self.child.stdin.take());
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let status = self.child.wait()?;
        if !status.success() {
            bail!("the server child failed ({status})");
        }
        Ok(serde_json::from_str(line.trim()).unwrap_or_default())
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_case(
    exe: &Path,
    options: &LoadOptions,
    protocol: Protocol,
    shape: String,
    connections: usize,
    payloads: Arc<Vec<client::Payload>>,
    case_dir: &Path,
    progress: &crate::run::Progress,
) -> anyhow::Result<LoadCase> {
    let _ = std::fs::remove_dir_all(case_dir);
    let (child, started) = ServerChild::start(exe, case_dir, options)?;
    let started = Arc::new(started);
    // One request before the clock starts, so that the table exists when the queries begin.
    let warmup = client::send(
        protocol,
        started.clone(),
        Arc::new(payloads.iter().take(1).cloned().collect()),
        0,
        Instant::now() + Duration::from_millis(1),
        None,
    )
    .await?;
    if warmup.rows == 0 {
        bail!(
            "{}: the first request was not acknowledged: {:?}",
            protocol.label(),
            warmup.errors
        );
    }
    let begin = Instant::now();
    let cpu_before = crate::sys::cpu_seconds();
    let deadline = begin + Duration::from_secs(options.seconds);
    let step = payloads.len() / connections.max(1);
    // Paced: each connection sends its mean request every `connections` requests' share.
    let pace = options.rate.filter(|r| *r > 0).map(|rate| {
        let mean_rows =
            payloads.iter().map(|p| p.rows() as f64).sum::<f64>() / payloads.len().max(1) as f64;
        Duration::from_secs_f64(connections.max(1) as f64 * mean_rows / rate as f64)
    });
    let senders: Vec<_> = (0..connections)
        .map(|i| {
            tokio::spawn(client::send(
                protocol,
                started.clone(),
                payloads.clone(),
                i * step,
                deadline,
                pace,
            ))
        })
        .collect();
    let queriers: Vec<_> = (0..options.query_clients)
        .map(|_| {
            tokio::spawn(client::query_loop(
                started.clone(),
                query_of(protocol.table()),
                deadline,
            ))
        })
        .collect();
    let mut sent = client::Sent::default();
    for s in senders {
        let s = s.await??;
        sent.rows += s.rows;
        sent.bytes += s.bytes;
        sent.requests += s.requests;
        sent.retries += s.retries;
        sent.in_doubt += s.in_doubt;
        sent.latencies.extend(s.latencies);
        sent.errors.extend(s.errors);
    }
    let seconds = begin.elapsed().as_secs_f64();
    let generator_cpu_secs = cpu_before
        .zip(crate::sys::cpu_seconds())
        .map(|(a, b)| b - a);
    let mut queried = client::Queried::default();
    for q in queriers {
        let q = q.await??;
        queried.latencies.extend(q.latencies);
        queried.failed += q.failed;
        queried.errors.extend(q.errors);
    }
    if !sent.errors.is_empty() || sent.in_doubt > 0 {
        bail!(
            "{} {connections} connections: {} rows in doubt, errors: {:?}",
            protocol.label(),
            sent.in_doubt,
            sent.errors
        );
    }
    let stored = client::count(&started, protocol.table()).await?;
    if stored != sent.rows + warmup.rows {
        bail!(
            "{} {connections} connections: {} rows acknowledged but {stored} stored",
            protocol.label(),
            sent.rows + warmup.rows
        );
    }
    let stored_rows = stored - warmup.rows;
    if queried.failed > 0 {
        progress.say(&format!(
            "  {} queries failed: {:?}",
            queried.failed, queried.errors
        ));
    }
    let server = child.stop()?;
    let _ = std::fs::remove_dir_all(case_dir);
    let requests = payloads.len().max(1) as f64;
    Ok(LoadCase {
        protocol: protocol.label().to_owned(),
        shape,
        rows_per_request: payloads.iter().map(|p| p.rows() as f64).sum::<f64>() / requests,
        body_bytes: payloads.iter().map(|p| p.body_len() as f64).sum::<f64>() / requests,
        generator_cpu_secs,
        connections,
        seconds,
        rows: sent.rows,
        stored_rows,
        rows_per_sec: sent.rows as f64 / seconds,
        mb_per_sec: sent.bytes as f64 / seconds / 1e6,
        requests: sent.requests,
        ack_p50_ms: client::quantile_ms(&sent.latencies, 0.5),
        ack_p99_ms: client::quantile_ms(&sent.latencies, 0.99),
        retries: sent.retries,
        queries: queried.latencies.len() as u64,
        query_failures: queried.failed,
        query_p50_ms: client::quantile_ms(&queried.latencies, 0.5),
        query_p99_ms: client::quantile_ms(&queried.latencies, 0.99),
        server,
    })
}

/// Runs the benchmark and writes `http-load.md` and `http-load.json` to `options.out`.
///
/// # Errors
/// Set-up failures, a case whose stored rows differ from those acknowledged, I/O errors.
pub async fn run(options: &LoadOptions) -> anyhow::Result<LoadReport> {
    let progress = crate::run::Progress(Instant::now());
    let exe = crate::run::private_exe(&options.work)?;
    let mut machine = Machine::describe();
    progress.say(&format!(
        "http-load: generating {} rows for the request bodies",
        options.pool_rows
    ));
    let records = client::records(options.pool_rows, 42)?;

    progress.say(&format!(
        "http-load: baseline, {} rows from an NDJSON file",
        options.baseline_rows
    ));
    let input = crate::ingest::input_file(
        &options.work.join("input"),
        options.baseline_rows,
        42,
        DataFormat::Ndjson,
    )?;
    let output = options.work.join("http-load-file");
    let mut runs = Vec::new();
    for _ in 0..options.baseline_repeats.max(1) {
        let _ = std::fs::remove_dir_all(&output);
        runs.push(tokio::task::block_in_place(|| {
            crate::ingest::spawn_case(
                &exe,
                IngestTarget::Customer,
                DataFormat::Ndjson,
                &input,
                &output,
            )
        })?);
    }
    let _ = std::fs::remove_dir_all(&output);
    let (file_ingest, file_ingest_runs) = median_run(runs)?;

    let mut cases = Vec::new();
    for protocol in &options.protocols {
        for shape in &options.shapes {
            let label = shape.label(*protocol, options.rows_per_request);
            let payloads = Arc::new(client::payloads(
                *protocol,
                *shape,
                &records,
                options.rows_per_request,
            )?);
            for connections in &options.connections {
                progress.say(&format!(
                    "http-load: {} ({label}) from {connections} connections for {} s",
                    protocol.label(),
                    options.seconds
                ));
                let case = run_case(
                    &exe,
                    options,
                    *protocol,
                    label.clone(),
                    *connections,
                    payloads.clone(),
                    &options.work.join("http-load-home"),
                    &progress,
                )
                .await?;
                progress.say(&format!(
                    "  {:.0} rows/s, ack p99 {}, {} queries",
                    case.rows_per_sec,
                    case.ack_p99_ms.map_or("-".into(), format_ms),
                    case.queries
                ));
                cases.push(case);
            }
        }
    }
    machine.load_at_end = crate::sys::load_average();
    let report = LoadReport {
        machine,
        date: chrono::Utc::now().to_rfc3339(),
        rows_per_request: options.rows_per_request,
        query_clients: options.query_clients,
        query: query_of("<table>"),
        compact_secs: Some(options.server.compact_secs),
        query_priority: Some(options.server.query_priority),
        storage_latency_ms: Some(options.server.storage_latency_ms),
        rate: options.rate,
        file_ingest,
        file_ingest_runs,
        cases,
    };
    crate::report::write_report(&options.out, "http-load", &report, &markdown(&report))?;
    Ok(report)
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "-".into(),
        |b| format!("{:.0} MiB", b as f64 / 1048576.0),
    )
}

/// ", the median of N runs: a-b rows/s" when the baseline ran more than once.
fn runs_of(rates: &[f64]) -> String {
    if rates.len() < 2 {
        return String::new();
    }
    let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "; the median of {} runs: {lo:.0}-{hi:.0} rows/s",
        rates.len()
    )
}

/// The report as markdown.
pub fn markdown(r: &LoadReport) -> String {
    let baseline = r.file_ingest.rows as f64 / r.file_ingest.wall_secs;
    let file_us_per_row = r
        .file_ingest
        .cpu_secs
        .map(|c| c * 1e6 / r.file_ingest.rows.max(1) as f64);
    let us = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"));
    let mut s = String::new();
    let _ = writeln!(s, "# HTTP load: `logvault serve` under a customer key\n");
    let _ = writeln!(
        s,
        "Run of {} on {} ({} cores, {:.0} GiB), {} build; load average at the end {}. Every case \
         is a new server (child process) over HTTPS on loopback; {} query clients running `{}` \
         back to back meanwhile (query threads at nice {}). Baseline, in the same run: `logvault ingest`'s path, the same \
         generated logs from an NDJSON file into a customer-key workspace: **{:.0} rows/s** \
         ({} rows, peak {}, {} CPU µs per row{}). The server's background compaction: {}.\n",
        r.date,
        r.machine.cpu_model,
        r.machine.cores,
        r.machine.memory_gib,
        r.machine.profile,
        if r.machine.load_at_end.is_empty() {
            "-"
        } else {
            r.machine.load_at_end.as_str()
        },
        r.query_clients,
        r.query,
        r.query_priority.unwrap_or(10),
        baseline,
        r.file_ingest.rows,
        mib(r.file_ingest.peak_rss_bytes),
        us(file_us_per_row),
        runs_of(&r.file_ingest_runs),
        match r.compact_secs {
            None => "not in this run's server".to_owned(),
            Some(0) => "off".to_owned(),
            Some(n) => format!("every {n} s"),
        } + &r.rate.map_or_else(String::new, |n| format!(
            "; senders paced at {n} rows/s in all"
        )) + &match r.storage_latency_ms {
            Some(ms) if ms > 0 =>
                format!("; every request to the server's storage waited {ms} ms (remote-like)"),
            _ => String::new(),
        },
    );
    let _ = writeln!(
        s,
        "| protocol | requests | connections | rows/s | vs file | MB/s | ack p50 | ack p99 | 429/503 | queries | query p50 | query p99 | server peak | segments at the end | segments read from memory | server CPU µs/row (vs file) | of which queries / promotions | generator CPU share |"
    );
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for c in &r.cases {
        let server_us = c
            .server
            .cpu_secs
            .map(|cpu| cpu * 1e6 / (c.rows.max(1)) as f64);
        let share = c
            .generator_cpu_secs
            .zip(c.server.cpu_secs)
            .map(|(g, srv)| g / (g + srv).max(f64::MIN_POSITIVE));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0} | {} | {:.1} | {} | {} | {} | {}{} | {} | {} | {} | {} | {} | {} ({}) | {} | {} |",
            c.protocol,
            if c.shape.is_empty() {
                format!("{} rows", r.rows_per_request)
            } else {
                format!(
                    "{} ({:.0} rows, {:.0} KiB)",
                    c.shape,
                    c.rows_per_request,
                    c.body_bytes / 1024.0
                )
            },
            c.connections,
            c.rows_per_sec,
            format_ratio(ratio(c.rows_per_sec, baseline)),
            c.mb_per_sec,
            c.ack_p50_ms.map_or("-".into(), format_ms),
            c.ack_p99_ms.map_or("-".into(), format_ms),
            c.retries,
            c.queries,
            if c.query_failures > 0 {
                format!(" ({} failed)", c.query_failures)
            } else {
                String::new()
            },
            c.query_p50_ms.map_or("-".into(), format_ms),
            c.query_p99_ms.map_or("-".into(), format_ms),
            mib(c.server.peak_rss_bytes),
            c.server
                .segments
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            from_memory(&c.server),
            us(server_us),
            server_us
                .zip(file_us_per_row)
                .map_or_else(|| "-".to_owned(), |(a, b)| format!("{:.2}×", a / b)),
            of_server_cpu(&c.server),
            share.map_or_else(|| "-".to_owned(), |x| format!("{:.0}%", x * 100.0)),
        );
    }
    let _ = writeln!(
        s,
        "\nEvery case counted its table over the query API afterwards: stored rows equal \
         acknowledged rows in each. \"vs file\" is rows/s over the file baseline's (higher is \
         faster). \"server CPU µs/row\" is the server child's CPU (all threads, while serving) \
         per acknowledged row, against the file baseline's CPU per row (lower is cheaper): \
         unlike rows/s it does not depend on what else ran on the machine; \"of which queries \
         / promotions\" is the part of it the query runtime's threads and the memory tier's \
         promotion thread used (the rest is the ingestion's and the server's own). \"generator CPU \
         share\" is the load generator's part of the CPU the case used (generator + server); \
         both share the same cores. MB/s counts bodies as sent (gzipped when gzipped). \
         \"segments read from memory\" is the share of the segments queries read that the \
         memory tier held, with the merged segments it built from the ones they replaced."
    );
    s
}

/// The shares of the server's CPU its query threads and its promotion thread used.
fn of_server_cpu(server: &Stopped) -> String {
    let share = |part: Option<f64>| {
        part.zip(server.cpu_secs)
            .filter(|(_, all)| *all > 0.0)
            .map_or_else(
                || "-".to_owned(),
                |(p, all)| format!("{:.0}%", p * 100.0 / all),
            )
    };
    format!(
        "{} / {}",
        share(server.query_cpu_secs),
        share(server.promotion_cpu_secs)
    )
}

/// The share of segment reads the memory tier served, and the merges it built.
fn from_memory(server: &Stopped) -> String {
    match server.memory_hits {
        Some((hits, misses)) if hits + misses > 0 => format!(
            "{:.0}% ({} merges)",
            hits as f64 * 100.0 / (hits + misses) as f64,
            server.merges_in_memory.unwrap_or(0)
        ),
        _ => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rows: u64, wall_secs: f64) -> CaseOutcome {
        CaseOutcome {
            rows,
            wall_secs,
            cpu_secs: None,
            peak_rss_bytes: None,
            peak_reset: false,
            output_bytes: 0,
        }
    }

    #[test]
    fn the_baseline_is_the_run_with_the_median_rate() {
        let (median, rates) =
            median_run(vec![run(1_000, 10.0), run(3_000, 10.0), run(2_000, 10.0)]).unwrap();
        assert_eq!(median.rows, 2_000);
        assert_eq!(rates, vec![100.0, 300.0, 200.0]);
        assert_eq!(runs_of(&rates), "; the median of 3 runs: 100-300 rows/s");
        assert_eq!(runs_of(&rates[..1]), "");
        assert!(median_run(Vec::new()).is_err());
    }

    #[test]
    fn the_query_and_promotion_threads_are_shares_of_the_server_cpu() {
        let server = Stopped {
            cpu_secs: Some(8.0),
            query_cpu_secs: Some(2.0),
            promotion_cpu_secs: Some(0.4),
            ..Stopped::default()
        };
        assert_eq!(of_server_cpu(&server), "25% / 5%");
        // A server child of an older build measured neither; one that used no CPU has no share.
        assert_eq!(of_server_cpu(&Stopped::default()), "- / -");
        let idle = Stopped {
            cpu_secs: Some(0.0),
            query_cpu_secs: Some(0.0),
            ..Stopped::default()
        };
        assert_eq!(of_server_cpu(&idle), "- / -");
        let old: Stopped = serde_json::from_str(r#"{"cpuSecs": 3.0, "peakReset": true}"#).unwrap();
        assert_eq!(old.query_cpu_secs, None);
    }
}
