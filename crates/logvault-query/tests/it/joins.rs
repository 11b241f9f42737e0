//! A join of a table of many rows with a small one: the planner knows about how many rows each
//! scan reads (the catalog's count per segment), so it builds its hash table over the small
//! side once and streams the large one past it, as DataFusion does over plain Parquet files,
//! without pushing the join's keys into the large side's scan as a row filter.

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::common::*;

const INVENTORY: &str = "Inventory";
const HOSTS: usize = 7;

/// One row per host of `log_batch` (`host-00` ...), each in datacenter `dc-<i % 3>`.
fn inventory() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "TimeGenerated",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new("Computer", DataType::Utf8, false),
        Field::new("Datacenter", DataType::Utf8, false),
    ]));
    let t = t0().timestamp_nanos_opt().unwrap();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(TimestampNanosecondArray::from(vec![t; HOSTS]).with_timezone("UTC")),
            Arc::new(StringArray::from(
                (0..HOSTS)
                    .map(|i| format!("host-{i:02}"))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                (0..HOSTS)
                    .map(|i| format!("dc-{}", i % 3))
                    .collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

#[tokio::test]
async fn a_join_collects_the_small_table_and_streams_the_large_one() {
    const SEGMENTS: i64 = 3;
    const ROWS: usize = 5000;
    let h = Harness::new().await;
    let cluster = h.cluster_account().await;
    for day in 0..SEGMENTS {
        h.append(&cluster, WS_A, day, ROWS, "m").await;
    }
    h.store
        .append(&cluster, WS_A, INVENTORY, vec![inventory()])
        .await
        .unwrap();
    let sql = "SELECT i.Datacenter AS dc, count(*) AS n FROM Syslog l JOIN Inventory i \
               ON l.Computer = i.Computer WHERE l.Severity = 'error' \
               GROUP BY i.Datacenter ORDER BY dc";
    // The answer, counted from how `log_batch` makes its rows.
    let mut counts = [0usize; 3];
    for i in 0..ROWS {
        if i % 4 == 2 {
            counts[(i % HOSTS) % 3] += SEGMENTS as usize;
        }
    }
    let check = async |session: &logvault_query::WorkspaceSession, small: &str| {
        let plan = run(session, &format!("EXPLAIN {sql}")).await;
        let lines: Vec<&str> = plan.lines().collect();
        let join = lines
            .iter()
            .position(|l| l.contains("HashJoinExec"))
            .unwrap_or_else(|| panic!("no hash join in\n{plan}"));
        assert!(lines[join].contains("mode=CollectLeft"), "{plan}");
        let build = lines[join + 1..]
            .iter()
            .find(|l| l.contains("DataSourceExec") || l.contains("HotScanExec"))
            .unwrap_or_else(|| panic!("no scan under the join in\n{plan}"));
        assert!(build.contains(small), "the build side: {build}\n{plan}");
        // No row filter from the join's keys in the log scan: a hash lookup per row (session.rs).
        assert!(!plan.contains("DynamicFilter"), "{plan}");
        let got = run(session, sql).await;
        for (dc, n) in counts.iter().enumerate() {
            assert!(
                got.contains(&format!("| dc-{dc} | {n} ")),
                "dc-{dc} should have {n} rows:\n{got}"
            );
        }
    };
    check(&h.session(WS_A, None).await, "/Inventory/").await;

    // Both tables in the memory tier: the memory source's row counts say which side is small.
    let cache = h.cache(logvault_cache::HotCacheConfig::default()).await;
    let session = h.session(WS_A, Some(&cache)).await;
    run(&session, sql).await;
    cache.settle().await;
    assert_eq!(cache.status().memory_entries, SEGMENTS as u64 + 1);
    check(&session, &format!("HotScanExec: segments=1, rows={HOSTS},")).await;
}
