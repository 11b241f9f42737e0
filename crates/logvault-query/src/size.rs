//! What a plan would read, from the catalog's segment statistics, before it runs: the rows and
//! bytes of every segment of every logvault table it scans. A server uses it to send large
//! queries to a distributed engine (`ServeConfig::distribute_above`, docs/distributed.md).
//!
//! It is an upper bound: a scan's filters (a time range, a predicate the Parquet statistics
//! prune with) are not counted, and a table scanned twice (a self-join) counts twice.

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::LogicalPlan;

use crate::provider::SegmentTable;

/// Rows, bytes and segments a plan's scans cover.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanSize {
    /// Rows of the segments.
    pub rows: u64,
    /// Bytes of the segments' Parquet files, as stored.
    pub bytes: u64,
    /// Segments.
    pub segments: u64,
}

/// The segments `plan` scans (its subqueries' included), summed.
pub fn scan_size(plan: &LogicalPlan) -> ScanSize {
    let mut size = ScanSize::default();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
            && let Some(table) = provider.downcast_ref::<SegmentTable>()
        {
            for segment in &table.manifest().segments {
                size.rows = size.rows.saturating_add(segment.rows);
                size.bytes = size.bytes.saturating_add(segment.bytes);
                size.segments += 1;
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    size
}
