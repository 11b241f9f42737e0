//! Grouping by one string column (`logvault_query::grouping`): every answer equals plain
//! DataFusion's, for few values, long strings, nulls, filters, many values (grouped here, or
//! handed back to DataFusion when long or not reduced) and a memory pool too small for all the
//! groups (emitted early).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::sync::Arc;

use crate::common::partial_metric;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringViewArray};
use arrow::datatypes::Int64Type;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::pretty::pretty_format_batches;
use chrono::Utc;
use datafusion::datasource::MemTable;
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_plan::{ExecutionPlan, common::collect};
use datafusion::prelude::{SessionConfig, SessionContext};
use logvault_query::{SessionOptions, new_session};

const LEVELS: [&str; 5] = ["INFO", "WARN", "ERROR", "DEBUG", "CRITICAL"];
const LONG: [&str; 3] = [
    "a category name longer than a view holds",
    "a category name longer than a view holds, too",
    "short",
];

/// A deterministic table: `Level` (5 values, some null), `Long` (3 values, two of them too long
/// for a view), `User` (thousands of values), `Drift` (5 values for the first 40,000 rows, then
/// one of them every other row and a new value in between), `Bytes` (some null), `Sparse`
/// (a user on one row in ten, null on the others). Four partitions of batches of 4,096 rows.
fn table(rows: usize) -> MemTable {
    let schema = Arc::new(Schema::new(vec![
        Field::new("Level", DataType::Utf8View, true),
        Field::new("Long", DataType::Utf8View, false),
        Field::new("User", DataType::Utf8View, false),
        Field::new("Drift", DataType::Utf8View, false),
        Field::new("Bytes", DataType::Int64, true),
        Field::new("Sparse", DataType::Utf8View, true),
    ]));
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut partitions = vec![Vec::new(); 4];
    let mut row = 0;
    while row < rows {
        let n = 4096.min(rows - row);
        let mut level = Vec::with_capacity(n);
        let mut long = Vec::with_capacity(n);
        let mut user = Vec::with_capacity(n);
        let mut drift = Vec::with_capacity(n);
        let mut bytes = Vec::with_capacity(n);
        let mut sparse = Vec::with_capacity(n);
        for i in row..row + n {
            let r = next();
            level.push((r % 23 != 0).then(|| LEVELS[(r % 5) as usize].to_owned()));
            long.push(LONG[((r >> 8) % 3) as usize].to_owned());
            user.push(format!("u{:06}", (r >> 16) % 5000));
            drift.push(if i < 40_000 || i % 2 == 0 {
                LEVELS[((r >> 24) % 5) as usize].to_owned()
            } else {
                format!("drift-{i}")
            });
            bytes.push((r % 17 != 0).then_some(((r >> 32) % 1000) as i64));
            sparse.push(((r >> 40) % 10 == 0).then(|| format!("u{:06}", (r >> 44) % 3000)));
        }
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringViewArray::from(level)),
                Arc::new(StringViewArray::from(long)),
                Arc::new(StringViewArray::from(user)),
                Arc::new(StringViewArray::from(drift)),
                Arc::new(Int64Array::from(bytes)),
                Arc::new(StringViewArray::from(sparse)),
            ],
        )
        .unwrap();
        partitions[(row / 4096) % 4].push(batch);
        row += n;
    }
    MemTable::try_new(schema, partitions).unwrap()
}

fn logvault(rows: usize, runtime: Arc<RuntimeEnv>) -> SessionContext {
    let mut options = SessionOptions::at(Utc::now());
    options.target_partitions = 4;
    let ctx = new_session(&options, Arc::clone(&runtime));
    ctx.register_table("logs", Arc::new(table(rows))).unwrap();
    ctx
}

fn datafusion(rows: usize) -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(4));
    ctx.register_table("logs", Arc::new(table(rows))).unwrap();
    ctx
}

async fn answer(ctx: &SessionContext, sql: &str) -> String {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    pretty_format_batches(&batches).unwrap().to_string()
}

async fn plan(ctx: &SessionContext, sql: &str) -> String {
    answer(ctx, &format!("EXPLAIN ANALYZE {sql}")).await
}

const QUERIES: &[&str] = &[
    r#"SELECT "Level", COUNT(*) AS n, SUM("Bytes") AS s, MIN("Bytes") AS lo, MAX("Bytes") AS hi,
        COUNT("Bytes") AS c, AVG("Bytes") AS a FROM logs GROUP BY "Level" ORDER BY "Level""#,
    r#"SELECT "Level", COUNT(*) FILTER (WHERE "Bytes" > 500) AS big FROM logs
        GROUP BY "Level" ORDER BY "Level""#,
    r#"SELECT DISTINCT "Level" FROM logs ORDER BY "Level""#,
    r#"SELECT "Long", COUNT(*) AS n, SUM("Bytes") AS s FROM logs GROUP BY "Long" ORDER BY "Long""#,
    r#"SELECT lower("Level") AS l, COUNT(*) AS n FROM logs GROUP BY lower("Level") ORDER BY l"#,
    r#"SELECT "User", COUNT(*) AS n, SUM("Bytes") AS s FROM logs GROUP BY "User"
        ORDER BY n DESC, "User" LIMIT 20"#,
    r#"SELECT COUNT(*) AS groups, SUM(n) AS rows FROM
        (SELECT "User", COUNT(*) AS n FROM logs GROUP BY "User")"#,
    r#"SELECT COUNT(*) AS groups, SUM(n) AS rows, MAX(n) AS most FROM
        (SELECT "Drift", COUNT(*) AS n FROM logs GROUP BY "Drift")"#,
    r#"SELECT "Level", COUNT(DISTINCT "User") AS users FROM logs GROUP BY "Level"
        ORDER BY "Level""#,
    r#"SELECT "Level", COUNT(*) AS n FROM logs WHERE "Bytes" < 0 GROUP BY "Level""#,
    r#"SELECT COUNT(DISTINCT "Sparse") AS users, COUNT("Sparse") AS c FROM logs"#,
    r#"SELECT "Sparse", COUNT(*) AS n, SUM("Bytes") AS s FROM logs GROUP BY "Sparse"
        ORDER BY n DESC, "Sparse" LIMIT 10"#,
    r#"SELECT concat("User", ' with a suffix past twelve bytes') AS u, COUNT(*) AS n FROM logs
        GROUP BY u ORDER BY n DESC, u LIMIT 10"#,
    // Row counts (counted in lanes) beside counts of a column with nulls and a filtered one.
    r#"SELECT "Level", COUNT(1) AS one, COUNT("Sparse") AS sparse, COUNT(*) AS n,
        COUNT('x') FILTER (WHERE "Bytes" > 500) AS big FROM logs GROUP BY "Level"
        ORDER BY "Level""#,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouping_by_a_string_column_answers_as_datafusion_does() {
    let rows = 60_000;
    let ours = logvault(rows, Arc::new(RuntimeEnv::default()));
    let theirs = datafusion(rows);
    for sql in QUERIES {
        let expected = answer(&theirs, sql).await;
        assert!(
            expected.lines().count() > 4 || sql.contains("< 0"),
            "{expected}"
        );
        assert_eq!(answer(&ours, sql).await, expected, "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rule_takes_a_partial_aggregation_by_a_string_column_only() {
    let ours = logvault(20_000, Arc::new(RuntimeEnv::default()));
    let by_level = plan(
        &ours,
        r#"SELECT "Level", COUNT(*) FROM logs GROUP BY "Level""#,
    )
    .await;
    assert!(by_level.contains("StringGroupAggregateExec"), "{by_level}");
    // Grouped by a number, or by two columns: DataFusion's own aggregation.
    for sql in [
        r#"SELECT "Bytes", COUNT(*) FROM logs GROUP BY "Bytes""#,
        r#"SELECT "Level", "Long", COUNT(*) FROM logs GROUP BY "Level", "Long""#,
    ] {
        let plan = plan(&ours, sql).await;
        assert!(!plan.contains("StringGroupAggregateExec"), "{plan}");
        assert!(plan.contains("AggregateExec"), "{plan}");
    }
}

fn partial_output_rows(plan: &str) -> usize {
    partial_metric(plan, "output_rows")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_of_many_short_values_is_grouped_here_and_of_many_long_ones_goes_back() {
    let rows = 60_000;
    let ours = logvault(rows, Arc::new(RuntimeEnv::default()));
    let theirs = datafusion(rows);
    let short = r#"SELECT COUNT(*) AS groups FROM (SELECT "User" FROM logs GROUP BY "User")"#;
    let long = r#"SELECT COUNT(*) AS groups FROM
        (SELECT concat("User", ' with a suffix past twelve bytes') AS u FROM logs GROUP BY u)"#;
    for sql in [short, long] {
        let expected = answer(&theirs, sql).await;
        assert!(expected.contains("| 5000   |"), "{expected}");
        assert_eq!(answer(&ours, sql).await, expected, "{sql}");
    }
    // 5,000 users of 7 bytes: far more than 512 in a partition's first 8,192 rows, grouped here
    // all the same (15,000 rows a partition, under DataFusion's 100,000-row check): every
    // partition's output has each of its users once.
    let many = plan(&ours, short).await;
    assert_eq!(partial_metric(&many, "handed_back"), 0, "{many}");
    let out = partial_output_rows(&many);
    assert!((4 * 4000..=4 * 5000).contains(&out), "{many}");
    // The same users past 12 bytes: handed back to DataFusion after the probe.
    let many_long = plan(&ours, long).await;
    assert_eq!(partial_metric(&many_long, "handed_back"), 4, "{many_long}");
    assert!(partial_output_rows(&many_long) >= 5000, "{many_long}");
    // Few values: the partial output is a handful of groups per partition.
    let few = plan(
        &ours,
        r#"SELECT "Level", COUNT(*) FROM logs GROUP BY "Level""#,
    )
    .await;
    let rows_out = partial_output_rows(&few);
    assert!(rows_out > 0 && rows_out <= 4 * 6, "{few}");
    assert_eq!(partial_metric(&few, "handed_back"), 0, "{few}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_values_that_the_aggregation_does_not_reduce_go_to_datafusion_after_its_check() {
    let rows = 60_000;
    let ours = logvault(rows, Arc::new(RuntimeEnv::default()));
    // DataFusion's check, made after 10,000 rows: at least one group in five rows does not
    // reduce enough. A partition's first 10,000+ rows hold ~4,000 of the 5,000 users.
    for set in [
        "SET datafusion.execution.skip_partial_aggregation_probe_rows_threshold = 10000",
        "SET datafusion.execution.skip_partial_aggregation_probe_ratio_threshold = 0.2",
    ] {
        ours.sql(set).await.unwrap().collect().await.unwrap();
    }
    let sql = r#"SELECT "User", COUNT(*) AS n, SUM("Bytes") AS s FROM logs GROUP BY "User"
        ORDER BY n DESC, "User" LIMIT 20"#;
    let expected = answer(&datafusion(rows), sql).await;
    assert_eq!(answer(&ours, sql).await, expected);
    let handed = plan(&ours, sql).await;
    assert_eq!(partial_metric(&handed, "handed_back"), 4, "{handed}");
    // What was grouped here came out, then DataFusion's rows (it skips aggregating them too):
    // more rows than the users of all partitions.
    assert!(partial_output_rows(&handed) > 4 * 5000, "{handed}");
    // Under the default check (100,000 rows) the same query is grouped here to the end.
    let grouped = plan(&logvault(rows, Arc::new(RuntimeEnv::default())), sql).await;
    assert_eq!(partial_metric(&grouped, "handed_back"), 0, "{grouped}");
    assert!(partial_output_rows(&grouped) <= 4 * 5000, "{grouped}");
}

fn find(plan: &Arc<dyn ExecutionPlan>, name: &str) -> Option<Arc<dyn ExecutionPlan>> {
    if plan.name() == name {
        return Some(Arc::clone(plan));
    }
    plan.children()
        .into_iter()
        .find_map(|child| find(child, name))
}

/// The output of the first partition's partial aggregation alone, for `sql` over a table of
/// `rows` rows, in a memory pool of `pool` bytes. Its input is the table's first partition
/// (batches 0, 4, 8, ... of 4,096 rows).
async fn first_partial_partition(rows: usize, pool: usize, sql: &str) -> Vec<RecordBatch> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(GreedyMemoryPool::new(pool)))
        .build_arc()
        .unwrap();
    let ours = logvault(rows, runtime);
    let physical = ours
        .sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let partial = find(&physical, "StringGroupAggregateExec").expect("the rule took it");
    collect(partial.execute(0, ours.task_ctx()).unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_pool_too_small_for_the_groups_emits_them_early_and_loses_none() {
    // Small enough that one partition's ~10,000 groups of `Drift` do not fit. The partition has
    // 32,768 rows (8 batches), 5 values in its first 8,192, later those 5 in every other row and
    // a new value in between.
    let sql = r#"SELECT "Drift", COUNT(*) AS n FROM logs GROUP BY "Drift""#;
    let output = first_partial_partition(120_000, 256 << 10, sql).await;
    let mut groups = std::collections::HashSet::new();
    let mut counted = 0;
    let mut emitted = 0;
    for batch in &output {
        let drift = batch.column(0).as_string_view();
        let n = batch.column(1).as_primitive::<Int64Type>();
        for i in 0..batch.num_rows() {
            groups.insert(drift.value(i).to_owned());
            counted += n.value(i);
        }
        emitted += batch.num_rows();
    }
    assert_eq!(counted, 32_768, "every row of the partition counted once");
    assert_eq!(
        groups.len(),
        5 + 5 * 2048,
        "the partition's distinct values"
    );
    assert!(
        emitted > groups.len(),
        "not emitted early: {emitted} partial rows for {} groups",
        groups.len()
    );
}

/// Regression: a pool that refused the groups while the probe's rows were being aggregated made
/// the groups start afresh between two probed batches, whose ids had been given before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_refusing_while_the_probed_rows_are_aggregated_keeps_each_row_in_its_group() {
    // 4 KiB: less than the grouping's own table, so every batch is emitted as it comes.
    let sql = r#"SELECT "Level", COUNT(*) AS n FROM logs GROUP BY "Level""#;
    let output = first_partial_partition(120_000, 4 << 10, sql).await;
    let mut counted = 0;
    for batch in &output {
        let level = batch.column(0).as_string_view();
        for i in 0..batch.num_rows() {
            assert!(level.is_null(i) || LEVELS.contains(&level.value(i)));
        }
        counted += batch
            .column(1)
            .as_primitive::<Int64Type>()
            .iter()
            .flatten()
            .sum::<i64>();
    }
    assert_eq!(counted, 32_768, "every row of the partition counted once");
}
