//! The write-ahead log: round trip, no plaintext on disk, torn tails, corruption, checkpoints,
//! group commit, keys per frame.

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

#[tokio::test]
async fn frames_record_their_key_and_replay_asks_for_each() {
    let dir = tempfile::tempdir().unwrap();
    let mmk = key(WalKeyScheme::Service, "acct-mmk");
    let cmk = key(WalKeyScheme::Customer, "acct-cmk");
    let ring = Ring::new(&[&mmk, &cmk]);
    {
        let (wal, _) = open(dir.path(), &ring, WalOptions::default()).unwrap();
        append(&wal, &mmk, &[&batch(1, "m")]).await;
        append(&wal, &cmk, &[&batch(2, "c")]).await;
    }
    let ring2 = Ring::new(&[&mmk, &cmk]);
    let (_, rec) = open(dir.path(), &ring2, WalOptions::default()).unwrap();
    assert_eq!(rec.records.len(), 2);
    let mut asked = ring2.asked.lock().unwrap().clone();
    asked.sort();
    assert_eq!(asked, vec![mmk.key_ref().clone(), cmk.key_ref().clone()]);

    // A revoked key: its records are held (not replayed); an unreachable one fails the open.
    let mut revoked = Ring::new(&[&mmk]);
    revoked.keys.insert(cmk.key_ref().clone(), None);
    let (_, rec) = open(dir.path(), &revoked, WalOptions::default()).unwrap();
    assert_eq!((rec.records.len(), rec.held_revoked), (1, 1));
    let outage = Ring::new(&[&mmk]);
    let err = open(dir.path(), &outage, WalOptions::default()).unwrap_err();
    assert!(
        matches!(&err, IngestError::WalKeyUnavailable { key, .. } if key == "customer:acct-cmk"),
        "{err}"
    );
}

/// Regression: records acknowledged under a customer key that was revoked before they reached a
/// segment were dropped at the next replay, losing acknowledged rows (R-E3). They must be held
/// through replays and checkpoints while the key is revoked, and replayed once it is back.
#[tokio::test]
async fn records_under_a_revoked_key_are_held_until_the_key_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let mmk = key(WalKeyScheme::Service, "acct-mmk");
    let cmk = key(WalKeyScheme::Customer, "acct-cmk");
    let small = small_files();
    let acked = batch(2, "acked-under-cmk");
    {
        let (wal, _) = open(dir.path(), &Ring::new(&[&mmk, &cmk]), small.clone()).unwrap();
        append(&wal, &mmk, &[&batch(1, "before")]).await;
        assert_eq!(append(&wal, &cmk, &[&acked]).await, (2, 2));
        wal.close();
    }
    let mut revoked = Ring::new(&[&mmk]);
    revoked.keys.insert(cmk.key_ref().clone(), None);
    // While revoked: new records (say, under the service key after an unlink) are appended and
    // checkpointed past, and the log is reopened several times; the held record stays.
    for round in 0..3 {
        let (wal, rec) = open(dir.path(), &revoked, small.clone()).unwrap();
        assert_eq!(rec.held_revoked, 1, "round {round}");
        assert_eq!(rec.held_from, Some(2), "round {round}");
        assert!(rec.records.iter().all(|r| r.key == *mmk.key_ref()));
        let (_, last) = append(&wal, &mmk, &[&batch(3, &format!("after-{round}"))]).await;
        wal.checkpoint(last).await.unwrap();
        wal.close();
    }
    // The key is back: the held record is replayed, with the records after it that a
    // checkpoint could not pass; the checkpoint stopped just before it.
    let (wal, rec) = open(dir.path(), &Ring::new(&[&mmk, &cmk]), small.clone()).unwrap();
    assert_eq!(
        (rec.held_revoked, rec.held_from, rec.checkpoint),
        (0, None, 1)
    );
    let replayed: Vec<&RecoveredRecord> = rec.records.iter().filter(|r| r.seq == 2).collect();
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].batch, acked);
    assert_eq!(replayed[0].key, *cmk.key_ref());
    assert_eq!(rec.records.len(), 4);
    // Now a checkpoint can pass it, and the files before it go.
    let last = rec.records.iter().map(|r| r.seq).max().unwrap();
    wal.checkpoint(last).await.unwrap();
    wal.close();
    let (_, rec) = open(dir.path(), &Ring::new(&[&mmk, &cmk]), small).unwrap();
    assert!(rec.records.is_empty());
    assert_eq!(rec.checkpoint, last);
}

async fn three_groups(dir: &Path, k: &Arc<WalKey>, ring: &Ring) -> Vec<u64> {
    let (wal, _) = open(dir, ring, WalOptions::default()).unwrap();
    append(&wal, k, &[&batch(2, "1")]).await;
    append(&wal, k, &[&batch(2, "2")]).await;
    append(&wal, k, &[&batch(2, "3"), &batch(1, "4")]).await;
    wal.close();
    let files = log_files(dir);
    assert_eq!(files.len(), 1);
    vec![std::fs::metadata(&files[0]).unwrap().len()]
}

#[tokio::test]
async fn a_torn_final_group_is_cut_and_earlier_ones_replay() {
    for damage in ["truncate", "garbage", "zeros", "flip-last"] {
        let dir = tempfile::tempdir().unwrap();
        let k = key(WalKeyScheme::Service, "acct");
        let ring = Ring::new(&[&k]);
        let len = three_groups(dir.path(), &k, &ring).await[0];
        let file = log_files(dir.path()).remove(0);
        let mut bytes = std::fs::read(&file).unwrap();
        match damage {
            "truncate" => bytes.truncate(bytes.len() - 7),
            "garbage" => bytes.extend_from_slice(b"\x13\x37 not a frame at all"),
            "zeros" => bytes.extend_from_slice(&[0u8; 4096]),
            _ => {
                let last = bytes.len() - 3;
                bytes[last] ^= 0x40;
            }
        }
        std::fs::write(&file, &bytes).unwrap();
        let (wal, rec) = open(dir.path(), &ring, WalOptions::default()).unwrap();
        let torn = rec
            .torn
            .clone()
            .unwrap_or_else(|| panic!("{damage}: no torn tail"));
        let seqs: Vec<u64> = rec.records.iter().map(|r| r.seq).collect();
        if damage == "garbage" || damage == "zeros" {
            // Damage after the last complete group: nothing acknowledged is lost.
            assert_eq!(seqs, vec![1, 2, 3, 4], "{damage}");
            assert_eq!(torn.offset, len, "{damage}");
        } else {
            // The last group (records 3 and 4) is cut as a whole.
            assert_eq!(seqs, vec![1, 2], "{damage}");
            assert!(torn.offset < len, "{damage}");
        }
        assert_eq!(
            std::fs::metadata(&file).unwrap().len(),
            torn.offset,
            "{damage}"
        );
        // The log goes on after the cut, and replays cleanly again.
        let next = append(&wal, &k, &[&batch(1, "5")]).await;
        assert_eq!(next.0, seqs.len() as u64 + 1, "{damage}");
        wal.close();
        let (_, rec) = open(dir.path(), &ring, WalOptions::default()).unwrap();
        assert!(rec.torn.is_none(), "{damage}");
        assert_eq!(rec.records.len(), seqs.len() + 1, "{damage}");
    }
}

#[tokio::test]
async fn corruption_before_the_last_group_is_an_error_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(WalKeyScheme::Service, "acct");
    let ring = Ring::new(&[&k]);
    three_groups(dir.path(), &k, &ring).await;
    let file = log_files(dir.path()).remove(0);
    let mut bytes = std::fs::read(&file).unwrap();
    // Inside the body of the first frame (file header 18 + 11, frame header 28 + 4).
    let first_frame = 18 + WS.len();
    bytes[first_frame + 28 + 4 + 40] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let err = open(dir.path(), &ring, WalOptions::default()).unwrap_err();
    match &err {
        IngestError::WalCorrupt { path, offset, .. } => {
            assert_eq!(path, &file);
            assert_eq!(*offset, first_frame as u64);
        }
        other => panic!("{other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&file.display().to_string()) && msg.contains(&format!("offset {first_frame}")),
        "{msg}"
    );
    // Nothing was truncated.
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
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
async fn damage_in_an_older_file_and_foreign_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(WalKeyScheme::Service, "acct");
    let ring = Ring::new(&[&k]);
    let small = small_files();
    {
        let (wal, _) = open(dir.path(), &ring, small.clone()).unwrap();
        append_groups(&wal, &k, 3).await;
    }
    let files = log_files(dir.path());
    assert!(files.len() >= 3, "{files:?}");
    // Cut the end of the first (older) file: not a torn tail, since later files exist.
    let bytes = std::fs::read(&files[0]).unwrap();
    std::fs::write(&files[0], &bytes[..bytes.len() - 5]).unwrap();
    let err = open(dir.path(), &ring, small.clone()).unwrap_err();
    assert!(
        matches!(&err, IngestError::WalCorrupt { path, .. } if *path == files[0]),
        "{err}"
    );
    std::fs::write(&files[0], &bytes).unwrap();
    // Another workspace's log.
    let err = Wal::open(dir.path(), "ws-other-2", small.clone(), &ring).unwrap_err();
    assert!(err.to_string().contains("belongs to workspace"), "{err}");
    // A missing file: a gap in the sequence numbers.
    std::fs::remove_file(&files[1]).unwrap();
    let err = open(dir.path(), &ring, small.clone()).unwrap_err();
    assert!(err.to_string().contains("sequence gap"), "{err}");
    std::fs::remove_file(&files[0]).unwrap();
    let err = open(dir.path(), &ring, small).unwrap_err();
    assert!(
        err.to_string().contains("records 1 to 2 are missing"),
        "{err}"
    );
}

#[tokio::test]
async fn checkpoints_delete_files_and_replay_starts_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(WalKeyScheme::Service, "acct");
    let ring = Ring::new(&[&k]);
    let small = small_files();
    {
        let (wal, _) = open(dir.path(), &ring, small.clone()).unwrap();
        append_groups(&wal, &k, 5).await;
        assert_eq!(
            log_files(dir.path()).len(),
            6,
            "one file per group, and the active one"
        );
        wal.checkpoint(3).await.unwrap();
        assert_eq!(log_files(dir.path()).len(), 3, "records 1-3 are gone");
        // A checkpoint never goes back, nor past what was written.
        wal.checkpoint(2).await.unwrap();
        wal.checkpoint(99).await.unwrap();
    }
    let (wal, rec) = open(dir.path(), &ring, small.clone()).unwrap();
    assert_eq!(rec.checkpoint, 5);
    assert!(rec.records.is_empty());
    assert_eq!(append(&wal, &k, &[&batch(1, "x")]).await, (6, 6));
    wal.close();
    let (_, rec) = open(dir.path(), &ring, small).unwrap();
    assert_eq!(
        rec.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![6]
    );
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

/// Regression (a home's second workspace could not ingest): homes written before each workspace
/// had a log directory of its own kept every log file and one checkpoint in the shared root.
/// The upgrade moves the files to the workspace they belong to, keeps their unreplayed records,
/// and starts every other workspace's numbers after the shared log's, so that replay never
/// mistakes a new record for one a segment already holds.
#[tokio::test]
async fn the_shared_layout_upgrade_moves_files_to_their_workspace_and_keeps_numbers_rising() {
    use logvault_ingest::wal::{upgrade_shared_layout, workspace_dir};
    let root = tempfile::tempdir().unwrap();
    let k = key(WalKeyScheme::Service, "acct-mmk");
    let ring = Ring::new(&[&k]);
    let small = small_files();
    // The old layout: WS's log in the root itself, checkpointed part-way, records after it.
    {
        let (wal, _) = open(root.path(), &ring, small.clone()).unwrap();
        append_groups(&wal, &k, 6).await;
        wal.checkpoint(2).await.unwrap();
        wal.close();
    }
    // Another workspace's directory (its lock and counters lived there already).
    std::fs::create_dir(root.path().join("ws-other")).unwrap();
    assert!(!log_files(root.path()).is_empty());

    let report = upgrade_shared_layout(root.path()).unwrap();
    assert_eq!(report.floor, 6, "{report:?}");
    assert_eq!(report.floored, vec!["ws-other".to_owned()]);
    assert!(report.moved.get(WS).is_some_and(|n| *n > 0), "{report:?}");
    assert!(log_files(root.path()).is_empty(), "files left in the root");
    assert!(!root.path().join("checkpoint").exists());

    // WS replays exactly the records after the shared checkpoint, and goes on numbering.
    let (wal, rec) = open(&workspace_dir(root.path(), WS), &ring, small.clone()).unwrap();
    let seqs: Vec<u64> = rec.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![3, 4, 5, 6]);
    assert_eq!(append(&wal, &k, &[&batch(1, "next")]).await, (7, 7));
    wal.close();
    // The other workspace starts after every number the shared log gave out.
    let other = workspace_dir(root.path(), "ws-other");
    let (wal, rec) = Wal::open(&other, "ws-other", small.clone(), &ring).unwrap();
    assert!(rec.records.is_empty());
    assert_eq!(append(&wal, &k, &[&batch(1, "other")]).await, (7, 7));
    wal.close();

    // Run again (a second process, or after a crash once done): nothing to do.
    assert!(upgrade_shared_layout(root.path()).unwrap().is_empty());
}

/// A crash during the upgrade, after the files moved but before the shared checkpoint was
/// removed, is finished by the next run without changing the owner's checkpoint.
#[tokio::test]
async fn an_interrupted_layout_upgrade_is_finished_by_the_next_run() {
    use logvault_ingest::wal::{upgrade_shared_layout, workspace_dir};
    let root = tempfile::tempdir().unwrap();
    let k = key(WalKeyScheme::Service, "acct-mmk");
    let ring = Ring::new(&[&k]);
    {
        let (wal, _) = open(root.path(), &ring, small_files()).unwrap();
        append_groups(&wal, &k, 4).await;
        wal.checkpoint(1).await.unwrap();
        wal.close();
    }
    let checkpoint = std::fs::read(root.path().join("checkpoint")).unwrap();
    upgrade_shared_layout(root.path()).unwrap();
    // As if the last step had not happened.
    std::fs::write(root.path().join("checkpoint"), &checkpoint).unwrap();
    let report = upgrade_shared_layout(root.path()).unwrap();
    assert!(report.moved.is_empty(), "{report:?}");
    assert!(!root.path().join("checkpoint").exists());
    let (_, rec) = open(&workspace_dir(root.path(), WS), &ring, small_files()).unwrap();
    let seqs: Vec<u64> = rec.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![2, 3, 4]);

    // A file in the root whose header names no valid workspace is refused, not followed.
    let bogus = root.path().join("wal-00000000000000000009.lvw");
    let mut bytes = b"LVWAL\x01\x00\x00".to_vec();
    bytes.extend_from_slice(&9u64.to_le_bytes());
    bytes.extend_from_slice(&5u16.to_le_bytes());
    bytes.extend_from_slice(b"../..");
    std::fs::write(&bogus, bytes).unwrap();
    let err = upgrade_shared_layout(root.path()).unwrap_err();
    assert!(err.to_string().contains("not a workspace name"), "{err}");
    assert!(bogus.exists());
}

/// A reader (a query) asks whether there is anything to replay from the clear frame headers,
/// without opening the log (which would start a new file) and without any key.
#[tokio::test]
async fn needs_replay_reads_only_headers_and_sees_records_past_the_checkpoint() {
    use logvault_ingest::wal::needs_replay;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    assert!(!needs_replay(&missing, WS).unwrap());
    let k = key(WalKeyScheme::Service, "acct-mmk");
    let ring = Ring::new(&[&k]);
    let (wal, _) = open(dir.path(), &ring, WalOptions::default()).unwrap();
    assert!(!needs_replay(dir.path(), WS).unwrap(), "an empty log");
    append_groups(&wal, &k, 3).await;
    assert!(
        needs_replay(dir.path(), WS).unwrap(),
        "records after the checkpoint"
    );
    wal.checkpoint(3).await.unwrap();
    assert!(!needs_replay(dir.path(), WS).unwrap(), "all checkpointed");
    wal.close();
    let files_before = log_files(dir.path());
    assert!(!needs_replay(dir.path(), WS).unwrap());
    assert_eq!(log_files(dir.path()), files_before, "asking wrote a file");
    // A torn tail is something to repair: opening must see it.
    let last = files_before.last().unwrap();
    let mut bytes = std::fs::read(last).unwrap();
    bytes.extend_from_slice(b"LVWF\x40");
    std::fs::write(last, bytes).unwrap();
    assert!(needs_replay(dir.path(), WS).unwrap());
}

/// Regression (found by fuzzing replay): the checkpoint file had no check value, so a flipped
/// bit in its sequence number moved the checkpoint past acknowledged records, which replay then
/// skipped without a word.
#[tokio::test]
async fn a_damaged_checkpoint_is_an_error_not_a_silent_skip() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(WalKeyScheme::Service, "acct");
    let ring = Ring::new(&[&k]);
    let (wal, _) = open(dir.path(), &ring, WalOptions::default()).unwrap();
    append(&wal, &k, &[&batch(2, "1")]).await;
    wal.checkpoint(1).await.unwrap();
    append(&wal, &k, &[&batch(2, "2")]).await;
    wal.close();
    let path = dir.path().join("checkpoint");
    let good = std::fs::read(&path).unwrap();
    assert_eq!(good.len(), 25, "a version 2 checkpoint");
    // Sequence number 1 -> 3: records 2 and 3 would be taken as stored.
    let mut bad = good.clone();
    bad[9] ^= 0x02;
    std::fs::write(&path, &bad).unwrap();
    match open(dir.path(), &ring, WalOptions::default()).unwrap_err() {
        IngestError::WalCorrupt {
            path: p, reason, ..
        } => {
            assert_eq!(p, path);
            assert!(
                reason.contains("check value") && reason.contains("delete this file"),
                "{reason}"
            );
        }
        other => panic!("{other}"),
    }
    // A version 1 file (17 bytes, before the check value) is still read.
    let mut v1 = good[..17].to_vec();
    v1[8] = 1;
    std::fs::write(&path, &v1).unwrap();
    let (_, rec) = open(dir.path(), &ring, WalOptions::default()).unwrap();
    assert_eq!(rec.checkpoint, 1);
    assert_eq!(
        rec.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![2]
    );
}

/// Regression (found by the bit-flip sweep): the two reserved bytes of a log file's header were
/// never checked, so flips there went unnoticed.
#[tokio::test]
async fn reserved_bytes_of_a_log_file_header_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(WalKeyScheme::Service, "acct");
    let ring = Ring::new(&[&k]);
    three_groups(dir.path(), &k, &ring).await;
    let file = log_files(dir.path()).remove(0);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[7] ^= 0x10;
    std::fs::write(&file, &bytes).unwrap();
    match open(dir.path(), &ring, WalOptions::default()).unwrap_err() {
        IngestError::WalCorrupt {
            reason, offset: 0, ..
        } => {
            assert!(reason.contains("reserved"), "{reason}")
        }
        other => panic!("{other}"),
    }
}

/// Regression (found by fuzzing replay): a torn final frame whose account bytes were damaged
/// made replay ask the keyring for a key of an account that does not exist; the engine's
/// keyring answered "not available", so the log could not be opened at all (ingestion and
/// queries of the workspace stopped) although the frame was an unacknowledged torn write.
#[tokio::test]
async fn a_torn_frame_naming_an_unknown_account_is_cut_not_taken_for_a_key_outage() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(WalKeyScheme::Service, "acct");
    let known = Arc::clone(&k);
    let ring = move |r: &WalKeyRef| {
        if r == known.key_ref() {
            Ok(Some(Arc::clone(&known)))
        } else {
            Err(WalKeyError::Unknown(format!(
                "no storage account {}",
                r.account
            )))
        }
    };
    let (wal, _) = Wal::open(dir.path(), WS, WalOptions::default(), &ring).unwrap();
    append(&wal, &k, &[&batch(2, "1")]).await;
    append(&wal, &k, &[&batch(2, "2")]).await;
    wal.close();
    let file = log_files(dir.path()).remove(0);
    let mut bytes = std::fs::read(&file).unwrap();
    // The last frame's account "acct" -> "acc4": an account that does not exist.
    let frame = bytes.windows(4).rposition(|w| w == b"LVWF").unwrap();
    let account = frame + 28;
    assert_eq!(&bytes[account..account + 4], b"acct");
    bytes[account + 3] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let (_, rec) = Wal::open(dir.path(), WS, WalOptions::default(), &ring).unwrap();
    assert!(rec.torn.is_some(), "the damaged final group is cut as torn");
    assert_eq!(
        rec.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1]
    );
}
