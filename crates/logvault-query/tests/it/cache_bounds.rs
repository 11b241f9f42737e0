//! Both tiers stay within their bounds; entries outside the hot window and not read recently
//! are swept.

use chrono::Duration;
use logvault_cache::{HotCache, HotCacheConfig};
use logvault_store::AccountId;

use crate::common::*;

#[tokio::test]
async fn eviction_keeps_both_tiers_within_their_bounds() {
    let h = Harness::new().await;
    let mut locs = Vec::new();
    for day in 0..8 {
        locs.push(
            h.append(&AccountId::service(), WS_A, day, 3000, "bound")
                .await,
        );
    }
    let expected = run(&h.session(WS_A, None).await, QUERIES[1]).await;

    // Measure one segment in each tier with a large cache.
    let probe = HotCache::open(
        h.store.clone(),
        &h.dir.path().join("probe"),
        HotCacheConfig::default(),
    )
    .await
    .unwrap();
    let decoded = probe.promote(&locs[0], None).await.unwrap().bytes() as u64;
    let file = probe.status().disk_bytes;
    assert!(decoded > 0 && file > 0);

    let config = HotCacheConfig {
        memory_bytes: decoded * 5 / 2,
        disk_bytes: file * 7 / 2,
        ..HotCacheConfig::default()
    };
    let cache = h.cache(config.clone()).await;
    let warmed = cache.warm(WS_A).wait().await;
    assert_eq!(warmed.segments_done, 8);
    let session = h.session(WS_A, Some(&cache)).await;
    for _ in 0..3 {
        assert_eq!(run(&session, QUERIES[1]).await, expected);
        cache.settle().await;
    }
    let status = cache.status();
    assert!(
        status.memory_bytes <= config.memory_bytes,
        "memory {} > {}",
        status.memory_bytes,
        config.memory_bytes
    );
    assert!(
        status.disk_bytes <= config.disk_bytes,
        "disk {} > {}",
        status.disk_bytes,
        config.disk_bytes
    );
    let on_disk: u64 = files(&h.cache_dir())
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert!(
        on_disk <= config.disk_bytes,
        "files {on_disk} > {}",
        config.disk_bytes
    );
    assert_eq!(files(&h.cache_dir()).len() as u64, status.disk_entries);
    assert!((1..=2).contains(&status.memory_entries), "{status:?}");
    assert!((1..=3).contains(&status.disk_entries), "{status:?}");
    assert!(status.counters.memory_evictions > 0);
    assert!(status.counters.disk_evictions > 0);
}

#[tokio::test]
async fn sweep_drops_what_left_the_hot_window_and_was_not_read_recently() {
    let h = Harness::new().await;
    h.append(&AccountId::service(), WS_A, 1, 500, "recent")
        .await;
    h.append(&AccountId::service(), WS_A, 20, 500, "old").await;
    let cache = h.cache(HotCacheConfig::default()).await;
    let session = h.session(WS_A, Some(&cache)).await;
    run(&session, QUERIES[3]).await;
    cache.settle().await;
    let s = cache.status();
    assert_eq!((s.disk_entries, s.memory_entries), (2, 2));

    // Both were just read: nothing goes.
    assert_eq!(cache.sweep().disk_entries, 0);
    // Two days on, the 20-day-old segment was not read for longer than `recentSecs` (1 day).
    h.clock.advance(Duration::days(2));
    let swept = cache.sweep();
    assert_eq!((swept.disk_entries, swept.memory_entries), (1, 1));
    // Thirteen more days: the other one left the 14-day window too.
    h.clock.advance(Duration::days(13));
    let swept = cache.sweep();
    assert_eq!((swept.disk_entries, swept.memory_entries), (1, 1));
    let s = cache.status();
    assert_eq!((s.disk_entries, s.memory_entries), (0, 0));
    assert!(files(&h.cache_dir()).is_empty());

    // A per-workspace window keeps a workspace's older data hot.
    h.append(&AccountId::service(), WS_B, 25, 500, "long").await;
    cache.set_hot_window(WS_B, Duration::days(60));
    let warmed = cache.warm(WS_B).wait().await;
    assert_eq!(warmed.segments_total, 1);
    h.clock.advance(Duration::days(3));
    assert_eq!(cache.sweep().disk_entries, 0);
}
