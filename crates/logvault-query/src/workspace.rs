//! A query session over one workspace: its tables registered, its account keys admitted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::common::TableReference;
use datafusion::datasource::provider_as_source;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, lit};
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;
use futures::{StreamExt, TryStreamExt};
use logvault_cache::HotCache;
use logvault_store::{AccountId, Manifest, Store};

use crate::QueryError;
use crate::provider::{ScanStats, SegmentTable};
use crate::session::{SessionOptions, new_session};

/// Decides, once per storage account and query, whether the account's data may be read, and
/// makes sure its account key is in the keyring's cache (so that reading files never waits on
/// the vault). The key lifecycle implements it; [`KeyringGate`] is the plain version.
#[async_trait]
pub trait KeyGate: Send + Sync + std::fmt::Debug {
    /// Admits reading `account` for a query on `workspace`, or says why not.
    async fn admit(&self, workspace: &str, account: &AccountId) -> Result<(), QueryError>;
}

/// Admits an account when its key unwraps (from the cache, or from the vault once).
#[derive(Debug, Clone)]
pub struct KeyringGate {
    store: Arc<Store>,
}

impl KeyringGate {
    /// A gate over `store`'s keyring.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl KeyGate for KeyringGate {
    async fn admit(&self, workspace: &str, account: &AccountId) -> Result<(), QueryError> {
        self.store
            .keyring()
            .aek(account)
            .await
            .map(|_| ())
            .map_err(|e| QueryError::KeyUnavailable {
                workspace: workspace.to_owned(),
                account: account.to_string(),
                reason: e.to_string(),
            })
    }
}

/// A DataFusion session with one workspace's tables registered under their own names.
#[derive(Clone)]
pub struct WorkspaceSession {
    workspace: String,
    ctx: SessionContext,
    tables: Vec<String>,
    stats: Arc<ScanStats>,
}

impl std::fmt::Debug for WorkspaceSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkspaceSession")
            .field("workspace", &self.workspace)
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

impl WorkspaceSession {
    /// Opens a session on `workspace`: reads its tables' manifests, admits every storage account
    /// they use through `gate` (before anything is planned or read), and registers the tables.
    ///
    /// # Errors
    /// [`QueryError::KeyUnavailable`] from the gate; catalog errors.
    pub async fn open(
        store: Arc<Store>,
        workspace: &str,
        options: &SessionOptions,
        gate: &dyn KeyGate,
    ) -> Result<Self, QueryError> {
        Self::open_with_cache(store, workspace, options, gate, None).await
    }

    /// As [`WorkspaceSession::open`], reading through `cache` when one is given: segment files
    /// are read through its disk tier (registered at `STORAGE_URL` in place of the plain
    /// router), segments its memory tier holds are read from memory, and the segments queries
    /// read are promoted in the background.
    ///
    /// # Errors
    /// As [`WorkspaceSession::open`].
    pub async fn open_with_cache(
        store: Arc<Store>,
        workspace: &str,
        options: &SessionOptions,
        gate: &dyn KeyGate,
        cache: Option<&HotCache>,
    ) -> Result<Self, QueryError> {
        let manifests = load_manifests(&store, workspace, gate, cache).await?;
        let (ctx, stats) = new_context(&store, options, cache)?;
        let mut tables = Vec::new();
        for manifest in manifests {
            let name = manifest.table.clone();
            let table = segment_table(manifest, &store, &stats, cache);
            ctx.register_table(TableReference::bare(name.as_str()), Arc::new(table))?;
            tables.push(name);
        }
        Ok(Self {
            workspace: workspace.to_owned(),
            ctx,
            tables,
            stats,
        })
    }

    /// A session over several workspaces (a cross-workspace query): each table name is the
    /// union, by column name, of that table in every workspace that has it, with a `TenantId`
    /// column holding the workspace's id (the second of each pair) unless the table has one
    /// already. Every workspace's storage accounts are admitted through `gate` first, so a
    /// revoked key of any of them refuses the whole query.
    ///
    /// # Errors
    /// As [`WorkspaceSession::open`], for any of the workspaces.
    pub async fn open_across(
        store: Arc<Store>,
        workspaces: &[(String, String)],
        options: &SessionOptions,
        gate: &dyn KeyGate,
        cache: Option<&HotCache>,
    ) -> Result<Self, QueryError> {
        let mut by_table: BTreeMap<String, Vec<LogicalPlan>> = BTreeMap::new();
        let mut loaded = Vec::new();
        for (workspace, tenant) in workspaces {
            loaded.push((
                workspace,
                tenant,
                load_manifests(&store, workspace, gate, cache).await?,
            ));
        }
        let (ctx, stats) = new_context(&store, options, cache)?;
        for (workspace, tenant, manifests) in loaded {
            for manifest in manifests {
                let name = manifest.table.clone();
                let table: Arc<dyn TableProvider> =
                    Arc::new(segment_table(manifest, &store, &stats, cache));
                let plan = with_tenant(workspace, &name, table, tenant)?;
                by_table.entry(name).or_default().push(plan);
            }
        }
        let mut tables = Vec::new();
        for (name, plans) in by_table {
            let mut plans = plans.into_iter();
            let Some(first) = plans.next() else { continue };
            let mut union = LogicalPlanBuilder::from(first);
            for plan in plans {
                union = union.union_by_name(plan)?;
            }
            let view = ViewTable::new(union.build()?, None);
            ctx.register_table(TableReference::bare(name.as_str()), Arc::new(view))?;
            tables.push(name);
        }
        let names: Vec<&str> = workspaces.iter().map(|(w, _)| w.as_str()).collect();
        Ok(Self {
            workspace: names.join(", "),
            ctx,
            tables,
            stats,
        })
    }

    /// Makes `workspace`'s tables available to this session under a schema called `schema`
    /// (`"schema"."Table"` in SQL, `workspace("schema").Table` in KQL: the reference as the
    /// query wrote it, a name or an id), each with a `TenantId` column holding `tenant` (the
    /// workspace's id) unless it has one. Its storage accounts are admitted through `gate`
    /// first, as [`WorkspaceSession::open`] does.
    ///
    /// # Errors
    /// As [`WorkspaceSession::open`]; a plan error if the schema cannot be registered.
    pub async fn add_workspace_as(
        &self,
        store: Arc<Store>,
        workspace: &str,
        schema: &str,
        tenant: &str,
        gate: &dyn KeyGate,
        cache: Option<&HotCache>,
    ) -> Result<(), QueryError> {
        let manifests = load_manifests(&store, workspace, gate, cache).await?;
        let catalog_name = self
            .ctx
            .state()
            .config()
            .options()
            .catalog
            .default_catalog
            .clone();
        let Some(catalog) = self.ctx.catalog(&catalog_name) else {
            return Err(QueryError::Execution {
                message: format!("the session has no catalog {catalog_name}"),
            });
        };
        let tables = Arc::new(datafusion::catalog::MemorySchemaProvider::new());
        catalog.register_schema(schema, tables.clone())?;
        for manifest in manifests {
            let name = manifest.table.clone();
            let table: Arc<dyn TableProvider> =
                Arc::new(segment_table(manifest, &store, &self.stats, cache));
            let plan = with_tenant(workspace, &name, table, tenant)?;
            datafusion::catalog::SchemaProvider::register_table(
                tables.as_ref(),
                name,
                Arc::new(ViewTable::new(plan, None)),
            )?;
        }
        Ok(())
    }

    /// The DataFusion context, for embedders who want DataFusion itself.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The tables that hold data.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// What scans did so far (segments scanned and pruned).
    pub fn stats(&self) -> &Arc<ScanStats> {
        &self.stats
    }

    /// Plans and starts `sql`, returning a stream of Arrow record batches.
    ///
    /// # Errors
    /// [`QueryError::UnknownTable`] (with a close name if there is one), plan errors for bad SQL
    /// or unknown columns, execution errors.
    pub async fn execute(&self, sql: &str) -> Result<SendableRecordBatchStream, QueryError> {
        let df = match self.ctx.sql(sql).await {
            Ok(df) => df,
            Err(e) => return Err(self.explain(e)),
        };
        let stream = df.execute_stream().await.map_err(|e| self.explain(e))?;
        Ok(crate::guard::guard(stream, &self.workspace))
    }

    /// Plans `sql` without running it, with the errors of [`Self::execute`]: for an engine
    /// that runs the plan elsewhere (a distributed query).
    ///
    /// # Errors
    /// As [`Self::execute`]'s planning.
    pub async fn plan(&self, sql: &str) -> Result<LogicalPlan, QueryError> {
        match self.ctx.sql(sql).await {
            Ok(df) => Ok(df.into_unoptimized_plan()),
            Err(e) => Err(self.explain(e)),
        }
    }

    /// Starts `plan` (from [`Self::plan`]) here, with the errors of [`Self::execute`].
    ///
    /// # Errors
    /// As [`Self::execute`]'s physical planning.
    pub async fn execute_plan(
        &self,
        plan: LogicalPlan,
    ) -> Result<SendableRecordBatchStream, QueryError> {
        let stream = datafusion::dataframe::DataFrame::new(self.ctx.state(), plan)
            .execute_stream()
            .await
            .map_err(|e| self.explain(e))?;
        Ok(crate::guard::guard(stream, &self.workspace))
    }

    fn explain(&self, e: datafusion::error::DataFusionError) -> QueryError {
        let text = e.to_string();
        if let Some(table) = missing_table(&text) {
            return QueryError::UnknownTable {
                workspace: self.workspace.clone(),
                suggestion: closest(&table, &self.tables),
                table,
            };
        }
        QueryError::from(e)
    }
}

/// The column that names a row's workspace in a cross-workspace query (Azure's).
pub const TENANT_COLUMN: &str = "TenantId";

/// A scan of `workspace`'s `table`, with a `TenantId` column holding `tenant` unless the table
/// has one.
fn with_tenant(
    workspace: &str,
    name: &str,
    table: Arc<dyn TableProvider>,
    tenant: &str,
) -> Result<LogicalPlan, QueryError> {
    let has_tenant = table
        .schema()
        .fields()
        .iter()
        .any(|f| f.name() == TENANT_COLUMN);
    let mut plan = LogicalPlanBuilder::scan(
        TableReference::partial(workspace, name),
        provider_as_source(table),
        None,
    )?;
    if !has_tenant {
        let mut columns: Vec<Expr> = plan
            .schema()
            .columns()
            .into_iter()
            .map(Expr::Column)
            .collect();
        columns.push(lit(tenant).alias(TENANT_COLUMN));
        plan = plan.project(columns)?;
    }
    Ok(plan.build()?)
}

/// Manifests read at once when a session opens.
const MANIFEST_READS: usize = 8;

/// Reads `workspace`'s manifests of tables that hold data and admits every storage account they
/// use through `gate` (before anything is planned or read). The hot cache, when given, drops
/// the segments of each table that its manifest no longer lists (a compaction or a retention
/// purge, possibly by another process, replaced or removed them).
async fn load_manifests(
    store: &Store,
    workspace: &str,
    gate: &dyn KeyGate,
    cache: Option<&HotCache>,
) -> Result<Vec<Manifest>, QueryError> {
    let catalog = store.catalog();
    let names = catalog
        .tables_for_query(workspace)
        .await
        .map_err(catalog_error)?;
    // The tables' manifests are read a few at a time (each a listing and a read of the
    // storage), in the order of their names. (The futures are made in a loop, not by a closure
    // over the names: a closure's borrow would make the session's future not `Send` for every
    // lifetime, which spawning it needs.)
    let mut reads = Vec::with_capacity(names.len());
    for name in &names {
        reads.push(async move {
            let mark = cache.map(HotCache::catalog_mark);
            let manifest = catalog
                .manifest_for_query(workspace, name)
                .await
                .map_err(catalog_error)?;
            if let (Some(cache), Some(mark)) = (cache, mark) {
                cache.forget_unlisted(mark, &manifest);
            }
            Ok::<_, QueryError>(manifest)
        });
    }
    let mut read = futures::stream::iter(reads).buffered(MANIFEST_READS);
    let mut manifests = Vec::with_capacity(names.len());
    while let Some(manifest) = read.try_next().await? {
        // A table with a declared schema is queryable before its first row.
        if !manifest.segments.is_empty() || manifest.declared.is_some() {
            manifests.push(manifest);
        }
    }
    let accounts: BTreeSet<&AccountId> = manifests
        .iter()
        .flat_map(|m| m.segments.iter().map(|s| &s.account))
        .collect();
    for account in accounts {
        gate.admit(workspace, account).await?;
    }
    Ok(manifests)
}

/// A session context reading `store` (through `cache`'s disk tier when given), and the scan
/// statistics its tables share.
fn new_context(
    store: &Store,
    options: &SessionOptions,
    cache: Option<&HotCache>,
) -> Result<(SessionContext, Arc<ScanStats>), QueryError> {
    let runtime = options
        .runtime
        .clone()
        .unwrap_or_else(|| Arc::new(RuntimeEnv::default()));
    let ctx = new_session(options, runtime);
    store.register(&ctx).map_err(catalog_error)?;
    if let Some(cache) = cache {
        cache.register(&ctx).map_err(|e| QueryError::Execution {
            message: e.to_string(),
        })?;
    }
    Ok((ctx, Arc::new(ScanStats::default())))
}

fn segment_table(
    manifest: Manifest,
    store: &Arc<Store>,
    stats: &Arc<ScanStats>,
    cache: Option<&HotCache>,
) -> SegmentTable {
    let table = SegmentTable::new(manifest, store, Arc::clone(stats));
    match cache {
        Some(cache) => table.with_cache(cache.clone()),
        None => table,
    }
}

fn catalog_error(e: logvault_store::StoreError) -> QueryError {
    QueryError::Execution {
        message: e.to_string(),
    }
}

/// The table name in DataFusion's "table '...' not found" message.
fn missing_table(message: &str) -> Option<String> {
    let start = message.find("table '")? + "table '".len();
    let end = message[start..].find("' not found")? + start;
    let full = &message[start..end];
    Some(full.rsplit('.').next().unwrap_or(full).to_owned())
}

/// The known name closest to `name` (case-insensitive edit distance), if close enough.
fn closest(name: &str, known: &[String]) -> Option<String> {
    let target = name.to_lowercase();
    known
        .iter()
        .map(|k| (strsim::levenshtein(&target, &k.to_lowercase()), k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let known = vec!["SigninLogs".to_owned(), "Syslog".to_owned()];
        assert_eq!(closest("signinlogs", &known).as_deref(), Some("SigninLogs"));
        assert_eq!(closest("Syslogs", &known).as_deref(), Some("Syslog"));
        assert_eq!(closest("SecurityEvent", &known), None);
        assert_eq!(
            missing_table("Error during planning: table 'datafusion.public.Sislog' not found")
                .as_deref(),
            Some("Sislog")
        );
    }
}
