//! Hits never reach storage: hot data is read from memory, warm data from disk, with the same
//! results as without the cache; the disk tier survives a restart; memory is not served once
//! the account key is gone.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use logvault_cache::{CountingStore, HotCache, HotCacheConfig, WarmState};
use logvault_store::AccountId;
use object_store::ObjectStore;

use crate::common::*;

async fn baseline(h: &Harness, ws: &str) -> Vec<String> {
    let plain = h.session(ws, None).await;
    let mut out = Vec::new();
    for sql in QUERIES {
        out.push(run(&plain, sql).await);
    }
    out
}

#[tokio::test]
async fn a_query_over_hot_data_does_no_object_store_read() {
    let h = Harness::new().await;
    for day in 0..4 {
        h.append(&AccountId::service(), WS_A, day, 2000, "hot")
            .await;
    }
    let expected = baseline(&h, WS_A).await;
    let cache = h.cache(HotCacheConfig::default()).await;

    let warmed = cache.warm(WS_A).wait().await;
    assert_eq!(warmed.state, WarmState::Done);
    assert_eq!((warmed.segments_total, warmed.memory_segments), (4, 4));
    let before = cache.read_counts();
    assert!(
        before.requests >= 4,
        "the reload read from storage: {before:?}"
    );

    let session = h.session(WS_A, Some(&cache)).await;
    for (sql, want) in QUERIES.iter().zip(&expected) {
        assert_eq!(&run(&session, sql).await, want, "{sql}");
    }
    assert_eq!(cache.read_counts(), before, "a hot query reached storage");
    let stats = session.stats();
    assert_eq!(
        stats.segments_in_memory.load(Ordering::Relaxed),
        4 * QUERIES.len()
    );
    let status = cache.workspace_status(WS_A);
    assert_eq!(status.counters.memory_hits, 4 * QUERIES.len() as u64);
    assert_eq!(status.memory_entries, 4);
    assert_eq!(status.disk_entries, 4);
}

#[tokio::test]
async fn the_disk_tier_serves_what_the_first_query_fetched_and_survives_a_restart() {
    let h = Harness::new().await;
    for day in 0..3 {
        h.append(&AccountId::service(), WS_A, day, 1500, "warm")
            .await;
    }
    let expected = baseline(&h, WS_A).await;
    let disk_only = HotCacheConfig {
        memory_bytes: 0,
        ..HotCacheConfig::default()
    };
    let cache = h.cache(disk_only.clone()).await;
    let session = h.session(WS_A, Some(&cache)).await;
    assert_eq!(run(&session, QUERIES[0]).await, expected[0]);
    let cold = cache.read_counts();
    assert!(cold.requests >= 3);
    assert_eq!(cold.by_account["service"].requests, cold.requests);
    assert_eq!(cache.status().counters.disk_misses, 3);

    for (sql, want) in QUERIES.iter().zip(&expected) {
        assert_eq!(&run(&session, sql).await, want, "{sql}");
    }
    assert_eq!(cache.read_counts(), cold, "a disk-tier hit reached storage");
    let status = cache.status();
    assert!(status.counters.disk_hits > 0);
    assert_eq!((status.disk_entries, status.memory_entries), (3, 0));

    // Restart: a new cache on the same directory finds the files and serves them.
    drop(session);
    drop(cache);
    let cache = h.cache(disk_only).await;
    assert_eq!(cache.startup_scan().loaded, 3);
    assert_eq!(cache.startup_scan().dropped, 0);
    let session = h.session(WS_A, Some(&cache)).await;
    for (sql, want) in QUERIES.iter().zip(&expected) {
        assert_eq!(&run(&session, sql).await, want, "{sql}");
    }
    assert_eq!(cache.read_counts().requests, 0);
}

#[tokio::test]
async fn segments_read_by_queries_are_promoted_to_memory() {
    let h = Harness::new().await;
    for day in 0..3 {
        h.append(&AccountId::service(), WS_A, day, 1000, "promo")
            .await;
    }
    let expected = baseline(&h, WS_A).await;
    let cache = h.cache(HotCacheConfig::default()).await;
    let session = h.session(WS_A, Some(&cache)).await;
    assert_eq!(run(&session, QUERIES[1]).await, expected[1]);
    cache.settle().await;
    let status = cache.status();
    assert_eq!(status.memory_entries, 3);
    assert_eq!(status.counters.promotions, 3);
    // One fetch per segment, shared by the query and the promotion.
    assert_eq!(status.counters.disk_misses, 3);
    let after_first = cache.read_counts();

    let in_memory = session.stats().segments_in_memory.load(Ordering::Relaxed);
    for (sql, want) in QUERIES.iter().zip(&expected) {
        assert_eq!(&run(&session, sql).await, want, "{sql}");
    }
    assert_eq!(cache.read_counts(), after_first);
    assert_eq!(
        session.stats().segments_in_memory.load(Ordering::Relaxed) - in_memory,
        3 * QUERIES.len()
    );
}

#[tokio::test]
async fn customer_key_data_is_not_served_from_memory_once_its_key_is_gone() {
    let h = Harness::new().await;
    let cluster = h.cluster_account().await;
    h.append(&cluster, WS_B, 0, 1000, "cmk").await;
    h.append(&AccountId::service(), WS_B, 1, 1000, "mmk").await;
    let expected = baseline(&h, WS_B).await;
    let cache = h.cache(HotCacheConfig::default()).await;
    assert_eq!(cache.warm(WS_B).wait().await.memory_segments, 2);
    let session = h.session(WS_B, Some(&cache)).await;
    assert_eq!(run(&session, QUERIES[3]).await, expected[3]);

    // Revocation evicts the account key: the memory tier refuses, and so does the file path.
    h.store.keyring().evict(&cluster);
    let err = run_err(&session, QUERIES[3]).await;
    assert!(err.contains("cluster-prod1"), "{err}");
}

#[tokio::test]
async fn newly_written_segments_in_the_hot_window_are_admitted() {
    let h = Harness::new().await;
    let fresh = h.append(&AccountId::service(), WS_A, 0, 500, "new").await;
    let old = h.append(&AccountId::service(), WS_A, 30, 500, "old").await;
    let cache = h.cache(HotCacheConfig::default()).await;
    cache.admit(fresh.clone(), t0());
    cache.admit(old, t0() - chrono::Duration::days(30));
    cache.settle().await;
    let s = cache.workspace_status(WS_A);
    assert_eq!((s.disk_entries, s.memory_entries), (1, 1));
    assert!(cache.promote(&fresh, None).await.is_ok());
    assert_eq!(cache.status().counters.disk_misses, 1);
}

#[tokio::test]
async fn status_serializes_as_the_cli_shows_it() {
    let h = Harness::new().await;
    h.append(&AccountId::service(), WS_A, 0, 500, "json").await;
    let cache = h.cache(HotCacheConfig::default()).await;
    cache.warm(WS_A).wait().await;
    run(&h.session(WS_A, Some(&cache)).await, QUERIES[3]).await;
    let ws = serde_json::to_value(cache.workspace_status(WS_A)).unwrap();
    for key in [
        "memoryBytes",
        "diskBytes",
        "hits",
        "misses",
        "evictions",
        "purges",
        "warm",
    ] {
        assert!(ws.get(key).is_some(), "{key} missing in {ws}");
    }
    assert_eq!(ws["hits"], 1);
    assert_eq!(ws["misses"], 1);
    assert_eq!(ws["warm"]["state"], "done");
    assert_eq!(ws["warm"]["segmentsDone"], 1);
    let all = serde_json::to_value(cache.status()).unwrap();
    assert!(all["memoryBytes"].as_u64().unwrap() > 0);
    assert!(all["diskBytes"].as_u64().unwrap() > 0);
    assert_eq!(all["storageReads"]["requests"], 1);
}

/// Promotions of a cache whose last handle is gone: stopped, not left to run (and to keep the
/// cache alive) in the background.
#[tokio::test]
async fn dropping_the_cache_stops_its_promotions() {
    let h = Harness::new().await;
    for day in 0..3 {
        h.append(&AccountId::service(), WS_A, day, 1000, "drop")
            .await;
    }
    let expected = baseline(&h, WS_A).await;
    let memory_only = HotCacheConfig {
        disk_bytes: 0,
        ..HotCacheConfig::default()
    };
    let dir = h.cache_dir();
    let open = |counter: Arc<CountingStore>| {
        HotCache::open_over(
            Arc::clone(&h.store),
            counter as Arc<dyn ObjectStore>,
            &dir,
            memory_only.clone(),
        )
    };

    // Kept: the query's reads, then the promotions' fetches (one per segment).
    let counter = Arc::new(CountingStore::new(h.store.router()));
    let cache = open(Arc::clone(&counter)).await.unwrap();
    let session = h.session(WS_A, Some(&cache)).await;
    assert_eq!(run(&session, QUERIES[1]).await, expected[1]);
    let after_query = counter.counts().requests;
    cache.settle().await;
    assert_eq!(cache.status().counters.promotions, 3);
    assert_eq!(counter.counts().requests, after_query + 3);

    // Dropped right after the query: the promotions (waiting for queries to be quiet) never
    // fetch anything.
    let counter = Arc::new(CountingStore::new(h.store.router()));
    let cache = open(Arc::clone(&counter)).await.unwrap();
    let session = h.session(WS_A, Some(&cache)).await;
    assert_eq!(run(&session, QUERIES[1]).await, expected[1]);
    let after_query = counter.counts().requests;
    drop(session);
    drop(cache);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(counter.counts().requests, after_query);
}

/// A time window inside one promoted segment: the memory tier skips the batches outside it and
/// answers as the files do.
#[tokio::test]
async fn a_time_window_skips_memory_batches_outside_it_with_the_same_answer() {
    let h = Harness::new().await;
    // 30,000 rows one second apart: four batches of the memory tier.
    h.append(&AccountId::service(), WS_A, 1, 30_000, "window")
        .await;
    let start = t0() - chrono::Duration::days(1);
    let from = (start + chrono::Duration::seconds(20_000)).to_rfc3339();
    let to = (start + chrono::Duration::seconds(21_000)).to_rfc3339();
    let sql = format!(
        "SELECT count(*) AS n, min(Message) AS m FROM Syslog \
         WHERE TimeGenerated >= '{from}' AND TimeGenerated < '{to}'"
    );
    let plain = h.session(WS_A, None).await;
    let expected = run(&plain, &sql).await;
    assert!(expected.contains("1000"), "{expected}");

    let cache = h.cache(HotCacheConfig::default()).await;
    let session = h.session(WS_A, Some(&cache)).await;
    assert_eq!(
        run(&session, QUERIES[3]).await,
        run(&plain, QUERIES[3]).await
    );
    cache.settle().await;
    assert_eq!(cache.status().memory_entries, 1);
    assert_eq!(run(&session, &sql).await, expected);
    let stats = session.stats();
    assert_eq!(stats.segments_in_memory.load(Ordering::Relaxed), 1);
    assert_eq!(stats.memory_batches_pruned.load(Ordering::Relaxed), 3);
}

/// Other foreground work (an ingestion tells the cache) holds promotions back too.
#[tokio::test]
async fn a_promotion_waits_for_noted_activity_to_be_quiet() {
    let h = Harness::new().await;
    let loc = h.append(&AccountId::service(), WS_A, 0, 1000, "busy").await;
    let cache = h.cache(HotCacheConfig::default()).await;
    let started = std::time::Instant::now();
    cache.note_activity();
    cache.promote(&loc, None).await.unwrap();
    // The quiet period is 100 ms.
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(90),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(cache.status().memory_entries, 1);
}
