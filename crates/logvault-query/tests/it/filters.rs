//! A column compared with a string literal in a scan's predicate is compared a string view at a
//! time (`logvault_query::view_eq`): answers equal DataFusion's over the same rows in memory for
//! short and long literals, `=` and `<>`, a column one segment lacks and a column stored in
//! plain pages; the scans' predicates hold the fast comparison; and row groups are still pruned
//! by their statistics, which read the comparison it replaced. A column of few values that a
//! filter compares with strings is read as a dictionary where every row group of a segment
//! stores it in dictionary pages, and answers the same.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileSource as _;
use datafusion::datasource::physical_plan::ParquetSource;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::ExecutionPlan;
use logvault_query::view_eq::ViewEq;

use crate::common::*;
use crate::dictionary::{WEB, expected, in_memory, segments};

/// How many Parquet scans of `plan` have a predicate, and how many of those hold a [`ViewEq`].
fn scans_with_view_eq(plan: &Arc<dyn ExecutionPlan>) -> (usize, usize) {
    let (mut filtered, mut fast) = (0, 0);
    plan.apply(|node| {
        if let Some(exec) = node.downcast_ref::<DataSourceExec>()
            && let Some((_, parquet)) = exec.downcast_to_file_source::<ParquetSource>()
            && let Some(predicate) = parquet.filter()
        {
            filtered += 1;
            let mut found = false;
            predicate.apply(|e| {
                found |= e.downcast_ref::<ViewEq>().is_some();
                Ok(TreeNodeRecursion::Continue)
            })?;
            fast += usize::from(found);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .unwrap();
    (filtered, fast)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn string_comparisons_answer_as_datafusion_does_and_are_compared_as_views() {
    let h = segments().await;
    let session = h.session(WS_A, None).await;
    let reference = in_memory();
    let tag = format!("1-000123-{}", "t".repeat(120));
    let queries = [
        format!(
            r#"SELECT "Host", COUNT(*) AS n FROM "{WEB}" WHERE "Level" IN ('ERROR', 'CRITICAL') GROUP BY "Host" ORDER BY "Host""#
        ),
        format!(
            r#"SELECT "Level", COUNT(*) AS n FROM "{WEB}" WHERE "Level" <> 'INFO' GROUP BY "Level" ORDER BY "Level""#
        ),
        format!(
            r#"SELECT "Level", SUM("Bytes") AS b FROM "{WEB}" WHERE 'web-07.eu-west.example.net' = "Host" GROUP BY "Level" ORDER BY "Level""#
        ),
        format!(
            r#"SELECT "Host", COUNT(*) AS n FROM "{WEB}" WHERE "Host" <> 'web-07.eu-west.example.net' AND "Level" = 'WARN' GROUP BY "Host" ORDER BY "Host""#
        ),
        format!(
            r#"SELECT "Code", COUNT(*) AS n FROM "{WEB}" WHERE "Code" = '404' OR "Level" = 'DEBUG' GROUP BY "Code" ORDER BY "Code""#
        ),
        format!(r#"SELECT "Tag", "Level", "Bytes" FROM "{WEB}" WHERE "Tag" = '{tag}'"#),
    ];
    for sql in &queries {
        let got = run(&session, sql).await;
        assert_eq!(got, expected(&reference, sql).await, "{sql}");
        assert!(
            got.lines().count() > 4,
            "an empty answer proves nothing: {sql}\n{got}"
        );
        let plan = session
            .context()
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let (filtered, fast) = scans_with_view_eq(&plan);
        assert!(
            filtered > 0 && fast == filtered,
            "{sql}: {fast} of {filtered} scans"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_groups_are_still_pruned_by_the_comparison_it_replaced() {
    let h = segments().await;
    let session = h.session(WS_A, None).await;
    // `Tag` starts with its segment's number and row: one row group of nine can hold it.
    let tag = format!("1-000123-{}", "t".repeat(120));
    let sql = format!(r#"SELECT COUNT(*) AS n FROM "{WEB}" WHERE "Tag" = '{tag}'"#);
    assert_eq!(
        run(&session, &sql).await,
        expected(&in_memory(), &sql).await
    );
    let plan = run(&session, &format!("EXPLAIN ANALYZE {sql}")).await;
    // Statistics (row groups and pages) and bloom filters read the original comparison.
    assert!(
        plan.contains("row_groups_pruned_statistics=9 total → 1 matched"),
        "{plan}"
    );
    assert!(
        plan.contains("page_index_rows_pruned=12.00 K total → 7.88 K matched"),
        "{plan}"
    );
    assert!(plan.contains("required_guarantees=[Tag in ("), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filters_column_of_few_values_is_read_as_a_dictionary_and_answers_the_same() {
    let h = segments().await;
    let session = h.session(WS_A, None).await;
    let stats = Arc::clone(session.stats());
    let reference = in_memory();
    let read_as_dictionaries = || stats.filter_columns_as_dictionaries.load(Ordering::SeqCst);
    // (query, columns times segments read as dictionaries: `Level` and `Host` are stored as
    // dictionaries in all three segments, `Code` in the two that have it, `Tag` in plain pages
    // past its dictionary's limit; an `OR` of two columns is no comparison of one column)
    let tag = format!("1-000123-{}", "t".repeat(120));
    let queries = [
        (
            format!(
                r#"SELECT "Host", COUNT(*) AS n, SUM("Bytes") AS b FROM "{WEB}" WHERE "Level" IN ('ERROR', 'CRITICAL') GROUP BY "Host" ORDER BY "Host""#
            ),
            3,
        ),
        // The column the filter reads as a dictionary is also grouped by and shown.
        (
            format!(
                r#"SELECT "Level", COUNT(*) AS n FROM "{WEB}" WHERE "Level" IN ('WARN', 'DEBUG') GROUP BY "Level" ORDER BY "Level""#
            ),
            3,
        ),
        (
            format!(
                r#"SELECT "TimeGenerated", "Level", "Host", "Bytes" FROM "{WEB}" WHERE "Level" = 'CRITICAL' AND "Host" = 'web-07.eu-west.example.net' ORDER BY "TimeGenerated""#
            ),
            6,
        ),
        (
            format!(
                r#"SELECT "Level", COUNT(*) AS n FROM "{WEB}" WHERE "Code" = '404' GROUP BY "Level" ORDER BY "Level""#
            ),
            2,
        ),
        (
            format!(r#"SELECT "Tag", "Level", "Bytes" FROM "{WEB}" WHERE "Tag" = '{tag}'"#),
            0,
        ),
        (
            format!(
                r#"SELECT "Host", COUNT(*) AS n FROM "{WEB}" WHERE "Level" <> 'INFO' AND "Code" NOT IN ('200', '302') GROUP BY "Host" ORDER BY "Host""#
            ),
            5,
        ),
        (
            format!(
                r#"SELECT "Level", COUNT(*) AS n FROM "{WEB}" WHERE "Level" <> 'INFO' OR "Host" = 'web-01.eu-west.example.net' GROUP BY "Level" ORDER BY "Level""#
            ),
            0,
        ),
    ];
    for (sql, dictionaries) in &queries {
        let before = read_as_dictionaries();
        let got = run(&session, sql).await;
        assert_eq!(
            read_as_dictionaries() - before,
            *dictionaries,
            "columns read as dictionaries: {sql}"
        );
        assert_eq!(got, expected(&reference, sql).await, "{sql}");
        assert!(
            got.lines().count() > 4,
            "an empty answer proves nothing: {sql}\n{got}"
        );
    }
}
