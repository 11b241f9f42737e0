//! `logvault-bench run`: ingestion, the query suite and key operations in one run, with the
//! baselines measured alongside, answers checked equal, and the report written.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use logvault::IngestOptions;
use logvault::ingest::Format;

use crate::cli_ingest;
use crate::duckdb::{self, DuckDb, DuckSources, EncryptedCopy};
use crate::ingest::{self, DataFormat, INVENTORY_TABLE, IngestTarget};
use crate::interleave::{self, Contender, DuckContender};
use crate::keyops::{self, KeyOpsOptions};
use crate::queries::{self, QueryRun, Source};
use crate::report::{
    INGEST_BASELINE, IngestRow, KeyOpsReport, PeerInfo, QUERY_BASELINE, QueryResult, QuerySection,
    Report, RunConfig,
};
use crate::setup::{self, HomeTimings, Protection, WORKSPACE};
use crate::stats::{median, ratio};
use crate::sys::Machine;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The configuration (also printed in the report).
    pub config: RunConfig,
    /// Where the report goes.
    pub out: PathBuf,
    /// Cache and scratch directory (generated inputs, the DuckDB environment, homes).
    pub work: PathBuf,
    /// Whether to try DuckDB.
    pub duckdb: bool,
}

/// Prints a progress line with the time since the start.
pub(crate) struct Progress(pub(crate) Instant);

impl Progress {
    pub(crate) fn say(&self, msg: &str) {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "[{:>6.1}s] {msg}",
            self.0.elapsed().as_secs_f64()
        );
    }
}

/// Runs the benchmark and writes `results.json`, `results.md` and one chart per size to
/// `options.out`.
///
/// # Errors
/// Any failure of a system, and answers that differ between systems.
pub async fn run(options: RunOptions) -> anyhow::Result<Report> {
    let progress = Progress(Instant::now());
    let config = &options.config;
    let machine = Machine::describe();
    progress.say(&format!(
        "{} cores, {} GiB, {} build, logvault's hot cache {}",
        machine.cores,
        machine.memory_gib,
        machine.profile,
        if setup::hot_cache_off() {
            "off (LOGVAULT_BENCH_NO_HOT_CACHE)"
        } else {
            "as a new home has it (memory tier on, disk tier off; LOGVAULT_BENCH_MEMORY_BYTES \
             sets the memory tier's bound)"
        }
    ));
    let data_dir = options.work.join("data");
    let run_dir = options.work.join("run");
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)?;
    }
    std::fs::create_dir_all(&run_dir)?;
    let exe = private_exe(&run_dir)?;
    let query_format = if config.formats.iter().any(|f| f == "ndjson") {
        DataFormat::Ndjson
    } else {
        DataFormat::Csv
    };
    let formats: Vec<DataFormat> = config
        .formats
        .iter()
        .map(|f| match f.as_str() {
            "csv" => Ok(DataFormat::Csv),
            "ndjson" => Ok(DataFormat::Ndjson),
            other => bail!("unknown format {other}"),
        })
        .collect::<anyhow::Result<_>>()?;

    let mut peers = PeerInfo::default();
    let cli = match cli_ingest::private_cli(&run_dir) {
        Ok(cli) => Some(cli),
        Err(why) => {
            let note = format!("{} skipped: {why}", cli_ingest::SYSTEM);
            progress.say(&note);
            peers.notes.push(note);
            None
        }
    };
    // The reference release first (`duckdb`, `duckdb-encrypted`), then the newest.
    let mut ducks: Vec<DuckDb> = Vec::new();
    if options.duckdb {
        for release in [duckdb::REFERENCE, duckdb::NEWEST] {
            progress.say(&format!(
                "preparing DuckDB {}'s Python environment",
                release.version
            ));
            match duckdb::prepare(&options.work, release) {
                Ok(d) => ducks.push(d),
                Err(why) => {
                    let note = format!("DuckDB {} skipped: {why}", release.version);
                    progress.say(&note);
                    peers.notes.push(note);
                }
            }
        }
    } else {
        peers.notes.push("DuckDB skipped: --no-duckdb".into());
    }
    // The ingestion peer: the newest release that is there.
    let ingest_duck = ducks.last().cloned();
    peers.duckdb_ingest_version = ingest_duck.as_ref().map(|d| d.release.version.to_owned());

    let mut ingest_rows = Vec::new();
    for &rows in &config.rows {
        for &format in &formats {
            progress.say(&format!("generating {rows} rows of {format:?}"));
            let input = ingest::input_file(&data_dir, rows, config.seed, format)?;
            let input_bytes = std::fs::metadata(&input)?.len();
            // Every case once, then every case again: the machine's drift falls on all alike.
            let mut cases: Vec<IngestCase<'_>> = IngestTarget::ALL
                .into_iter()
                .map(IngestCase::Engine)
                .collect();
            if let Some(cli) = &cli {
                cases.push(IngestCase::Cli(cli));
            }
            if let Some(duck) = &ingest_duck {
                cases.push(IngestCase::Duck(duck, duckdb::INGEST_ONE_THREAD, 1));
                cases.push(IngestCase::Duck(
                    duck,
                    duckdb::INGEST_ALL_THREADS,
                    machine.cores,
                ));
            }
            let repeats = config.ingest_repeats.max(1);
            let mut outcomes: Vec<Vec<ingest::CaseOutcome>> = vec![Vec::new(); cases.len()];
            let mut skipped = vec![false; cases.len()];
            for rep in 0..repeats {
                for (i, case) in cases.iter().enumerate() {
                    if skipped[i] {
                        continue;
                    }
                    progress.say(&format!(
                        "ingest {rows} {format:?} -> {}{} (run {})",
                        case.label(),
                        match case {
                            IngestCase::Duck(_, _, threads) => format!(" ({threads} threads)"),
                            _ => String::new(),
                        },
                        rep + 1
                    ));
                    let output = case.output(&run_dir, rows, format);
                    remove(&output)?;
                    match case {
                        IngestCase::Engine(target) => outcomes[i]
                            .push(ingest::spawn_case(&exe, *target, format, &input, &output)?),
                        IngestCase::Cli(cli) => outcomes[i]
                            .push(cli_ingest::run_case(&exe, cli, format, &input, &output)?),
                        IngestCase::Duck(duck, system, threads) => {
                            let failure = match duck.convert(&input, format, &output, *threads) {
                                Ok(o) if o.rows == rows => {
                                    outcomes[i].push(o);
                                    continue;
                                }
                                Ok(o) => format!("it converted {} rows of {rows}", o.rows),
                                Err(e) => format!("{e:#}"),
                            };
                            let note =
                                format!("{system} skipped at {rows} rows of {format:?}: {failure}");
                            progress.say(&note);
                            peers.notes.push(note);
                            skipped[i] = true;
                        }
                    }
                }
            }
            for (case, outcomes) in cases.iter().zip(outcomes) {
                let output = case.output(&run_dir, rows, format);
                let keep = match case {
                    IngestCase::Engine(target) => {
                        format == query_format || *target == IngestTarget::Parquet
                    }
                    IngestCase::Cli(_) | IngestCase::Duck(..) => false,
                };
                if !keep {
                    remove(&output)?;
                }
                if let IngestCase::Duck(..) = case {
                    if outcomes.len() < repeats {
                        continue; // skipped, with a note
                    }
                } else if outcomes.iter().any(|o| o.rows != rows) {
                    bail!("{} ingested {outcomes:?} rows of {rows}", case.label());
                }
                ingest_rows.push(ingest_row(
                    rows,
                    format,
                    case.label(),
                    input_bytes,
                    &outcomes,
                ));
            }
        }
    }
    fill_ingest_ratios(&mut ingest_rows);
    if config.ingest_only {
        let mut machine = machine;
        machine.load_at_end = crate::sys::load_average();
        let report = Report {
            machine,
            config: config.clone(),
            ingest: ingest_rows,
            queries: Vec::new(),
            keyops: None,
            peers,
        };
        write_report(&report, &options.out)?;
        progress.say(&format!("report written to {}", options.out.display()));
        std::fs::remove_dir_all(&run_dir)?;
        return Ok(report);
    }

    let inventory_parquet = run_dir.join("host-inventory.parquet");
    queries::write_inventory_parquet(
        &inventory_parquet,
        crate::generator::GenOptions::default().hosts,
    )?;
    let inventory_ndjson = ingest::inventory_file(&data_dir)?;
    let mut sections = Vec::new();
    let mut mismatches = Vec::new();
    for &rows in &config.rows {
        let logs = ingest_output(&run_dir, rows, query_format, IngestTarget::Parquet);
        let params = queries::discover_params(&logs, &inventory_parquet).await?;
        let suite = queries::suite(&params);
        let mut contenders = vec![Contender::InProcess {
            name: QUERY_BASELINE.into(),
            source: Source::DataFusion {
                logs: logs.clone(),
                inventory: inventory_parquet.clone(),
            },
        }];
        for protection in Protection::ALL {
            let target = match protection {
                Protection::Service => IngestTarget::Service,
                Protection::Customer => IngestTarget::Customer,
                Protection::Double => IngestTarget::Double,
            };
            let home = ingest_output(&run_dir, rows, query_format, target);
            add_inventory(&home, &inventory_ndjson).await?;
            contenders.push(Contender::InProcess {
                name: protection.label().into(),
                source: Source::Logvault { home },
            });
        }
        for duck in &ducks {
            // Only the release with the httpfs wheel can write and read encrypted Parquet.
            let encrypted = duck.release.httpfs.then(|| EncryptedCopy {
                path: run_dir.join(format!("logs-{rows}-encrypted.parquet")),
                key: duckdb::new_peer_key(),
                written: false,
            });
            contenders.push(Contender::Duck(DuckContender {
                duck: duck.clone(),
                sources: DuckSources {
                    logs: logs.clone(),
                    inventory: inventory_parquet.clone(),
                    encrypted,
                },
                threads: machine.cores,
                failed: false,
            }));
        }
        progress.say(&format!(
            "queries at {rows} rows: each query on every system in turn, {} round(s)",
            config.query_repeats.rounds.max(1)
        ));
        let phase = interleave::run(&mut contenders, &suite, config.query_repeats, &|m| {
            progress.say(&format!("  {m}"));
        })
        .await?;
        for (release, version) in phase.duck_versions {
            if release == duckdb::REFERENCE {
                peers.duckdb_version = Some(version);
            } else {
                peers.duckdb_newest_version = Some(version);
            }
        }
        peers.notes.extend(
            phase
                .notes
                .into_iter()
                .map(|n| format!("{n} (at {rows} rows)")),
        );
        let systems = phase.systems;
        mismatches.extend(compare_answers(rows, &systems));
        sections.push(section(rows, params, suite, systems));
    }
    if !mismatches.is_empty() {
        bail!("answers differ between systems:\n{}", mismatches.join("\n"));
    }
    progress.say("all answers agree across systems");

    let keyops = if config.keyops_rows.is_empty() {
        None
    } else {
        let (rotations, revocation) = keyops::run(
            &KeyOpsOptions {
                data_dir: data_dir.clone(),
                work_dir: run_dir.clone(),
                seed: config.seed,
                sizes: config.keyops_rows.clone(),
                rotations: config.rotations,
                revocations: config.revocations,
                key_check_secs: config.key_check_secs,
            },
            &|m| progress.say(m),
        )
        .await?;
        Some(KeyOpsReport {
            rotations,
            revocation,
        })
    };

    let mut machine = machine;
    machine.load_at_end = crate::sys::load_average();
    let report = Report {
        machine,
        config: config.clone(),
        ingest: ingest_rows,
        queries: sections,
        keyops,
        peers,
    };
    write_report(&report, &options.out)?;
    progress.say(&format!("report written to {}", options.out.display()));
    std::fs::remove_dir_all(&run_dir)?;
    Ok(report)
}

/// One case of the ingestion table.
enum IngestCase<'a> {
    /// The baseline or the engine under a key, in a child process.
    Engine(IngestTarget),
    /// The `logvault` binary (`logvault ingest FILE`).
    Cli(&'a Path),
    /// DuckDB's conversion: its system name and threads.
    Duck(&'a DuckDb, &'static str, usize),
}

impl IngestCase<'_> {
    fn label(&self) -> &'static str {
        match self {
            Self::Engine(target) => target.label(),
            Self::Cli(_) => cli_ingest::SYSTEM,
            Self::Duck(_, system, _) => system,
        }
    }

    /// Where the case writes (a home, or a Parquet file).
    fn output(&self, run_dir: &Path, rows: u64, format: DataFormat) -> PathBuf {
        match self {
            Self::Engine(target) => ingest_output(run_dir, rows, format, *target),
            Self::Cli(_) | Self::Duck(..) => peer_output(run_dir, rows, format, self.label()),
        }
    }
}

fn ingest_output(run_dir: &Path, rows: u64, format: DataFormat, target: IngestTarget) -> PathBuf {
    let name = format!("{}-{}", format.extension(), target.label());
    let dir = run_dir.join(format!("ingest-{rows}"));
    match target {
        IngestTarget::Parquet => dir.join(format!("{name}.parquet")),
        _ => dir.join(name),
    }
}

/// Where a peer's ingestion case writes (the CLI's home, DuckDB's Parquet file).
fn peer_output(run_dir: &Path, rows: u64, format: DataFormat, system: &str) -> PathBuf {
    let dir = run_dir.join(format!("ingest-{rows}"));
    match system {
        cli_ingest::SYSTEM => dir.join(format!("{}-{system}", format.extension())),
        _ => dir.join(format!("{}-{system}.parquet", format.extension())),
    }
}

/// Removes a file or directory if it is there, and makes sure its parent exists.
pub(crate) fn remove(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        std::fs::remove_dir_all(path)?;
    } else if path.exists() {
        std::fs::remove_file(path)?;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    Ok(())
}

fn ingest_row(
    rows: u64,
    format: DataFormat,
    system: &str,
    input_bytes: u64,
    outcomes: &[ingest::CaseOutcome],
) -> IngestRow {
    let wall: Vec<f64> = outcomes.iter().map(|o| o.wall_secs).collect();
    let cpu: Vec<f64> = outcomes.iter().filter_map(|o| o.cpu_secs).collect();
    let wall_m = median(&wall).unwrap_or(f64::NAN);
    let cpu_m = median(&cpu).unwrap_or(f64::NAN);
    let peak = outcomes
        .iter()
        .filter_map(|o| o.peak_rss_bytes)
        .max()
        .unwrap_or(0);
    IngestRow {
        rows,
        format: format.extension().into(),
        system: system.into(),
        input_bytes,
        rows_per_sec: rows as f64 / wall_m,
        mb_per_sec: input_bytes as f64 / 1e6 / wall_m,
        rows_per_cpu_sec: rows as f64 / cpu_m,
        mb_per_cpu_sec: input_bytes as f64 / 1e6 / cpu_m,
        peak_rss_mib: peak as f64 / (1024.0 * 1024.0),
        output_bytes: outcomes.last().map(|o| o.output_bytes).unwrap_or(0),
        wall_secs: wall,
        cpu_secs: cpu,
        throughput_ratio: None,
        per_core_ratio: None,
    }
}

fn fill_ingest_ratios(rows: &mut [IngestRow]) {
    let baselines: Vec<IngestRow> = rows
        .iter()
        .filter(|r| r.system == INGEST_BASELINE)
        .cloned()
        .collect();
    for r in rows.iter_mut() {
        if let Some(b) = baselines
            .iter()
            .find(|b| b.rows == r.rows && b.format == r.format)
        {
            r.throughput_ratio = ratio(r.rows_per_sec, b.rows_per_sec);
            r.per_core_ratio = ratio(r.rows_per_cpu_sec, b.rows_per_cpu_sec);
        }
    }
}

/// Ingests the host inventory into the home's workspace (once).
pub(crate) async fn add_inventory(home: &Path, inventory: &Path) -> anyhow::Result<()> {
    let engine = setup::open_home(
        home,
        HomeTimings {
            key_check_secs: None,
        },
    )
    .await?;
    let tables = engine.store().catalog().tables(WORKSPACE).await?;
    if tables.iter().any(|t| t == INVENTORY_TABLE) {
        return Ok(());
    }
    let reader = std::io::BufReader::new(std::fs::File::open(inventory)?);
    let report = engine
        .ingest(
            WORKSPACE,
            INVENTORY_TABLE,
            reader,
            &IngestOptions::new(Format::JsonLines),
            None,
        )
        .await
        .with_context(|| format!("ingesting the inventory into {}", home.display()))?;
    if report.accepted == 0 {
        bail!("the inventory was not accepted: {report:?}");
    }
    Ok(())
}

/// Every system's answers against the baseline's; one line per difference. A logvault system
/// that fails a query fails the run before this; a peer's failed query is a note, not a
/// difference, and has no run here.
pub fn compare_answers(rows: u64, systems: &[(String, Vec<QueryRun>)]) -> Vec<String> {
    let Some((_, baseline)) = systems.iter().find(|(n, _)| n == QUERY_BASELINE) else {
        return vec![format!("no {QUERY_BASELINE} runs at {rows} rows")];
    };
    let mut out = Vec::new();
    for (name, runs) in systems.iter().filter(|(n, _)| n != QUERY_BASELINE) {
        for base in baseline {
            let run = runs.iter().find(|r| r.query == base.query);
            if let Some(diff) = run.and_then(|r| r.answer.difference(&base.answer)) {
                out.push(format!("{rows} rows, {}: {name} {diff}", base.query));
            }
        }
    }
    out
}

fn section(
    rows: u64,
    params: queries::SuiteParams,
    suite: Vec<queries::QueryDef>,
    systems: Vec<(String, Vec<QueryRun>)>,
) -> QuerySection {
    let mut results = Vec::new();
    for (name, runs) in &systems {
        for run in runs {
            results.push(QueryResult {
                query: run.query.clone(),
                system: name.clone(),
                cold_ms: median(&run.cold_ms).unwrap_or(f64::NAN),
                warm_ms: median(&run.warm_ms).unwrap_or(f64::NAN),
                cold_runs: run.cold_ms.clone(),
                warm_runs: run.warm_ms.clone(),
                cold_ratio: None,
                warm_ratio: None,
                hot_ms: median(&run.hot_ms),
                hot_runs: run.hot_ms.clone(),
                hot_ratio: None,
                answer_rows: run.answer.rows.len(),
            });
        }
    }
    let mut section = QuerySection {
        rows,
        params,
        queries: suite,
        systems: systems.into_iter().map(|(n, _)| n).collect(),
        results,
    };
    section.compute_ratios();
    section
}

/// Writes `results.json`, `results.md` and one chart per query section to `out`.
///
/// # Errors
/// I/O and plotting errors.
pub fn write_report(report: &Report, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(report)? + "\n",
    )?;
    std::fs::write(out.join("results.md"), report.to_markdown())?;
    for section in &report.queries {
        std::fs::write(
            out.join(format!("queries-{}.svg", section.rows)),
            crate::chart::query_chart_svg(section)?,
        )?;
    }
    Ok(())
}

/// A copy of this executable under `dir`, for the child processes of the ingestion and HTTP
/// cases: a concurrent build cannot replace it under them.
///
/// # Errors
/// If it cannot be copied.
pub fn private_exe(dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let exe = dir.join("logvault-bench");
    std::fs::copy(std::env::current_exe()?, &exe).context("copying the harness executable")?;
    Ok(exe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answers::{Answer, Cell};

    fn run(query: &str, n: i64) -> QueryRun {
        QueryRun {
            query: query.into(),
            cold_ms: vec![1.0],
            warm_ms: vec![1.0],
            hot_ms: Vec::new(),
            answer: Answer {
                columns: vec!["n".into()],
                rows: vec![vec![Cell::Int(n)]],
            },
        }
    }

    #[test]
    fn mismatches_are_reported() {
        let systems = vec![
            (QUERY_BASELINE.to_owned(), vec![run("a", 1), run("b", 2)]),
            ("good".to_owned(), vec![run("a", 1), run("b", 2)]),
            ("bad".to_owned(), vec![run("a", 1), run("b", 3)]),
            ("short".to_owned(), vec![run("a", 1)]),
        ];
        let diffs = compare_answers(10, &systems);
        assert_eq!(
            diffs.len(),
            1,
            "a missing run is not a difference: {diffs:?}"
        );
        assert!(diffs[0].contains("b: bad row 0"), "{diffs:?}");
        assert!(compare_answers(10, &systems[1..])[0].contains("no datafusion-parquet"));
    }

    #[test]
    fn ingest_ratios_compare_with_the_same_size_and_format() {
        let outcome = |secs: f64| ingest::CaseOutcome {
            rows: 100,
            wall_secs: secs,
            cpu_secs: Some(secs * 2.0),
            peak_rss_bytes: Some(1 << 20),
            peak_reset: true,
            output_bytes: 10,
        };
        let mut rows = vec![
            ingest_row(
                100,
                DataFormat::Ndjson,
                IngestTarget::Parquet.label(),
                1000,
                &[outcome(1.0)],
            ),
            ingest_row(
                100,
                DataFormat::Ndjson,
                cli_ingest::SYSTEM,
                1000,
                &[outcome(2.0), outcome(3.0), outcome(2.0)],
            ),
        ];
        fill_ingest_ratios(&mut rows);
        assert_eq!(rows[1].rows_per_sec, 50.0);
        assert_eq!(rows[1].throughput_ratio, Some(0.5));
        assert_eq!(rows[1].per_core_ratio, Some(0.5));
        assert_eq!(rows[0].throughput_ratio, Some(1.0));
        assert_eq!(rows[1].peak_rss_mib, 1.0);
    }
}
