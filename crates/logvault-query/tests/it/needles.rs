//! The needle index as queries see it (`logvault_store::needles`): a lookup of given values of
//! an identifier column reads only the segments and row groups that may hold them, and answers
//! exactly as a full scan does; a segment without an index is read whole.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use chrono::Duration;
use logvault_query::provider::ScanStats;
use logvault_store::{AccountId, SegmentOptions, StoreConfig};

use crate::common::*;

const REQUESTS: &str = "Requests";
const ROWS: usize = 5000;
const GROUP_ROWS: usize = 1000;

/// `n` rows of segment `seg`: `RequestId` `req-<seg>-<i>` (unique), `Host` (7 values).
fn requests(seg: usize, n: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "TimeGenerated",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new("RequestId", DataType::Utf8, false),
        Field::new("Host", DataType::Utf8, false),
        Field::new("Bytes", DataType::Int64, false),
    ]));
    let start = t0() - Duration::days(seg as i64);
    let times: Vec<i64> = (0..n)
        .map(|i| {
            (start + Duration::seconds(i as i64))
                .timestamp_nanos_opt()
                .unwrap()
        })
        .collect();
    let ids: Vec<String> = (0..n).map(|i| format!("req-{seg}-{i:05}")).collect();
    let hosts: Vec<String> = (0..n).map(|i| format!("host-{}", i % 7)).collect();
    let bytes: Vec<i64> = (0..n).map(|i| i as i64).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(TimestampNanosecondArray::from(times).with_timezone("UTC")),
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(hosts)),
            Arc::new(Int64Array::from(bytes)),
        ],
    )
    .unwrap()
}

/// Three segments of 5,000 rows in row groups of 1,000, under a customer key.
async fn three_segments() -> (Harness, AccountId) {
    let config = StoreConfig {
        segments: SegmentOptions {
            max_row_group_rows: GROUP_ROWS,
            data_page_rows: 250,
            ..SegmentOptions::default()
        },
        ..StoreConfig::default()
    };
    let h = Harness::with_config(config).await;
    let cluster = h.cluster_account().await;
    for seg in 0..3 {
        h.store
            .append(&cluster, WS_A, REQUESTS, vec![requests(seg, ROWS)])
            .await
            .unwrap();
    }
    (h, cluster)
}

fn load(stats: &ScanStats) -> [usize; 3] {
    [
        stats.segments_scanned.load(Ordering::SeqCst),
        stats.segments_pruned_by_needles.load(Ordering::SeqCst),
        stats.row_groups_pruned_by_needles.load(Ordering::SeqCst),
    ]
}

#[tokio::test]
async fn a_lookup_reads_only_the_row_groups_that_may_hold_its_values() {
    let (h, _) = three_segments().await;
    let session = h.session(WS_A, None).await;
    let stats = Arc::clone(session.stats());
    let cases = [
        // One id: one segment, one of its five row groups.
        ("RequestId = 'req-1-03456'", 1, 2, 4),
        // Either way round, and an IN list over two segments (the third is skipped).
        ("'req-1-03456' = RequestId", 1, 2, 4),
        ("RequestId IN ('req-0-00010', 'req-2-04999')", 2, 1, 8),
        // With another conjunct: the index still applies.
        ("RequestId = 'req-2-00001' AND Host = 'host-1'", 1, 2, 4),
        // An id no segment holds: nothing is read.
        ("RequestId = 'req-9-00000'", 0, 3, 0),
    ];
    for (filter, rows, segments_skipped, groups_skipped) in cases {
        let sql = format!(
            "SELECT RequestId, Host, Bytes FROM {REQUESTS} WHERE {filter} ORDER BY RequestId"
        );
        let before = load(&stats);
        let got = run(&session, &sql).await;
        let after = load(&stats);
        // The same filter hidden in an expression the index does not read: a full scan.
        let hidden = filter.replace("RequestId", "concat(RequestId, '')");
        let full = run(
            &session,
            &format!(
                "SELECT RequestId, Host, Bytes FROM {REQUESTS} WHERE {hidden} ORDER BY RequestId"
            ),
        )
        .await;
        assert_eq!(got, full, "{filter}");
        // A table of rows has 4 border and header lines; an empty one renders as 2.
        let lines = if rows == 0 { 2 } else { 4 + rows };
        assert_eq!(got.lines().count(), lines, "{filter}: {got}");
        assert_eq!(after[1] - before[1], segments_skipped, "{filter}");
        assert_eq!(after[0] - before[0], 3 - segments_skipped, "{filter}");
        // Row groups may be read for a false positive (1%), never skipped wrongly (the
        // answers are equal): with these ids the filters give no false positive.
        assert_eq!(after[2] - before[2], groups_skipped, "{filter}");
    }
    // Filters that are not lookups of given values skip nothing.
    let before = load(&stats);
    run(
        &session,
        &format!("SELECT count(*) FROM {REQUESTS} WHERE RequestId > 'req-1' AND Host <> 'x'"),
    )
    .await;
    let after = load(&stats);
    assert_eq!((after[1] - before[1], after[2] - before[2]), (0, 0));
}

#[tokio::test]
async fn a_segment_without_an_index_is_read_whole() {
    let (h, cluster) = three_segments().await;
    // Ten rows: too few to choose indexed columns from, so this segment has no index.
    h.store
        .append(&cluster, WS_A, REQUESTS, vec![requests(5, 10)])
        .await
        .unwrap();
    let session = h.session(WS_A, None).await;
    let stats = Arc::clone(session.stats());
    let got = run(
        &session,
        &format!("SELECT RequestId FROM {REQUESTS} WHERE RequestId IN ('req-5-00007', 'req-0-00000') ORDER BY RequestId"),
    )
    .await;
    assert!(
        got.contains("req-5-00007") && got.contains("req-0-00000"),
        "{got}"
    );
    // Segments 1 and 2 skipped; segment 0 and the one without an index read.
    assert_eq!(load(&stats)[..2], [2, 2]);
}
