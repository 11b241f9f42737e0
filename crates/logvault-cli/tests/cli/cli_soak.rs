//! Soak (issue 25): `logvault serve` on loopback under a modest mixed load for
//! `LOGVAULT_SOAK_SECS` seconds (40 by default): ingestion over the Logs Ingestion API, OTLP
//! JSON, `_bulk` and syslog into a workspace under the service key and one under a customer
//! key, KQL queries, the customer key rotated, disabled and enabled again through the Key Vault
//! API, compaction and retention purges by the CLI beside the server. What must hold: the
//! server's memory (VmRSS) and open file descriptors stay flat after a warm-up, no error the
//! load did not cause (no 5xx, no ERROR line in its log), every acknowledged row is there once
//! at the end, the rows past retention are purged, and the scrub is clean.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::common::json as cli_json;
use crate::served::{self, KEY, VAULT, WS, WS_CMK};

/// Rows per batch, and the pause between one protocol's batches.
const ROWS: usize = 10;
const PAUSE: Duration = Duration::from_millis(200);

/// What the load saw.
#[derive(Default)]
struct Tally {
    /// Acknowledged batches: (workspace, table, tag) and their rows.
    acknowledged: BTreeMap<(String, String, String), usize>,
    /// Batches refused for a reason the load caused (the key revoked, back-pressure).
    refused: BTreeMap<(String, String, String), usize>,
    /// Answers by kind and status.
    answers: BTreeMap<String, usize>,
    /// What should not have happened.
    unexpected: Vec<String>,
    syslog_sent: usize,
    queries: usize,
    key_changes: usize,
    maintenance: usize,
}

type Shared = Arc<Mutex<Tally>>;

fn note(t: &Shared, kind: &str, status: u16) {
    *t.lock()
        .unwrap()
        .answers
        .entry(format!("{kind} {status}"))
        .or_default() += 1;
}

fn unexpected(t: &Shared, what: String) {
    t.lock().unwrap().unexpected.push(what);
}

/// A memory and file descriptor sample of the server.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: usize,
    /// What the hot cache holds in memory (`logvault_hot_cache_bytes{tier="memory"}`), KiB.
    cache_kib: u64,
    /// The memory tier's buffers alive (`logvault_hot_cache_live_bytes`: those it holds and
    /// those it let go that a query still reads), KiB.
    live_kib: u64,
    /// What the program holds, as its allocator counts it
    /// (`logvault_allocator_bytes{kind="allocated"}`), KiB: resident memory the allocator has
    /// not returned to the OS yet is not in it, so a leak shows here.
    allocated_kib: u64,
}

fn sample(pid: u32, at: Duration) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(Sample {
        at,
        rss_kib,
        fds,
        cache_kib: 0,
        live_kib: 0,
        allocated_kib: 0,
    })
}

/// The hot cache's bytes in memory, and its buffers alive, from the server's metrics.
/// The hot cache's memory tier, its live buffers and the allocator's allocated bytes, from
/// `/metrics`.
async fn gauges(load: &Load) -> Option<(u64, u64, u64)> {
    let text = load
        .http
        .get(format!("{}/metrics", load.url))
        .bearer_auth(&load.owner)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let gauge = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))?
            .trim()
            .parse::<f64>()
            .ok()
            .map(|b| b as u64)
    };
    Some((
        gauge("logvault_hot_cache_bytes{tier=\"memory\"} ")?,
        gauge("logvault_hot_cache_live_bytes ")?,
        gauge("logvault_allocator_bytes{kind=\"allocated\"} ")?,
    ))
}

fn soak_secs() -> u64 {
    std::env::var("LOGVAULT_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

/// The rows of one batch, as JSON objects.
fn batch(tag: &str, time: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
    (0..ROWS)
        .map(|i| {
            let level = ["info", "warning", "error"][i % 3];
            json!({
                "TimeGenerated": (time + chrono::Duration::milliseconds(i as i64)).to_rfc3339(),
                "Tag": tag,
                "Seq": i,
                "Level": level,
                "Message": format!("soak {tag} row {i} {}", "x".repeat(40)),
            })
        })
        .collect()
}

/// Whether a refusal is one the load causes: the customer key revoked (for its workspace),
/// back-pressure with `Retry-After`.
fn caused_by_load(status: u16, ws: &str, body: &str, retry_after: bool) -> bool {
    (status == 403 && ws == WS_CMK && body.contains("CustomerManagedKeyRevoked"))
        || (matches!(status, 429 | 503) && retry_after)
}

struct Load {
    http: reqwest::Client,
    url: String,
    owner: String,
    publisher: String,
    rule: String,
    rule_cmk: String,
    tally: Shared,
    stop: Arc<AtomicBool>,
}

impl Load {
    /// One protocol's batches until stopped.
    async fn ingest(self: Arc<Self>, protocol: &'static str) {
        let mut n = 0;
        while !self.stop.load(Ordering::Acquire) {
            n += 1;
            let tag = format!("{protocol}-{n}");
            // The Logs Ingestion API alternates between the two workspaces.
            let ws = if protocol == "logs" && n % 2 == 0 {
                WS_CMK
            } else {
                WS
            };
            let rows = batch(&tag, chrono::Utc::now());
            let (table, request) = match protocol {
                "logs" => {
                    let rule = if ws == WS { &self.rule } else { &self.rule_cmk };
                    (
                        "Events",
                        self.http
                            .post(format!(
                                "{}/dataCollectionRules/{rule}/streams/Custom-Events",
                                self.url
                            ))
                            .bearer_auth(&self.publisher)
                            .json(&rows),
                    )
                }
                "otlp" => {
                    let records: Vec<Value> = rows
                        .iter()
                        .map(|r| {
                            let nanos = chrono::DateTime::parse_from_rfc3339(
                                r["TimeGenerated"].as_str().unwrap(),
                            )
                            .unwrap()
                            .timestamp_nanos_opt()
                            .unwrap();
                            json!({"timeUnixNano": nanos.to_string(), "eventName": tag,
                                "severityText": r["Level"], "body": {"stringValue": r["Message"]},
                                "attributes": [{"key": "Seq", "value": {"intValue": r["Seq"]}}]})
                        })
                        .collect();
                    (
                        "OTelLogs",
                        self.http
                            .post(format!("{}/v1/logs", self.url))
                            .bearer_auth(&self.publisher)
                            .header("x-logvault-workspace", WS)
                            .json(&json!({"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]})),
                    )
                }
                _ => {
                    let mut body = String::new();
                    for r in &rows {
                        body.push_str("{\"index\":{}}\n");
                        body.push_str(&r.to_string());
                        body.push('\n');
                    }
                    (
                        "soak_bulk",
                        self.http
                            .post(format!("{}/soak-bulk/_bulk", self.url))
                            .basic_auth("elastic", Some(&self.publisher))
                            .header("x-logvault-workspace", WS)
                            .header("content-type", "application/x-ndjson")
                            .body(body),
                    )
                }
            };
            let key = (ws.to_owned(), table.to_owned(), tag.clone());
            match request.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let retry_after = r.headers().contains_key("retry-after");
                    let body = r.text().await.unwrap_or_default();
                    note(&self.tally, protocol, status);
                    let ok = match protocol {
                        "logs" => status == 204,
                        "otlp" => status == 200,
                        _ => {
                            status == 200
                                && serde_json::from_str::<Value>(&body)
                                    .is_ok_and(|v| v["errors"] == false)
                        }
                    };
                    let mut t = self.tally.lock().unwrap();
                    if ok {
                        t.acknowledged.insert(key, ROWS);
                    } else if caused_by_load(status, ws, &body, retry_after) {
                        t.refused.insert(key, ROWS);
                    } else {
                        t.unexpected
                            .push(format!("{protocol} {tag} to {ws}: {status} {body}"));
                        t.refused.insert(key, ROWS);
                    }
                }
                Err(e) => {
                    unexpected(&self.tally, format!("{protocol} {tag}: {e}"));
                    self.tally.lock().unwrap().refused.insert(key, ROWS);
                }
            }
            tokio::time::sleep(PAUSE).await;
        }
    }

    /// Syslog messages over one TCP connection (syslog has no acknowledgement).
    async fn syslog(self: Arc<Self>, addr: String) {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut n = 0;
        while !self.stop.load(Ordering::Acquire) {
            let mut frames = String::new();
            for _ in 0..ROWS {
                n += 1;
                let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let m = format!("<165>1 {time} soak01 soak - - - soak syslog {n}");
                frames.push_str(&format!("{} {m}", m.len()));
            }
            if let Err(e) = tcp.write_all(frames.as_bytes()).await {
                unexpected(&self.tally, format!("syslog: {e}"));
                return;
            }
            self.tally.lock().unwrap().syslog_sent += ROWS;
            tokio::time::sleep(PAUSE).await;
        }
        let _ = tcp.shutdown().await;
    }

    /// KQL queries, one after the other.
    async fn queries(self: Arc<Self>) {
        let queries = [
            (WS, "Events | summarize n = count() by Level"),
            (
                WS,
                "union Events, OTelLogs | where TimeGenerated > ago(1h) | count",
            ),
            (
                WS,
                "soak_bulk | where Seq < 3 | summarize max(Seq) by Tag | take 5",
            ),
            (WS, "Syslog | summarize count() by bin(TimeGenerated, 1m)"),
            (
                WS_CMK,
                "Events | summarize n = count(), last = max(TimeGenerated)",
            ),
            (WS_CMK, "Events | where Level == 'error' | take 20"),
        ];
        let mut answered = [false; 6];
        let mut i = 0;
        while !self.stop.load(Ordering::Acquire) {
            let which = i % queries.len();
            let (ws, q) = queries[which];
            i += 1;
            match self
                .http
                .post(format!("{}/v1/workspaces/{ws}/query", self.url))
                .bearer_auth(&self.owner)
                .json(&json!({ "query": q }))
                .send()
                .await
            {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let retry_after = r.headers().contains_key("retry-after");
                    let body = r.text().await.unwrap_or_default();
                    note(&self.tally, "query", status);
                    let bad_body = status == 200 && !body.contains("\"tables\"");
                    answered[which] |= status == 200;
                    // Until a table's first rows are acknowledged, it does not exist.
                    let too_early =
                        !answered[which] && status == 400 && body.contains("unknown table or name");
                    if (status != 200 || bad_body)
                        && !too_early
                        && !caused_by_load(status, ws, &body, retry_after)
                    {
                        unexpected(&self.tally, format!("query {q} on {ws}: {status} {body}"));
                    }
                    self.tally.lock().unwrap().queries += 1;
                }
                Err(e) => unexpected(&self.tally, format!("query {q}: {e}")),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// The customer key through the Key Vault API: rotated, disabled, enabled again.
    async fn keys(self: Arc<Self>) {
        let base = format!("{}/vaults/{VAULT}/keys/{KEY}", self.url);
        let mut step = 0;
        while !self.stop.load(Ordering::Acquire) {
            let (what, request) = match step % 3 {
                0 => (
                    "rotate",
                    self.http.post(format!("{base}/rotate?api-version=7.4")),
                ),
                1 => (
                    "disable",
                    self.http
                        .patch(format!("{base}?api-version=7.4"))
                        .json(&json!({"attributes": {"enabled": false}})),
                ),
                _ => (
                    "enable",
                    self.http
                        .patch(format!("{base}?api-version=7.4"))
                        .json(&json!({"attributes": {"enabled": true}})),
                ),
            };
            step += 1;
            match request.bearer_auth(&self.owner).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    note(&self.tally, what, status);
                    if status != 200 {
                        let body = r.text().await.unwrap_or_default();
                        unexpected(&self.tally, format!("key {what}: {status} {body}"));
                    }
                    self.tally.lock().unwrap().key_changes += 1;
                }
                Err(e) => unexpected(&self.tally, format!("key {what}: {e}")),
            }
            sleep_unless_stopped(&self.stop, Duration::from_secs(3)).await;
        }
        // The key ends enabled.
        if step % 3 == 2 {
            let r = self
                .http
                .patch(format!("{base}?api-version=7.4"))
                .bearer_auth(&self.owner)
                .json(&json!({"attributes": {"enabled": true}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    }
}

async fn sleep_unless_stopped(stop: &AtomicBool, d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until && !stop.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Compaction and retention purges by the CLI beside the server.
fn maintenance(home: &Path, tally: &Shared, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        for args in [
            &["table", "compact", "--workspace", WS][..],
            &["table", "compact", "--workspace", WS_CMK][..],
            &["table", "purge"][..],
        ] {
            let out = crate::common::logvault(home, args, "");
            if out.status.success() {
                tally.lock().unwrap().maintenance += 1;
            } else {
                unexpected(
                    tally,
                    format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr)),
                );
            }
        }
        let until = Instant::now() + Duration::from_secs(8);
        while Instant::now() < until && !stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `count()` by `column` of `table` in `ws` (empty when the table does not exist).
async fn counts(load: &Load, ws: &str, table: &str, column: &str) -> BTreeMap<String, usize> {
    let r = load
        .http
        .post(format!("{}/v1/workspaces/{ws}/query", load.url))
        .bearer_auth(&load.owner)
        .json(&json!({"query": format!("{table} | summarize n = count() by {column}")}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    if status == 400 && body.to_string().contains(table) {
        return BTreeMap::new();
    }
    assert_eq!(status, 200, "{body}");
    body["tables"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row[0].as_str().unwrap_or_default().to_owned(),
                row[1].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

/// Whether the samples after the warm-up stay flat: the server's memory apart from what the hot
/// cache holds (which its own bound limits), both resident (VmRSS) and allocated (what the
/// allocator counts as held: a leak), the last third's median within 25% (and 32 MiB) of the
/// first third's; file descriptors, the last third's most within 16 of the first third's.
/// The figures (and a line a minute), and the verdicts.
fn flat(samples: &[Sample], warm_up: Duration) -> (String, bool, bool) {
    let after: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.at >= warm_up)
        .collect();
    assert!(
        after.len() >= 6,
        "too few samples after the warm-up: {}",
        after.len()
    );
    let third = after.len() / 3;
    let median = |s: &[Sample], f: &dyn Fn(&Sample) -> u64| {
        let mut v: Vec<u64> = s.iter().map(f).collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let rss = |x: &Sample| x.rss_kib;
    let own = |x: &Sample| x.rss_kib.saturating_sub(x.cache_kib);
    let (first, last) = (&after[..third], &after[after.len() - third..]);
    let (rss_first, rss_last) = (median(first, &rss), median(last, &rss));
    let (own_first, own_last) = (median(first, &own), median(last, &own));
    let held = |x: &Sample| x.allocated_kib.saturating_sub(x.cache_kib);
    let (held_first, held_last) = (median(first, &held), median(last, &held));
    let fds_first = first.iter().map(|s| s.fds).max().unwrap();
    let fds_last = last.iter().map(|s| s.fds).max().unwrap();
    let rss_max = samples.iter().map(|s| s.rss_kib).max().unwrap();
    let fds_max = samples.iter().map(|s| s.fds).max().unwrap();
    let cache_last = last.iter().map(|s| s.cache_kib).max().unwrap();
    let series: Vec<String> = samples
        .iter()
        .filter(|s| s.at.as_secs() % 60 < 1 || s.at.as_secs() < 2)
        .map(|s| {
            format!(
                "{}s: {} MiB ({} MiB allocated, {} MiB cache, {} MiB live), {} fds",
                s.at.as_secs(),
                s.rss_kib / 1024,
                s.allocated_kib / 1024,
                s.cache_kib / 1024,
                s.live_kib / 1024,
                s.fds
            )
        })
        .collect();
    let figures = format!(
        "VmRSS median {} MiB after warm-up -> {} MiB at the end (max {} MiB, at start {} MiB); \
         without the hot cache's {} MiB: {} -> {} MiB; allocated without the hot cache: {} -> {} \
         MiB; fds max {fds_first} -> {fds_last} (max \
         {fds_max}, at start {}); by the minute: {}",
        rss_first / 1024,
        rss_last / 1024,
        rss_max / 1024,
        samples[0].rss_kib / 1024,
        cache_last / 1024,
        own_first / 1024,
        own_last / 1024,
        held_first / 1024,
        held_last / 1024,
        samples[0].fds,
        series.join("; ")
    );
    let within = |first: u64, last: u64| last <= first + (first / 4).max(32 * 1024);
    let rss_ok = within(own_first, own_last) && within(held_first, held_last);
    let fds_ok = fds_last <= fds_first + 16;
    (figures, rss_ok, fds_ok)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // the run's figures
async fn a_soak_of_mixed_load_keeps_memory_and_descriptors_flat_and_every_acknowledged_row() {
    let secs = soak_secs();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    served::cmk_home(&home);
    let rule = served::rule(&home, "soak", WS, "Events");
    let rule_cmk = served::rule(&home, "soak-cmk", WS_CMK, "Events");
    let rule_old = served::rule(&home, "soak-old", WS, "Expiring");
    let owner = served::token(&home, "soak-owner", "Owner");
    let publisher = served::token(&home, "soak-shipper", "Monitoring Metrics Publisher");
    // The binary's own allocator (jemalloc) and its defaults, as a deployment runs it: with
    // glibc's malloc the resident memory grew without a leak (docs/reliability.md).
    let server = served::start(&home, &tmp.path().join("serve.log"), &[], &[]);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    // Rows 60 days old into a table kept 30 days: the purges remove them.
    let old = batch("old", chrono::Utc::now() - chrono::Duration::days(60));
    let r = http
        .post(format!(
            "{}/dataCollectionRules/{rule_old}/streams/Custom-Expiring",
            server.url
        ))
        .bearer_auth(&publisher)
        .json(&old)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    cli_json(
        &home,
        &[
            "table",
            "set-retention",
            "--workspace",
            WS,
            "--table",
            "Expiring",
            "--days",
            "30",
        ],
    );

    let tally: Shared = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Load {
        http,
        url: server.url.clone(),
        owner,
        publisher,
        rule,
        rule_cmk,
        tally: tally.clone(),
        stop: stop.clone(),
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for protocol in ["logs", "otlp", "bulk"] {
        tasks.push(tokio::spawn(load.clone().ingest(protocol)));
    }
    tasks.push(tokio::spawn(load.clone().syslog(server.syslog.clone())));
    tasks.push(tokio::spawn(load.clone().queries()));
    tasks.push(tokio::spawn(load.clone().keys()));
    let maint = {
        let (home, tally, stop) = (home.clone(), tally.clone(), stop.clone());
        tokio::task::spawn_blocking(move || maintenance(&home, &tally, &stop))
    };
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(secs) {
        if let Some(mut s) = sample(server.pid, started.elapsed()) {
            let (cache, live, allocated) = gauges(&load)
                .await
                .expect("/metrics answers with the hot cache's and the allocator's gauges");
            (s.cache_kib, s.live_kib, s.allocated_kib) =
                (cache / 1024, live / 1024, allocated / 1024);
            samples.push(s);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    stop.store(true, Ordering::Release);
    for t in tasks {
        t.await.unwrap();
    }
    maint.await.unwrap();
    let elapsed = started.elapsed();

    // Every acknowledged row once (the key is enabled again: wait for the key check).
    let t = std::mem::take(&mut *tally.lock().unwrap());
    let load = Arc::try_unwrap(load).unwrap_or_else(|_| unreachable!());
    crate::served::wait_for(Duration::from_secs(20), || async {
        load.http
            .post(format!("{}/v1/workspaces/{WS_CMK}/query", load.url))
            .bearer_auth(&load.owner)
            .json(&json!({"query": "Events | count"}))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let mut found: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for (ws, table, column) in [
        (WS, "Events", "Tag"),
        (WS_CMK, "Events", "Tag"),
        (WS, "OTelLogs", "EventName"),
        (WS, "soak_bulk", "Tag"),
    ] {
        for (tag, n) in counts(&load, ws, table, column).await {
            found.insert((ws.to_owned(), table.to_owned(), tag), n);
        }
    }
    let mut wrong = Vec::new();
    for (key, rows) in &t.acknowledged {
        if found.get(key) != Some(rows) {
            wrong.push(format!(
                "acknowledged {key:?}: {:?} of {rows} rows",
                found.get(key)
            ));
        }
    }
    for (key, n) in &found {
        let known = t.acknowledged.contains_key(key) || t.refused.contains_key(key);
        if !known || *n != ROWS {
            wrong.push(format!("{key:?}: {n} rows, never sent that way"));
        }
    }
    let acknowledged_rows: usize = t.acknowledged.values().sum();
    let refused_stored = t.refused.keys().filter(|k| found.contains_key(*k)).count();
    crate::served::wait_for(Duration::from_secs(20), || async {
        counts(&load, WS, "Syslog", "HostName")
            .await
            .get("soak01")
            .copied()
            == Some(t.syslog_sent)
    })
    .await;
    let expiring = counts(&load, WS, "Expiring", "Tag").await;

    let log = server.log();
    let status = server.stop();
    let (figures, rss_ok, fds_ok) = flat(&samples, Duration::from_secs((secs / 4).max(10)));
    let levels: BTreeMap<&str, usize> = ["ERROR", "WARN", "INFO"]
        .into_iter()
        .map(|l| {
            (
                l,
                log.lines()
                    .filter(|x| x.contains(&format!(" {l} ")))
                    .count(),
            )
        })
        .collect();
    // What the warnings were about (the message, without its fields).
    let mut warnings: BTreeMap<String, usize> = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains(" WARN ")) {
        let text = line.split_once(" WARN ").map_or(line, |(_, t)| t);
        let text: String = text.chars().take(90).collect();
        *warnings.entry(text).or_default() += 1;
    }
    eprintln!(
        "soak: {:.0} s; {} batches acknowledged ({acknowledged_rows} rows), {} refused by the \
         load ({refused_stored} of them stored from the log), {} syslog messages; {} queries, \
         {} key changes, {} compactions/purges; answers {:?}; log lines {levels:?}; {figures}; \
         warnings {warnings:#?}",
        elapsed.as_secs_f64(),
        t.acknowledged.len(),
        t.refused.len(),
        t.syslog_sent,
        t.queries,
        t.key_changes,
        t.maintenance,
        t.answers,
    );
    assert!(status.success(), "serve exited with {status:?}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(t.unexpected.is_empty(), "unexpected: {:#?}", t.unexpected);
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    // The warnings the load causes are about the revoked key (and what it holds back).
    let other: Vec<&String> = warnings.keys().filter(|w| !w.contains("revoked")).collect();
    assert!(
        other.is_empty(),
        "warnings the load does not explain: {other:#?}"
    );
    assert!(
        errors.is_empty(),
        "the server logged errors:\n{}",
        errors.join("\n")
    );
    assert!(
        expiring.is_empty(),
        "rows past retention are still there: {expiring:?}"
    );
    assert!(
        t.key_changes >= 3 && t.maintenance >= 3,
        "the load did too little"
    );
    assert!(rss_ok, "memory grew: {figures}");
    assert!(fds_ok, "file descriptors grew: {figures}");
    for ws in [WS, WS_CMK] {
        let out = crate::common::logvault(&home, &["table", "verify", "--workspace", ws], "");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
