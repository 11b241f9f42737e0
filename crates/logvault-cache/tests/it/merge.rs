//! A compaction's merged segment built from its members' hot copies (`HotCache::adopt_merge`).

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema};
use logvault_cache::{HotCache, HotCacheConfig, HotSegment};
use logvault_store::{AccountId, CompactionOptions, MergedSegments};

use crate::common::*;

/// Three small segments of one day, the last with a column the others lack.
async fn three_segments(h: &Harness, account: &AccountId) -> Vec<logvault_store::SegmentLocation> {
    let mut locs = Vec::new();
    for (i, marker) in ["a", "b"].into_iter().enumerate() {
        let start = t0() + chrono::Duration::minutes(10 * i as i64);
        let (entry, manifest) = h
            .store
            .append(
                account,
                WS_A,
                TABLE,
                vec![log_batch(start, 300 + 100 * i, marker)],
            )
            .await
            .unwrap();
        locs.push(manifest.location(&entry));
    }
    let base = log_batch(t0() + chrono::Duration::minutes(30), 250, "c");
    let mut fields: Vec<Field> = base
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("Extra", DataType::Int64, true));
    let mut columns = base.columns().to_vec();
    columns.push(Arc::new(Int64Array::from_iter_values(0..250)));
    let wide = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let (entry, manifest) = h
        .store
        .append(account, WS_A, TABLE, vec![wide])
        .await
        .unwrap();
    locs.push(manifest.location(&entry));
    locs
}

/// Compacts `WS_A`'s table, which must give exactly one merge.
pub(crate) async fn compact(h: &Harness) -> MergedSegments {
    let report = h
        .store
        .compact_table(WS_A, TABLE, CompactionOptions::default())
        .await
        .unwrap();
    assert_eq!(report.merges.len(), 1, "{report:?}");
    report.merges[0].clone()
}

/// Every row of `seg`, as one batch of its own schema.
fn rows(seg: &HotSegment) -> RecordBatch {
    let batches = seg.read_as(seg.schema(), |_, _| true).unwrap();
    concat_batches(seg.schema(), &batches).unwrap()
}

/// Checks that `built` has the same rows, columns and types as the merged file decoded by a
/// cache of its own.
async fn same_as_its_file(h: &Harness, merge: &MergedSegments, built: &HotSegment) {
    let other = HotCache::open(
        Arc::clone(&h.store),
        &h.dir.path().join("other-cache"),
        HotCacheConfig::default(),
    )
    .await
    .unwrap();
    let decoded = other.promote(&merge.segment, None).await.unwrap();
    assert_eq!(built.schema().fields(), decoded.schema().fields());
    assert_eq!(rows(built), rows(&decoded));
}

#[tokio::test]
async fn a_merge_of_hot_segments_is_built_in_memory_without_reading_storage() {
    let h = Harness::new().await;
    let members = three_segments(&h, &AccountId::service()).await;
    let cache = h.cache(HotCacheConfig::default()).await;
    for m in &members {
        cache.promote(m, None).await.unwrap();
    }
    let reads = cache.read_counts();
    let merge = compact(&h).await;
    assert_eq!(merge.members, members);
    cache.adopt_merge(merge.clone()).await;

    let built = cache
        .lookup(&merge.segment)
        .expect("built in the memory tier");
    assert_eq!(built.rows(), 300 + 400 + 250);
    // Not a single read of storage (nor of the disk tier) for it.
    assert_eq!(cache.read_counts(), reads);
    let status = cache.status();
    assert_eq!(status.counters.merges_adopted, 1);
    assert_eq!(status.memory_entries, 1, "the members left the tier");
    for m in &members {
        assert!(cache.lookup(m).is_none(), "{m} still in the tier");
    }
    // In batches of the promotion's size, not the members' small ones.
    assert_eq!(built.batch_count(), 1);

    assert_eq!(built.max_time(), Some(merge.max_time));
    same_as_its_file(&h, &merge, &built).await;
}

/// The newest members of a merge are often not promoted yet (a promotion waits for queries to
/// be quiet): they are decoded from their files, the others copied from the tier.
#[tokio::test]
async fn a_merge_with_a_member_not_in_memory_is_built_from_the_others_and_its_file() {
    let h = Harness::new().await;
    let members = three_segments(&h, &AccountId::service()).await;
    let cache = h.cache(HotCacheConfig::default()).await;
    for m in &members[..2] {
        cache.promote(m, None).await.unwrap();
    }
    let reads = cache.read_counts();
    let merge = compact(&h).await;
    cache.adopt_merge(merge.clone()).await;
    let built = cache
        .lookup(&merge.segment)
        .expect("built in the memory tier");
    assert_eq!(cache.status().counters.merges_adopted, 1);
    assert_eq!(
        cache.status().memory_entries,
        1,
        "the members left the tier"
    );
    // One object read from storage: the member that was not in memory, not the merged file.
    assert_eq!(
        cache.read_counts().requests,
        reads.requests + 1,
        "{:?}",
        cache.read_counts()
    );
    same_as_its_file(&h, &merge, &built).await;
}

#[tokio::test]
async fn a_merge_with_no_member_in_memory_is_promoted_from_its_file() {
    let h = Harness::new().await;
    three_segments(&h, &AccountId::service()).await;
    let cache = h.cache(HotCacheConfig::default()).await;
    let merge = compact(&h).await;
    cache.adopt_merge(merge.clone()).await;
    // Admitted as new data: promoted in the background from its file.
    cache.settle().await;
    assert_eq!(cache.status().counters.merges_adopted, 0);
    let promoted = cache
        .lookup(&merge.segment)
        .expect("promoted from its file");
    assert_eq!(promoted.rows(), 950);
}

/// A merged segment larger than the tier's bound is built, refused by the tier and counted as
/// refused, not as adopted (it was, before 2026-12-06).
#[tokio::test]
async fn a_merge_the_memory_tier_refuses_is_not_counted_as_adopted() {
    let h = Harness::new().await;
    let members = three_segments(&h, &AccountId::service()).await;
    let sizes = {
        let probe = h.cache(HotCacheConfig::default()).await;
        let mut sizes = Vec::new();
        for m in &members {
            sizes.push(probe.promote(m, None).await.unwrap().bytes());
        }
        sizes
    };
    let largest = sizes.iter().copied().max().unwrap();
    // Room for the largest member, not for the three merged.
    let bound = largest + largest / 2;
    assert!(sizes.iter().sum::<usize>() > bound, "{sizes:?}");
    let cache = h
        .cache(HotCacheConfig {
            memory_bytes: bound as u64,
            ..HotCacheConfig::default()
        })
        .await;
    let largest_member = &members[sizes.iter().position(|&s| s == largest).unwrap()];
    cache.promote(largest_member, None).await.unwrap();
    assert!(cache.lookup(largest_member).is_some());
    let before = cache.status().counters;
    let merge = compact(&h).await;
    cache.adopt_merge(merge.clone()).await;
    let after = cache.status().counters;
    assert!(cache.lookup(&merge.segment).is_none());
    assert_eq!(after.merges_adopted, 0, "{after:?}");
    assert_eq!(after.memory_refused, before.memory_refused + 1, "{after:?}");
}

/// A revocation between the merge and its adoption: the purge empties the tier, and nothing of
/// the workspace comes back, neither built from members nor promoted from the file.
#[tokio::test]
async fn a_merge_adopted_after_a_revocation_brings_nothing_back() {
    let h = Harness::new().await;
    let cluster = h.cluster_account().await;
    let members = three_segments(&h, &cluster).await;
    let cache = h.cache(HotCacheConfig::default()).await;
    for m in &members {
        cache.promote(m, None).await.unwrap();
    }
    let merge = compact(&h).await;
    h.vault
        .set_key_enabled("contoso", "cmk", None, false)
        .unwrap();
    h.store.keyring().evict(&cluster);
    cache.purge_workspace(WS_A);
    cache.adopt_merge(merge.clone()).await;
    cache.settle().await;
    let a = cache.workspace_status(WS_A);
    assert_eq!((a.memory_entries, a.counters.merges_adopted), (0, 0));
    assert!(cache.lookup(&merge.segment).is_none());
}
