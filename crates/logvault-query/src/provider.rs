//! A workspace table as a DataFusion `TableProvider` over its encrypted segments.
//!
//! The catalog's segment list is taken when the table is registered. A scan:
//! 1. prunes whole segments by their `TimeGenerated` range from the catalog, using the query's
//!    filters, before any file is opened;
//! 2. spreads the remaining segments over the session's target partitions (parallel scans);
//! 3. reads them with DataFusion's Parquet reader through the store's account router, decrypting
//!    with the store's encryption factory (data keys from cached account keys only), with
//!    projection, row-group statistics and page-index pruning, and filter pushdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use logvault_store::{Manifest, SegmentEncryptionFactory, SegmentEntry, Store, TIME_COLUMN};

use crate::prune::TimeBounds;

/// Counters of what scans did, for tests and status.
#[derive(Debug, Default)]
pub struct ScanStats {
    /// Scans planned.
    pub scans: AtomicUsize,
    /// Segments handed to the Parquet reader, over all scans.
    pub segments_scanned: AtomicUsize,
    /// Segments skipped by their time range, over all scans.
    pub segments_pruned: AtomicUsize,
}

/// One workspace table.
#[derive(Debug)]
pub struct SegmentTable {
    schema: SchemaRef,
    manifest: Manifest,
    factory: Arc<SegmentEncryptionFactory>,
    stats: Arc<ScanStats>,
}

impl SegmentTable {
    /// A table over the segments of `manifest`, with their merged schema.
    pub fn new(manifest: Manifest, store: &Store, stats: Arc<ScanStats>) -> Self {
        let schema = logvault_store::schema::merge(manifest.segments.iter().map(|s| &s.schema));
        Self {
            schema,
            manifest,
            factory: store.encryption_factory(),
            stats,
        }
    }

    /// The catalog's view of the table.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
}

#[async_trait]
impl TableProvider for SegmentTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // The Parquet reader prunes with them, but rows are still filtered above the scan.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let bounds = TimeBounds::from_filters(filters, TIME_COLUMN);
        let (keep, pruned): (Vec<&SegmentEntry>, Vec<&SegmentEntry>) =
            self.manifest.segments.iter().partition(|s| {
                bounds.overlaps(s.min_time.timestamp_micros(), s.max_time.timestamp_micros())
            });
        self.stats.scans.fetch_add(1, Ordering::Relaxed);
        self.stats
            .segments_scanned
            .fetch_add(keep.len(), Ordering::Relaxed);
        self.stats
            .segments_pruned
            .fetch_add(pruned.len(), Ordering::Relaxed);
        tracing::debug!(
            workspace = %self.manifest.workspace,
            table = %self.manifest.table,
            scanned = keep.len(),
            pruned = pruned.len(),
            "segment pruning"
        );
        if keep.is_empty() {
            let projected = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => Arc::clone(&self.schema),
            };
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        let partitions = state.config().target_partitions().max(1);
        let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); partitions.min(keep.len())];
        // Largest first, each to the lightest group: balanced parallel scans.
        let mut ordered = keep;
        ordered.sort_by_key(|s| std::cmp::Reverse(s.bytes));
        let mut loads = vec![0u64; groups.len()];
        for s in ordered {
            let (i, _) = loads
                .iter()
                .enumerate()
                .min_by_key(|(_, l)| **l)
                .unwrap_or((0, &0));
            loads[i] += s.bytes;
            let path = self.manifest.location(s).routed_path();
            groups[i].push(PartitionedFile::new(path.to_string(), s.bytes));
        }
        let source = ParquetSource::new(Arc::clone(&self.schema))
            .with_table_parquet_options(logvault_store::table_parquet_options())
            .with_encryption_factory(self.factory.clone());
        let config = FileScanConfigBuilder::new(
            ObjectStoreUrl::parse(logvault_store::STORAGE_URL)?,
            Arc::new(source),
        )
        .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
        .with_projection_indices(projection.cloned())?
        .with_limit(limit)
        .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}
