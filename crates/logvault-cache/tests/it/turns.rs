//! Segments are built in the memory tier one at a time: a promotion (or a merge's build) reads
//! its file only once the build before it is done, so what waits holds nothing; a promotion
//! whose segment a compaction replaced while it waited is not run; and one the tier does not
//! keep is counted.

use std::sync::Arc;
use std::time::Duration;

use logvault_cache::{HotCache, HotCacheConfig};
use logvault_store::{AccountId, SegmentLocation};
use logvault_testkit::eventually;
use logvault_testkit::faults::{Fault, FaultyStore, Op};
use object_store::ObjectStore;

use crate::common::*;

/// A cache reading storage through a [`FaultyStore`], its account key already in use.
async fn slow_cache(h: &Harness, warm: &SegmentLocation) -> (HotCache, Arc<FaultyStore>) {
    let faulty = FaultyStore::new(h.store.router());
    let cache = HotCache::open_over(
        Arc::clone(&h.store),
        Arc::clone(&faulty) as Arc<dyn ObjectStore>,
        &h.cache_dir(),
        HotCacheConfig::default(),
    )
    .await
    .unwrap();
    cache.promote(warm, None).await.unwrap();
    (cache, faulty)
}

/// Reads of `loc`'s file take `delay` each.
fn slow_reads(faulty: &FaultyStore, loc: &SegmentLocation, delay: Duration) {
    faulty.fail_randomly(
        Op::Get,
        &loc.segment.to_string(),
        Fault::Latency(delay),
        1000,
        7,
    );
}

/// Waits until the slow read `slow_reads` set up has begun (a fixed sleep failed whenever the
/// promotion's task started late on a loaded machine).
async fn wait_for_slow_read(faulty: &FaultyStore) {
    eventually("the slow read", || async { faulty.injected_total() >= 1 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_reads_its_file_only_once_the_build_before_it_is_done() {
    let h = Harness::new().await;
    let account = AccountId::service();
    let mut locs = Vec::new();
    for i in 0..4 {
        locs.push(h.append(&account, WS_A, 0, 2_000, &format!("m{i}")).await);
    }
    let (cache, faulty) = slow_cache(&h, &locs[0]).await;
    slow_reads(&faulty, &locs[1], Duration::from_millis(1_500));
    let t = t0();
    cache.note_read([(locs[1].clone(), t)]);
    // Past its wait for quiet (100 ms) it has the turn and reads its file, slowly.
    wait_for_slow_read(&faulty).await;
    let calls = faulty.calls();
    cache.note_read([(locs[2].clone(), t), (locs[3].clone(), t)]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        faulty.calls(),
        calls,
        "a promotion read storage while another one's build was under way"
    );
    assert_eq!(cache.status().promotions_pending, 3);
    faulty.clear();
    cache.settle().await;
    for loc in &locs {
        assert!(cache.lookup(loc).is_some(), "{loc} not promoted");
    }
    let status = cache.status();
    assert_eq!(status.promotions_pending, 0);
    assert_eq!(status.counters.promotions, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_of_a_segment_a_compaction_replaced_while_it_waited_is_skipped() {
    let h = Harness::new().await;
    let account = AccountId::service();
    let busy = h.append(&account, WS_B, 0, 2_000, "busy").await;
    let mut members = Vec::new();
    for i in 0..3 {
        members.push(h.append(&account, WS_A, 0, 500, &format!("m{i}")).await);
    }
    let (cache, faulty) = slow_cache(&h, &members[0]).await;
    // Promoted and let go: the merge's build would otherwise start from it.
    cache.purge_workspace(WS_A);
    slow_reads(&faulty, &busy, Duration::from_millis(3_000));
    let t = t0();
    cache.note_read([(busy.clone(), t)]);
    // Once its slow read has begun (it holds the turn), the members' promotions wait for that
    // turn while the compaction replaces them.
    wait_for_slow_read(&faulty).await;
    cache.note_read(members.iter().map(|m| (m.clone(), t)));
    let merge = crate::merge::compact(&h).await;
    assert_eq!(merge.members, members);
    cache.adopt_merge(merge.clone()).await;
    faulty.clear();
    cache.settle().await;

    let status = cache.status();
    assert_eq!(status.counters.promotions_skipped, 3, "{status:?}");
    for m in &members {
        assert!(
            cache.lookup(m).is_none(),
            "{m} promoted after it was replaced"
        );
    }
    assert!(cache.lookup(&busy).is_some());
    assert!(
        cache.lookup(&merge.segment).is_some(),
        "the merged segment is admitted instead"
    );
    assert_eq!(status.promotions_pending, 0);
}

#[tokio::test]
async fn a_promotion_the_memory_tier_does_not_keep_is_counted() {
    let h = Harness::new().await;
    let loc = h.append(&AccountId::service(), WS_A, 0, 2_000, "big").await;
    // A tier smaller than the segment decoded: moka refuses it.
    let cache = h
        .cache(HotCacheConfig {
            memory_bytes: 4_096,
            ..HotCacheConfig::default()
        })
        .await;
    let seg = cache.promote(&loc, None).await.unwrap();
    assert!(seg.bytes() > 4_096);
    let status = cache.status();
    assert_eq!(status.counters.promotions, 1);
    assert_eq!(status.counters.memory_refused, 1, "{status:?}");
    assert_eq!(status.memory_entries, 0);
    assert!(cache.lookup(&loc).is_none());
}
