//! Whole-process CLI ingestion: `logvault ingest FILE` into a customer-key workspace, the path a
//! user takes, as a child process of the real `logvault` binary built beside the harness (same
//! build profile).
//!
//! The home is set up first in another child (`logvault-bench prepare-home`: vault, RSA-2048
//! key, cluster, link, as for the engine cases), so only the CLI's own process is measured:
//! from its start to its exit (start-up, opening the home, the key check, parsing, the
//! write-ahead log, segments). Its CPU time is exact (the harness's `cutime` + `cstime` around
//! waiting for it); its peak memory is its `VmHWM` sampled every few milliseconds while it runs
//! (a high-water mark, so only growth in the last interval before it exits can be missed).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::ingest::{CaseOutcome, DataFormat, LOG_TABLE};
use crate::setup::{Protection, WORKSPACE};
use crate::sys;

/// The report's name for the CLI case.
pub const SYSTEM: &str = "logvault-cli";
/// The protection of the CLI case's workspace.
pub const PROTECTION: Protection = Protection::Customer;

/// How often the child's peak memory is sampled.
const SAMPLE: Duration = Duration::from_millis(2);

/// The `logvault` binary beside the harness's own executable (the same target directory and
/// build profile), copied to `dir` so that a concurrent build cannot replace it during the run;
/// why not, if there is none.
pub fn private_cli(dir: &Path) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate the harness: {e}"))?;
    let beside = exe
        .parent()
        .map(|d| d.join("logvault"))
        .ok_or_else(|| "the harness has no directory".to_owned())?;
    if !beside.is_file() {
        return Err(format!(
            "no logvault binary at {} (build the workspace: cargo build --workspace, with \
             --release for a release run)",
            beside.display()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let copy = dir.join("logvault");
    std::fs::copy(&beside, &copy).map_err(|e| format!("cannot copy {}: {e}", beside.display()))?;
    Ok(copy)
}

/// The CLI's `--format` for a generated file.
fn cli_format(format: DataFormat) -> anyhow::Result<&'static str> {
    match format {
        DataFormat::Ndjson => Ok("jsonl"),
        DataFormat::Csv => Ok("csv"),
        DataFormat::Parquet => bail!("the CLI ingests text formats, not parquet"),
    }
}

/// Rows the CLI accepted, from its `-o json` report; an error if it rejected or dropped any.
pub fn accepted_rows(stdout: &str) -> anyhow::Result<u64> {
    // One JSON object, pretty-printed over several lines.
    let start = stdout
        .find('{')
        .context("logvault ingest printed no JSON report")?;
    let line = stdout[start..].trim();
    let report: serde_json::Value =
        serde_json::from_str(line).context("logvault ingest's report is not JSON")?;
    let count = |key: &str| report[key].as_u64().unwrap_or(0);
    let accepted = report["accepted"]
        .as_u64()
        .context("logvault ingest's report has no accepted count")?;
    if count("rejected") > 0 || count("dropped") > 0 {
        bail!(
            "logvault ingest rejected {} and dropped {} rows: {line}",
            count("rejected"),
            count("dropped")
        );
    }
    Ok(accepted)
}

/// Runs `logvault --home HOME -o json ingest` of `input` into the home's customer-key
/// workspace (set up by `harness prepare-home` first) and measures the process.
///
/// # Errors
/// If the set-up or the CLI fails, or the CLI's report is unreadable.
pub fn run_case(
    harness: &Path,
    cli: &Path,
    format: DataFormat,
    input: &Path,
    home: &Path,
) -> anyhow::Result<CaseOutcome> {
    let status = Command::new(harness)
        .arg("prepare-home")
        .arg("--home")
        .arg(home)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .context("starting prepare-home")?;
    if !status.success() {
        bail!("prepare-home {} failed ({status})", home.display());
    }
    // Its stderr (a summary line, warnings) to a file: a pipe nobody reads could fill.
    let log_path = home.with_extension("stderr.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let cpu_before = sys::children_cpu_seconds();
    let started = Instant::now();
    let mut child = Command::new(cli)
        .arg("--home")
        .arg(home)
        .args(["-o", "json", "ingest", "--workspace", WORKSPACE])
        .args(["--table", LOG_TABLE, "--format", cli_format(format)?])
        .arg(input)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", cli.display()))?;
    let mut peak = 0u64;
    let exit = loop {
        if let Some(p) = sys::process_peak_rss_bytes(child.id()) {
            peak = peak.max(p);
        }
        if let Some(exit) = child.try_wait()? {
            break exit;
        }
        std::thread::sleep(SAMPLE);
    };
    let wall_secs = started.elapsed().as_secs_f64();
    let cpu_secs = match (cpu_before, sys::children_cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    // The report is one small line: the pipe cannot fill before the child exits.
    let out = child.wait_with_output()?;
    if !exit.success() {
        let err = std::fs::read_to_string(&log_path).unwrap_or_default();
        bail!("logvault ingest failed ({exit}): {}", err.trim());
    }
    let rows = accepted_rows(&String::from_utf8_lossy(&out.stdout))?;
    Ok(CaseOutcome {
        rows,
        wall_secs,
        cpu_secs,
        peak_rss_bytes: (peak > 0).then_some(peak),
        peak_reset: false,
        output_bytes: sys::dir_size(&home.join("storage")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cli_report() {
        let out = "{\n  \"accepted\": 20000,\n  \"dropped\": 0,\n  \"rejected\": 0,\n  \"segments\": 1,\n  \"account\": \"cluster-x\"\n}\n";
        assert_eq!(accepted_rows(out).unwrap(), 20_000);
        let dropped = "{\"accepted\":0,\"dropped\":5,\"reason\":\"revoked\",\"rejected\":0}";
        assert!(
            accepted_rows(dropped)
                .unwrap_err()
                .to_string()
                .contains("dropped 5")
        );
        let rejected = "{\"accepted\":3,\"dropped\":0,\"rejected\":2}";
        assert!(accepted_rows(rejected).is_err());
        assert!(accepted_rows("no json here").is_err());
        assert!(accepted_rows("{\"segments\":1}").is_err());
    }

    #[test]
    fn formats_map_to_the_cli() {
        assert_eq!(cli_format(DataFormat::Ndjson).unwrap(), "jsonl");
        assert_eq!(cli_format(DataFormat::Csv).unwrap(), "csv");
        assert!(cli_format(DataFormat::Parquet).is_err());
    }
}
