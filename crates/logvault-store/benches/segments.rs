//! Segment write and read throughput: plaintext Parquet (the baseline) against segments under
//! the service key, under a customer key, and with double encryption, on a few hundred thousand
//! generated log-like rows with a request id (which segments index, as they do by default), in
//! an in-memory object store so that the cost measured is encoding and encryption. After criterion's own report, prints each variant's time as a ratio to the
//! plaintext baseline measured in the same run.
//!
//! `cargo bench -p logvault-store --bench segments` (release build).

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

#[path = "../tests/it/common.rs"]
#[allow(dead_code)]
mod common;

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::Bytes;
use chrono::Duration;
use criterion::{Criterion, Throughput};
use logvault_core::TestClock;
use logvault_store::{
    AccountId, SegmentLocation, SegmentOptions, Store, StoreConfig, column_encodings, url_root,
};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::file::metadata::PageIndexPolicy;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use tokio::runtime::Runtime;

use common::*;

const ROWS: usize = 300_000;
const BATCH: usize = 8192;
const VARIANTS: [&str; 4] = [
    "plaintext",
    "service_key",
    "customer_key",
    "double_encryption",
];

/// Log rows with a request id unique per row (32 hex characters), which segments index for
/// lookups (the needle index, on by default) and the plaintext baseline does not.
fn rows() -> Vec<RecordBatch> {
    (0..ROWS)
        .step_by(BATCH)
        .map(|start| {
            let n = BATCH.min(ROWS - start);
            let batch = log_batch(t0() + Duration::seconds(start as i64), n, "bench");
            let ids = (start..start + n)
                .map(|i| {
                    format!(
                        "{:032x}",
                        (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
                    )
                })
                .collect();
            with_request_ids(&batch, ids)
        })
        .collect()
}

/// The same encoding as segments (their compression, page and row group sizes, column
/// encodings), without encryption.
fn plain_props(first: &RecordBatch) -> WriterProperties {
    let o = SegmentOptions::default();
    column_encodings(
        WriterProperties::builder(),
        first,
        o.compression.parquet().unwrap(),
    )
    .set_statistics_enabled(EnabledStatistics::Page)
    .set_max_row_group_row_count(Some(o.max_row_group_rows))
    .set_data_page_row_count_limit(o.data_page_rows)
    .set_write_batch_size(o.data_page_rows.clamp(1, 1024))
    .build()
}

async fn plain_write(store: &InMemory, path: &Path, batches: &[RecordBatch]) {
    let schema = batches[0].schema();
    let props = plain_props(&batches[0]);
    let mut w = ArrowWriter::try_new(Vec::new(), schema, Some(props)).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    store
        .put(path, PutPayload::from(w.into_inner().unwrap()))
        .await
        .unwrap();
}

async fn plain_read(store: &InMemory, path: &Path) -> usize {
    let bytes: Bytes = store.get(path).await.unwrap().bytes().await.unwrap();
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
    ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum()
}

struct Setup {
    rt: Runtime,
    store: Store,
    plain: InMemory,
    accounts: [AccountId; 3],
}

fn setup() -> Setup {
    let rt = Runtime::new().unwrap();
    let store = rt.block_on(async {
        let vault = Arc::new(FakeVault::default());
        vault.add_version(SERVICE_VAULT, SERVICE_KEY);
        vault.add_version(CUSTOMER_VAULT, CUSTOMER_KEY);
        let root = url_root("memory:///", Vec::<(String, String)>::new()).unwrap();
        let clock = Arc::new(TestClock::new(t0()));
        let store = Store::open(
            root,
            vault,
            service_binding(),
            StoreConfig::default(),
            clock,
        )
        .await
        .unwrap();
        store
            .create_account(&cluster(), &customer_binding(None), false)
            .await
            .unwrap();
        store
            .create_account(
                &AccountId::cluster("dbl1").unwrap(),
                &customer_binding(None),
                true,
            )
            .await
            .unwrap();
        store
    });
    Setup {
        rt,
        store,
        plain: InMemory::new(),
        accounts: [
            AccountId::service(),
            cluster(),
            AccountId::cluster("dbl1").unwrap(),
        ],
    }
}

fn bench_write(c: &mut Criterion, s: &Setup, batches: &[RecordBatch]) {
    let mut group = c.benchmark_group("segment_write");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));
    let path = Path::from("plain/seg.parquet");
    group.bench_function(VARIANTS[0], |b| {
        b.iter(|| {
            s.rt.block_on(async {
                plain_write(&s.plain, &path, batches).await;
                s.plain.delete(&path).await.unwrap();
            })
        })
    });
    for (name, account) in VARIANTS[1..].iter().zip(&s.accounts) {
        group.bench_function(*name, |b| {
            b.iter(|| {
                s.rt.block_on(async {
                    let e = s
                        .store
                        .write_segment(account, WS, TABLE, batches.to_vec())
                        .await
                        .unwrap();
                    let loc = SegmentLocation::new(account.clone(), WS, TABLE, e.id).unwrap();
                    s.store
                        .account(account)
                        .unwrap()
                        .objects()
                        .delete(&loc.object_path())
                        .await
                        .unwrap();
                })
            })
        });
    }
    group.finish();
}

fn bench_read(c: &mut Criterion, s: &Setup, batches: &[RecordBatch]) {
    let mut group = c.benchmark_group("segment_read");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));
    let path = Path::from("plain/seg.parquet");
    s.rt.block_on(plain_write(&s.plain, &path, batches));
    group.bench_function(VARIANTS[0], |b| {
        b.iter(|| assert_eq!(s.rt.block_on(plain_read(&s.plain, &path)), ROWS))
    });
    for (name, account) in VARIANTS[1..].iter().zip(&s.accounts) {
        let loc = s.rt.block_on(async {
            let e = s
                .store
                .write_segment(account, WS, TABLE, batches.to_vec())
                .await
                .unwrap();
            SegmentLocation::new(account.clone(), WS, TABLE, e.id).unwrap()
        });
        group.bench_function(*name, |b| {
            b.iter(|| {
                let got = s.rt.block_on(s.store.read_segment(&loc, None)).unwrap();
                assert_eq!(got.iter().map(RecordBatch::num_rows).sum::<usize>(), ROWS);
            })
        });
    }
    group.finish();
}

/// Where criterion keeps its estimates (as criterion itself decides it).
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("criterion"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion"),
    }
}

fn mean_ns(home: &std::path::Path, group: &str, name: &str) -> Option<f64> {
    let path = home.join(group).join(name).join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json.get("mean")?.get("point_estimate")?.as_f64()
}

fn print_ratios(home: &std::path::Path) {
    for group in ["segment_write", "segment_read"] {
        let Some(base) = mean_ns(home, group, VARIANTS[0]) else {
            continue;
        };
        println!("\n{group}: {ROWS} rows, time relative to plaintext Parquet (same run)");
        for name in VARIANTS {
            if let Some(t) = mean_ns(home, group, name) {
                let rate = ROWS as f64 / (t / 1e9);
                println!("  {name:<18} {:>6.2}x   {:>10.0} rows/s", t / base, rate);
            }
        }
    }
}

fn main() {
    let home = criterion_home();
    let mut c = Criterion::default()
        .output_directory(&home)
        .configure_from_args();
    let s = setup();
    let batches = rows();
    bench_write(&mut c, &s, &batches);
    bench_read(&mut c, &s, &batches);
    c.final_summary();
    print_ratios(&home);
}
