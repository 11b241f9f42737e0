//! The report: what a run measured, as JSON and as a markdown page.

use serde::{Deserialize, Serialize};

use crate::keyops::{RevocationResult, RotationResult};
use crate::queries::{QueryDef, Repeats, SuiteParams};
use crate::stats::{format_ms, format_ratio, median};
use crate::sys::Machine;

mod markdown;

/// The name of the query baseline.
pub const QUERY_BASELINE: &str = "datafusion-parquet";
/// The name of the ingestion baseline.
pub const INGEST_BASELINE: &str = "parquet-baseline";

/// How the run was configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunConfig {
    /// The one-minute smoke run.
    pub quick: bool,
    /// Row counts of the ingestion and query benchmarks.
    pub rows: Vec<u64>,
    /// Input formats.
    pub formats: Vec<String>,
    /// Ingestion runs per case (median reported).
    pub ingest_repeats: usize,
    /// Query runs.
    pub query_repeats: Repeats,
    /// Row counts of the rotation benchmark.
    pub keyops_rows: Vec<u64>,
    /// Rotations per size.
    pub rotations: usize,
    /// Revocation/restore trials.
    pub revocations: usize,
    /// Key check interval of the key operation homes, seconds.
    pub key_check_secs: (i64, i64),
    /// Generator seed.
    pub seed: u64,
    /// The memory tier's bound in logvault's homes (0: the hot cache off); absent in results
    /// of runs before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot_cache_memory_bytes: Option<u64>,
    /// Only the ingestion table was run (`run --ingest-only`): no queries, no key operations.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ingest_only: bool,
    /// The systems were timed in turn (`interleave`: each query on every system, each
    /// ingestion case once per round); false in reports of runs before 2026-12-06 morning,
    /// which ran one system's suite after another's.
    #[serde(default)]
    pub interleaved: bool,
}

/// One ingestion case: medians over its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestRow {
    /// Rows.
    pub rows: u64,
    /// `ndjson` or `csv`.
    pub format: String,
    /// The system.
    pub system: String,
    /// Input size in bytes.
    pub input_bytes: u64,
    /// Wall seconds of each run.
    pub wall_secs: Vec<f64>,
    /// CPU seconds of each run.
    pub cpu_secs: Vec<f64>,
    /// Rows per wall second (median run).
    pub rows_per_sec: f64,
    /// Input MB (10^6 bytes) per wall second.
    pub mb_per_sec: f64,
    /// Rows per CPU second: throughput per core.
    pub rows_per_cpu_sec: f64,
    /// Input MB per CPU second.
    pub mb_per_cpu_sec: f64,
    /// Highest peak resident memory over the runs, MiB.
    pub peak_rss_mib: f64,
    /// Bytes written.
    pub output_bytes: u64,
    /// Rows per second relative to the baseline (higher is better).
    pub throughput_ratio: Option<f64>,
    /// Rows per CPU second relative to the baseline.
    pub per_core_ratio: Option<f64>,
}

/// One query on one system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryResult {
    /// The query's name.
    pub query: String,
    /// The system.
    pub system: String,
    /// Cold run times, ms.
    pub cold_runs: Vec<f64>,
    /// Warm run times, ms.
    pub warm_runs: Vec<f64>,
    /// Median cold, ms.
    pub cold_ms: f64,
    /// Median warm, ms.
    pub warm_ms: f64,
    /// Median cold relative to the baseline's (lower is better).
    pub cold_ratio: Option<f64>,
    /// Median warm relative to the baseline's.
    pub warm_ratio: Option<f64>,
    /// Hot run times, ms: logvault's warm session again once its hot cache has settled (the
    /// memory tier holds what the session read). Empty for the other systems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hot_runs: Vec<f64>,
    /// Median hot, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot_ms: Option<f64>,
    /// Median hot relative to the baseline's median *warm*.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot_ratio: Option<f64>,
    /// Rows of the answer (the same on every system: checked).
    pub answer_rows: usize,
}

/// Which runs of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Repeated in an open session.
    Warm,
    /// From a new engine or session.
    Cold,
    /// logvault's warm session once its hot cache has settled.
    Hot,
}

impl QueryResult {
    /// The ratio to the baseline of `phase` (hot compares with the baseline's warm).
    pub fn ratio(&self, phase: Phase) -> Option<f64> {
        match phase {
            Phase::Warm => self.warm_ratio,
            Phase::Cold => self.cold_ratio,
            Phase::Hot => self.hot_ratio,
        }
    }
}

/// The query suite at one data size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuerySection {
    /// Rows.
    pub rows: u64,
    /// Parameters taken from the data.
    pub params: SuiteParams,
    /// The queries.
    pub queries: Vec<QueryDef>,
    /// Systems in column order, baseline first.
    pub systems: Vec<String>,
    /// Every query on every system.
    pub results: Vec<QueryResult>,
}

impl QuerySection {
    /// The result of `query` on `system`.
    pub fn get(&self, query: &str, system: &str) -> Option<&QueryResult> {
        self.results
            .iter()
            .find(|r| r.query == query && r.system == system)
    }

    /// Fills in every result's ratios against the baseline's medians.
    pub fn compute_ratios(&mut self) {
        let baseline: Vec<(String, f64, f64)> = self
            .results
            .iter()
            .filter(|r| r.system == QUERY_BASELINE)
            .map(|r| (r.query.clone(), r.cold_ms, r.warm_ms))
            .collect();
        for r in &mut self.results {
            if let Some((_, cold, warm)) = baseline.iter().find(|b| b.0 == r.query) {
                r.cold_ratio = crate::stats::ratio(r.cold_ms, *cold);
                r.warm_ratio = crate::stats::ratio(r.warm_ms, *warm);
                r.hot_ratio = r.hot_ms.and_then(|hot| crate::stats::ratio(hot, *warm));
            }
        }
    }

    /// The geometric mean of `system`'s ratios of one phase over the suite.
    pub fn geomean_ratio(&self, system: &str, phase: Phase) -> Option<f64> {
        let ratios: Vec<f64> = self
            .results
            .iter()
            .filter(|r| r.system == system)
            .filter_map(|r| r.ratio(phase))
            .collect();
        if ratios.is_empty() || ratios.iter().any(|r| *r <= 0.0) {
            return None;
        }
        Some((ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp())
    }
}

/// Key operations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyOpsReport {
    /// Rotation per size.
    pub rotations: Vec<RotationResult>,
    /// Revocation and restore.
    pub revocation: RevocationResult,
}

/// Whether and how DuckDB took part.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerInfo {
    /// DuckDB's version, if it ran (the `duckdb` and `duckdb-encrypted` query systems).
    pub duckdb_version: Option<String>,
    /// The newest DuckDB release's version, if it ran the query suite too (its own system).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duckdb_newest_version: Option<String>,
    /// The DuckDB release of the ingestion table's `duckdb-1t` and `duckdb` rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duckdb_ingest_version: Option<String>,
    /// Why a peer was skipped, or other remarks.
    pub notes: Vec<String>,
}

/// Everything a run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// The configuration.
    pub config: RunConfig,
    /// Ingestion cases.
    pub ingest: Vec<IngestRow>,
    /// Query suite per size.
    pub queries: Vec<QuerySection>,
    /// Key operations.
    pub keyops: Option<KeyOpsReport>,
    /// Peers.
    pub peers: PeerInfo,
}

/// Writes a benchmark's report as `{stem}.json` (`value`, pretty) and `{stem}.md` (`markdown`)
/// in `out`, created if missing.
///
/// # Errors
/// If the directory or a file cannot be written, naming it.
pub fn write_report<T: Serialize>(
    out: &std::path::Path,
    stem: &str,
    value: &T,
    markdown: &str,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json = out.join(format!("{stem}.json"));
    std::fs::write(&json, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let md = out.join(format!("{stem}.md"));
    std::fs::write(&md, markdown).with_context(|| format!("writing {}", md.display()))?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn result(query: &str, system: &str, warm: f64) -> QueryResult {
        QueryResult {
            query: query.into(),
            system: system.into(),
            cold_runs: vec![warm * 2.0],
            warm_runs: vec![warm],
            cold_ms: warm * 2.0,
            warm_ms: warm,
            cold_ratio: None,
            warm_ratio: None,
            hot_runs: Vec::new(),
            hot_ms: None,
            hot_ratio: None,
            answer_rows: 1,
        }
    }

    pub(crate) fn sample_section() -> QuerySection {
        let params = SuiteParams {
            needle: "x".into(),
            window_start: "a".into(),
            window_end: "b".into(),
        };
        let mut section = QuerySection {
            rows: 1000,
            queries: crate::queries::suite(&params)[..2].to_vec(),
            params,
            systems: vec![QUERY_BASELINE.into(), "logvault-mmk".into()],
            results: vec![
                result("count_by_level", QUERY_BASELINE, 10.0),
                result("count_by_level", "logvault-mmk", 20.0),
                result("errors_per_hour", QUERY_BASELINE, 10.0),
                result("errors_per_hour", "logvault-mmk", 5.0),
            ],
        };
        section.compute_ratios();
        section
    }

    #[test]
    fn ratios_and_geomean() {
        let section = sample_section();
        let r = section.get("count_by_level", "logvault-mmk").unwrap();
        assert_eq!(r.warm_ratio, Some(2.0));
        assert_eq!(r.cold_ratio, Some(2.0));
        let g = section.geomean_ratio("logvault-mmk", Phase::Warm).unwrap();
        assert!((g - 1.0).abs() < 1e-12, "sqrt(2 * 0.5) = 1, got {g}");
        assert_eq!(section.geomean_ratio("nobody", Phase::Warm), None);
    }

    #[test]
    fn hot_runs_compare_with_the_baseline_warm_and_get_their_table() {
        let mut section = sample_section();
        for r in &mut section.results {
            if r.system == "logvault-mmk" {
                r.hot_runs = vec![r.warm_ms / 10.0];
                r.hot_ms = Some(r.warm_ms / 10.0);
            }
        }
        section.compute_ratios();
        let r = section.get("count_by_level", "logvault-mmk").unwrap();
        assert_eq!(r.hot_ratio, Some(0.2));
        assert_eq!(r.warm_ratio, Some(2.0));
        let g = section.geomean_ratio("logvault-mmk", Phase::Hot).unwrap();
        assert!((g - 0.1).abs() < 1e-12, "{g}");
        let mut md = String::new();
        markdown::section_markdown(&section, true, &mut md);
        let hot = md.split("### Hot").nth(1).expect("a hot table");
        assert!(hot.contains("| count by level | 10.0 ms | 0.20× |"), "{md}");
        assert!(hot.contains("**0.10×**"), "{md}");
        let json = serde_json::to_string(&section).unwrap();
        let back: QuerySection = serde_json::from_str(&json).unwrap();
        assert_eq!(back, section);
    }

    #[test]
    fn markdown_has_every_table() {
        let report = Report {
            machine: Machine {
                cpu_model: "Test CPU".into(),
                cores: 2,
                ..Machine::default()
            },
            config: RunConfig {
                quick: true,
                rows: vec![1000],
                formats: vec!["ndjson".into()],
                ingest_repeats: 1,
                query_repeats: Repeats {
                    cold: 1,
                    warm: 2,
                    rounds: 1,
                },
                keyops_rows: vec![100],
                rotations: 1,
                revocations: 1,
                key_check_secs: (1, 2),
                seed: 42,
                hot_cache_memory_bytes: Some(512 << 20),
                ingest_only: false,
                interleaved: true,
            },
            ingest: vec![IngestRow {
                rows: 1000,
                format: "ndjson".into(),
                system: INGEST_BASELINE.into(),
                input_bytes: 300_000,
                wall_secs: vec![0.1],
                cpu_secs: vec![0.1],
                rows_per_sec: 10_000.0,
                mb_per_sec: 3.0,
                rows_per_cpu_sec: 10_000.0,
                mb_per_cpu_sec: 3.0,
                peak_rss_mib: 50.0,
                output_bytes: 100_000,
                throughput_ratio: Some(1.0),
                per_core_ratio: Some(1.0),
            }],
            queries: vec![sample_section()],
            keyops: Some(KeyOpsReport {
                rotations: vec![],
                revocation: RevocationResult {
                    key_check_secs: (1, 2),
                    poll_ms: 100,
                    revoke_query_ms: vec![1500.0, 2500.0],
                    revoke_ingest_ms: vec![1600.0],
                    restore_query_ms: vec![900.0],
                    restore_ingest_ms: vec![950.0],
                },
            }),
            peers: PeerInfo {
                duckdb_version: None,
                duckdb_newest_version: Some("2.0.1".into()),
                duckdb_ingest_version: Some("2.0.1".into()),
                notes: vec!["DuckDB skipped: no network".into()],
            },
        };
        let md = report.to_markdown();
        assert!(md.contains("Test CPU"));
        assert!(md.contains("## Ingestion"));
        assert!(md.contains("| 1000 | ndjson | parquet-baseline | 10.0 k |"));
        assert!(md.contains("## Queries at 1000 rows"));
        assert!(md.contains("(queries-1000.svg)"));
        assert!(md.contains("| count by level | 10.0 ms | 2.00× |"), "{md}");
        assert!(md.contains("**1.00×**"));
        assert!(md.contains("DuckDB skipped: no network"));
        assert!(md.contains("| DuckDB, newest | 2.0.1 "), "{md}");
        assert!(
            md.contains("| DuckDB of the ingestion table | 2.0.1 |"),
            "{md}"
        );
        assert!(md.contains("2000 ms (max 2500 ms)"), "{md}");
        assert!(md.contains("QUICK"));
        assert!(md.contains("memory tier bounded at 512 MiB"), "{md}");
        assert!(!md.contains("### Hot"), "no hot runs, no hot table");
        assert!(
            !md.contains("`logvault-cli` is"),
            "no peer rows, no peer text"
        );
        let json = serde_json::to_string(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);

        let mut with_peers = report;
        let mut cli = with_peers.ingest[0].clone();
        cli.system = crate::cli_ingest::SYSTEM.into();
        cli.rows_per_sec = 5_000.0;
        cli.throughput_ratio = Some(0.5);
        with_peers.ingest.push(cli);
        let md = with_peers.to_markdown();
        assert!(md.contains("`logvault-cli` is the whole"), "{md}");
        assert!(
            md.contains("| 1000 | ndjson | logvault-cli | 5.0 k |"),
            "{md}"
        );
        assert!(md.contains("| 0.50× |"), "{md}");
    }

    #[test]
    fn a_report_says_whether_its_systems_were_timed_in_turn() {
        let json = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/bench/2026-12-06-second/results.json"
        ))
        .unwrap();
        // A run of the night before: each system's suite after the other's.
        let mut report: Report = serde_json::from_str(&json).unwrap();
        assert!(!report.config.interleaved);
        let md = report.to_markdown();
        assert!(md.contains("one system's suite after another's"), "{md}");
        assert!(md.contains("Each system ran the whole suite"), "{md}");
        assert!(!md.contains("on every system in turn"), "{md}");
        report.config.interleaved = true;
        let md = report.to_markdown();
        assert!(
            md.contains("in 1 round(s) (each query on every system in turn)"),
            "{md}"
        );
        assert!(
            md.contains("Each query ran on every system in turn"),
            "{md}"
        );
    }
}
