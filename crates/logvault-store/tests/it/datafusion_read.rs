//! DataFusion reads encrypted segments of several accounts (service key, customer key, double
//! encryption) through the account router and the encryption factory, with projection, filters
//! and pruning; a segment whose account key is not cached fails with the account named.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use chrono::Duration;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::physical_plan::metrics::MetricValue;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::SessionContext;
use logvault_store::{
    AccountId, Manifest, SegmentOptions, Store, StoreConfig, table_parquet_options,
};

use crate::common::*;

fn listing(manifest: &Manifest) -> ListingTable {
    let urls = manifest
        .segments
        .iter()
        .map(|e| ListingTableUrl::parse(Store::segment_url(&manifest.location(e))).unwrap())
        .collect();
    let format = ParquetFormat::default().with_options(table_parquet_options());
    let options = ListingOptions::new(Arc::new(format)).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(manifest.segments[0].schema.clone());
    ListingTable::try_new(config).unwrap()
}

async fn run(ctx: &SessionContext, sql: &str) -> (Vec<RecordBatch>, Arc<dyn ExecutionPlan>) {
    let plan = ctx
        .sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let batches = collect(plan.clone(), ctx.task_ctx()).await.unwrap();
    (batches, plan)
}

fn pruned(plan: &Arc<dyn ExecutionPlan>, metric: &str) -> usize {
    let mut total = 0;
    if let Some(metrics) = plan.metrics() {
        for m in metrics.iter() {
            if let MetricValue::PruningMetrics {
                name,
                pruning_metrics,
            } = m.value()
                && name == metric
            {
                total += pruning_metrics.pruned();
            }
        }
    }
    total
        + plan
            .children()
            .iter()
            .map(|c| pruned(c, metric))
            .sum::<usize>()
}

#[tokio::test]
async fn datafusion_reads_service_customer_and_double_encrypted_segments() {
    let config = StoreConfig {
        segments: SegmentOptions {
            max_row_group_rows: 1000,
            data_page_rows: 100,
            ..SegmentOptions::default()
        },
        ..StoreConfig::default()
    };
    let h = Harness::with_config(config).await;
    let cluster = h.cluster_account(false).await;
    let double = AccountId::cluster("dbl1").unwrap();
    h.store
        .create_account(&double, &customer_binding(None), true)
        .await
        .unwrap();
    // Three segments of 10,000 rows, one per account, one an hour after the other... each in
    // 10 row groups sorted by time.
    let accounts = [AccountId::service(), cluster.clone(), double.clone()];
    for (i, account) in accounts.iter().enumerate() {
        let start = t0() + Duration::hours(3 * i as i64);
        h.store
            .append(account, WS, TABLE, vec![log_batch(start, 10_000, "df")])
            .await
            .unwrap();
    }
    let manifest = h.store.catalog().manifest(WS, TABLE).await.unwrap();

    let ctx = SessionContext::new();
    h.store.register(&ctx).unwrap();
    ctx.register_table("logs", Arc::new(listing(&manifest)))
        .unwrap();

    let (batches, _) = run(&ctx, "SELECT count(*) AS n FROM logs").await;
    assert_eq!(
        batches[0].column(0).as_primitive::<Int64Type>().value(0),
        30_000
    );

    // Projection and a filter on a non-time column, with a grouped result checked by hand.
    let (batches, _) = run(
        &ctx,
        "SELECT \"Severity\", count(*) AS n, max(\"EventId\") AS top FROM logs \
         WHERE \"Computer\" = 'host-03' GROUP BY \"Severity\" ORDER BY \"Severity\"",
    )
    .await;
    let got = concat(&batches);
    let severities: Vec<String> = got
        .column(0)
        .as_string::<i32>()
        .iter()
        .map(|s| s.unwrap().to_owned())
        .collect();
    let counts: Vec<i64> = got.column(1).as_primitive::<Int64Type>().values().to_vec();
    // Rows i with i % 7 == 3, per i % 4 (severity), over three identical segments.
    let mut expected = [0i64; 4];
    for i in 0..10_000 {
        if i % 7 == 3 {
            expected[i % 4] += 3;
        }
    }
    assert_eq!(severities, ["debug", "error", "info", "warning"]);
    assert_eq!(counts, [expected[3], expected[2], expected[0], expected[1]]);
    assert!(
        got.column(2)
            .as_primitive::<Int64Type>()
            .values()
            .iter()
            .all(|v| *v <= 4639)
    );

    // A time filter prunes row groups by statistics and pages by the page index, on encrypted
    // files: the last 500 rows of the service segment (t0 + 9500 s ..).
    let (batches, plan) = run(
        &ctx,
        "SELECT \"Message\" FROM logs WHERE \"TimeGenerated\" >= TIMESTAMP '2026-03-01T02:38:20Z' \
         AND \"TimeGenerated\" < TIMESTAMP '2026-03-01T03:00:00Z'",
    )
    .await;
    let got = concat(&batches);
    assert_eq!(got.num_rows(), 500);
    assert!(
        got.column(0)
            .as_string::<i32>()
            .value(0)
            .starts_with("df user login")
    );
    let groups = pruned(&plan, "row_groups_pruned_statistics");
    assert!(groups >= 9, "pruned {groups} row groups");
    let rows = pruned(&plan, "page_index_rows_pruned");
    assert!(rows >= 500, "pruned {rows} rows by page index");

    // Revocation: the customer account's key is evicted; the query fails naming the account.
    h.store.keyring().evict(&cluster);
    let ctx2 = SessionContext::new();
    h.store.register(&ctx2).unwrap();
    ctx2.register_table("logs", Arc::new(listing(&manifest)))
        .unwrap();
    let err = ctx2
        .sql("SELECT count(*) FROM logs")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("cluster-prod1") && text.contains("not cached"),
        "{text}"
    );
    // Resolving the key before planning makes it readable again.
    h.store.keyring().aek(&cluster).await.unwrap();
    let batches = ctx2
        .sql("SELECT count(*) FROM logs")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(
        batches[0].column(0).as_primitive::<Int64Type>().value(0),
        30_000
    );
}
