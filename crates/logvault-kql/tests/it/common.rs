//! Running KQL in a DataFusion session and reading the result as Kusto values.

use std::sync::Arc;

use datafusion::datasource::MemTable;
use datafusion::prelude::{DataFrame, SessionContext};
use logvault_kql::udf::value::{Val, read_column};
use logvault_kql::{KqlError, KustoSchema, PlanOptions, plan_in_session};

/// A fixed query start time: 2024-01-01T00:00:00Z.
pub(crate) fn options() -> PlanOptions {
    PlanOptions {
        now_ticks: 1_704_067_200 * 10_000_000,
        time_range: None,
    }
}

/// The result of a query: its Kusto schema and its rows as values.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) schema: KustoSchema,
    pub(crate) rows: Vec<Vec<Val>>,
    pub(crate) render: Option<String>,
}

/// Runs `kql` in `ctx`.
pub(crate) async fn run_in(ctx: &SessionContext, kql: &str) -> Result<Output, String> {
    let plan = plan_in_session(ctx, kql, &options())
        .await
        .map_err(|e: KqlError| e.to_string())?;
    let df = DataFrame::new(ctx.state(), plan.plan);
    let batches = df.collect().await.map_err(|e| format!("execution: {e}"))?;
    let mut rows = Vec::new();
    for b in &batches {
        let mut cols = Vec::new();
        for (i, c) in plan.schema.iter().enumerate() {
            cols.push(read_column(b.column(i), c.ty).map_err(|e| e.to_string())?);
        }
        for r in 0..b.num_rows() {
            rows.push(cols.iter().map(|c| c[r].clone()).collect());
        }
    }
    Ok(Output {
        schema: plan.schema,
        rows,
        render: plan.render,
    })
}

/// Runs `kql` with no tables.
pub(crate) async fn run(kql: &str) -> Result<Output, String> {
    run_in(&SessionContext::new(), kql).await
}

/// Runs `kql`, panicking with the error.
pub(crate) async fn ok(kql: &str) -> Output {
    match run(kql).await {
        Ok(o) => o,
        Err(e) => panic!("{kql}\n{e}"),
    }
}

/// The rows as text (tostring of each cell), for terse assertions.
pub(crate) fn texts(o: &Output) -> Vec<Vec<String>> {
    o.rows
        .iter()
        .map(|r| r.iter().map(Val::to_text).collect())
        .collect()
}

/// The schema as `name:type` strings.
pub(crate) fn schema(o: &Output) -> Vec<String> {
    o.schema
        .iter()
        .map(|c| format!("{}:{}", c.name, c.ty))
        .collect()
}

/// A session with one in-memory table.
pub(crate) fn with_table(name: &str, batch: arrow::record_batch::RecordBatch) -> SessionContext {
    let ctx = SessionContext::new();
    let t = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
    ctx.register_table(datafusion::common::TableReference::bare(name), Arc::new(t))
        .unwrap();
    ctx
}
