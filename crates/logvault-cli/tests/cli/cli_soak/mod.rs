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

mod load;
mod samples;

use load::{Load, counts, maintenance};
use samples::{flat, gauges, sample};

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
