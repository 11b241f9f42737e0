//! The write-ahead log: round trip, no plaintext on disk, group commit; keys per frame
//! (`keys`), torn tails and damage (`damage`), checkpoints and the files' layout (`files`).

// Test helpers outside `#[test]` functions unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use chrono::{TimeZone, Utc};
use logvault_core::TestClock;
use logvault_crypto::Aek;
use logvault_ingest::{
    Format, IngestError, ParseOptions, RecoveredRecord, Recovery, TableSchema, Wal, WalKey,
    WalKeyError, WalKeyRef, WalKeyScheme, WalOptions, WalRecord, parse_payload,
};

mod damage;
mod files;
mod keys;

const WS: &str = "ws-ingest-1";
const CANARY: &str = "canary-6b1f0c9e-plaintext";

fn key(scheme: WalKeyScheme, account: &str) -> Arc<WalKey> {
    let aek = Aek::generate().unwrap();
    let key_ref = WalKeyRef {
        scheme,
        account: account.to_owned(),
    };
    Arc::new(WalKey::new(key_ref, aek.derive_purpose_key("wal").unwrap()).unwrap())
}

/// A keyring over the given keys that also records what it was asked for.
struct Ring {
    keys: HashMap<WalKeyRef, Option<Arc<WalKey>>>,
    asked: Mutex<Vec<WalKeyRef>>,
}

impl Ring {
    fn new(keys: &[&Arc<WalKey>]) -> Self {
        Self {
            keys: keys
                .iter()
                .map(|k| (k.key_ref().clone(), Some(Arc::clone(k))))
                .collect(),
            asked: Mutex::new(Vec::new()),
        }
    }
}

impl logvault_ingest::WalKeyring for Ring {
    fn key(&self, key_ref: &WalKeyRef) -> Result<Option<Arc<WalKey>>, WalKeyError> {
        self.asked.lock().unwrap().push(key_ref.clone());
        self.keys
            .get(key_ref)
            .cloned()
            .ok_or_else(|| WalKeyError::Unavailable(format!("no key {key_ref}")))
    }
}

fn batch(n: usize, tag: &str) -> RecordBatch {
    let mut payload = String::new();
    for i in 0..n {
        payload.push_str(&format!(
            "{{\"TimeGenerated\": \"2021-04-26T19:17:{:02}Z\", \"Secret\": \"{CANARY}\", \"Tag\": \"{tag}\", \"N\": {i}}}\n",
            i % 60
        ));
    }
    let mut schema = TableSchema::new("SecretTable").unwrap();
    let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    let out = parse_payload(
        Cursor::new(payload),
        Format::JsonLines,
        &mut schema,
        &ParseOptions::default(),
        &clock,
    )
    .unwrap();
    assert_eq!(out.batches.len(), 1);
    out.batches.into_iter().next().unwrap()
}

fn open(dir: &Path, ring: &Ring, options: WalOptions) -> Result<(Wal, Recovery), IngestError> {
    Wal::open(dir, WS, options, ring)
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "lvw"))
        .collect();
    files.sort();
    files
}

async fn append(wal: &Wal, key: &Arc<WalKey>, batches: &[&RecordBatch]) -> (u64, u64) {
    let records: Vec<WalRecord<'_>> = batches
        .iter()
        .map(|b| WalRecord {
            table: "SecretTable",
            batch: b,
        })
        .collect();
    let r = wal.append(key, &records).await.unwrap();
    (r.first, r.last)
}

/// Options that start a new file after every group.
fn small_files() -> WalOptions {
    WalOptions {
        max_file_bytes: 1,
        ..WalOptions::default()
    }
}

async fn append_groups(wal: &Wal, k: &Arc<WalKey>, groups: usize) {
    for i in 0..groups {
        append(wal, k, &[&batch(1, &i.to_string())]).await;
    }
}

#[tokio::test]
async fn append_and_replay_round_trip_without_plaintext_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(WalKeyScheme::Service, "acct-mmk");
    let ring = Ring::new(&[&k]);
    let (a, b, c) = (batch(3, "a"), batch(5, "b"), batch(1, "c"));
    {
        let (wal, rec) = open(dir.path(), &ring, WalOptions::default()).unwrap();
        assert!(rec.records.is_empty());
        assert_eq!(append(&wal, &k, &[&a]).await, (1, 1));
        assert_eq!(append(&wal, &k, &[&b, &c]).await, (2, 3));
        assert_eq!(wal.stats().records, 3);
        wal.close();
    }
    for file in log_files(dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        for needle in [CANARY.as_bytes(), b"SecretTable", b"Tag"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds {:?} in clear",
                file.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    let (wal, rec) = open(dir.path(), &ring, WalOptions::default()).unwrap();
    let seqs: Vec<u64> = rec.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(rec.records[0].table, "SecretTable");
    assert_eq!(rec.records[0].batch, a);
    assert_eq!(rec.records[1].batch, b);
    assert_eq!(rec.records[2].batch, c);
    assert!(rec.torn.is_none());
    // Sequence numbers continue after a reopen.
    assert_eq!(append(&wal, &k, &[&a]).await, (4, 4));
    let err = wal.append(&k, &[]).await.unwrap_err();
    assert!(err.to_string().contains("at least one record"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(WalKeyScheme::Service, "acct");
    let ring = Ring::new(&[&k]);
    let options = WalOptions {
        commit_delay: std::time::Duration::from_millis(2),
        ..WalOptions::default()
    };
    let (wal, _) = open(dir.path(), &ring, options.clone()).unwrap();
    let wal = Arc::new(wal);
    let one = Arc::new(batch(2, "g"));
    let (tasks, per_task) = (32, 8);
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (wal, k, one) = (Arc::clone(&wal), Arc::clone(&k), Arc::clone(&one));
        handles.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for _ in 0..per_task {
                let records = [WalRecord {
                    table: "SecretTable",
                    batch: &one,
                }];
                seqs.push(wal.append(&k, &records).await.unwrap().first);
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for h in handles {
        seqs.extend(h.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=(tasks * per_task) as u64).collect::<Vec<_>>());
    let stats = wal.stats();
    assert_eq!(stats.appends, (tasks * per_task) as u64);
    assert!(
        stats.fsyncs < stats.appends,
        "group commit: {} fsyncs for {} appends",
        stats.fsyncs,
        stats.appends
    );
    assert_eq!(stats.groups, stats.fsyncs);
    drop(wal);
    let (_, rec) = open(dir.path(), &ring, options).unwrap();
    assert_eq!(rec.records.len(), tasks * per_task);
}
