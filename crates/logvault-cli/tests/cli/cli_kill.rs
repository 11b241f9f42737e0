//! `kill -9` of `logvault serve` while clients send: after a restart on the same home, every
//! acknowledged row is stored exactly once. Clients retry what was not acknowledged (as Azure's
//! SDK does): a request that was in flight when the server died is stored exactly once when it
//! carries an `x-ms-client-request-id` (logged with its rows, read back at the restart), and
//! once or twice without one (at-least-once for what was never acknowledged), never lost.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::common::json;

const WS: &str = "ws-kill";
const CLIENTS: usize = 4;
const BATCHES: usize = 40;
const ROWS: usize = 25;

/// Starts `logvault serve` on plain HTTP and a free port; the child and its URL.
fn serve(home: &Path) -> (Child, String) {
    let mut child = Command::new(crate::common::bin())
        .arg("--home")
        .arg(home)
        .env_remove("LOGVAULT_HOME")
        .args(["-o", "json", "serve", "--listen", "127.0.0.1:0", "--http"])
        .args(["--alert-interval", "off"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let started: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("serve printed {line:?}: {e}"));
    (child, started["url"].as_str().unwrap().to_owned())
}

/// Clients 0 and 1 send an `x-ms-client-request-id` with each request; 2 and 3 do not.
fn sends_ids(c: usize) -> bool {
    c < 2
}

/// What one batch went through.
#[derive(Debug, Default, Clone, Copy)]
struct Fate {
    /// Attempts that got no acknowledgement (the connection failed, or a 5xx).
    unacknowledged: usize,
}

/// Sends client `c`'s batches in order, each until it is acknowledged (204), against whatever
/// server `url` names at the time.
async fn client(
    c: usize,
    url: Arc<RwLock<String>>,
    rule: String,
    token: String,
    acked: Arc<AtomicUsize>,
) -> Vec<Fate> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut fates = Vec::new();
    // Rows of today: a restarted server's first retention pass purges older ones.
    let today = chrono::Utc::now().to_rfc3339();
    for b in 0..BATCHES {
        let records: Vec<serde_json::Value> = (0..ROWS)
            .map(|i| {
                serde_json::json!({
                    "TimeGenerated": today,
                    "Seq": (c * BATCHES + b) * ROWS + i,
                    "Client": c,
                })
            })
            .collect();
        let mut fate = Fate::default();
        loop {
            let base = url.read().unwrap().clone();
            let mut request = http
                .post(format!(
                    "{base}/dataCollectionRules/{rule}/streams/Custom-Events?api-version=2023-01-01"
                ))
                .bearer_auth(&token)
                .json(&records);
            if sends_ids(c) {
                // Kept across the retries of one request, as Azure's SDKs do.
                request = request.header("x-ms-client-request-id", format!("kill-{c}-{b}"));
            }
            let answer = request.send().await;
            match answer {
                Ok(a) if a.status().as_u16() == 204 => break,
                Ok(a) if a.status().is_client_error() && a.status().as_u16() != 429 => {
                    panic!("batch {c}/{b} refused: {}", a.status())
                }
                _ => {
                    fate.unacknowledged += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        acked.fetch_add(1, Ordering::SeqCst);
        fates.push(fate);
    }
    fates
}

/// A workspace, a rule for its `Events` table and a publisher's token: (rule id, token).
fn setup(home: &Path) -> (String, String) {
    json(home, &["workspace", "create", "--name", WS]);
    let rule = json(
        home,
        &[
            "dcr",
            "create",
            "--name",
            "rule-kill",
            "--workspace",
            WS,
            "--stream",
            "Custom-Events",
            "--table",
            "Events",
        ],
    )["immutableId"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = json(
        home,
        &[
            "token",
            "create",
            "--principal",
            "shipper",
            "--role",
            "Monitoring Metrics Publisher",
        ],
    )["token"]
        .as_str()
        .unwrap()
        .to_owned();

    (rule, token)
}

#[test]
fn a_server_killed_with_sigkill_keeps_every_acknowledged_row_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (rule, token) = setup(home);

    let (mut first, url) = serve(home);
    let url = Arc::new(RwLock::new(url));
    let acked = Arc::new(AtomicUsize::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            runtime.spawn(client(
                c,
                url.clone(),
                rule.clone(),
                token.clone(),
                acked.clone(),
            ))
        })
        .collect();

    // Kill the server while the clients are half-way, without warning.
    let total = CLIENTS * BATCHES;
    while acked.load(Ordering::SeqCst) < total / 2 {
        std::thread::sleep(Duration::from_millis(5));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let acked_before_kill = acked.load(Ordering::SeqCst);
    assert!(
        acked_before_kill < total,
        "the clients finished before the kill"
    );
    std::thread::sleep(Duration::from_millis(300));
    let (mut second, second_url) = serve(home);
    *url.write().unwrap() = second_url;

    let fates: Vec<Vec<Fate>> = runtime.block_on(async {
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await.unwrap());
        }
        all
    });
    // Stop gracefully, then read what is stored with another process.
    let term = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(second.wait().unwrap().success());

    let rows = json(
        home,
        &[
            "query",
            "--workspace",
            WS,
            "--kql",
            "Events | summarize n = count() by Seq",
        ],
    );
    let stored: BTreeMap<u64, u64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["Seq"].as_u64().unwrap(), r["n"].as_u64().unwrap()))
        .collect();
    let mut in_doubt = 0;
    for (c, client_fates) in fates.iter().enumerate() {
        assert_eq!(client_fates.len(), BATCHES);
        for (b, fate) in client_fates.iter().enumerate() {
            let counts: Vec<u64> = (0..ROWS)
                .map(|i| {
                    let seq = ((c * BATCHES + b) * ROWS + i) as u64;
                    stored.get(&seq).copied().unwrap_or(0)
                })
                .collect();
            if fate.unacknowledged == 0 {
                // Sent once and acknowledged: exactly once.
                assert!(
                    counts.iter().all(|n| *n == 1),
                    "batch {c}/{b}, acknowledged at its only attempt, stored {counts:?} times"
                );
            } else if sends_ids(c) {
                // Retried with its request id: the server knows a retry, also across the kill.
                in_doubt += 1;
                assert!(
                    counts.iter().all(|n| *n == 1),
                    "batch {c}/{b}, retried with its request id, stored {counts:?} times"
                );
            } else {
                // Retried without an id: never lost, and every row of the batch the same
                // number of times (a request is stored whole or not at all).
                in_doubt += 1;
                assert!(
                    counts
                        .iter()
                        .all(|n| *n == counts[0] && (1..=2).contains(n)),
                    "batch {c}/{b}, retried, stored {counts:?} times"
                );
            }
        }
    }
    assert_eq!(stored.len(), total * ROWS, "rows missing");
    // At least the requests that found the server gone were retried.
    println!(
        "acked before kill {acked_before_kill}, retried batches {in_doubt}, twice: {}",
        stored.values().filter(|n| **n == 2).count()
    );
    assert!(in_doubt >= 1, "no request was cut by the kill");
}

/// Posts `records` to the rule's stream, with `id` as `x-ms-client-request-id` if given; the
/// status.
fn post(url: &str, rule: &str, token: &str, records: &serde_json::Value, id: Option<&str>) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut request = reqwest::Client::new()
            .post(format!(
                "{url}/dataCollectionRules/{rule}/streams/Custom-Events?api-version=2023-01-01"
            ))
            .bearer_auth(token)
            .json(records);
        if let Some(id) = id {
            request = request.header("x-ms-client-request-id", id);
        }
        request.send().await.unwrap().status().as_u16()
    })
}

/// A request acknowledged just before `kill -9`, whose answer the client may not have seen, is
/// sent again to the restarted server with its `x-ms-client-request-id`: stored once. Twice:
/// once killed right after the acknowledgement (the request's record after the log's
/// checkpoint), once after its rows were stored (the record checkpointed, its file still on
/// disk). The same rows without an id are stored again (the control).
#[test]
fn a_request_sent_again_after_a_kill_is_stored_once() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (rule, token) = setup(home);
    // Rows of today: the server's retention pass purges older ones while the test runs.
    let today = chrono::Utc::now().to_rfc3339();
    let batch = |tag: &str| -> serde_json::Value {
        (0..ROWS)
            .map(|i| serde_json::json!({"TimeGenerated": today, "Tag": tag, "Seq": i}))
            .collect()
    };
    for (round, wait) in [("now", Duration::ZERO), ("stored", Duration::from_secs(3))] {
        let (mut server, url) = serve(home);
        let id = format!("retry-{round}");
        assert_eq!(post(&url, &rule, &token, &batch(round), Some(&id)), 204);
        let control = format!("{round}-control");
        assert_eq!(post(&url, &rule, &token, &batch(&control), None), 204);
        // After a second the server stores what it holds (its flush interval).
        std::thread::sleep(wait);
        server.kill().unwrap();
        server.wait().unwrap();
        let (mut server, url) = serve(home);
        assert_eq!(post(&url, &rule, &token, &batch(round), Some(&id)), 204);
        assert_eq!(post(&url, &rule, &token, &batch(&control), None), 204);
        let term = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        assert!(server.wait().unwrap().success());
    }
    let rows = json(
        home,
        &[
            "query",
            "--workspace",
            WS,
            "--kql",
            "Events | summarize n = count() by Tag",
        ],
    );
    let stored: BTreeMap<String, u64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["Tag"].as_str().unwrap().to_owned(),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect();
    let rows = ROWS as u64;
    let expected: BTreeMap<String, u64> = [
        ("now".to_owned(), rows),
        ("now-control".to_owned(), 2 * rows),
        ("stored".to_owned(), rows),
        ("stored-control".to_owned(), 2 * rows),
    ]
    .into();
    assert_eq!(stored, expected);
}
