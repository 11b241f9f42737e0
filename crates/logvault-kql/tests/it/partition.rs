//! `partition` over a stored table (planned over all rows at once, partitioned by the column)
//! and over constant rows (one branch per value): both give the answers worked out by hand.

use datafusion::prelude::SessionContext;

use crate::common::{run_in, texts};
use crate::events::{both, constant, rows, table};

#[tokio::test]
async fn partition_top_per_value() {
    let (s, stored, computed) =
        both("Events | partition hint.strategy=native by State (top 1 by Deaths)").await;
    assert_eq!(s, ["State:string", "EventType:string", "Deaths:long"]);
    let want = rows(&[&["AR", "Heat", "3"], &["AZ", "Flood", "4"]]);
    assert_eq!(stored, want);
    assert_eq!(computed, want);
}

#[tokio::test]
async fn partition_summarize_drops_the_column_unless_kept() {
    let (s, stored, computed) = both(
        "Events | partition hint.strategy=shuffle by State (summarize n = count(), d = sum(Deaths))",
    )
    .await;
    assert_eq!(s, ["n:long", "d:long"]);
    let want = rows(&[&["3", "4"], &["3", "7"]]);
    assert_eq!(stored, want);
    assert_eq!(computed, want);
}

#[tokio::test]
async fn partition_numbers_rows_within_each_partition() {
    let (_, stored, computed) = both(
        "Events | partition by State (sort by Deaths asc | extend rn = row_number(), before = prev(Deaths)) \
         | project State, Deaths, rn, before",
    )
    .await;
    let want = rows(&[
        &["AR", "0", "1", ""],
        &["AR", "1", "2", "0"],
        &["AR", "3", "3", "1"],
        &["AZ", "1", "1", ""],
        &["AZ", "2", "2", "1"],
        &["AZ", "4", "3", "2"],
    ]);
    assert_eq!(stored, want);
    assert_eq!(computed, want);
}

#[tokio::test]
async fn partition_refusals_over_stored_rows_name_the_reason() {
    let e = run_in(&table(), "Events | partition by State { print x = 1 }")
        .await
        .unwrap_err();
    assert!(
        e.contains("not supported") && e.contains("own source"),
        "{e}"
    );
    let e = run_in(
        &table(),
        "Events | partition by State (join (Events) on State)",
    )
    .await
    .unwrap_err();
    assert!(e.contains("join inside partition"), "{e}");
    // Over constants the legacy form works: one branch per value.
    let text = format!(
        "{}Events | partition by State {{ print s = toscalar(State), k = strlen(State) }}",
        constant()
    );
    let out = run_in(&SessionContext::new(), &text).await.unwrap();
    let mut got = texts(&out);
    got.sort();
    assert_eq!(got, rows(&[&["AR", "2"], &["AZ", "2"]]));
}

#[tokio::test]
async fn a_query_inside_the_subquery_is_not_partitioned() {
    // The `in` list is a query of its own: its row_number() numbers its own rows.
    let (s, stored, computed) = both(
        "Events | partition by State (where Deaths in ((range x from 0 to 4 step 2 \
         | serialize r = row_number() | where r <= 3 | project x)) | summarize n = count())",
    )
    .await;
    assert_eq!(s, ["n:long"]);
    let want = rows(&[&["1"], &["2"]]);
    assert_eq!(stored, want);
    assert_eq!(computed, want);
}

#[tokio::test]
async fn scan_runs_on_each_partition() {
    let (s, stored, computed) = both(
        "Events | partition hint.strategy=native by State (sort by Deaths asc \
         | scan with_match_id = m declare (total:long = 0) with (step s: true => total = Deaths + s.total;)) \
         | project State, Deaths, total, m",
    )
    .await;
    assert_eq!(s, ["State:string", "Deaths:long", "total:long", "m:long"]);
    let want = rows(&[
        &["AR", "0", "0", "0"],
        &["AR", "1", "1", "0"],
        &["AR", "3", "4", "0"],
        &["AZ", "1", "1", "0"],
        &["AZ", "2", "3", "0"],
        &["AZ", "4", "7", "0"],
    ]);
    assert_eq!(stored, want);
    assert_eq!(computed, want);
}

#[tokio::test]
async fn make_series_runs_on_each_partition() {
    let (s, stored, computed) = both(
        "Events | partition by State (make-series d = sum(Deaths) default = 0 on Deaths from 0 to 5 step 2) \
         | project d",
    )
    .await;
    assert_eq!(s, ["d:dynamic"]);
    // AR: Deaths 3, 1, 0 -> bins [0,2): 1, [2,4): 3, [4,6): 0; AZ: 2, 4, 1 -> 1, 2, 4.
    let want = rows(&[&["[1,3,0]"], &["[1,2,4]"]]);
    assert_eq!(stored, want);
    assert_eq!(computed, want);
}
