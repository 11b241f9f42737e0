//! Target of the write-ahead log's replay: damaged logs.
//!
//! A fixture log is written once per process (three log files, five groups, records under a
//! service and a customer key, a checkpoint after the first group). Each input is a
//! [`Script`] of damage to one of its files (a log file or the checkpoint); the damaged copy is
//! opened and replay must either fail with [`IngestError::WalCorrupt`] naming the damaged file,
//! or give back every acknowledged record after the checkpoint, each exactly as written, except
//! a final group of the newest file that it reports cut as torn (a crash's unacknowledged
//! write, which damage there cannot be told from: `docs/ingest.md`). A second open of what the
//! first left must agree with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow::array::RecordBatch;
use logvault_crypto::Aek;
use logvault_ingest::{
    IngestError, Recovery, Wal, WalKey, WalKeyError, WalKeyRef, WalKeyScheme, WalOptions, WalRecord,
};

use crate::mutate::Script;

const WS: &str = "ws-fuzz";

struct Fixture {
    keys: Vec<Arc<WalKey>>,
    /// File name and bytes, in name order.
    files: Vec<(String, Vec<u8>)>,
    /// Every record: seq -> (table, batch, key).
    records: BTreeMap<u64, (String, RecordBatch, WalKeyRef)>,
    checkpoint: u64,
    /// The first sequence number of the newest file's last group.
    last_group_from: u64,
}

fn key(scheme: WalKeyScheme, account: &str) -> Arc<WalKey> {
    let aek = crate::setup("account key", Aek::generate());
    let key = crate::setup("log key", aek.derive_purpose_key("wal"));
    let key_ref = WalKeyRef {
        scheme,
        account: account.to_owned(),
    };
    Arc::new(crate::setup("log key", WalKey::new(key_ref, key)))
}

fn batch(tag: &str, rows: usize) -> RecordBatch {
    let mut payload = String::new();
    for i in 0..rows {
        payload.push_str(&format!(
            "{{\"TimeGenerated\":\"2026-03-01T00:00:{:02}Z\",\"Tag\":\"{tag}\",\"N\":{i}}}\n",
            i % 60
        ));
    }
    let mut schema = crate::setup("schema", logvault_ingest::TableSchema::new("Fuzz"));
    let clock = logvault_core::TestClock::new(chrono::DateTime::UNIX_EPOCH);
    let out = crate::setup(
        "parse",
        logvault_ingest::parse_payload(
            payload.as_bytes(),
            logvault_ingest::Format::JsonLines,
            &mut schema,
            &logvault_ingest::ParseOptions::default(),
            &clock,
        ),
    );
    out.batches
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("fixture batch"))
}

/// The keyring of the fixture, as the engine's behaves: the fixture's keys, and no other
/// account exists.
fn keyring(
    keys: &[Arc<WalKey>],
) -> impl Fn(&WalKeyRef) -> Result<Option<Arc<WalKey>>, WalKeyError> {
    let keys = keys.to_vec();
    move |r: &WalKeyRef| {
        keys.iter()
            .find(|k| k.key_ref() == r)
            .cloned()
            .map(Some)
            .ok_or_else(|| WalKeyError::Unknown(format!("no storage account {}", r.account)))
    }
}

fn build() -> Fixture {
    let dir = crate::setup("temp dir", tempfile::tempdir());
    let keys = vec![
        key(WalKeyScheme::Service, "service"),
        key(WalKeyScheme::Customer, "cluster-fuzz1"),
    ];
    let runtime = crate::setup(
        "runtime",
        tokio::runtime::Builder::new_current_thread().build(),
    );
    let options = WalOptions {
        max_file_bytes: 1500,
        ..WalOptions::default()
    };
    let mut records = BTreeMap::new();
    let mut last_group_from = 0;
    let mut checkpoint = 0;
    // Groups: (key, tables) per append; the log moves to a new file past 1500 bytes.
    let plan: [(usize, &[&str]); 5] = [
        (0, &["TableA", "TableB"]),
        (1, &["TableC"]),
        (0, &["TableA"]),
        (1, &["TableB", "TableC", "TableA"]),
        (0, &["TableB"]),
    ];
    let ring = keyring(&keys);
    let (wal, _) = crate::setup("open", Wal::open(dir.path(), WS, options, &ring));
    for (g, (k, tables)) in plan.iter().enumerate() {
        let batches: Vec<RecordBatch> = tables
            .iter()
            .enumerate()
            .map(|(i, _)| batch(&format!("g{g}r{i}"), 3 + i))
            .collect();
        let recs: Vec<WalRecord<'_>> = tables
            .iter()
            .zip(&batches)
            .map(|(t, b)| WalRecord { table: t, batch: b })
            .collect();
        let range = crate::setup("append", runtime.block_on(wal.append(&keys[*k], &recs)));
        for (seq, (t, b)) in (range.first..=range.last).zip(tables.iter().zip(&batches)) {
            records.insert(
                seq,
                ((*t).to_owned(), b.clone(), keys[*k].key_ref().clone()),
            );
        }
        last_group_from = range.first;
        if g == 0 {
            checkpoint = range.last;
            crate::setup("checkpoint", runtime.block_on(wal.checkpoint(checkpoint)));
        }
    }
    wal.close();
    drop(ring);
    let mut files: Vec<(String, Vec<u8>)> = crate::setup("list", std::fs::read_dir(dir.path()))
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".lvw") || n == "checkpoint")
        .map(|n| {
            let bytes = crate::setup("read", std::fs::read(dir.path().join(&n)));
            (n, bytes)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "fixture: expected several log files, got {files:?}"
    );
    Fixture {
        keys,
        files,
        records,
        checkpoint,
        last_group_from,
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

/// What replay of a damaged log did, for the tests' statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every record came back.
    Intact,
    /// The final group was cut as a torn write.
    TornCut,
    /// Replay refused the log, naming the damaged file.
    Refused,
    /// The newest file was cut back to its header or a group boundary: the groups after the cut
    /// are gone and nothing is reported, since that cannot be told from groups that never
    /// reached the disk (the limitation of `docs/ingest.md`).
    CutBack,
}

/// Damages the fixture with `script` and replays it.
pub fn replay_target(script: &Script) -> Outcome {
    let fx = fixture();
    let dir = crate::setup("temp dir", tempfile::tempdir());
    let victim = script.file % fx.files.len();
    for (i, (name, bytes)) in fx.files.iter().enumerate() {
        let mut bytes = bytes.clone();
        if i == victim {
            script.apply(&mut bytes);
        }
        crate::setup("write", std::fs::write(dir.path().join(name), bytes));
    }
    let ring = keyring(&fx.keys);
    let first = match Wal::open(dir.path(), WS, WalOptions::default(), &ring) {
        Ok((wal, recovery)) => {
            wal.close();
            recovery
        }
        Err(e) => {
            check_refusal(&e, dir.path(), &fx.files[victim].0);
            return Outcome::Refused;
        }
    };
    // A pure cut of the newest log file (its bytes a prefix of the original's).
    let newest = fx.files.iter().rposition(|(n, _)| n.ends_with(".lvw"));
    let cut_newest = newest == Some(victim) && {
        let mut damaged = fx.files[victim].1.clone();
        script.apply(&mut damaged);
        damaged.len() < fx.files[victim].1.len() && fx.files[victim].1.starts_with(&damaged)
    };
    let newest_first = newest.map_or(u64::MAX, |i| fixture_first_seq(&fx.files[i].0));
    let outcome = check_recovery(fx, &first, cut_newest.then_some(newest_first));
    // What the first open left (a cut tail, a fresh file) opens again to the same records.
    let second = match Wal::open(dir.path(), WS, WalOptions::default(), &ring) {
        Ok((wal, recovery)) => {
            wal.close();
            recovery
        }
        Err(e) => panic!("the log opened once, then not again: {e}"),
    };
    assert!(
        second.torn.is_none(),
        "a second open cut again: {:?}",
        second.torn
    );
    let seqs = |r: &Recovery| r.records.iter().map(|r| r.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(&first),
        seqs(&second),
        "two opens replayed different records"
    );
    outcome
}

fn check_refusal(e: &IngestError, dir: &Path, victim: &str) {
    match e {
        IngestError::WalCorrupt { path, reason, .. } => {
            assert!(!reason.is_empty(), "a corruption error without a reason");
            let named: PathBuf = dir.join(victim);
            // Damage to one file may show as a sequence gap in the next one.
            assert!(
                path.starts_with(dir),
                "the error names {} outside the log (damaged {})",
                path.display(),
                named.display()
            );
        }
        other => {
            panic!("damage to {victim} was reported as something else than corruption: {other}")
        }
    }
}

/// `cut_newest`: the newest file was only cut shorter, and its records start at this number.
fn check_recovery(fx: &Fixture, r: &Recovery, cut_newest: Option<u64>) -> Outcome {
    assert_eq!(
        r.checkpoint, fx.checkpoint,
        "replay read another checkpoint"
    );
    assert_eq!(
        r.held_revoked, 0,
        "records held although every key is there"
    );
    let mut expected: Vec<u64> = fx
        .records
        .keys()
        .copied()
        .filter(|s| *s > fx.checkpoint)
        .collect();
    let outcome = if r.torn.is_some() && r.records.len() < expected.len() {
        // Only the newest file's final group may be cut.
        expected.retain(|s| *s < fx.last_group_from);
        Outcome::TornCut
    } else if let Some(first) = cut_newest
        && r.torn.is_none()
        && r.records.len() < expected.len()
    {
        // Found by AFL++ (docs/reliability.md, finding 23): only records of the newest file
        // may go, the last ones, none of an older file.
        let kept = r.records.len();
        assert!(
            expected[kept..].iter().all(|s| *s >= first),
            "a cut of the newest file lost records of an older file"
        );
        expected.truncate(kept);
        Outcome::CutBack
    } else {
        Outcome::Intact
    };
    let got: Vec<u64> = r.records.iter().map(|r| r.seq).collect();
    assert_eq!(
        got, expected,
        "acknowledged records lost or invented by replay"
    );
    for rec in &r.records {
        let Some((table, batch, key)) = fx.records.get(&rec.seq) else {
            panic!("record {} was never written", rec.seq);
        };
        assert_eq!(&rec.table, table, "record {}: table differs", rec.seq);
        assert_eq!(&rec.batch, batch, "record {}: rows differ", rec.seq);
        assert_eq!(&rec.key, key, "record {}: key differs", rec.seq);
    }
    outcome
}

/// The fixture's files, for the tests (which damage them by hand too).
pub fn fixture_files() -> Vec<String> {
    fixture().files.iter().map(|(n, _)| n.clone()).collect()
}

/// The length of a fixture file.
pub fn fixture_len(name: &str) -> usize {
    fixture()
        .files
        .iter()
        .find(|(n, _)| n == name)
        .map_or(0, |(_, b)| b.len())
}

/// The length of the fixture's log file headers (`docs/ingest.md`: magic, version, two reserved
/// bytes, first sequence number, workspace name length, workspace name).
pub const FILE_HEADER_LEN: usize = 18 + WS.len();

/// The first sequence number of a fixture log file, from its name (`wal-<first seq>.lvw`).
pub fn fixture_first_seq(name: &str) -> u64 {
    name.strip_prefix("wal-")
        .and_then(|n| n.strip_suffix(".lvw"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not a log file of the fixture"))
}

/// The fixture's checkpoint.
pub fn fixture_checkpoint() -> u64 {
    fixture().checkpoint
}
