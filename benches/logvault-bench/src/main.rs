//! `logvault-bench`: the benchmark harness's command line.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use logvault_bench::generator::GenOptions;
use logvault_bench::ingest::{self, DataFormat, IngestTarget};
use logvault_bench::queries::Repeats;
use logvault_bench::report::RunConfig;
use logvault_bench::run::{self, RunOptions};
use logvault_bench::setup;

/// jemalloc, as the `logvault` binary uses: the children this harness runs (`serve-case`, the
/// ingestion cases) then allocate as `logvault serve` and `logvault ingest` do.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(name = "logvault-bench", about = "logvault benchmark harness")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate synthetic logs to a file.
    Gen {
        /// Rows to generate.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = DataFormat::Ndjson)]
        format: DataFormat,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run the benchmark: ingestion, queries and key operations, with the baselines.
    Run(RunArgs),
    /// One engine, many clients: concurrent query streams with an ingest beside them, against
    /// the same streams over DataFusion on plaintext Parquet.
    Concurrency {
        /// Rows of the queried data.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Rows of the ingest that runs beside the logvault streams.
        #[arg(long, default_value_t = 1_000_000)]
        ingest_rows: u64,
        /// Concurrent streams, one level each.
        #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
        streams: Vec<usize>,
        /// Seconds per level and system.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Where concurrency.md and concurrency.json go.
        #[arg(long, default_value = "docs/bench")]
        out: PathBuf,
        /// Cache and scratch directory (as for `run`).
        #[arg(long)]
        work: Option<PathBuf>,
        /// Generator seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// How much lower the query streams' CPU priority is than the ingest's (nice steps,
        /// 0-19; `logvault serve` uses 10).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(0..=19))]
        query_priority: i32,
    },
    /// The query suite on one node against a Ballista cluster of this machine (a scheduler
    /// and executors in this process), with the encrypted and the plaintext shuffle.
    Distributed {
        /// Rows of the queried data.
        #[arg(long, default_value_t = 10_000_000)]
        rows: u64,
        /// Measured runs per query and system (after one warm-up).
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Executors per cluster.
        #[arg(long, default_value_t = 2)]
        executors: usize,
        /// Task slots per executor.
        #[arg(long, default_value_t = 1)]
        slots: usize,
        /// Where distributed.md and distributed.json go.
        #[arg(long, default_value = "docs/bench")]
        out: PathBuf,
        /// Cache and scratch directory (as for `run`).
        #[arg(long)]
        work: Option<PathBuf>,
        /// Generator seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// `logvault serve` under load: ingestion over HTTPS from 1, 8 and 64 connections (Logs
    /// Ingestion API, OTLP/JSON) while query clients run, against file ingestion in the same run.
    HttpLoad(logvault_bench::http_load::HttpLoadArgs),
    /// What decoding a request body into rows costs per protocol, one thread, no server:
    /// the file path's NDJSON parser, the Logs Ingestion API's, the OTLP/JSON decoder.
    Decode {
        /// Generated rows, the same in every form.
        #[arg(long, default_value_t = 200_000)]
        rows: u64,
        /// Rows per request body.
        #[arg(long, default_value_t = 500)]
        rows_per_request: usize,
        /// Timed rounds; the best is reported.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Where decode.md and decode.json go.
        #[arg(long, default_value = "docs/bench")]
        out: PathBuf,
    },
    /// The query suite in KQL and in SQL side by side on a customer-key workspace: answers
    /// must be equal; reports each language's time and whether the physical plans are the same.
    KqlTwins {
        /// Rows of generated logs.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Warm runs per query and language.
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Where kql-vs-sql.md and kql-vs-sql.json go.
        #[arg(long, default_value = "docs/bench")]
        out: PathBuf,
        /// Cache and scratch directory (as for `run`).
        #[arg(long)]
        work: Option<PathBuf>,
    },
    /// Queries and ingestion on storage with remote-like latency against local files, and the
    /// time a node takes to join (issue 22). Prints markdown; `--out` also writes
    /// remote.md and remote.json there.
    Remote {
        /// Rows of generated logs.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Milliseconds of latency per storage request.
        #[arg(long, default_value_t = 20)]
        latency_ms: u64,
        /// Runs of each kind (cold, reopened, hot) per query.
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// A smoke run: 20,000 rows, one run of each kind.
        #[arg(long)]
        quick: bool,
        /// Where remote.md and remote.json go (nothing written without it).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Cache and scratch directory (as for `run`).
        #[arg(long)]
        work: Option<PathBuf>,
        /// Generator seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// One server of the HTTP load benchmark (run by `http-load` in a child process).
    #[command(hide = true)]
    ServeCase {
        #[arg(long)]
        home: PathBuf,
        #[command(flatten)]
        server: logvault_bench::http_load::server::CaseServer,
    },
    /// Render results.md and the charts again from a results.json.
    Render {
        /// The results.json of a run.
        #[arg(long, default_value = "docs/bench/results.json")]
        results: PathBuf,
        /// Where to write.
        #[arg(long, default_value = "docs/bench")]
        out: PathBuf,
    },
    /// A customer-key home for the CLI ingestion case (run by `run` in a child process).
    #[command(hide = true)]
    PrepareHome {
        #[arg(long)]
        home: PathBuf,
    },
    /// Runs one query of the suite again and again in one warm session (for profiling):
    /// on a logvault home made by `run` (`--home`), or on DataFusion over Parquet files. The
    /// parameters (needle, window) are read off that data, as `run` reads them.
    #[command(hide = true)]
    Repeat {
        /// A logvault home with the bench workspace.
        #[arg(long)]
        home: Option<PathBuf>,
        /// The logs as plaintext Parquet (with `--inventory`), instead of a home.
        #[arg(long)]
        logs: Option<PathBuf>,
        /// The host inventory as plaintext Parquet.
        #[arg(long)]
        inventory: Option<PathBuf>,
        /// The query's name in the suite.
        #[arg(long)]
        query: String,
        /// Runs.
        #[arg(long, default_value_t = 20)]
        times: usize,
        /// Fill the home's memory tier first and time the runs from it.
        #[arg(long, conflicts_with = "cold")]
        hot: bool,
        /// Time each run from a new session, opening it included (as `run`'s cold runs).
        #[arg(long)]
        cold: bool,
        /// Also print every run's time, in the order they ran (a tier that warms up shows there).
        #[arg(long)]
        each: bool,
    },
    /// One ingestion case (run by `run` in a child process).
    #[command(hide = true)]
    IngestCase {
        #[arg(long, value_enum)]
        target: IngestTarget,
        #[arg(long, value_enum)]
        format: DataFormat,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// A one-minute smoke run: tiny data, few repeats (overrides the sizes and repeats).
    #[arg(long)]
    quick: bool,
    /// Where to write results.json, results.md and the charts.
    #[arg(long, default_value = "docs/bench")]
    out: PathBuf,
    /// Cache and scratch directory (generated inputs, DuckDB's environment, homes); default
    /// `$XDG_CACHE_HOME/logvault-bench` or `~/.cache/logvault-bench`.
    #[arg(long)]
    work: Option<PathBuf>,
    /// Row counts of the ingestion and query benchmarks.
    #[arg(long, value_delimiter = ',', default_value = "1000000")]
    rows: Vec<u64>,
    /// Input formats.
    #[arg(long, value_delimiter = ',', default_value = "ndjson,csv")]
    formats: Vec<String>,
    /// Runs per ingestion case.
    #[arg(long, default_value_t = 3)]
    ingest_repeats: usize,
    /// Cold runs per query, system and round.
    #[arg(long, default_value_t = 3)]
    cold: usize,
    /// Warm runs per query, system and round.
    #[arg(long, default_value_t = 5)]
    warm: usize,
    /// Rounds: each query runs on every system in turn, this many times (the systems' order
    /// turning each round); the runs of all rounds are pooled.
    #[arg(long, default_value_t = 2)]
    query_rounds: usize,
    /// Row counts of the key rotation benchmark; `--keyops-rows` without a value skips the key
    /// operations.
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "1000000,10000000")]
    keyops_rows: Vec<u64>,
    /// Rotations per size.
    #[arg(long, default_value_t = 5)]
    rotations: usize,
    /// Revocation/restore trials.
    #[arg(long, default_value_t = 3)]
    revocations: usize,
    /// Key check interval (seconds) of the key operation homes.
    #[arg(long, default_value_t = 1)]
    key_check_secs: i64,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Skip DuckDB.
    #[arg(long)]
    no_duckdb: bool,
    /// Run only the ingestion table (no queries, no key operations).
    #[arg(long)]
    ingest_only: bool,
}

impl RunArgs {
    fn options(self) -> anyhow::Result<RunOptions> {
        let work = claim_work(self.work)?;
        let check = self.key_check_secs.max(1);
        let mut config = RunConfig {
            quick: self.quick,
            rows: self.rows,
            formats: self.formats,
            ingest_repeats: self.ingest_repeats,
            query_repeats: Repeats {
                cold: self.cold,
                warm: self.warm,
                rounds: self.query_rounds.max(1),
            },
            keyops_rows: self.keyops_rows,
            rotations: self.rotations,
            revocations: self.revocations,
            key_check_secs: (check, check + 1),
            seed: self.seed,
            hot_cache_memory_bytes: Some(setup::memory_bytes()?),
            ingest_only: self.ingest_only,
            interleaved: true,
        };
        if self.quick {
            config.rows = vec![20_000];
            config.ingest_repeats = 1;
            config.query_repeats = Repeats {
                cold: 1,
                warm: 2,
                rounds: 1,
            };
            config.keyops_rows = vec![5_000, 20_000];
            config.rotations = 2;
            config.revocations = 1;
        }
        Ok(RunOptions {
            config,
            out: self.out,
            work,
            duckdb: !self.no_duckdb,
        })
    }
}

/// The work directory of this run (`--work`, else [`default_work`]), created and locked for the
/// life of the process: two runs in one directory would delete each other's homes and files, so
/// the second one fails at once, naming the directory, instead.
fn claim_work(work: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    static HELD: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());
    let dir = work.unwrap_or_else(default_work);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the work directory {}", dir.display()))?;
    let path = dir.join(".logvault-bench.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another logvault-bench run is using the work directory {}: wait for it to end or \
             give this one its own with --work DIR",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    HELD.lock()
        .map_err(|_| anyhow::anyhow!("the work directory locks were poisoned"))?
        .push(file);
    Ok(dir)
}

/// `$XDG_CACHE_HOME/logvault-bench` or `~/.cache/logvault-bench`.
fn default_work() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("logvault-bench")
}

fn main() -> anyhow::Result<()> {
    // logvault's errors on stderr; `LOGVAULT_LOG` (e.g. `warn`) for more, as in the CLI. The
    // revocation trials make the key lifecycle warn on purpose, so warnings are off by default.
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGVAULT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Gen {
            rows,
            seed,
            format,
            out,
        } => ingest::generate_file(
            GenOptions {
                rows,
                seed,
                ..GenOptions::default()
            },
            format,
            &out,
        ),
        Command::Remote {
            rows,
            latency_ms,
            repeats,
            quick,
            out,
            work,
            seed,
        } => {
            let options = logvault_bench::remote::RemoteOptions {
                rows: if quick { 20_000 } else { rows },
                latency: std::time::Duration::from_millis(latency_ms),
                repeats: if quick { 1 } else { repeats },
                work: claim_work(work)?,
                seed,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let report = runtime.block_on(logvault_bench::remote::run(&options))?;
            let text = logvault_bench::remote::markdown(&report);
            if let Some(dir) = out {
                std::fs::create_dir_all(&dir)?;
                std::fs::write(dir.join("remote.md"), &text)?;
                std::fs::write(dir.join("remote.json"), serde_json::to_vec_pretty(&report)?)?;
            }
            #[allow(clippy::print_stdout)] // the report is the command's output
            {
                println!("{text}");
            }
            Ok(())
        }
        Command::Run(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(run::run(args.options()?))?;
            Ok(())
        }
        Command::Concurrency {
            rows,
            ingest_rows,
            streams,
            seconds,
            out,
            work,
            seed,
            query_priority,
        } => {
            let options = logvault_bench::concurrency::ConcurrencyOptions {
                rows,
                ingest_rows,
                streams,
                seconds,
                work: claim_work(work)?,
                out,
                seed,
                query_priority,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(logvault_bench::concurrency::run(&options))?;
            Ok(())
        }
        Command::Distributed {
            rows,
            repeats,
            executors,
            slots,
            out,
            work,
            seed,
        } => {
            let options = logvault_bench::distributed::DistributedOptions {
                rows,
                repeats,
                executors,
                slots,
                seed,
                work: claim_work(work)?,
                out,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(logvault_bench::distributed::run(&options))?;
            Ok(())
        }
        Command::HttpLoad(args) => {
            let work = claim_work(args.work.clone())?;
            let options = args.into_options(work);
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(logvault_bench::http_load::run(&options))?;
            Ok(())
        }
        Command::Decode {
            rows,
            rows_per_request,
            rounds,
            out,
        } => {
            let report = logvault_bench::decode::run(&logvault_bench::decode::DecodeOptions {
                rows,
                rows_per_request,
                rounds,
                out,
            })?;
            use std::io::Write as _;
            for c in &report.cases {
                writeln!(
                    std::io::stdout(),
                    "{:<32} {:>6.0} B/row {:>7.2} µs/row {:>6.0} MB/s {:>5.2}x",
                    c.name,
                    c.bytes_per_row,
                    c.micros_per_row,
                    c.mb_per_s,
                    c.vs_file
                )?;
            }
            Ok(())
        }
        Command::KqlTwins {
            rows,
            repeats,
            out,
            work,
        } => {
            let options = logvault_bench::kql_twins::TwinOptions {
                rows,
                repeats,
                seed: 42,
                work: claim_work(work)?,
                out,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(logvault_bench::kql_twins::run(&options))?;
            Ok(())
        }
        Command::ServeCase { home, server } => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(logvault_bench::http_load::server::serve_case(
                &home, &server,
            ))
        }
        Command::Render { results, out } => {
            let report: logvault_bench::report::Report =
                serde_json::from_slice(&std::fs::read(&results)?)?;
            run::write_report(&report, &out)
        }
        Command::PrepareHome { home } => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let timings = setup::HomeTimings {
                    key_check_secs: None,
                };
                let engine = setup::open_home(&home, timings).await?;
                setup::prepare_workspace(&engine, logvault_bench::cli_ingest::PROTECTION).await
            })
        }
        Command::Repeat {
            home,
            logs,
            inventory,
            query,
            times,
            hot,
            cold,
            each,
        } => {
            use logvault_bench::queries::{self, RepeatMode, Source};
            let source = match (home, logs, inventory) {
                (Some(home), _, _) => Source::Logvault { home },
                (None, Some(logs), Some(inventory)) => Source::DataFusion { logs, inventory },
                _ => anyhow::bail!("give --home, or --logs and --inventory"),
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let params = runtime.block_on(queries::discover_params_in(&source))?;
            let sql = queries::suite(&params)
                .into_iter()
                .find(|q| q.name == query)
                .map(|q| q.sql)
                .ok_or_else(|| anyhow::anyhow!("no query {query} in the suite"))?;
            let mode = match (hot, cold) {
                (true, _) => RepeatMode::Hot,
                (_, true) => RepeatMode::Cold,
                _ => RepeatMode::Warm,
            };
            let (mut ms, mut opening) =
                runtime.block_on(queries::repeat(&source, &sql, times, mode))?;
            use std::io::Write as _;
            let mut out = std::io::stdout();
            if each {
                let runs: Vec<String> = ms.iter().map(|t| format!("{t:.2}")).collect();
                writeln!(out, "{query}: runs in order (ms): {}", runs.join(" "))?;
            }
            ms.sort_by(f64::total_cmp);
            opening.sort_by(f64::total_cmp);
            let median = |v: &[f64]| v.get(v.len() / 2).copied().unwrap_or(0.0);
            write!(
                out,
                "{query}: median {:.2} ms, min {:.2} ms over {times} runs",
                median(&ms),
                ms.first().copied().unwrap_or(0.0)
            )?;
            if !opening.is_empty() {
                write!(
                    out,
                    " (opening the session: median {:.2} ms)",
                    median(&opening)
                )?;
            }
            writeln!(out)?;
            Ok(())
        }
        Command::IngestCase {
            target,
            format,
            input,
            output,
        } => {
            let runtime = tokio::runtime::Runtime::new()?;
            let outcome = runtime.block_on(ingest::run_case(target, format, &input, &output))?;
            use std::io::Write as _;
            writeln!(std::io::stdout(), "{}", serde_json::to_string(&outcome)?)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::claim_work;

    #[test]
    fn a_second_run_in_a_locked_work_directory_is_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("work");
        assert_eq!(claim_work(Some(dir.clone())).unwrap(), dir);
        // A second claim opens its own file description: locked out, as another process is.
        let err = claim_work(Some(dir.clone())).unwrap_err().to_string();
        assert!(err.contains("another logvault-bench run"), "{err}");
        assert!(err.contains(&dir.display().to_string()), "{err}");
        // Another directory is free.
        let other = tmp.path().join("other");
        assert_eq!(claim_work(Some(other.clone())).unwrap(), other);
    }
}
