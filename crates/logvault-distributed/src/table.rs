//! A workspace table as a Ballista scheduler has it: the catalog's segment list, no key.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use logvault_query::provider::{ScanStats, SegmentTable};

use crate::scan::wrap_encrypted_scans;
use crate::spec::TableSpec;

/// A logvault table decoded from a plan: [`SegmentTable`] without a key or a file opened (the
/// scheduler plans, executors read), whose Parquet scans are [`crate::LogvaultScanExec`]s so
/// that their encryption settings reach the executors.
#[derive(Debug)]
pub struct DistributedTable {
    spec: TableSpec,
    inner: SegmentTable,
}

impl DistributedTable {
    /// The table of `spec`, with the table's `schema`.
    pub fn new(spec: TableSpec, schema: SchemaRef) -> Self {
        let manifest = spec.to_manifest(&schema);
        let inner = SegmentTable::detached(manifest, schema, Arc::new(ScanStats::default()));
        Self { spec, inner }
    }

    /// What the table is on the wire.
    pub fn spec(&self) -> &TableSpec {
        &self.spec
    }
}

#[async_trait]
impl TableProvider for DistributedTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.scan(state, projection, filters, limit).await?;
        wrap_encrypted_scans(plan)
    }
}
