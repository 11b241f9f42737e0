//! What `logvault ingest` does with what it is given: a regular file is loaded (acknowledged at
//! checkpoints, without the write-ahead log); stdin, a named pipe or a device may be a stream
//! without end, so every batch is acknowledged once logged.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn logvault(home: &std::path::Path) -> Command {
    let mut c = Command::new(crate::common::bin());
    c.arg("--home").arg(home).env_remove("LOGVAULT_HOME");
    c
}

/// Regression guard: a named pipe passed as FILE (`<(tail -f app.log)`, `/dev/stdin`) is a
/// stream. Loaded like a regular file, its rows would be acknowledged only at checkpoints a
/// minute apart or at an end that may never come.
#[test]
fn a_named_pipe_given_as_a_file_is_acknowledged_batch_by_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let created = logvault(&home)
        .args(["workspace", "create", "--name", "ws-pipe"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let fifo = tmp.path().join("app.jsonl");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo {} failed", fifo.display());

    let mut child = logvault(&home)
        .args([
            "ingest",
            "--workspace",
            "ws-pipe",
            "--table",
            "Events",
            "--print-acks",
        ])
        .arg(&fifo)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Opening the pipe for writing waits for the ingest to open it for reading.
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let rows = 30_000u64;
    for i in 0..rows {
        writeln!(
            writer,
            r#"{{"TimeGenerated":"2026-03-01T00:{:02}:00Z","Seq":{i}}}"#,
            i % 60
        )
        .unwrap();
    }
    writer.flush().unwrap();

    // Acknowledged while the pipe is still open (a load's first checkpoint would take a minute).
    let deadline = Instant::now() + Duration::from_secs(30);
    let acked = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => match line.strip_prefix("acked ") {
                Some(n) => break n.trim().parse::<u64>().unwrap(),
                None => continue,
            },
            Err(_) => {
                let _ = child.kill();
                panic!("no row was acknowledged in 30 s while the pipe stayed open");
            }
        }
    };
    assert!(acked > 0 && acked <= rows, "acked {acked}");
    drop(writer);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let out = logvault(&home)
        .args([
            "-o",
            "json",
            "query",
            "--workspace",
            "ws-pipe",
            "SELECT count(*) AS n FROM Events",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["n"].as_u64(), Some(rows), "{v}");
}
