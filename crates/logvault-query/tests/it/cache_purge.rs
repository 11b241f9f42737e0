//! Through the hot cache: purge (R-F3) removes one workspace from both tiers and leaves the
//! others alone, as queries see it; reload (R-F4) brings its hot window back.

use std::sync::atomic::Ordering;

use logvault_cache::{HotCacheConfig, WarmState};
use logvault_store::AccountId;

use crate::common::*;

#[tokio::test]
async fn purge_removes_one_workspace_and_reload_restores_its_hot_window() {
    let h = Harness::new().await;
    let cluster = h.cluster_account().await;
    for day in 0..3 {
        h.append(&cluster, WS_A, day, 1000, "alpha").await;
    }
    // Outside the 14-day hot window: never reloaded.
    h.append(&cluster, WS_A, 20, 1000, "alpha-old").await;
    for day in 0..2 {
        h.append(&AccountId::service(), WS_B, day, 1000, "beta")
            .await;
    }
    let expected_a = run(&h.session(WS_A, None).await, QUERIES[0]).await;
    let expected_b = run(&h.session(WS_B, None).await, QUERIES[0]).await;
    let cache = h.cache(HotCacheConfig::default()).await;
    for ws in [WS_A, WS_B] {
        let p = cache.warm(ws).wait().await;
        assert_eq!(p.state, WarmState::Done, "{p:?}");
        assert_eq!(p.failed, 0, "{p:?}");
    }
    assert_eq!(files_of(&h.cache_dir(), WS_A).len(), 3);
    assert_eq!(files_of(&h.cache_dir(), WS_B).len(), 2);
    let a = cache.workspace_status(WS_A);
    assert_eq!((a.memory_entries, a.disk_entries), (3, 3));
    let b_before = cache.workspace_status(WS_B);
    let zeroized_before = cache.status().zeroized_bytes;

    let report = cache.purge_workspace(WS_A);
    assert_eq!(report.workspace, WS_A);
    assert_eq!((report.memory_entries, report.disk_entries), (3, 3));
    assert_eq!(report.memory_bytes, a.memory_bytes);
    assert_eq!(report.disk_bytes, a.disk_bytes);
    assert!(files_of(&h.cache_dir(), WS_A).is_empty());
    let a = cache.workspace_status(WS_A);
    assert_eq!((a.memory_entries, a.disk_entries), (0, 0));
    assert_eq!(a.counters.purges, 1);
    // The plaintext buffers were wiped.
    let zeroized = cache.status().zeroized_bytes - zeroized_before;
    assert!(
        zeroized >= report.memory_bytes,
        "{zeroized} < {}",
        report.memory_bytes
    );

    // The other workspace is untouched and still served without reading storage.
    let b = cache.workspace_status(WS_B);
    assert_eq!(
        (
            b.memory_entries,
            b.memory_bytes,
            b.disk_entries,
            b.disk_bytes
        ),
        (
            b_before.memory_entries,
            b_before.memory_bytes,
            b_before.disk_entries,
            b_before.disk_bytes
        )
    );
    assert_eq!(files_of(&h.cache_dir(), WS_B).len(), 2);
    let reads = cache.read_counts();
    assert_eq!(
        run(&h.session(WS_B, Some(&cache)).await, QUERIES[0]).await,
        expected_b
    );
    assert_eq!(cache.read_counts(), reads);

    // Reload: the hot window comes back from storage (the old segment does not).
    let handle = cache.warm(WS_A);
    let early = handle.progress();
    assert_eq!(early.workspace, WS_A);
    let done = handle.wait().await;
    assert_eq!(done.state, WarmState::Done);
    assert_eq!((done.segments_done, done.segments_total), (3, 3));
    assert_eq!(done.bytes_done, done.bytes_total);
    assert!(done.finished.is_some());
    assert_eq!(cache.warm_progress(WS_A), Some(done.clone()));
    assert_eq!(cache.workspace_status(WS_A).warm, Some(done));
    assert_eq!(files_of(&h.cache_dir(), WS_A).len(), 3);
    assert!(cache.read_counts().by_account["cluster-prod1"].requests >= 3);
    let reads = cache.read_counts();
    let session = h.session(WS_A, Some(&cache)).await;
    // Three segments come from memory, the 20-day-old one from storage (once), in one union.
    assert_eq!(run(&session, QUERIES[0]).await, expected_a);
    assert_eq!(
        session.stats().segments_in_memory.load(Ordering::Relaxed),
        3
    );
    assert_eq!(session.stats().segments_scanned.load(Ordering::Relaxed), 4);
    assert_eq!(cache.read_counts().requests - reads.requests, 1);
}
