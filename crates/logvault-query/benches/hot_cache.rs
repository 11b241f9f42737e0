//! A small query suite over one workspace (8 segments of 25,000 log rows, the rows of the
//! tests), cold, warm and hot, with storage behind a wrapper that adds a realistic latency
//! (20 ms a request and 100 MB/s):
//! - `cold`: no cache (both tiers 0 bytes, reads pass through to storage);
//! - `warm`: the disk tier holds every segment (memory tier off);
//! - `hot`: the memory tier holds every segment.
//!
//! After criterion's own report, prints each variant's time as a ratio to `cold` measured in the
//! same run, and the storage requests each variant made.
//!
//! `cargo bench -p logvault-query --bench hot_cache` (release build); for a quick indicative run
//! in the dev profile: `cargo bench --profile dev -p logvault-query --bench hot_cache`.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

#[path = "../tests/it/common.rs"]
#[allow(dead_code, unused_imports)]
mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use async_trait::async_trait;
use bytes::Bytes;
use criterion::Criterion;
use futures::TryStreamExt;
use futures::stream::BoxStream;
use logvault_cache::{HotCache, HotCacheConfig};
use logvault_query::WorkspaceSession;
use logvault_store::AccountId;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use tokio::runtime::Runtime;

use common::Harness;

const WS: &str = "ws-bench";
const SEGMENTS: i64 = 8;
const ROWS: usize = 25_000;
const LATENCY: Duration = Duration::from_millis(20);
const BYTES_PER_SEC: f64 = 100e6;
const VARIANTS: [&str; 3] = ["cold", "warm", "hot"];
const QUERIES: [(&str, &str); 4] = [
    ("count", "SELECT count(*) FROM Syslog"),
    (
        "group_by",
        "SELECT Computer, count(*) AS n, max(EventId) FROM Syslog GROUP BY Computer",
    ),
    (
        "filter",
        "SELECT TimeGenerated, Message FROM Syslog WHERE Severity = 'error' AND Message LIKE '%row 1234%'",
    ),
    (
        "top",
        "SELECT TimeGenerated, Computer, Message FROM Syslog ORDER BY TimeGenerated DESC LIMIT 20",
    ),
];

/// Storage with a latency: each request waits 20 ms plus its bytes at 100 MB/s.
#[derive(Debug)]
struct Slow(Arc<dyn ObjectStore>);

async fn wait(bytes: u64) {
    tokio::time::sleep(LATENCY + Duration::from_secs_f64(bytes as f64 / BYTES_PER_SEC)).await;
}

impl fmt::Display for Slow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Slow({})", self.0)
    }
}

#[async_trait]
impl ObjectStore for Slow {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.0.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let got = self.0.get_opts(location, options).await?;
        wait(got.range.end - got.range.start).await;
        Ok(got)
    }
    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        // One round trip for the call (object stores fetch coalesced ranges concurrently).
        let got = self.0.get_ranges(location, ranges).await?;
        wait(got.iter().map(|b| b.len() as u64).sum()).await;
        Ok(got)
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.0.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.0.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.0.copy_opts(from, to, options).await
    }
}

struct Variant {
    name: &'static str,
    cache: HotCache,
    session: WorkspaceSession,
}

struct Setup {
    _harness: Harness,
    variants: Vec<Variant>,
}

async fn setup() -> Setup {
    let h = Harness::new().await;
    for day in 0..SEGMENTS {
        h.append(&AccountId::service(), WS, day, ROWS, "bench")
            .await;
    }
    let store = Arc::clone(&h.store);
    let dir = h.dir.path().to_owned();
    let slow: Arc<dyn ObjectStore> = Arc::new(Slow(store.router()));
    let big = 1 << 30;
    let configs = [
        (0, 0),   // cold: no cache
        (0, big), // warm: disk tier only
        (big, big),
    ];
    let mut variants = Vec::new();
    for (name, (memory_bytes, disk_bytes)) in VARIANTS.into_iter().zip(configs) {
        let config = HotCacheConfig {
            memory_bytes,
            disk_bytes,
            ..HotCacheConfig::default()
        };
        let cache = HotCache::open_over(
            Arc::clone(&store),
            Arc::clone(&slow),
            &dir.join(format!("cache-{name}")),
            config,
        )
        .await
        .unwrap();
        if disk_bytes > 0 {
            let warmed = cache.warm(WS).wait().await;
            assert_eq!(warmed.segments_done, SEGMENTS as u64);
        }
        let session = h.session(WS, Some(&cache)).await;
        variants.push(Variant {
            name,
            cache,
            session,
        });
    }
    Setup {
        _harness: h,
        variants,
    }
}

async fn count_rows(session: &WorkspaceSession, sql: &str) -> usize {
    let stream = session.execute(sql).await.unwrap();
    let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
    batches.iter().map(RecordBatch::num_rows).sum()
}

type Times = Mutex<BTreeMap<(&'static str, &'static str), (Duration, u64)>>;

fn main() {
    let rt = Runtime::new().unwrap();
    let setup = rt.block_on(setup());
    let times: Times = Mutex::default();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    for (query, sql) in QUERIES {
        let mut group = c.benchmark_group(query);
        let mut rows = None;
        for v in &setup.variants {
            let got = rt.block_on(count_rows(&v.session, sql));
            assert_eq!(
                *rows.get_or_insert(got),
                got,
                "{} returned other rows",
                v.name
            );
            group.bench_function(v.name, |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        rt.block_on(count_rows(&v.session, sql));
                    }
                    let took = start.elapsed();
                    let mut t = times.lock().unwrap();
                    let e = t.entry((query, v.name)).or_default();
                    e.0 += took;
                    e.1 += iters;
                    took
                })
            });
        }
        group.finish();
    }
    c.final_summary();

    let times = times.into_inner().unwrap();
    let mean = |q, v| {
        times
            .get(&(q, v))
            .map(|(d, n)| d.as_secs_f64() / (*n).max(1) as f64)
    };
    println!(
        "\n{SEGMENTS} segments x {ROWS} rows; storage latency {} ms + 100 MB/s; mean time and ratio to cold (same run)",
        LATENCY.as_millis()
    );
    for (query, _) in QUERIES {
        let Some(cold) = mean(query, "cold") else {
            continue;
        };
        let line: Vec<String> = VARIANTS
            .iter()
            .filter_map(|v| {
                mean(query, v)
                    .map(|t| format!("{v} {:>8.2} ms ({:>6.1}x faster)", t * 1e3, cold / t))
            })
            .collect();
        println!("  {query:<9} {}", line.join("   "));
    }
    for v in &setup.variants {
        let s = v.cache.status();
        println!(
            "  {:<5} storage requests {:>6}, bytes {:>11}; memory hits {}, disk hits {}, misses {}; \
             memory tier {} B, disk tier {} B",
            v.name,
            s.storage_reads.requests,
            s.storage_reads.bytes,
            s.counters.memory_hits,
            s.counters.disk_hits,
            s.counters.misses,
            s.memory_bytes,
            s.disk_bytes
        );
    }
}
