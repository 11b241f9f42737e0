//! `logvault alert` with a local webhook receiver, `lockbox` with `query --as-operator`, and
//! `search-job`, run as a user runs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::common::{fails, json, logvault};

/// A webhook receiver on a free local port: answers 500 to the first `fail_first` requests,
/// then 200, and keeps every body it was sent.
fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/alert", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        let mut seen = 0;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(line.starts_with("POST /hooks/alert HTTP/1.1"), "{line}");
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            seen += 1;
            let status = if seen <= fail_first {
                "500 Internal Server Error"
            } else {
                kept.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                "200 OK"
            };
            let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (url, bodies)
}

/// In 2027: after the wall clock, so that `--now` can place the alert runs after the rows.
const ROWS: &str = r#"{"TimeGenerated":"2027-01-01T10:00:00Z","Level":"Error","Seq":1}
{"TimeGenerated":"2027-01-01T10:30:00Z","Level":"Info","Seq":2}
{"TimeGenerated":"2027-01-01T10:45:00Z","Level":"Error","Seq":3}
"#;

fn home_with_data() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    json(home, &["workspace", "create", "--name", "ws-alert"]);
    let out = logvault(
        home,
        &[
            "ingest",
            "--workspace",
            "ws-alert",
            "--table",
            "App",
            "--format",
            "json",
        ],
        ROWS,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tmp
}

#[test]
fn a_fired_alert_reaches_the_webhook_with_and_without_the_alerts_link() {
    let tmp = home_with_data();
    let home = tmp.path();
    let (url, bodies) = receiver(1);
    let at = "2027-01-01T11:00:00Z";
    json(
        home,
        &[
            "--now",
            at,
            "alert",
            "create",
            "--workspace",
            "ws-alert",
            "--name",
            "errors",
            "--query",
            "App | where Level == 'Error'",
            "--frequency",
            "5m",
            "--window",
            "2h",
            "--operator",
            "GreaterThan",
            "--threshold",
            "1",
            "--dimension",
            "Level",
            "--severity",
            "2",
            "--webhook",
            &url,
        ],
    );
    // A minute after creation (`--now` clocks run on from where they start, so the same
    // instant could read earlier than the rule's creation).
    let fired = json(home, &["--now", "2027-01-01T11:01:00Z", "alert", "run-due"]);
    assert_eq!(fired.as_array().unwrap().len(), 1, "{fired}");
    // What the receiver got, field by field.
    let got = bodies.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "one delivery, after one 500");
    let alert = &got[0];
    assert_eq!(alert["rule"], "errors");
    assert_eq!(alert["workspace"], "ws-alert");
    assert_eq!(alert["outcome"], "Fired");
    // `--now` starts the clock there; it runs on during the command.
    assert!(
        alert["firedAt"]
            .as_str()
            .unwrap()
            .starts_with("2027-01-01T11:01:0"),
        "{alert}"
    );
    assert_eq!(alert["severity"], 2);
    assert_eq!(alert["dimensions"], serde_json::json!({ "Level": "Error" }));
    assert_eq!(alert["value"], 2.0);
    assert_eq!(alert["operator"], "GreaterThan");
    assert_eq!(alert["threshold"], 1.0);
    assert_eq!(alert["query"], "App | where Level == 'Error'");
    let rows = alert["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["Level"], "Error");
    // History has it, with its delivery: two attempts, delivered.
    let history = json(
        home,
        &[
            "alert",
            "history",
            "--workspace",
            "ws-alert",
            "--name",
            "errors",
        ],
    );
    assert_eq!(history[0]["deliveries"][0]["attempts"], 2);
    assert_eq!(history[0]["deliveries"][0]["delivered"], true);
    assert_eq!(history[0]["deliveries"][0]["target"], url.as_str());
    // Not due again before its frequency.
    let none = json(home, &["--now", "2027-01-01T11:05:00Z", "alert", "run-due"]);
    assert!(none.as_array().unwrap().is_empty());

    // Linked for Alerts: no query text, no results, only the dimensions.
    json(home, &["storage-account", "create", "--name", "alertsbyos"]);
    json(
        home,
        &[
            "workspace",
            "linked-storage",
            "create",
            "--workspace",
            "ws-alert",
            "--type",
            "Alerts",
            "--storage-accounts",
            "alertsbyos",
        ],
    );
    let rules = json(home, &["alert", "list", "--workspace", "ws-alert"]);
    assert_eq!(rules[0]["name"], "errors", "the rule moved with the link");
    // A minute past due: `--now` clocks run on from where they start.
    json(home, &["--now", "2027-01-01T11:07:00Z", "alert", "run-due"]);
    let got = bodies.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    let linked = &got[1];
    assert_eq!(
        linked["dimensions"],
        serde_json::json!({ "Level": "Error" })
    );
    assert_eq!(linked["rule"], "errors");
    assert!(linked.get("query").is_none(), "{linked}");
    assert!(linked.get("rows").is_none(), "{linked}");
}

#[test]
fn a_failing_alert_query_is_reported() {
    let tmp = home_with_data();
    let home = tmp.path();
    json(
        home,
        &[
            "alert",
            "create",
            "--workspace",
            "ws-alert",
            "--name",
            "gone",
            "--query",
            "Missing | count",
            "--frequency",
            "5m",
            "--window",
            "1h",
            "--operator",
            "gt",
            "--threshold",
            "0",
        ],
    );
    let out = logvault(home, &["-o", "json", "alert", "run-due"], "");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 alert rule evaluations failed"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report[0]["outcome"], "Failed");
    assert!(report[0]["error"].as_str().unwrap().contains("Missing"));
}

#[test]
fn lockbox_gates_operator_queries_and_search_jobs_fill_their_table() {
    let tmp = home_with_data();
    let home = tmp.path();
    // No cluster: no Lockbox request, and the operator is refused.
    let err = fails(
        home,
        &[
            "lockbox",
            "request",
            "create",
            "--workspace",
            "ws-alert",
            "--operator",
            "op1",
            "--reason",
            "ticket",
        ],
    );
    assert!(err.starts_with("error: 400"), "{err}");
    let err = fails(
        home,
        &[
            "query",
            "--workspace",
            "ws-alert",
            "--kql",
            "App | count",
            "--as-operator",
            "op1",
        ],
    );
    assert!(err.starts_with("error: 403"), "{err}");
    let audit = json(home, &["lockbox", "audit", "--workspace", "ws-alert"]);
    assert_eq!(audit[0]["action"], "QueryRefused");
    assert_eq!(audit[0]["detail"], "App | count");
    // China: refused.
    json(
        home,
        &[
            "workspace",
            "create",
            "--name",
            "ws-cn",
            "--region",
            "chinanorth3",
        ],
    );
    let err = fails(
        home,
        &[
            "lockbox",
            "request",
            "create",
            "--workspace",
            "ws-cn",
            "--operator",
            "op1",
            "--reason",
            "ticket",
        ],
    );
    assert!(err.contains("not available in region chinanorth3"), "{err}");

    // A search job over the morning: the Error rows land in errs_SRCH.
    let job = json(
        home,
        &[
            "search-job",
            "create",
            "--workspace",
            "ws-alert",
            "--name",
            "errs",
            "--table",
            "App",
            "--query",
            "App | where Level == 'Error'",
            "--start",
            "2027-01-01T00:00:00Z",
            "--end",
            "2027-01-02T00:00:00Z",
        ],
    );
    assert_eq!(job["status"], "Succeeded", "{job}");
    assert_eq!(job["rowsWritten"], 2);
    assert_eq!(job["percentComplete"], 100);
    let rows = json(
        home,
        &[
            "query",
            "--workspace",
            "ws-alert",
            "--kql",
            "errs_SRCH | count",
        ],
    );
    assert_eq!(rows[0]["Count"], 2, "{rows}");
    let queued = json(
        home,
        &[
            "search-job",
            "create",
            "--workspace",
            "ws-alert",
            "--name",
            "later",
            "--table",
            "App",
            "--query",
            "App",
            "--no-wait",
        ],
    );
    assert_eq!(queued["status"], "Queued");
    let cancelled = json(
        home,
        &[
            "search-job",
            "cancel",
            "--workspace",
            "ws-alert",
            "--name",
            "later",
        ],
    );
    assert_eq!(cancelled["status"], "Cancelled");
    let jobs = json(home, &["search-job", "list", "--workspace", "ws-alert"]);
    assert_eq!(jobs.as_array().unwrap().len(), 2);
}
