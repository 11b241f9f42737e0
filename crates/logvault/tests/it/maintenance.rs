//! Compaction and retention through the engine (R-K1), and the per-workspace hot window (R-F1).

use chrono::Duration;
use logvault::keys::KeyState;
use logvault::store::CompactionOptions;

use crate::common::{CLUSTER, Home, KEY, VAULT, WS, home};

fn parquet_files(h: &Home) -> usize {
    let mut n = 0;
    let mut stack = vec![h.dir.path().join("storage")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
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

#[tokio::test]
async fn compaction_merges_small_segments_keeps_every_row_and_deletes_the_old_files() {
    let h = home().await;
    h.workspace(WS);
    for i in 0..6 {
        h.ingest(WS, "AppLogs", &Home::lines(&format!("p{i}"), i * 10, 10))
            .await;
    }
    // A column that appears later, with a widened type, in the same day.
    h.ingest(
        WS,
        "AppLogs",
        &[
            r#"{"TimeGenerated":"2026-03-01T05:00:00Z","Tag":"late","Seq":1.5,"Extra":"x"}"#
                .to_owned(),
        ],
    )
    .await;
    let before = h.engine.tables(WS).await.unwrap();
    assert_eq!(before[0].segments, 7);
    assert_eq!(parquet_files(&h), 7);
    let reports = h
        .engine
        .compact(WS, None, CompactionOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (reports[0].segments_before, reports[0].segments_after),
        (7, 1)
    );
    // The replaced files stay for the grace period (queries may still read them).
    assert_eq!(reports[0].collected.replaced_waiting, 7);
    assert_eq!(parquet_files(&h), 8, "old files kept for the grace period");
    assert_eq!(h.count(&h.engine, WS, "AppLogs").await.unwrap(), 61);
    let extra = h
        .column(
            &h.engine,
            WS,
            "SELECT Extra FROM AppLogs WHERE Tag = 'late'",
        )
        .await
        .unwrap();
    assert_eq!(extra, ["x"]);
    let m = h
        .engine
        .store()
        .catalog()
        .manifest(WS, "AppLogs")
        .await
        .unwrap();
    let ranges = &m.segments[0].wal;
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    assert_eq!(
        (ranges[0].first, ranges[0].last),
        (1, 7),
        "the merged segment lists every record"
    );
    // Nothing left to merge; past the grace period, the old files are deleted.
    h.clock.advance(Duration::seconds(
        logvault::store::DEFAULT_SEGMENT_GRACE_SECS + 1,
    ));
    let again = h
        .engine
        .compact(WS, None, CompactionOptions::default())
        .await
        .unwrap();
    assert_eq!(again[0].segments_after, 1);
    assert_eq!(again[0].collected.replaced_deleted, 7);
    assert_eq!(parquet_files(&h), 1, "old files deleted");
    assert_eq!(h.count(&h.engine, WS, "AppLogs").await.unwrap(), 61);
}

/// Hot data stays hot across a merge: segments in the memory tier merged by a compaction are
/// built into the merged segment there, so the next query finds it in memory and reads no file
/// (before, it read the merged file until a promotion that waits for queries to be quiet).
#[tokio::test]
async fn a_merge_of_segments_in_memory_is_in_memory_at_once() {
    let h = home().await;
    h.workspace(WS);
    for i in 0..4 {
        h.ingest(WS, "AppLogs", &Home::lines(&format!("p{i}"), i * 10, 10))
            .await;
    }
    let cache = h.engine.hot_cache().clone();
    // New data is admitted to the memory tier (R-F1).
    cache.settle().await;
    assert_eq!(cache.workspace_status(WS).memory_entries, 4);
    let reports = h
        .engine
        .compact(WS, None, CompactionOptions::default())
        .await
        .unwrap();
    assert_eq!(reports[0].segments_after, 1);
    let status = cache.workspace_status(WS);
    assert_eq!(
        (status.memory_entries, status.counters.merges_adopted),
        (1, 1)
    );
    let misses = status.counters.memory_misses;
    assert_eq!(h.count(&h.engine, WS, "AppLogs").await.unwrap(), 40);
    assert_eq!(
        cache.workspace_status(WS).counters.memory_misses,
        misses,
        "the query read the merged segment from memory"
    );
}

#[tokio::test]
async fn compaction_leaves_data_under_a_revoked_key_alone() {
    let h = home().await;
    h.workspace(WS);
    h.cluster_with_key(false, None).await;
    h.engine.control().link_workspace(WS, CLUSTER).unwrap();
    for i in 0..3 {
        h.ingest(WS, "AppLogs", &Home::lines(&format!("c{i}"), i * 10, 5))
            .await;
    }
    h.engine
        .vault()
        .set_key_enabled(VAULT, KEY, None, false)
        .unwrap();
    h.pass_check_interval();
    assert_eq!(
        h.engine.check_key(CLUSTER, false).await.unwrap().key_state,
        KeyState::Revoked
    );
    let r = h
        .engine
        .compact(WS, None, CompactionOptions::default())
        .await
        .unwrap();
    assert_eq!((r[0].segments_after, r[0].skipped_groups), (3, 1));
}

/// The background pass (`logvault serve`'s compactor): every workspace's small segments are
/// merged, those under a revoked key left alone and counted, and the key back, they merge too.
#[tokio::test]
async fn a_compaction_pass_merges_every_workspace_and_leaves_a_revoked_key_s_alone() {
    let h = home().await;
    let other = "ws-service";
    h.workspace(WS);
    h.workspace(other);
    h.cluster_with_key(false, None).await;
    h.engine.control().link_workspace(WS, CLUSTER).unwrap();
    for i in 0..3 {
        h.ingest(WS, "AppLogs", &Home::lines(&format!("c{i}"), i * 10, 5))
            .await;
        h.ingest(other, "AppLogs", &Home::lines(&format!("s{i}"), i * 10, 5))
            .await;
        h.ingest(other, "Audit", &Home::lines(&format!("a{i}"), i * 10, 4))
            .await;
    }
    let set_key = |enabled: bool| {
        h.engine
            .vault()
            .set_key_enabled(VAULT, KEY, None, enabled)
            .unwrap();
        h.pass_check_interval();
    };
    set_key(false);
    assert_eq!(
        h.engine.check_key(CLUSTER, false).await.unwrap().key_state,
        KeyState::Revoked
    );
    let pass = h
        .engine
        .compact_all(CompactionOptions::default())
        .await
        .unwrap();
    assert_eq!((pass.merged, pass.skipped_groups), (6, 1), "{pass:?}");
    assert!(pass.failed.is_empty(), "{pass:?}");
    let mut merged: Vec<_> = pass
        .tables
        .iter()
        .map(|(ws, r)| (ws.as_str(), r.table.as_str(), r.segments_after))
        .collect();
    merged.sort_unstable();
    assert_eq!(merged, [(other, "AppLogs", 1), (other, "Audit", 1)]);
    assert_eq!(h.engine.tables(WS).await.unwrap()[0].segments, 3);

    set_key(true);
    h.engine.check_key(CLUSTER, false).await.unwrap();
    let pass = h
        .engine
        .compact_all(CompactionOptions::default())
        .await
        .unwrap();
    assert_eq!((pass.merged, pass.skipped_groups), (3, 0), "{pass:?}");
    assert_eq!(h.engine.tables(WS).await.unwrap()[0].segments, 1);
    assert_eq!(h.count(&h.engine, WS, "AppLogs").await.unwrap(), 15);
    assert_eq!(h.count(&h.engine, other, "Audit").await.unwrap(), 12);
}

#[tokio::test]
async fn retention_purges_what_is_past_it_even_under_a_revoked_key() {
    let h = home().await;
    h.workspace(WS);
    h.cluster_with_key(false, None).await;
    // Old rows (1 March) under the service key, newer ones (2 March) under the customer key.
    h.ingest(WS, "AppLogs", &Home::lines("old", 0, 10)).await;
    h.engine.control().link_workspace(WS, CLUSTER).unwrap();
    h.ingest(WS, "AppLogs", &Home::lines("new", 1440, 10)).await;
    h.ingest(WS, "Cmk", &Home::lines("cmk", 0, 10)).await;
    h.engine.set_retention(WS, "AppLogs", 2).await.unwrap();
    h.engine.set_retention(WS, "Cmk", 2).await.unwrap();
    assert!(h.engine.set_retention(WS, "AppLogs", 0).await.is_err());

    // Revoked: the customer-key segments cannot be read, but can be purged.
    h.engine
        .vault()
        .set_key_enabled(VAULT, KEY, None, false)
        .unwrap();
    h.pass_check_interval();
    assert_eq!(
        h.engine.check_key(CLUSTER, false).await.unwrap().key_state,
        KeyState::Revoked
    );
    // 3 March + 12h: 1 March data is past 2 days, 2 March data is not.
    h.clock.advance(Duration::days(2));
    let report = h.engine.purge_expired().await.unwrap();
    let purged: Vec<(&str, u64)> = report
        .purged
        .iter()
        .map(|p| (p.table.as_str(), p.rows))
        .collect();
    assert!(
        purged.contains(&("AppLogs", 10)) && purged.contains(&("Cmk", 10)),
        "{purged:?}"
    );
    let tables = h.engine.tables(WS).await.unwrap();
    let rows = |t: &str| tables.iter().find(|x| x.name == t).map_or(0, |x| x.rows);
    assert_eq!((rows("AppLogs"), rows("Cmk")), (10, 0));
}

/// R-F1: the hot window is configurable per workspace, kept with the workspace, and applied by
/// every engine that opens the home.
#[tokio::test]
async fn a_workspace_hot_window_is_kept_and_applied_at_open() {
    let h = home().await;
    h.workspace(WS);
    h.workspace("ws-other");
    let default = h.engine.hot_cache().hot_window(WS);
    assert_eq!(default, Duration::days(14));
    h.engine.set_hot_window(WS, Some(60)).unwrap();
    assert_eq!(h.engine.hot_cache().hot_window(WS), Duration::days(60));
    let other = h.reopen().await;
    assert_eq!(other.hot_cache().hot_window(WS), Duration::days(60));
    assert_eq!(other.hot_cache().hot_window("ws-other"), default);
    let err = h.engine.set_hot_window(WS, Some(0)).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    h.engine.set_hot_window(WS, None).unwrap();
    assert_eq!(h.engine.hot_cache().hot_window(WS), default);
    assert_eq!(h.reopen().await.hot_cache().hot_window(WS), default);
}
