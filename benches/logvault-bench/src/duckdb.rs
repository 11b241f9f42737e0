//! DuckDB as a peer: its Python package in virtual environments the harness makes, running the
//! same query suite on the same plaintext Parquet, and on a copy DuckDB encrypts itself (Parquet
//! modular encryption with a footer key, AES-GCM); and DuckDB converting the generated NDJSON or
//! CSV file to zstd Parquet, as an ingestion peer.
//!
//! Two pinned releases, each in its own environment: DuckDB 1.5.5 with the
//! `duckdb-extension-httpfs` wheel (its httpfs extension brings OpenSSL, without which DuckDB
//! refuses to write encrypted Parquet), and the newest, 2.0.1, which has no httpfs wheel on PyPI
//! (extensions cannot be downloaded here), so it runs on plaintext only. DuckDB cannot read
//! parquet-rs's encrypted files (AES tag mismatches on some columns), so the encrypted copy is
//! DuckDB's own, written with zstd and the baseline's row group size.
//!
//! Without Python, without the package index, or if DuckDB fails, the peer is skipped with a
//! note in the report, never silently.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use rand::Rng as _;

use crate::answers::Answer;
use crate::ingest::{CaseOutcome, DataFormat};
use crate::queries::{QueryDef, QueryRun, Repeats};

/// The DuckDB release of the `duckdb` and `duckdb-encrypted` systems (with the httpfs extension
/// of the same version).
pub const DUCKDB_VERSION: &str = "1.5.5";
/// The report's name for DuckDB on plaintext Parquet.
pub const PLAIN: &str = "duckdb";
/// The report's name for DuckDB on encrypted Parquet.
pub const ENCRYPTED: &str = "duckdb-encrypted";
/// The ingestion table's name for DuckDB's conversion with one thread.
pub const INGEST_ONE_THREAD: &str = "duckdb-1t";
/// The ingestion table's name for DuckDB's conversion with all threads.
pub const INGEST_ALL_THREADS: &str = "duckdb";

/// One pinned DuckDB release and its environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// The PyPI version.
    pub version: &'static str,
    /// Whether the `duckdb-extension-httpfs` wheel of that version exists (encrypted Parquet).
    pub httpfs: bool,
    /// The environment's directory under the cache.
    pub venv: &'static str,
    /// The report's name of its plaintext system.
    pub system: &'static str,
}

/// The reference release: `duckdb` and `duckdb-encrypted`.
pub const REFERENCE: Release = Release {
    version: DUCKDB_VERSION,
    httpfs: true,
    venv: "duckdb-venv",
    system: PLAIN,
};

/// The newest release on PyPI: `duckdb-2.0.1`, plaintext only (no httpfs wheel).
pub const NEWEST: Release = Release {
    version: "2.0.1",
    httpfs: false,
    venv: "duckdb-2.0.1-venv",
    system: "duckdb-2.0.1",
};

const RUNNER: &str = include_str!("duckdb_runner.py");

/// A Python with DuckDB installed.
#[derive(Debug, Clone)]
pub struct DuckDb {
    python: PathBuf,
    script: PathBuf,
    /// The release installed.
    pub release: Release,
}

/// Makes (or reuses) the virtual environment of `release` under `cache`; why not, if it
/// cannot.
pub fn prepare(cache: &Path, release: Release) -> Result<DuckDb, String> {
    let venv = cache.join(release.venv);
    let python = venv.join("bin").join("python");
    let script = cache.join("duckdb_runner.py");
    std::fs::create_dir_all(cache)
        .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
    std::fs::write(&script, RUNNER).map_err(|e| format!("cannot write the runner: {e}"))?;
    let import = if release.httpfs {
        "import duckdb, duckdb_extension_httpfs, sys; sys.stdout.write(duckdb.__version__)"
    } else {
        "import duckdb, sys; sys.stdout.write(duckdb.__version__)"
    };
    let ready = || {
        Command::new(&python)
            .args(["-c", import])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == release.version)
            .unwrap_or(false)
    };
    let done = || DuckDb {
        python: python.clone(),
        script: script.clone(),
        release,
    };
    if ready() {
        return Ok(done());
    }
    let step = |program: &Path, args: &[&str], what: &str| -> Result<(), String> {
        let out = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{what}: cannot run {}: {e}", program.display()))?;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        ))
    };
    if !python.exists() {
        let venv_arg = venv.to_string_lossy();
        step(
            Path::new("python3"),
            &["-m", "venv", venv_arg.as_ref()],
            "python3 -m venv",
        )?;
    }
    let mut args = vec![
        "-m".to_owned(),
        "pip".into(),
        "install".into(),
        "--quiet".into(),
        "--disable-pip-version-check".into(),
        "--timeout".into(),
        "20".into(),
        "--retries".into(),
        "1".into(),
        format!("duckdb=={}", release.version),
    ];
    if release.httpfs {
        args.push(format!("duckdb-extension-httpfs=={}", release.version));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    step(
        &python,
        &args,
        &format!(
            "pip install duckdb=={} (is the package index reachable?)",
            release.version
        ),
    )?;
    if ready() {
        Ok(done())
    } else {
        Err(format!(
            "duckdb {} installed but cannot be imported",
            release.version
        ))
    }
}

/// A new throwaway key for DuckDB's encrypted copy: 32 random alphanumeric characters, which
/// DuckDB's `add_parquet_key` takes as the 32 bytes of an AES-256 key. Never a logvault key.
pub fn new_peer_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// The Parquet files DuckDB reads.
#[derive(Debug, Clone)]
pub struct DuckSources {
    /// Plaintext logs.
    pub logs: PathBuf,
    /// Plaintext inventory.
    pub inventory: PathBuf,
    /// DuckDB's encrypted copy of the logs, if wanted.
    pub encrypted: Option<EncryptedCopy>,
}

/// DuckDB's own encrypted copy of the logs.
#[derive(Debug, Clone)]
pub struct EncryptedCopy {
    /// Where it is (or is to be) written.
    pub path: PathBuf,
    /// Its key (see [`new_peer_key`]).
    pub key: String,
    /// Whether a run wrote it already: the first run writes it, later ones only read it.
    pub written: bool,
}

/// What DuckDB did: its version, and per system its runs or why it failed.
#[derive(Debug, Clone)]
pub struct DuckOutcome {
    /// `duckdb.__version__`.
    pub version: String,
    /// `(system name, runs or error)`.
    pub systems: Vec<(String, Result<Vec<QueryRun>, String>)>,
    /// Queries that failed on a system that otherwise ran: `(system, query, error)`.
    pub failed_queries: Vec<(String, String, String)>,
}

impl DuckDb {
    /// Runs `suite` on `sources` with `threads` threads (one round of `repeats`), in a new
    /// process. The encrypted copy is written by the first run that has it; if that fails, it
    /// is dropped from `sources` (the outcome says why), so later runs do not try again.
    ///
    /// # Errors
    /// If the runner cannot start, fails as a whole, or prints something unreadable.
    pub fn run(
        &self,
        sources: &mut DuckSources,
        suite: &[QueryDef],
        repeats: Repeats,
        threads: usize,
    ) -> anyhow::Result<DuckOutcome> {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let mut systems = serde_json::Map::new();
        systems.insert(
            self.release.system.into(),
            serde_json::json!({"logs": path(&sources.logs), "inventory": path(&sources.inventory)}),
        );
        if let Some(copy) = sources.encrypted.as_ref().filter(|_| self.release.httpfs) {
            let mut source = serde_json::json!({
                "logs": path(&copy.path), "inventory": path(&sources.inventory), "key": copy.key,
            });
            if !copy.written {
                source["encryptFrom"] = path(&sources.logs).into();
            }
            systems.insert(ENCRYPTED.into(), source);
        }
        let spec = serde_json::json!({
            "sources": systems,
            "queries": suite.iter().map(|q| serde_json::json!({"name": q.name, "sql": q.sql})).collect::<Vec<_>>(),
            "cold": repeats.cold,
            "warm": repeats.warm,
            "threads": threads,
        });
        let out = self.runner(&spec)?;
        if !out.status.success() {
            bail!(
                "the DuckDB runner failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let outcome = parse_outcome(&serde_json::from_slice(&out.stdout)?)?;
        if self.release.httpfs {
            match outcome.systems.iter().find(|(name, _)| name == ENCRYPTED) {
                Some((_, Ok(_))) => {
                    if let Some(copy) = sources.encrypted.as_mut() {
                        copy.written = true;
                    }
                }
                Some((_, Err(_))) => sources.encrypted = None,
                None => {}
            }
        }
        Ok(outcome)
    }

    /// DuckDB converting `input` to zstd Parquet at `output` with `threads` threads, in a new
    /// process: `COPY (SELECT * FROM read_json(input)) TO output (FORMAT parquet, COMPRESSION
    /// zstd)` (`read_csv` for CSV). Wall and CPU time of the statement, and the process's peak
    /// memory (reset after Python and DuckDB are loaded).
    ///
    /// # Errors
    /// If the runner cannot start or fails, or prints something unreadable.
    pub fn convert(
        &self,
        input: &Path,
        format: DataFormat,
        output: &Path,
        threads: usize,
    ) -> anyhow::Result<CaseOutcome> {
        let spec = serde_json::json!({
            "convert": {
                "input": input.to_string_lossy(),
                "format": format.extension(),
                "output": output.to_string_lossy(),
                "threads": threads,
            }
        });
        let out = self.runner(&spec)?;
        if !out.status.success() {
            bail!(
                "DuckDB's conversion of {} failed ({}): {}",
                input.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        parse_conversion(&out.stdout)
    }

    /// Runs the runner script with `spec` on its stdin; its output, whatever its status.
    fn runner(&self, spec: &serde_json::Value) -> anyhow::Result<std::process::Output> {
        let mut child = Command::new(&self.python)
            .arg(&self.script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting the DuckDB runner")?;
        child
            .stdin
            .take()
            .context("no stdin")?
            .write_all(spec.to_string().as_bytes())?;
        Ok(child.wait_with_output()?)
    }
}

/// The conversion's outcome as the runner prints it (the fields of [`CaseOutcome`]).
fn parse_conversion(stdout: &[u8]) -> anyhow::Result<CaseOutcome> {
    serde_json::from_slice(stdout).context("the DuckDB runner's conversion outcome")
}

fn parse_outcome(value: &serde_json::Value) -> anyhow::Result<DuckOutcome> {
    let version = value["version"].as_str().unwrap_or("unknown").to_owned();
    let mut systems = Vec::new();
    let mut failed_queries = Vec::new();
    let map = value["systems"]
        .as_object()
        .context("runner output without systems")?;
    for (name, result) in map {
        if let Some(err) = result["error"].as_str() {
            systems.push((name.clone(), Err(err.to_owned())));
            continue;
        }
        let mut runs = Vec::new();
        for run in result["runs"].as_array().context("system without runs")? {
            let query = run["query"].as_str().unwrap_or_default().to_owned();
            if let Some(err) = run["error"].as_str() {
                failed_queries.push((name.clone(), query, err.to_owned()));
                continue;
            }
            let times = |key: &str| -> Vec<f64> {
                run[key]
                    .as_array()
                    .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
                    .unwrap_or_default()
            };
            runs.push(QueryRun {
                query,
                cold_ms: times("coldMs"),
                warm_ms: times("warmMs"),
                hot_ms: Vec::new(),
                answer: Answer::from_json(&run["answer"])?,
            });
        }
        systems.push((name.clone(), Ok(runs)));
    }
    Ok(DuckOutcome {
        version,
        systems,
        failed_queries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runner_output_with_a_failed_system() {
        let value = serde_json::json!({
            "version": "2.0.1",
            "systems": {
                "duckdb": {"runs": [{"query": "q", "coldMs": [2.0, 3.0], "warmMs": [1.0],
                                     "answer": {"columns": ["n"], "rows": [[5]]}},
                                    {"query": "r", "error": "IOException: tag"}]},
                "duckdb-encrypted": {"error": "InvalidInputException: no key"}
            }
        });
        let out = parse_outcome(&value).unwrap();
        assert_eq!(out.version, "2.0.1");
        let (name, runs) = &out.systems[0];
        assert_eq!(name, "duckdb");
        let runs = runs.as_ref().unwrap();
        assert_eq!(runs[0].cold_ms, vec![2.0, 3.0]);
        assert_eq!(runs[0].answer.rows.len(), 1);
        assert_eq!(runs.len(), 1);
        assert_eq!(
            out.failed_queries,
            vec![("duckdb".into(), "r".into(), "IOException: tag".into())]
        );
        assert!(out.systems[1].1.as_ref().unwrap_err().contains("no key"));
    }

    #[test]
    fn parses_a_conversion() {
        let out = br#"{"rows": 20000, "wallSecs": 0.25, "cpuSecs": 0.4,
                       "peakRssBytes": 104857600, "peakReset": true, "outputBytes": 123456}"#;
        let outcome = parse_conversion(out).unwrap();
        assert_eq!(outcome.rows, 20_000);
        assert_eq!(outcome.cpu_secs, Some(0.4));
        assert_eq!(outcome.peak_rss_bytes, Some(100 << 20));
        assert!(outcome.peak_reset);
        let no_peak = br#"{"rows": 1, "wallSecs": 0.1, "cpuSecs": null, "peakRssBytes": null,
                           "peakReset": false, "outputBytes": 9}"#;
        assert_eq!(parse_conversion(no_peak).unwrap().peak_rss_bytes, None);
        assert!(parse_conversion(b"{\"rows\": 1}").is_err());
    }

    #[test]
    fn peer_keys_are_new_and_32_characters() {
        let key = new_peer_key();
        assert_eq!(key.len(), 32);
        assert!(key.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(key, new_peer_key());
    }
}
