//! Durability (R-E3): an ingest killed with SIGKILL at any point loses no acknowledged row and
//! duplicates none; the next run replays the write-ahead log (stdin), or finds a load's
//! checkpoints (a file). The random kill harnesses are in `cli_crash_random.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

pub(super) fn logvault(home: &Path) -> Command {
    let mut c = Command::new(crate::common::bin());
    c.arg("--home").arg(home).env_remove("LOGVAULT_HOME");
    c
}

pub(super) fn run_ok(home: &Path, args: &[&str]) -> String {
    let out = logvault(home).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Writes `rows` JSON lines with unique `Seq` values starting at `from`.
pub(super) fn payload(path: &Path, from: u64, rows: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in from..from + rows {
        writeln!(
            f,
            r#"{{"TimeGenerated":"2026-03-0{}T{:02}:{:02}:00Z","Seq":{i},"Message":"message number {i} with some padding to make the line longer"}}"#,
            1 + (i % 3),
            (i / 60) % 24,
            i % 60
        )
        .unwrap();
    }
}

/// How an ingest of a file is run.
#[derive(Debug, Clone, Copy)]
pub(super) enum Input {
    /// From stdin: every batch is acknowledged once the write-ahead log has it.
    Stdin,
    /// The file given: a bulk load, acknowledged at its checkpoints (here every 20,000 rows).
    Load,
}

impl Input {
    /// The command's arguments for `file` into `ws`'s `Events`, and the file to give as stdin.
    pub(super) fn command(
        self,
        ws: &str,
        file: &Path,
    ) -> (Vec<String>, Option<std::path::PathBuf>) {
        let mut args: Vec<String> = [
            "ingest",
            "--workspace",
            ws,
            "--table",
            "Events",
            "--print-acks",
        ]
        .map(String::from)
        .to_vec();
        match self {
            Self::Stdin => {
                args.extend(["--format".into(), "jsonl".into()]);
                (args, Some(file.to_path_buf()))
            }
            Self::Load => {
                args.extend([
                    "--checkpoint-rows".into(),
                    "20000".into(),
                    file.to_string_lossy().into_owned(),
                ]);
                (args, None)
            }
        }
    }
}

/// Starts an ingest, waits until at least `after` rows are acknowledged, kills it with SIGKILL;
/// returns the highest acknowledged row count it printed.
fn ingest_and_kill(home: &Path, file: &Path, after: u64, input: Input) -> u64 {
    let (args, stdin) = input.command("ws-crash", file);
    let mut child = logvault(home)
        .args(&args)
        .stdin(stdin.map_or_else(Stdio::null, |f| {
            Stdio::from(std::fs::File::open(f).unwrap())
        }))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut acked = 0;
    for line in stderr.lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("acked ") {
            acked = n.trim().parse().unwrap();
            if acked >= after {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    acked
}

fn counts(home: &Path, below: u64) -> (u64, u64, u64) {
    let out = run_ok(
        home,
        &[
            "-o",
            "json",
            "query",
            "--workspace",
            "ws-crash",
            &format!(
                "SELECT count(*) AS n, count(DISTINCT Seq) AS d, sum(CASE WHEN Seq < {below} THEN 1 ELSE 0 END) AS acked FROM Events"
            ),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    (
        v[0]["n"].as_u64().unwrap(),
        v[0]["d"].as_u64().unwrap(),
        v[0]["acked"].as_u64().unwrap(),
    )
}

fn sigkill_during_ingest(input: Input) {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    run_ok(&home, &["workspace", "create", "--name", "ws-crash"]);
    let file = tmp.path().join("events.jsonl");
    let rows = 300_000;
    payload(&file, 0, rows);

    // Killed early, after the first acknowledgements (batches in the log, or a load's first
    // checkpoint), with more rows read and not yet stored.
    let acked = ingest_and_kill(&home, &file, 20_000, input);
    assert!(acked >= 20_000 && acked < rows, "acked {acked}");
    let (n, d, seen) = counts(&home, acked);
    assert_eq!(n, d, "a row was stored twice");
    assert_eq!(seen, acked, "an acknowledged row was lost");

    // Killed again, later; then the same file ingested to the end once more: every row once
    // per complete ingest, no matter how many times the log was replayed.
    let second = tmp.path().join("more.jsonl");
    payload(&second, rows, rows);
    let acked2 = ingest_and_kill(&home, &second, 100_000, input);
    let (n2, d2, _) = counts(&home, rows + acked2);
    assert_eq!(n2, d2, "a row was stored twice");
    assert!(n2 >= acked + acked2, "lost rows: {n2} < {acked} + {acked2}");
    let out = run_ok(
        &home,
        &[
            "-o",
            "json",
            "query",
            "--workspace",
            "ws-crash",
            &format!("SELECT count(*) AS n, max(Seq) AS top FROM Events WHERE Seq >= {rows}"),
        ],
    );
    // What the second ingest stored is a prefix of its input, at least what it acknowledged.
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let stored = v[0]["n"].as_u64().unwrap();
    assert!(stored >= acked2, "{stored} < {acked2}");
    assert_eq!(
        v[0]["top"].as_u64().unwrap(),
        rows + stored - 1,
        "not a prefix: {v}"
    );
}

#[test]
fn sigkill_during_a_logged_ingest_loses_no_acknowledged_row_and_duplicates_none() {
    sigkill_during_ingest(Input::Stdin);
}

#[test]
fn sigkill_during_a_load_loses_no_acknowledged_row_and_duplicates_none() {
    sigkill_during_ingest(Input::Load);
}
