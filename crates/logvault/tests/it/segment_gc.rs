//! Segments replaced by a compaction and orphan segment files (issue 25, finding 18): replaced
//! files stay readable for the grace period, then a later compaction or retention pass (or a
//! restarted process's) deletes them; orphans are deleted once older than the grace period;
//! failed deletes are counted and tried again; and the hot cache lets go of segments the
//! catalog no longer lists, also when another process changed the catalog.

use std::path::Path;

use chrono::Duration;
use logvault::Engine;
use logvault::store::CompactionOptions;
use logvault_testkit::faults::{Fault, Op};

use crate::common::WS;
use crate::store_faults::{faulty_home_with, ingest, rows};

const TABLE: &str = "AppLogs";

/// The segment files in the home's storage.
fn parquet_files(root: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![root.join("objects")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                n += 1;
            }
        }
    }
    n
}

async fn retired(engine: &Engine) -> usize {
    engine
        .store()
        .catalog()
        .manifest(WS, TABLE)
        .await
        .unwrap()
        .retired
        .len()
}

#[tokio::test]
async fn replaced_segments_stay_for_the_grace_period_then_a_later_pass_deletes_them() {
    // The default grace period (5 minutes), on the test clock.
    let h = faulty_home_with(false, None).await;
    for (i, tag) in ["a", "b", "c"].iter().enumerate() {
        assert_eq!(ingest(&h.engine, tag, i as i64 * 10, 4).await.unwrap(), 4);
    }
    let before = rows(&h.engine).await.unwrap();
    assert_eq!(before.len(), 12);
    // A query that read the catalog before the compaction still reads the old segments.
    let session = h.engine.query_session(WS).await.unwrap();
    let reports = h
        .engine
        .compact(WS, None, CompactionOptions::default())
        .await
        .unwrap();
    let c = reports[0].collected;
    assert_eq!(
        (reports[0].segments_before, reports[0].segments_after),
        (3, 1)
    );
    assert_eq!((c.replaced_waiting, c.replaced_deleted), (3, 0), "{c:?}");
    assert_eq!(
        parquet_files(h.dir.path()),
        4,
        "the replaced files are kept"
    );
    assert_eq!(retired(&h.engine).await, 3);
    let stream = session
        .execute(&format!("SELECT count(*) FROM {TABLE}"))
        .await
        .unwrap();
    let batches: Vec<_> = futures::TryStreamExt::try_collect(stream).await.unwrap();
    assert_eq!(
        arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(batches[0].column(0))
            .value(0),
        12,
        "the session opened before the compaction reads the replaced segments"
    );
    let report = h.engine.verify(WS, None, &mut |_| {}).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.orphans, report.retired), (0, 3), "{report:?}");

    // Four minutes on: still waiting.
    h.clock.advance(Duration::minutes(4));
    let p = h.engine.purge_expired().await.unwrap();
    assert_eq!(
        (p.collected.replaced_waiting, p.collected.replaced_deleted),
        (3, 0)
    );
    assert_eq!(parquet_files(h.dir.path()), 4);

    // Six minutes on, but the deletes fail: counted, nothing taken out of the list.
    h.clock.advance(Duration::minutes(2));
    h.store.fail_next(Op::Delete, "/segments/", Fault::Error, 3);
    let p = h.engine.purge_expired().await.unwrap();
    assert_eq!(
        (p.collected.replaced_deleted, p.collected.failures),
        (0, 3),
        "{:?}",
        p.collected
    );
    assert_eq!(retired(&h.engine).await, 3);
    assert_eq!(parquet_files(h.dir.path()), 4);

    // One delete lands but its reply is lost: every file is gone, that one's entry stays.
    h.store
        .fail_next(Op::Delete, "/segments/", Fault::LostReply, 1);
    let p = h.engine.purge_expired().await.unwrap();
    assert_eq!(
        (p.collected.replaced_deleted, p.collected.failures),
        (2, 1),
        "{:?}",
        p.collected
    );
    assert_eq!(retired(&h.engine).await, 1);
    assert_eq!(parquet_files(h.dir.path()), 1);

    // Another process (a restart) finishes the work with its first pass.
    let again = h.reopen().await;
    let p = again.purge_expired().await.unwrap();
    assert_eq!((p.collected.replaced_deleted, p.collected.failures), (1, 0));
    assert_eq!(retired(&again).await, 0);
    assert_eq!(parquet_files(h.dir.path()), 1);
    assert_eq!(rows(&again).await.unwrap(), before);
    let report = again.verify(WS, None, &mut |_| {}).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.orphans, report.retired), (0, 0), "{report:?}");
}

#[tokio::test]
async fn orphan_files_are_deleted_once_older_than_the_grace_period_and_counted() {
    // Orphans are aged by the files' times (this machine's clock): a grace period of 2 s.
    let h = faulty_home_with(false, Some(2)).await;
    for (i, tag) in ["a", "b"].iter().enumerate() {
        assert_eq!(ingest(&h.engine, tag, i as i64 * 10, 4).await.unwrap(), 4);
    }
    let before = rows(&h.engine).await.unwrap();
    // The compaction's commit fails: its merged segment is written and referenced by nothing.
    h.store.fail_next(Op::Put, "/catalog/", Fault::Error, 1);
    assert!(
        h.engine
            .compact(WS, None, CompactionOptions::default())
            .await
            .is_err()
    );
    assert_eq!(parquet_files(h.dir.path()), 3);
    let report = h.engine.verify(WS, None, &mut |_| {}).await.unwrap();
    assert_eq!(report.orphans, 1, "{report:?}");

    // Younger than the grace period: it could be a write not committed yet.
    let p = h.engine.purge_expired().await.unwrap();
    assert_eq!(
        (p.collected.orphans_waiting, p.collected.orphans_deleted),
        (1, 0),
        "{:?}",
        p.collected
    );
    assert_eq!(parquet_files(h.dir.path()), 3);

    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
    h.store.fail_next(Op::Delete, "/segments/", Fault::Error, 1);
    let p = h.engine.purge_expired().await.unwrap();
    assert_eq!(
        (p.collected.orphans_deleted, p.collected.failures),
        (0, 1),
        "{:?}",
        p.collected
    );
    assert_eq!(parquet_files(h.dir.path()), 3);
    // The next pass (here a compaction's) deletes it; the listed segments are untouched.
    let r = h
        .engine
        .compact(WS, None, CompactionOptions::default())
        .await
        .unwrap();
    assert_eq!(r[0].collected.orphans_deleted, 1, "{:?}", r[0].collected);
    assert_eq!(rows(&h.engine).await.unwrap(), before);
    let report = h.engine.verify(WS, None, &mut |_| {}).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.orphans, 0, "{report:?}");
}

#[tokio::test]
async fn segments_a_compaction_in_another_process_replaced_leave_the_hot_cache() {
    // Both tiers on (the home's default configuration), the default grace period: the
    // replaced files are still in storage, only the catalog says they are gone.
    let h = faulty_home_with(true, None).await;
    for (i, tag) in ["a", "b", "c"].iter().enumerate() {
        assert_eq!(ingest(&h.engine, tag, i as i64 * 10, 4).await.unwrap(), 4);
    }
    let cache = h.engine.hot_cache().clone();
    let before = rows(&h.engine).await.unwrap();
    cache.settle().await;
    let held = |c: &logvault::cache::HotCache| {
        let s = c.workspace_status(WS);
        (s.memory_entries, s.disk_entries)
    };
    assert_eq!(held(&cache), (3, 3), "the segments read are cached");

    // Another process compacts.
    let other = h.reopen().await;
    let r = other
        .compact(WS, None, CompactionOptions::default())
        .await
        .unwrap();
    assert_eq!(r[0].segments_after, 1);
    drop(other);

    // This process's next query sees the new catalog: the replaced segments leave both tiers,
    // the merged one comes in.
    assert_eq!(rows(&h.engine).await.unwrap(), before);
    cache.settle().await;
    assert_eq!(
        held(&cache),
        (1, 1),
        "only the segment the catalog lists stays cached"
    );
}
