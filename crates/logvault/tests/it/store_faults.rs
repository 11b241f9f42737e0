//! Storage faults (issue 25): the engine over `logvault_testkit::faults::FaultyStore`, which fails
//! puts, gets, lists and deletes at chosen points or at random, loses replies of writes that
//! landed, and tears reads. What must hold: every acknowledged row stored exactly once in the
//! end, errors that say what failed, no listed segment that is missing or partial, and the
//! same calls working once the fault is over.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use logvault::cache::HotCacheConfig;
use logvault::ingest::Format;
use logvault::{Engine, EngineError, HomeConfig, IngestOptions};
use logvault_core::{Clock, TestClock};
use logvault_testkit::faults::{Fault, FaultyStore, Op};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

use crate::common::{Home, WS, timings};

const TABLE: &str = "AppLogs";

pub(crate) struct Faulty {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) clock: TestClock,
    pub(crate) store: Arc<FaultyStore>,
    pub(crate) engine: Engine,
}

/// A home whose storage is a local directory behind a `FaultyStore`; the hot cache is off
/// (`cache`: false) so that every query read reaches the store.
async fn faulty_home(cache: bool) -> Faulty {
    faulty_home_with(cache, None).await
}

/// As [`faulty_home`], with `segmentGraceSecs` set in the home's configuration.
pub(crate) async fn faulty_home_with(cache: bool, segment_grace_secs: Option<i64>) -> Faulty {
    let dir = tempfile::tempdir().unwrap();
    let config = HomeConfig {
        version: 1,
        timings: timings(),
        segment_grace_secs,
        ..HomeConfig::default()
    };
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
    let objects = dir.path().join("objects");
    std::fs::create_dir_all(&objects).unwrap();
    let inner: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(&objects).unwrap());
    let store = FaultyStore::new(inner);
    let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
    let engine = open(dir.path(), &clock, &store, cache).await.unwrap();
    engine
        .control()
        .create_workspace(logvault::control::WorkspaceSpec::new(WS))
        .unwrap();
    Faulty {
        dir,
        clock,
        store,
        engine,
    }
}

async fn open(
    dir: &std::path::Path,
    clock: &TestClock,
    store: &Arc<FaultyStore>,
    cache: bool,
) -> Result<Engine, EngineError> {
    let mut builder = Engine::builder(dir)
        .clock(Arc::new(clock.clone()))
        .object_store(Arc::clone(store) as Arc<dyn ObjectStore>);
    if !cache {
        builder = builder.hot_cache(HotCacheConfig {
            memory_bytes: 0,
            disk_bytes: 0,
            ..HotCacheConfig::default()
        });
    }
    builder.open().await
}

impl Faulty {
    pub(crate) async fn reopen(&self) -> Engine {
        open(self.dir.path(), &self.clock, &self.store, false)
            .await
            .unwrap()
    }
}

pub(crate) async fn ingest(
    engine: &Engine,
    tag: &str,
    start: i64,
    n: usize,
) -> Result<u64, EngineError> {
    let payload = Home::lines(tag, start, n).join("\n");
    engine
        .ingest(
            WS,
            TABLE,
            std::io::Cursor::new(payload),
            &IngestOptions::new(Format::JsonLines),
            None,
        )
        .await
        .map(|r| {
            assert_eq!(r.dropped, 0, "{r:?}");
            r.accepted
        })
}

/// Every row of the table: how many times each (tag, seq) is there.
pub(crate) async fn rows(engine: &Engine) -> Result<BTreeMap<(String, i64), u32>, EngineError> {
    let session = engine.query_session(WS).await?;
    // The product's path: `execute` guards the reader (a panic becomes an error).
    let stream = session
        .execute(&format!("SELECT Tag, Seq FROM {TABLE}"))
        .await?;
    let batches: Vec<_> = futures::TryStreamExt::try_collect(stream)
        .await
        .map_err(|e| EngineError::Query(e.into()))?;
    let mut out = BTreeMap::new();
    for b in batches {
        let tags = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        let tags = arrow::array::AsArray::as_string::<i32>(&tags);
        let seqs = arrow::compute::cast(b.column(1), &arrow::datatypes::DataType::Int64).unwrap();
        let seqs = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(&seqs);
        for i in 0..b.num_rows() {
            *out.entry((tags.value(i).to_owned(), seqs.value(i)))
                .or_insert(0) += 1;
        }
    }
    Ok(out)
}

/// What the rows must be: every acknowledged payload's rows exactly once; a refused payload's
/// rows at most once each (it reached the log before the store failed, and replay stores it);
/// nothing else.
fn check_rows(
    got: &BTreeMap<(String, i64), u32>,
    acknowledged: &BTreeMap<String, usize>,
    refused: &BTreeMap<String, usize>,
    when: &str,
) {
    for (tag, n) in acknowledged {
        for seq in 0..*n as i64 {
            assert_eq!(
                got.get(&(tag.clone(), seq)),
                Some(&1),
                "{when}: acknowledged row {tag}-{seq} is not there exactly once"
            );
        }
    }
    for ((tag, seq), times) in got {
        assert_eq!(*times, 1, "{when}: row {tag}-{seq} is there {times} times");
        let known = acknowledged
            .get(tag)
            .or_else(|| refused.get(tag))
            .is_some_and(|n| (*seq as usize) < *n);
        assert!(known, "{when}: row {tag}-{seq} was never sent");
    }
}

/// An error from a store fault says what failed and why.
fn assert_clear(e: &EngineError, what: &str) {
    let text = e.to_string();
    // The store's reason, or the router's finding of a short read.
    assert!(
        text.contains("injected fault") || text.contains("answered a read"),
        "{what}: the store's reason is lost: {text}"
    );
    // What failed: a workspace's catalog or table, a segment, a storage account's key
    // records (read again once the cached key expires), or the listing of the storage root
    // (the accounts, before any workspace is reached) or of the catalog's directory (the
    // workspaces, which a purge goes over).
    assert!(
        text.contains(WS)
            || text.contains(TABLE)
            || text.contains("segment")
            || text.contains("storage account")
            || text.contains("storage root")
            || text.contains("catalog directory"),
        "{what}: the error names no workspace, table or segment: {text}"
    );
}

/// Random faults of every kind during an ingest and query load; then the faults end and a new
/// process opens the home.
#[tokio::test]
#[allow(clippy::print_stderr)] // the run's figures
async fn storage_faults_at_random_lose_no_acknowledged_row_and_show_no_partial_segment() {
    let h = faulty_home(false).await;
    let seed: u64 = std::env::var("LOGVAULT_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0025);
    let rounds: usize = std::env::var("LOGVAULT_FAULT_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let s = &h.store;
    s.fail_randomly(Op::Put, "", Fault::Error, 60, seed);
    s.fail_randomly(Op::Put, "", Fault::LostReply, 40, seed);
    s.fail_randomly(Op::Get, "", Fault::TornRead, 5, seed);
    s.fail_randomly(Op::Get, "", Fault::Error, 5, seed);
    s.fail_randomly(Op::List, "", Fault::Error, 20, seed);
    // Deletes come from compaction (every third round below): one in four fails.
    s.fail_randomly(Op::Delete, "", Fault::Error, 4, seed);
    s.fail_randomly(
        Op::Get,
        "",
        Fault::Latency(std::time::Duration::from_millis(2)),
        50,
        seed,
    );
    let (mut acknowledged, mut refused) = (BTreeMap::new(), BTreeMap::new());
    let (mut ingest_errors, mut query_errors, mut queries_ok) = (0, 0, 0);
    let (mut compactions_ok, mut compaction_errors) = (0, 0);
    for round in 0..rounds {
        if round % 3 == 2 {
            // Compaction reads, writes a merged segment, commits the catalog and deletes the
            // old segments: a fault anywhere fails it clearly and loses or doubles nothing.
            match h
                .engine
                .compact(WS, None, logvault::store::CompactionOptions::default())
                .await
            {
                Ok(_) => compactions_ok += 1,
                Err(e) => {
                    assert_clear(&e, &format!("compaction of round {round}"));
                    compaction_errors += 1;
                }
            }
        }
        let tag = format!("r{round}");
        let n = 5 + round % 7;
        match ingest(&h.engine, &tag, round as i64 * 10, n).await {
            Ok(accepted) => {
                assert_eq!(accepted, n as u64);
                acknowledged.insert(tag, n);
            }
            Err(e) => {
                assert_clear(&e, &format!("ingest {tag}"));
                ingest_errors += 1;
                refused.insert(tag, n);
            }
        }
        match rows(&h.engine).await {
            Ok(got) => {
                check_rows(&got, &acknowledged, &refused, &format!("round {round}"));
                queries_ok += 1;
            }
            Err(e) => {
                assert_clear(&e, &format!("query of round {round}"));
                query_errors += 1;
            }
        }
    }
    let injected = s.injected();
    s.clear();
    eprintln!(
        "storage faults: {rounds} rounds, {} faults injected {injected:?} in {} calls; \
         {ingest_errors} ingests and {query_errors} queries failed, {queries_ok} queries answered; \
         {compactions_ok} compactions done, {compaction_errors} failed",
        s.injected_total(),
        s.calls()
    );
    assert!(ingest_errors > 0 && query_errors > 0, "no fault hit a call");
    // The fault is over: another process opens the home and finds every row once.
    let engine = h.reopen().await;
    let got = rows(&engine).await.unwrap();
    check_rows(&got, &acknowledged, &refused, "after the faults");
    // Nothing listed is missing or partial.
    let report = engine.verify(WS, None, &mut |_| {}).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    // And new rows go in.
    assert_eq!(ingest(&engine, "after", 1000, 7).await.unwrap(), 7);
    acknowledged.insert("after".into(), 7);
    check_rows(
        &rows(&engine).await.unwrap(),
        &acknowledged,
        &refused,
        "after a new ingest",
    );
}

/// A catalog commit that landed but whose reply was lost: the ingest fails (the sender was not
/// told), the rows are in the log, and replay finds the segment that lists them: once, not twice.
#[tokio::test]
async fn a_lost_reply_to_a_catalog_commit_stores_the_rows_once() {
    let h = faulty_home(false).await;
    assert_eq!(ingest(&h.engine, "a", 0, 5).await.unwrap(), 5);
    h.store.fail_next(Op::Put, "/catalog/", Fault::LostReply, 1);
    let e = ingest(&h.engine, "b", 10, 6).await.unwrap_err();
    assert_clear(&e, "the lost catalog reply");
    assert!(e.to_string().contains("catalog"), "{e}");
    assert_eq!(h.store.injected_total(), 1);
    let acknowledged = BTreeMap::from([("a".to_owned(), 5)]);
    let refused = BTreeMap::from([("b".to_owned(), 6)]);
    let got = rows(&h.engine).await.unwrap();
    check_rows(&got, &acknowledged, &refused, "after the lost reply");
    assert_eq!(
        got.len(),
        11,
        "the segment the lost commit recorded is read"
    );
    let again = h.reopen().await;
    assert_eq!(
        rows(&again).await.unwrap(),
        got,
        "a new process reads the same rows"
    );
    assert!(
        again
            .verify(WS, None, &mut |_| {})
            .await
            .unwrap()
            .is_clean()
    );
}

/// Regression: compaction whose catalog commit landed but whose reply was lost deleted the
/// merged segment the catalog now listed (and the old ones were no longer listed): the rows of
/// every merged segment were gone, and queries failed on a missing file. Now it reads the
/// catalog again, finds its commit, and keeps the merged file.
#[tokio::test]
async fn a_lost_reply_to_a_compaction_commit_keeps_the_merged_segment() {
    let h = faulty_home(false).await;
    let mut acknowledged = BTreeMap::new();
    for (i, tag) in ["a", "b", "c"].iter().enumerate() {
        assert_eq!(ingest(&h.engine, tag, i as i64 * 10, 4).await.unwrap(), 4);
        acknowledged.insert((*tag).to_owned(), 4);
    }
    h.store.fail_next(Op::Put, "/catalog/", Fault::LostReply, 1);
    let outcome = h
        .engine
        .compact(WS, None, logvault::store::CompactionOptions::default())
        .await;
    assert_eq!(
        h.store.injected_total(),
        1,
        "the fault did not hit the commit"
    );
    if let Err(e) = &outcome {
        assert_clear(e, "the lost compaction reply");
    }
    let refused = BTreeMap::new();
    let got = rows(&h.engine).await.unwrap();
    check_rows(
        &got,
        &acknowledged,
        &refused,
        "after the lost compaction reply",
    );
    let again = h.reopen().await;
    assert_eq!(rows(&again).await.unwrap(), got);
    let report = again.verify(WS, None, &mut |_| {}).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
}

/// A file's load whose catalog commit landed but whose reply was lost must not delete the
/// segments the catalog now lists (the compaction's bug above, in the load's commit): the load
/// fails or not, its rows are there exactly once or not at all (the caller was not told they
/// were stored), and no listed segment is missing.
#[tokio::test]
async fn a_lost_reply_to_a_load_commit_keeps_its_segments() {
    let h = faulty_home(false).await;
    assert_eq!(ingest(&h.engine, "a", 0, 4).await.unwrap(), 4);
    h.store.fail_next(Op::Put, "/catalog/", Fault::LostReply, 1);
    let payload = Home::lines("b", 10, 8).join("\n");
    let outcome = h
        .engine
        .ingest(
            WS,
            TABLE,
            std::io::Cursor::new(payload),
            &IngestOptions::load(Format::JsonLines),
            None,
        )
        .await;
    assert_eq!(
        h.store.injected_total(),
        1,
        "the fault did not hit the load's commit"
    );
    let mut acknowledged = BTreeMap::from([("a".to_owned(), 4)]);
    let mut refused = BTreeMap::new();
    match &outcome {
        Ok(r) => {
            assert_eq!(r.accepted, 8, "{r:?}");
            acknowledged.insert("b".to_owned(), 8);
        }
        Err(e) => {
            assert_clear(e, "the lost load reply");
            refused.insert("b".to_owned(), 8);
        }
    }
    let got = rows(&h.engine).await.unwrap();
    check_rows(&got, &acknowledged, &refused, "after the lost load reply");
    let again = h.reopen().await;
    assert_eq!(rows(&again).await.unwrap(), got);
    let report = again.verify(WS, None, &mut |_| {}).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
}

/// A segment upload that fails: the ingest fails naming the segment and workspace, nothing
/// partial is listed, and once storage is back the rows (in the log) are stored by the next
/// use, once; new ingests work.
#[tokio::test]
async fn a_failed_segment_upload_is_refused_by_name_and_stored_once_storage_is_back() {
    let h = faulty_home(true).await;
    h.store.fail_next(Op::Put, "/segments/", Fault::Error, 3);
    let e = ingest(&h.engine, "a", 0, 8).await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("segment") && text.contains(WS) && text.contains("injected fault"),
        "{text}"
    );
    assert!(
        h.engine
            .verify(WS, None, &mut |_| {})
            .await
            .unwrap()
            .is_clean()
    );
    // Still failing: the rows stay in the log, the next attempts fail the same way.
    assert!(rows(&h.engine).await.is_err());
    h.store.clear();
    let refused = BTreeMap::from([("a".to_owned(), 8)]);
    let got = rows(&h.engine).await.unwrap();
    assert_eq!(
        got.len(),
        8,
        "the log's rows are stored once storage is back: {got:?}"
    );
    check_rows(&got, &BTreeMap::new(), &refused, "after the outage");
    assert_eq!(ingest(&h.engine, "b", 20, 4).await.unwrap(), 4);
    let acknowledged = BTreeMap::from([("b".to_owned(), 4)]);
    check_rows(
        &rows(&h.reopen().await).await.unwrap(),
        &acknowledged,
        &refused,
        "after the retry",
    );
}

/// Regression (found by the fault-injecting store): a store answering a range read with fewer
/// bytes than asked made parquet-rs 59 panic (`Range length must match buffer length`,
/// `push_buffers.rs`) in whatever polled the query, also outside the query guard. The account
/// router now checks every range's length: the read fails naming the segment.
#[tokio::test]
async fn a_short_read_of_a_segment_fails_the_query_naming_the_segment_not_a_panic() {
    let h = faulty_home(false).await;
    assert_eq!(ingest(&h.engine, "a", 0, 5).await.unwrap(), 5);
    for n in 1..=3 {
        h.store.fail_next(Op::Get, "/segments/", Fault::TornRead, n);
        let session = h.engine.query_session(WS).await.unwrap();
        // DataFusion directly (no guard): an error, not a panic.
        let result = session
            .context()
            .sql(&format!("SELECT * FROM {TABLE}"))
            .await
            .unwrap()
            .collect()
            .await;
        let text = result.unwrap_err().to_string();
        assert!(
            text.contains("answered a read") && text.contains("/segments/ws-prod/AppLogs/"),
            "{text}"
        );
        h.store.clear();
    }
    assert_eq!(rows(&h.engine).await.unwrap().len(), 5);
}

/// `n` rows tagged `tag`, the i-th at `at` minus i minutes.
async fn ingest_at(
    engine: &Engine,
    tag: &str,
    at: chrono::DateTime<Utc>,
    n: usize,
) -> Result<u64, EngineError> {
    let payload: Vec<String> = (0..n)
        .map(|i| {
            let t = at - chrono::Duration::minutes(i as i64);
            format!(
                r#"{{"TimeGenerated":"{}","Tag":"{tag}","Seq":{i}}}"#,
                t.to_rfc3339()
            )
        })
        .collect();
    engine
        .ingest(
            WS,
            TABLE,
            std::io::Cursor::new(payload.join("\n")),
            &IngestOptions::new(Format::JsonLines),
            None,
        )
        .await
        .map(|r| r.accepted)
}

/// What retention must keep: every acknowledged row inside the retention window at `now`
/// exactly once; rows past it at most once (a segment goes only once its newest row is past,
/// so older rows may stay); refused payloads' rows at most once; nothing never sent.
fn check_retained(
    got: &BTreeMap<(String, i64), u32>,
    sent: &BTreeMap<String, (chrono::DateTime<Utc>, usize, bool)>,
    cutoff: chrono::DateTime<Utc>,
    when: &str,
) -> usize {
    let mut inside = 0;
    for (tag, (at, n, acknowledged)) in sent {
        for seq in 0..*n as i64 {
            let time = *at - chrono::Duration::minutes(seq);
            let times = got.get(&(tag.clone(), seq)).copied().unwrap_or(0);
            if *acknowledged && time >= cutoff {
                inside += 1;
                assert_eq!(
                    times, 1,
                    "{when}: row {tag}-{seq} ({time}) is inside retention (from {cutoff}) but \
                     there {times} times"
                );
            }
        }
    }
    for ((tag, seq), times) in got {
        assert_eq!(*times, 1, "{when}: row {tag}-{seq} is there {times} times");
        assert!(
            sent.get(tag).is_some_and(|(_, n, _)| (*seq as usize) < *n),
            "{when}: row {tag}-{seq} was never sent"
        );
    }
    inside
}

/// Rows the catalog counts for the table.
async fn counted(engine: &Engine) -> Result<u64, EngineError> {
    Ok(engine
        .tables(WS)
        .await?
        .iter()
        .filter(|t| t.name == TABLE)
        .map(|t| t.rows)
        .sum())
}

/// Retention purges under storage faults (issue 25): a day of rows per round, the clock a day
/// on, a purge every round and a compaction every other, with puts, gets, lists and deletes
/// failing or losing their replies at random. What must hold after every round whose query
/// answers: every acknowledged row inside retention there once, nothing twice, nothing never
/// sent; the catalog's count equal to the rows a query returns (nothing counted that is gone);
/// after the faults, the same in a new process and the scrub clean.
#[tokio::test]
#[allow(clippy::print_stderr)] // the run's figures
async fn retention_purges_under_storage_faults_keep_every_row_inside_retention() {
    const RETENTION_DAYS: u32 = 3;
    let h = faulty_home(false).await;
    let seed: u64 = std::env::var("LOGVAULT_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0026);
    let rounds: usize = std::env::var("LOGVAULT_FAULT_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    // The first day without faults, and the table's retention.
    let mut sent = BTreeMap::new();
    let day = chrono::Duration::days(1);
    let first = h.clock.now();
    assert_eq!(ingest_at(&h.engine, "d0", first, 6).await.unwrap(), 6);
    sent.insert("d0".to_owned(), (first, 6, true));
    h.engine
        .set_retention(WS, TABLE, RETENTION_DAYS)
        .await
        .unwrap();
    let s = &h.store;
    s.fail_randomly(Op::Put, "", Fault::Error, 50, seed);
    s.fail_randomly(Op::Put, "", Fault::LostReply, 40, seed);
    s.fail_randomly(Op::Get, "", Fault::TornRead, 5, seed);
    s.fail_randomly(Op::Get, "", Fault::Error, 5, seed);
    s.fail_randomly(Op::List, "", Fault::Error, 30, seed);
    s.fail_randomly(Op::Delete, "", Fault::Error, 200, seed);
    s.fail_randomly(Op::Delete, "", Fault::LostReply, 150, seed);
    let (mut purges_ok, mut purge_errors, mut segments_purged) = (0, 0, 0);
    let (mut ingest_errors, mut query_errors, mut checked, mut compactions) = (0, 0, 0, 0);
    for round in 1..=rounds {
        h.clock.advance(day);
        let now = h.clock.now();
        let tag = format!("d{round}");
        let n = 4 + round % 5;
        let acknowledged = match ingest_at(&h.engine, &tag, now, n).await {
            Ok(accepted) => {
                assert_eq!(accepted, n as u64);
                true
            }
            Err(e) => {
                assert_clear(&e, &format!("ingest {tag}"));
                ingest_errors += 1;
                false
            }
        };
        sent.insert(tag, (now, n, acknowledged));
        if round % 2 == 0 {
            match h
                .engine
                .compact(WS, None, logvault::store::CompactionOptions::default())
                .await
            {
                Ok(_) => compactions += 1,
                Err(e) => assert_clear(&e, &format!("compaction of round {round}")),
            }
        }
        match h.engine.purge_expired().await {
            Ok(report) => {
                purges_ok += 1;
                segments_purged += report.purged.len();
            }
            Err(e) => {
                assert_clear(&e, &format!("purge of round {round}"));
                purge_errors += 1;
            }
        }
        let cutoff = now - chrono::Duration::days(i64::from(RETENTION_DAYS));
        match rows(&h.engine).await {
            Ok(got) => {
                check_retained(&got, &sent, cutoff, &format!("round {round}"));
                // The catalog counts exactly what a query finds (when it can be read).
                if let Ok(count) = counted(&h.engine).await {
                    let found: u32 = got.values().sum();
                    assert_eq!(count, u64::from(found), "round {round}: counted vs found");
                }
                checked += 1;
            }
            Err(e) => {
                assert_clear(&e, &format!("query of round {round}"));
                query_errors += 1;
            }
        }
    }
    let injected = s.injected();
    s.clear();
    eprintln!(
        "retention under storage faults: {rounds} rounds, {} faults injected {injected:?} in {} \
         calls; purges {purges_ok} done ({segments_purged} segments), {purge_errors} failed; \
         {compactions} compactions done; {ingest_errors} ingests and {query_errors} queries \
         failed, {checked} rounds checked",
        s.injected_total(),
        s.calls()
    );
    assert!(
        purge_errors > 0 && segments_purged > 0,
        "no fault hit a purge"
    );
    // The faults are over: another process purges, finds every row inside retention once,
    // counts what it finds, and the scrub is clean.
    let engine = h.reopen().await;
    let cutoff = h.clock.now() - chrono::Duration::days(i64::from(RETENTION_DAYS));
    engine.purge_expired().await.unwrap();
    let got = rows(&engine).await.unwrap();
    let inside = check_retained(&got, &sent, cutoff, "after the faults");
    assert!(inside > 0);
    let found: u32 = got.values().sum();
    assert_eq!(counted(&engine).await.unwrap(), u64::from(found));
    let report = engine.verify(WS, None, &mut |_| {}).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    eprintln!(
        "after the faults: {found} rows, {inside} inside retention, {} orphan segments left",
        report.orphans
    );
}
