//! Queries and ingestion on storage with remote-like latency (issue 22), against local files.
//!
//! The remote home's storage is a directory behind [`LatencyStore`], which waits a fixed time
//! before every request (a round trip to object storage), with the hot cache as a new home on
//! remote storage has it (memory and disk tiers). The local home is a new home on local files
//! (memory tier only). For each query: *cold* (a new engine with empty caches: every segment
//! fetched), *reopened* (a new engine: the remote home's disk tier holds what the cold run
//! fetched; the memory tier is empty), *hot* (the same session once the memory tier has
//! settled). Also: the time to ingest the same file, and the time a node takes to join (open a
//! follower on the remote storage and answer its first query). Figures are medians; ratios are
//! remote / local of the same run. Answers must agree across both homes.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use logvault::ingest::Format;
use logvault::{Engine, HomeConfig, IngestOptions, NodeConfig};
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use serde::Serialize;

use crate::answers::Answer;
use crate::ingest::{DataFormat, LOG_TABLE, input_file};
use crate::stats::{median, ratio};

const WS: &str = "bench";

/// An object store that waits `latency` before every request to the store it wraps.
#[derive(Debug)]
pub struct LatencyStore {
    inner: Arc<dyn ObjectStore>,
    latency: Duration,
    requests: Arc<AtomicU64>,
}

impl LatencyStore {
    /// `inner` behind `latency` per request.
    pub fn new(inner: Arc<dyn ObjectStore>, latency: Duration) -> Self {
        Self {
            inner,
            latency,
            requests: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Local files under `dir` (created) behind `latency` per request: a remote-like store.
    ///
    /// # Errors
    /// If `dir` cannot be created or opened as a store.
    pub fn over_dir(dir: &std::path::Path, latency: Duration) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
        Ok(Self::new(Arc::new(files), latency))
    }

    /// Requests made so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    async fn wait(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.latency).await;
    }
}

impl fmt::Display for LatencyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Latency({:?}, {})", self.latency, self.inner)
    }
}

#[async_trait]
impl ObjectStore for LatencyStore {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.wait().await;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.wait().await;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.wait().await;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &ObjectPath,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.wait().await;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        let (latency, requests) = (self.latency, self.requests.clone());
        let delayed = locations
            .then(move |l| {
                let requests = requests.clone();
                async move {
                    requests.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(latency).await;
                    l
                }
            })
            .boxed();
        self.inner.delete_stream(delayed)
    }

    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let (inner, latency, prefix) = (self.inner.clone(), self.latency, prefix.cloned());
        self.requests.fetch_add(1, Ordering::Relaxed);
        futures::stream::once(async move {
            tokio::time::sleep(latency).await;
            inner.list(prefix.as_ref())
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        self.wait().await;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.wait().await;
        self.inner.copy_opts(from, to, options).await
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Rows of generated logs.
    pub rows: u64,
    /// The latency of every storage request of the remote home.
    pub latency: Duration,
    /// Runs of each kind per query.
    pub repeats: usize,
    /// Scratch directory (inputs are cached under `inputs/`).
    pub work: PathBuf,
    /// Generator seed.
    pub seed: u64,
}

/// One query's medians, milliseconds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryFigures {
    /// The query.
    pub query: String,
    /// Local: cold, reopened, hot.
    pub local_ms: [f64; 3],
    /// Remote-like: cold, reopened, hot.
    pub remote_ms: [f64; 3],
}

/// The results.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteReport {
    /// Rows.
    pub rows: u64,
    /// Milliseconds of latency per request.
    pub latency_ms: u64,
    /// Ingestion of the file: local, remote-like (ms).
    pub ingest_ms: [f64; 2],
    /// Storage requests the remote home made while ingesting.
    pub ingest_requests: u64,
    /// Per query.
    pub queries: Vec<QueryFigures>,
    /// Milliseconds for a node to join: open a follower on the remote storage and answer its
    /// first query.
    pub join_ms: f64,
}

fn queries() -> Vec<(&'static str, String)> {
    let t = LOG_TABLE;
    vec![
        ("count", format!(r#"SELECT COUNT(*) AS n FROM "{t}""#)),
        (
            "by_level",
            format!(
                r#"SELECT "Level" AS level, COUNT(*) AS n, AVG("LatencyMs") AS avg_latency FROM "{t}" GROUP BY "Level" ORDER BY level"#
            ),
        ),
        (
            "top_hosts_errors",
            format!(
                r#"SELECT "Host" AS host, COUNT(*) AS n FROM "{t}" WHERE "Level" IN ('ERROR', 'CRITICAL') GROUP BY "Host" ORDER BY n DESC, host LIMIT 5"#
            ),
        ),
    ]
}

/// A home's configuration: timings that complete operations at once, and `node` if given.
fn write_config(dir: &Path, remote: bool, node: Option<NodeConfig>) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut config = if remote {
        HomeConfig::new_for(Some("memory://"))
    } else {
        HomeConfig::new_local()
    };
    config.timings.async_operation_secs = 0;
    config.node = node;
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
    Ok(())
}

async fn open(dir: &Path, store: Option<&Arc<dyn ObjectStore>>) -> anyhow::Result<Engine> {
    let mut b = Engine::builder(dir);
    if let Some(store) = store {
        b = b.object_store(store.clone());
    }
    b.open()
        .await
        .with_context(|| format!("opening {}", dir.display()))
}

async fn answer(engine: &Engine, sql: &str) -> anyhow::Result<Answer> {
    let session = engine.query_session(WS).await?;
    let batches = session.context().sql(sql).await?.collect().await?;
    Answer::from_batches(&batches)
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Cold, reopened and hot runs of `sql` on the home at `dir`; the medians and the answer.
async fn runs(
    dir: &Path,
    store: Option<&Arc<dyn ObjectStore>>,
    sql: &str,
    repeats: usize,
) -> anyhow::Result<([f64; 3], Answer)> {
    let (mut cold, mut reopened, mut hot) = (Vec::new(), Vec::new(), Vec::new());
    let mut kept: Option<Answer> = None;
    let mut same = |got: Answer| -> anyhow::Result<()> {
        match &kept {
            None => kept = Some(got),
            Some(k) => {
                if let Some(diff) = got.difference(k) {
                    anyhow::bail!("{sql}: the answer changed between runs: {diff}");
                }
            }
        }
        Ok(())
    };
    for _ in 0..repeats.max(1) {
        // Cold: no cache on disk, a new engine.
        let cache = dir.join("cache");
        if cache.exists() {
            std::fs::remove_dir_all(&cache)?;
        }
        let started = Instant::now();
        let engine = open(dir, store).await?;
        same(answer(&engine, sql).await?)?;
        cold.push(ms(started));
        engine.hot_cache().settle().await;
        drop(engine);
        // Reopened: the disk tier (if any) holds what the cold run fetched.
        let started = Instant::now();
        let engine = open(dir, store).await?;
        same(answer(&engine, sql).await?)?;
        reopened.push(ms(started));
        engine.hot_cache().settle().await;
        let started = Instant::now();
        same(answer(&engine, sql).await?)?;
        hot.push(ms(started));
    }
    let med = |v: &[f64]| median(v).unwrap_or(f64::NAN);
    Ok((
        [med(&cold), med(&reopened), med(&hot)],
        kept.unwrap_or_default(),
    ))
}

/// Runs the comparison.
///
/// # Errors
/// Generation, ingestion, query errors; answers that differ between the homes.
pub async fn run(o: &RemoteOptions) -> anyhow::Result<RemoteReport> {
    let input = input_file(&o.work.join("inputs"), o.rows, o.seed, DataFormat::Ndjson)?;
    let scratch = o.work.join("remote");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    let (local_dir, remote_dir, join_dir) = (
        scratch.join("local"),
        scratch.join("remote"),
        scratch.join("joining"),
    );
    let latency = Arc::new(LatencyStore::over_dir(&scratch.join("objects"), o.latency)?);
    let remote_store: Arc<dyn ObjectStore> = latency.clone();
    write_config(&local_dir, false, None)?;
    let primary = NodeConfig {
        name: "node-1".into(),
        follows: None,
        refresh_secs: 2,
        lease_secs: 60,
        catalog_cache_millis: 1000,
    };
    write_config(&remote_dir, true, Some(primary))?;

    let mut ingest_ms = [0.0; 2];
    let mut ingest_requests = 0;
    for (i, (dir, store)) in [(&local_dir, None), (&remote_dir, Some(&remote_store))]
        .into_iter()
        .enumerate()
    {
        let engine = open(dir, store).await?;
        engine
            .control()
            .create_workspace(logvault::control::WorkspaceSpec::new(WS))?;
        let before = latency.requests();
        let file = std::io::BufReader::new(std::fs::File::open(&input)?);
        let started = Instant::now();
        let report = engine
            .ingest(
                WS,
                LOG_TABLE,
                file,
                &IngestOptions::new(Format::JsonLines),
                None,
            )
            .await?;
        ingest_ms[i] = ms(started);
        anyhow::ensure!(
            report.accepted == o.rows,
            "ingested {} of {} rows",
            report.accepted,
            o.rows
        );
        if store.is_some() {
            ingest_requests = latency.requests() - before;
            engine.sync_nodes().await?;
        }
    }

    let mut figures = Vec::new();
    for (name, sql) in queries() {
        let (local_ms, local_answer) = runs(&local_dir, None, &sql, o.repeats).await?;
        let (remote_ms, remote_answer) =
            runs(&remote_dir, Some(&remote_store), &sql, o.repeats).await?;
        if let Some(diff) = remote_answer.difference(&local_answer) {
            anyhow::bail!("{name}: the homes disagree: {diff}");
        }
        figures.push(QueryFigures {
            query: name.into(),
            local_ms,
            remote_ms,
        });
    }

    // A node joins: the service vault copied, a follower's configuration, its first query.
    let vault = join_dir.join("vault/vaults/logvault-service");
    std::fs::create_dir_all(&vault)?;
    std::fs::copy(
        remote_dir.join("vault/master.key"),
        join_dir.join("vault/master.key"),
    )?;
    for f in std::fs::read_dir(remote_dir.join("vault/vaults/logvault-service"))? {
        let f = f?;
        if f.file_type()?.is_file() {
            std::fs::copy(f.path(), vault.join(f.file_name()))?;
        }
    }
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            join_dir.join("vault"),
            std::fs::Permissions::from_mode(0o700),
        )?;
    }
    let follower = NodeConfig {
        name: "node-2".into(),
        follows: Some("node-1".into()),
        refresh_secs: 2,
        lease_secs: 60,
        catalog_cache_millis: 1000,
    };
    write_config(&join_dir, true, Some(follower))?;
    let started = Instant::now();
    let joined = open(&join_dir, Some(&remote_store)).await?;
    let got = answer(&joined, &queries()[0].1).await?;
    let join_ms = ms(started);
    let (_, expected) = runs(&local_dir, None, &queries()[0].1, 1).await?;
    if let Some(diff) = got.difference(&expected) {
        anyhow::bail!("the joined node disagrees: {diff}");
    }

    Ok(RemoteReport {
        rows: o.rows,
        latency_ms: u64::try_from(o.latency.as_millis()).unwrap_or(u64::MAX),
        ingest_ms,
        ingest_requests,
        queries: figures,
        join_ms,
    })
}

/// The report as markdown: medians and remote / local ratios.
pub fn markdown(r: &RemoteReport) -> String {
    let x = |v: f64, base: f64| ratio(v, base).map_or_else(|| "-".into(), |q| format!("{q:.2}x"));
    let mut out = format!(
        "Remote-like storage: {} rows, {} ms per storage request (LatencyStore over local \
         files), against local files; medians, ratio = remote / local.\n\n\
         | query | local cold | remote cold | ratio | local reopened | remote reopened (disk tier) | ratio | local hot | remote hot (memory tier) | ratio |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        r.rows, r.latency_ms
    );
    for q in &r.queries {
        let (l, m) = (q.local_ms, q.remote_ms);
        out.push_str(&format!(
            "| {} | {:.1} ms | {:.1} ms | {} | {:.1} ms | {:.1} ms | {} | {:.1} ms | {:.1} ms | {} |\n",
            q.query,
            l[0],
            m[0],
            x(m[0], l[0]),
            l[1],
            m[1],
            x(m[1], l[1]),
            l[2],
            m[2],
            x(m[2], l[2])
        ));
    }
    out.push_str(&format!(
        "\nIngestion of the file: local {:.0} ms, remote-like {:.0} ms ({}; {} storage requests).\n\
         A node joining (open a follower on the storage, first query): {:.0} ms.\n",
        r.ingest_ms[0],
        r.ingest_ms[1],
        x(r.ingest_ms[1], r.ingest_ms[0]),
        r.ingest_requests,
        r.join_ms
    ));
    out
}
