//! A workspace table as a DataFusion `TableProvider` over its encrypted segments.
//!
//! The catalog's segment list is taken when the table is registered. A scan:
//! 1. prunes whole segments by their `TimeGenerated` range from the catalog, using the query's
//!    filters, before any file is opened;
//! 2. spreads the remaining segments over the session's target partitions (parallel scans);
//!    when the filters look for given values of string columns (`RequestId = '...'`, an `IN`
//!    list), the needle index in each segment's footer (`logvault_store::needles`, read through
//!    the footer cache) tells which row groups may hold them: the others are skipped (a
//!    `ParquetAccessPlan`), and a segment with none is not read at all; and a column the
//!    filters compare with strings (`=`, `<>`, `[NOT] IN`) that the segment stores as a small
//!    dictionary in every row group is read as one, for the row filter to compare once per
//!    value (`crate::view_eq::dictionary`);
//! 3. with a hot cache, takes the segments its memory tier holds as decoded Arrow data (a
//!    DataFusion memory source, only the projected columns of the batches inside the query's
//!    time bounds, adapted to the table's schema, in a [`HotScanExec`] of which a grouping can
//!    ask the held dictionary of a column of few values) and tells the cache which segments the
//!    rest of the scan reads (so it can promote them);
//! 4. reads the others with DataFusion's Parquet reader through the object store registered at
//!    `STORAGE_URL` (the hot cache's disk tier over the account router, or the router alone),
//!    decrypting with the store's encryption factory (data keys from cached account keys only),
//!    with projection, row-group statistics and page-index pruning, and filter pushdown; each
//!    segment's decrypted footer and page index are kept in the keyring's read caches
//!    (`logvault_store::SegmentReaderFactory`), so a warm query does not decrypt them again;
//!    the scan's statistics are its row count from the catalog (inexact), by which a join
//!    builds its hash table on its smaller side;
//! 5. unions the two. Filters are applied above the scan either way (pushdown is inexact).
//!
//! The table's string columns are string views (`Utf8View`, `logvault_store::schema::view_types`),
//! as DataFusion reads plain Parquet: the reader builds them straight from the pages, and
//! grouping and comparing strings is faster on them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::{Result, Statistics};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::parquet_encryption::EncryptionFactory;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use logvault_cache::{HotCache, HotSegment};
use logvault_store::{Keyring, Manifest, SegmentEntry, SegmentReaderFactory, Store, TIME_COLUMN};

use crate::hot_scan::HotScanExec;
use crate::prune::TimeBounds;
use datafusion::common::config::EncryptionFactoryOptions;
use datafusion::datasource::physical_plan::parquet::ParquetAccessPlan;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use futures::StreamExt as _;

/// Counters of what scans did, for tests and status.
#[derive(Debug, Default)]
pub struct ScanStats {
    /// Scans planned.
    pub scans: AtomicUsize,
    /// Segments handed to the Parquet reader, over all scans.
    pub segments_scanned: AtomicUsize,
    /// Segments skipped by their time range, over all scans.
    pub segments_pruned: AtomicUsize,
    /// Segments read from the hot cache's memory tier (counted in `segments_scanned` too).
    pub segments_in_memory: AtomicUsize,
    /// Batches of memory-tier segments skipped by their time range, over all scans.
    pub memory_batches_pruned: AtomicUsize,
    /// Segments skipped whole by their needle index (not counted in `segments_scanned`).
    pub segments_pruned_by_needles: AtomicUsize,
    /// Row groups of the segments read that their needle index skipped.
    pub row_groups_pruned_by_needles: AtomicUsize,
    /// Columns of segments read as dictionaries for a filter's comparisons with strings (one
    /// per column and segment; see `view_eq::dictionary`).
    pub filter_columns_as_dictionaries: AtomicUsize,
}

/// One workspace table.
#[derive(Debug)]
pub struct SegmentTable {
    schema: SchemaRef,
    manifest: Manifest,
    /// `None` for a table planned where no key is held (a Ballista scheduler): its scans name
    /// the factory by id only, and whoever runs them attaches their own.
    factory: Option<Arc<dyn EncryptionFactory>>,
    /// The keyring whose footer cache the scans read through (`None` when `factory` is).
    keyring: Option<Arc<Keyring>>,
    stats: Arc<ScanStats>,
    cache: Option<HotCache>,
}

impl SegmentTable {
    /// A table over the segments of `manifest`, with its schema (declared columns first, then
    /// the segments' merged columns).
    pub fn new(manifest: Manifest, store: &Store, stats: Arc<ScanStats>) -> Self {
        let schema = logvault_store::schema::view_types(&manifest.schema());
        Self {
            schema,
            manifest,
            factory: Some(store.encryption_factory()),
            keyring: Some(Arc::clone(store.keyring())),
            stats,
            cache: None,
        }
    }

    /// A table of `schema` over the segments of `manifest`, planned in a process that holds no
    /// key and reads no file (a Ballista scheduler): its Parquet scans carry the table options
    /// that name the encryption factory (`logvault_store::ENCRYPTION_FACTORY_ID`) but no
    /// factory; the process that runs them attaches its own (see `logvault-distributed`).
    pub fn detached(manifest: Manifest, schema: SchemaRef, stats: Arc<ScanStats>) -> Self {
        Self {
            schema,
            manifest,
            factory: None,
            keyring: None,
            stats,
            cache: None,
        }
    }

    /// Reads through `cache`: segments its memory tier holds are read from memory. The session
    /// must read files through the cache's object store too (see `WorkspaceSession`).
    #[must_use]
    pub fn with_cache(mut self, cache: HotCache) -> Self {
        self.cache = Some(cache);
        self
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
        let projected = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        let (hot, cold): (Vec<Arc<HotSegment>>, Vec<&SegmentEntry>) = match &self.cache {
            None => (Vec::new(), keep),
            Some(cache) => {
                let mut hot = Vec::new();
                let mut cold = Vec::new();
                for s in keep {
                    match cache.lookup(&self.manifest.location(s)) {
                        Some(seg) => hot.push(seg),
                        None => cold.push(s),
                    }
                }
                cache.note_read(cold.iter().map(|s| (self.manifest.location(s), s.max_time)));
                (hot, cold)
            }
        };
        self.stats
            .segments_in_memory
            .fetch_add(hot.len(), Ordering::Relaxed);
        let cold = self.footer_plans(state, cold, filters).await?;
        let mut plans: Vec<Arc<dyn ExecutionPlan>> = Vec::with_capacity(2);
        if !cold.is_empty() {
            plans.push(self.parquet_scan(state, cold, projection, limit)?);
        }
        if !hot.is_empty() {
            let partitions = state.config().target_partitions().max(1);
            plans.push(Arc::new(HotScanExec::try_new(
                hot,
                &projected,
                bounds,
                limit,
                partitions,
                &self.stats,
            )?));
        }
        match plans.len() {
            0 => Ok(Arc::new(EmptyExec::new(projected))),
            _ => UnionExec::try_new(plans),
        }
    }
}

/// A segment to read, with the row groups to read of it (all when `None`) and the columns its
/// scan reads as dictionaries.
struct Planned<'a> {
    segment: &'a SegmentEntry,
    plan: Option<ParquetAccessPlan>,
    dictionaries: Vec<String>,
}

impl<'a> Planned<'a> {
    /// All of `segment`, its columns as the table's types.
    fn whole(segment: &'a SegmentEntry) -> Self {
        Self {
            segment,
            plan: None,
            dictionaries: Vec::new(),
        }
    }
}

/// Segments whose footers are read at once while planning.
const FOOTER_READS: usize = 8;

impl SegmentTable {
    /// The row groups of each segment that may hold the values `filters` look for (see
    /// `logvault_store::needles`), segments with none left out; and the string columns that
    /// `filters` compare with strings (`prune::labels`) which each segment stores as a small
    /// dictionary in every row group, which its scan reads as dictionaries
    /// (`crate::view_eq::dictionary`). Both from one read of each segment's footer (through the
    /// footer cache, where the scan finds it again). Without such filters, or without a key (a
    /// detached table), every row group of every segment, its columns as views.
    async fn footer_plans<'a>(
        &self,
        state: &dyn Session,
        segments: Vec<&'a SegmentEntry>,
        filters: &[Expr],
    ) -> Result<Vec<Planned<'a>>> {
        let needles = crate::prune::needles(filters);
        let whole = |segments: Vec<&'a SegmentEntry>| {
            segments.into_iter().map(Planned::whole).collect::<Vec<_>>()
        };
        let (Some(factory), Some(keyring)) = (&self.factory, &self.keyring) else {
            return Ok(whole(segments));
        };
        let labels: Vec<String> = crate::prune::labels(filters)
            .into_iter()
            .filter(|c| {
                self.schema
                    .field_with_name(c)
                    .is_ok_and(|f| f.data_type() == &DataType::Utf8View)
            })
            .collect();
        if (needles.is_empty() && labels.is_empty()) || segments.is_empty() {
            return Ok(whole(segments));
        }
        let url = ObjectStoreUrl::parse(logvault_store::STORAGE_URL)?;
        let readers = Arc::new(SegmentReaderFactory::new(
            state.runtime_env().object_store(&url)?,
            Arc::clone(keyring),
        ));
        let wanted = Arc::new((needles, labels));
        // Each footer read is a task of its own: decrypting footers takes every core, as the
        // scan's partitions would, not the planning task alone.
        let files: Vec<PartitionedFile> = segments
            .iter()
            .map(|s| {
                PartitionedFile::new(self.manifest.location(s).routed_path().to_string(), s.bytes)
            })
            .collect();
        let looks: Vec<Option<Look>> = futures::stream::iter(files)
            .map(|file| {
                let (factory, readers) = (Arc::clone(factory), Arc::clone(&readers));
                let wanted = Arc::clone(&wanted);
                let read =
                    async move { look_up(factory, &readers, &wanted.0, &wanted.1, file).await };
                async move {
                    match tokio::runtime::Handle::try_current() {
                        Ok(runtime) => runtime.spawn(read).await.ok().flatten(),
                        Err(_) => read.await,
                    }
                }
            })
            .buffered(FOOTER_READS)
            .collect()
            .await;
        let mut out = Vec::new();
        for (s, look) in segments.into_iter().zip(looks) {
            let Some(look) = look else {
                out.push(Planned::whole(s));
                continue;
            };
            let Some(scan) = look.row_groups else {
                out.push(Planned {
                    dictionaries: look.dictionaries,
                    ..Planned::whole(s)
                });
                continue;
            };
            let skipped = scan.iter().filter(|read| !**read).count();
            if skipped == scan.len() {
                self.stats
                    .segments_pruned_by_needles
                    .fetch_add(1, Ordering::Relaxed);
                self.stats.segments_scanned.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
            self.stats
                .row_groups_pruned_by_needles
                .fetch_add(skipped, Ordering::Relaxed);
            let plan = (skipped > 0).then(|| {
                let mut plan = ParquetAccessPlan::new_all(scan.len());
                for (i, _) in scan.iter().enumerate().filter(|(_, read)| !**read) {
                    plan.skip(i);
                }
                plan
            });
            out.push(Planned {
                segment: s,
                plan,
                dictionaries: look.dictionaries,
            });
        }
        Ok(out)
    }

    /// A Parquet scan of `segments` through the object store at `STORAGE_URL`.
    fn parquet_scan(
        &self,
        state: &dyn Session,
        keep: Vec<Planned<'_>>,
        projection: Option<&Vec<usize>>,
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let partitions = state.config().target_partitions().max(1);
        let statistics = segment_statistics(&self.schema, keep.iter().map(|p| p.segment.rows));
        let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); partitions.min(keep.len())];
        // Largest first, each to the lightest group: balanced parallel scans.
        let mut ordered = keep;
        ordered.sort_by_key(|p| std::cmp::Reverse(p.segment.bytes));
        let mut loads = vec![0u64; groups.len()];
        for Planned {
            segment: s,
            plan,
            dictionaries,
        } in ordered
        {
            let (i, _) = loads
                .iter()
                .enumerate()
                .min_by_key(|(_, l)| **l)
                .unwrap_or((0, &0));
            loads[i] += s.bytes;
            let path = self.manifest.location(s).routed_path();
            // The segment's schema from the catalog: the reader need not parse the footer's,
            // and a filter's or a grouping's column is read as a dictionary through it. Only
            // for scans this process runs: a detached table's scans go to a cluster's
            // executors, which got that schema with every field nullable and refused it
            // against the file's.
            let mut file = PartitionedFile::new(path.to_string(), s.bytes);
            if self.keyring.is_some() {
                file = file.with_arrow_schema(with_dictionaries(&s.schema, &dictionaries));
                self.stats
                    .filter_columns_as_dictionaries
                    .fetch_add(dictionaries.len(), Ordering::Relaxed);
            }
            if let Some(plan) = plan {
                file = file.with_extension(plan);
            }
            groups[i].push(file);
        }
        let mut source = ParquetSource::new(Arc::clone(&self.schema))
            .with_table_parquet_options(logvault_store::table_parquet_options());
        if let Some(factory) = &self.factory {
            source = source.with_encryption_factory(Arc::clone(factory));
        }
        let url = ObjectStoreUrl::parse(logvault_store::STORAGE_URL)?;
        if let Some(keyring) = &self.keyring {
            // Decrypted footers are kept in the keyring's read caches (wiped with the key).
            let objects = state.runtime_env().object_store(&url)?;
            source = source.with_parquet_file_reader_factory(Arc::new(SegmentReaderFactory::new(
                objects,
                Arc::clone(keyring),
            )));
        }
        let config = FileScanConfigBuilder::new(url, Arc::new(source))
            .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .with_statistics(statistics)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

/// What the planner may know of a scan of segments before reading any: about how many rows
/// (the catalog's count per segment), nothing of the columns. Without it a join cannot tell
/// its small side from its large one: DataFusion built its hash table over the filtered log
/// rows and probed it with a 200-row inventory, both sides repartitioned, where it should
/// collect the inventory and stream the logs past it. Inexact, so that no aggregate is
/// answered from it (rows may be filtered in the scan, row groups skipped by needles).
fn segment_statistics(schema: &SchemaRef, rows: impl Iterator<Item = u64>) -> Statistics {
    let rows = rows.fold(0u64, u64::saturating_add);
    let mut statistics = Statistics::new_unknown(schema);
    statistics.num_rows = Precision::Inexact(usize::try_from(rows).unwrap_or(usize::MAX));
    statistics
}

/// What planning reads of a segment's footer.
struct Look {
    /// Which row groups may hold the needles (`None`: all, or unknown).
    row_groups: Option<Vec<bool>>,
    /// The columns of `labels` to read as dictionaries.
    dictionaries: Vec<String>,
}

/// Which row groups of segment `file` may hold `needles`, and which of the string columns
/// `labels` it stores as small dictionaries in every row group (`None`: the footer could not
/// be read).
async fn look_up(
    factory: Arc<dyn EncryptionFactory>,
    readers: &SegmentReaderFactory,
    needles: &[logvault_store::needles::Needle],
    labels: &[String],
    file: PartitionedFile,
) -> Option<Look> {
    let path = file.object_meta.location.clone();
    let scan = async {
        let keys = factory
            .get_file_decryption_properties(&EncryptionFactoryOptions::default(), &path)
            .await?;
        let mut options = ArrowReaderOptions::new();
        if let Some(keys) = keys {
            options = options.with_file_decryption_properties(keys);
        }
        // One read of the footer for both.
        let footer = readers.footer(file.clone(), &options).await?;
        let dictionaries = crate::view_eq::dictionary::stored_as_dictionaries(&footer, labels);
        let row_groups = if needles.is_empty() {
            None
        } else {
            readers.needle_scan(file, &footer, needles).await?
        };
        Ok::<_, datafusion::common::DataFusionError>(Look {
            row_groups,
            dictionaries,
        })
    };
    // Unreadable here, unreadable in the scan, which reports it.
    scan.await
        .inspect_err(|e: &datafusion::common::DataFusionError| {
            tracing::debug!(segment = %path, error = %e, "footer not read");
        })
        .ok()
}

/// `schema` (a segment's) with its string columns named in `names` read as dictionaries.
fn with_dictionaries(schema: &SchemaRef, names: &[String]) -> SchemaRef {
    if names.is_empty() {
        return Arc::clone(schema);
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let field = f.as_ref().clone();
            if names.iter().any(|n| n == f.name()) && f.data_type().is_string() {
                field.with_data_type(crate::grouping::dictionary_type())
            } else {
                field
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}
