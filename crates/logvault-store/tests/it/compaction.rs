//! Compaction writes the merged segment as its members are read, a batch at a time: a member
//! that fails to authenticate part-way through (after batches of it were written into the
//! merge) must leave nothing behind, neither a merged segment in the catalog nor its file.

use chrono::Duration;
use logvault_store::{AccountId, CompactionOptions, SegmentLocation, StoreConfig, StoreError};

use crate::common::*;

/// The segment files under the storage root (staging files of an upload included), relative
/// to it.
fn stored_files(h: &Harness) -> Vec<String> {
    let root = h.storage();
    files(&root)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/segments/"))
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect()
}

async fn compact(h: &Harness) -> Result<logvault_store::CompactionReport, StoreError> {
    h.store
        .compact_table(WS, TABLE, CompactionOptions::default())
        .await
}

#[tokio::test]
async fn a_member_failing_part_way_through_a_merge_stores_nothing() {
    let mut config = StoreConfig::default();
    // Small row groups, so that the damaged member's first row groups stream into the merge
    // before its last one fails.
    config.segments.max_row_group_rows = 500;
    config.segments.data_page_rows = 500;
    let h = Harness::with_config(config).await;
    let account = AccountId::service();
    let mut locs: Vec<SegmentLocation> = Vec::new();
    for (hour, rows, marker) in [(0, 2_000, "first"), (1, 3_000, "second")] {
        let (entry, manifest) = h
            .store
            .append(
                &account,
                WS,
                TABLE,
                vec![log_batch(t0() + Duration::hours(hour), rows, marker)],
            )
            .await
            .unwrap();
        locs.push(manifest.location(&entry));
    }
    let damaged = &locs[1];
    let path = h.segment_file(damaged);
    let good = std::fs::read(&path).unwrap();
    let meta = h.segment_metadata(damaged, &good, false).await;
    assert_eq!(meta.num_row_groups(), 6, "3,000 rows in row groups of 500");
    // A byte of the last row group's first column: its earlier row groups decode.
    let last = meta.row_group(5).column(0);
    let (start, len) = last.byte_range();
    let mut bad = good.clone();
    bad[(start + len / 2) as usize] ^= 0x01;
    std::fs::write(&path, &bad).unwrap();
    let files_before = stored_files(&h);
    assert_eq!(files_before.len(), 2, "{files_before:?}");

    match compact(&h).await {
        Err(StoreError::Integrity { segment, reason }) => {
            assert_eq!(segment, damaged.to_string(), "{reason}");
        }
        other => panic!("expected an integrity error naming {damaged}, got {other:?}"),
    }
    let manifest = h.store.catalog().manifest(WS, TABLE).await.unwrap();
    let listed: Vec<_> = manifest.segments.iter().map(|s| s.id).collect();
    assert_eq!(
        listed,
        [locs[0].segment, locs[1].segment],
        "the catalog is unchanged"
    );
    assert!(manifest.retired.is_empty(), "nothing was retired");
    assert_eq!(
        stored_files(&h),
        files_before,
        "no merged file (nor a staging file of one) was left"
    );

    // Repaired, the same merge goes through and keeps every row of both members.
    std::fs::write(&path, &good).unwrap();
    let report = compact(&h).await.unwrap();
    assert_eq!((report.segments_before, report.segments_after), (2, 1));
    let manifest = h.store.catalog().manifest(WS, TABLE).await.unwrap();
    let merged = manifest.location(&manifest.segments[0]);
    let batches = h.store.read_segment(&merged, None).await.unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 5_000);
    assert_eq!(manifest.segments[0].rows, 5_000);
}

/// The server's background pass leaves the collection to its retention pass: the replaced
/// segments are retired in the catalog and their files stay until a collection.
#[tokio::test]
async fn a_merge_told_not_to_collect_leaves_the_replaced_files_to_a_later_collection() {
    let h = Harness::new().await;
    for hour in 0..3 {
        h.store
            .append(
                &AccountId::service(),
                WS,
                TABLE,
                vec![log_batch(t0() + Duration::hours(hour), 100, "c")],
            )
            .await
            .unwrap();
    }
    let options = CompactionOptions {
        collect: false,
        ..CompactionOptions::default()
    };
    let report = h.store.compact_table(WS, TABLE, options).await.unwrap();
    assert_eq!((report.merged, report.segments_after), (3, 1));
    assert_eq!(report.collected, Default::default(), "no collection ran");
    let manifest = h.store.catalog().manifest(WS, TABLE).await.unwrap();
    assert_eq!(manifest.retired.len(), 3);
    assert_eq!(
        stored_files(&h).len(),
        4,
        "the three replaced and the merged one"
    );
    let collected = h.store.collect_segments(WS, TABLE).await.unwrap();
    assert_eq!(collected.replaced_waiting, 3, "kept for the grace period");
}
