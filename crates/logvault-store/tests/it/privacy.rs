//! R-B2: no plaintext value of any row appears anywhere in the storage directory.

use std::sync::Arc;

use chrono::Duration;
use logvault_store::{AccountId, SegmentCompression, SegmentOptions, StoreConfig};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::common::*;

const MARKERS: [&str; 3] = ["SVC-CANARY-7f3a", "CMK-CANARY-91bd", "DBL-CANARY-c24e"];

/// Strings every row carries (markers, host names, message fragments).
fn needles() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = MARKERS.iter().map(|m| m.as_bytes().to_vec()).collect();
    out.push(b"user login from".to_vec());
    out.push(b"host-03".to_vec());
    out.push(b"warning".to_vec());
    out
}

async fn fill(config: StoreConfig) -> Harness {
    let h = Harness::with_config(config).await;
    let cluster = h.cluster_account(false).await;
    let double = logvault_store::AccountId::cluster("dbl1").unwrap();
    h.store
        .create_account(&double, &customer_binding(None), true)
        .await
        .unwrap();
    for (account, marker) in [
        (AccountId::service(), MARKERS[0]),
        (cluster, MARKERS[1]),
        (double, MARKERS[2]),
    ] {
        for day in 0..2 {
            h.store
                .append(
                    &account,
                    WS,
                    TABLE,
                    vec![log_batch(t0() + Duration::days(day), 3000, marker)],
                )
                .await
                .unwrap();
        }
    }
    h
}

fn scan(h: &Harness) -> usize {
    let files = files(&h.storage());
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for needle in needles() {
            assert!(
                !contains(&bytes, &needle),
                "{} contains plaintext {:?}",
                file.display(),
                String::from_utf8_lossy(&needle)
            );
        }
    }
    files.len()
}

#[tokio::test]
async fn no_plaintext_anywhere_with_default_compression() {
    let h = fill(StoreConfig::default()).await;
    // segments (6), catalog versions (6), account metadata (3), key records (3 + 1 infra)
    assert!(scan(&h) >= 19);
}

#[tokio::test]
async fn no_plaintext_anywhere_even_uncompressed() {
    // Without compression, any unencrypted page would hold the strings verbatim.
    let config = StoreConfig {
        segments: SegmentOptions {
            compression: SegmentCompression::Uncompressed,
            ..SegmentOptions::default()
        },
        ..StoreConfig::default()
    };
    let h = fill(config).await;
    assert!(scan(&h) >= 19);
}

#[test]
fn the_scan_finds_plaintext_in_an_unencrypted_file() {
    // The control: the same rows in a plaintext Parquet file do contain the needles, so the
    // scans above can fail.
    let batch = log_batch(t0(), 3000, MARKERS[0]);
    let props = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .build();
    let mut writer = ArrowWriter::try_new(
        Vec::new(),
        Arc::new(batch.schema().as_ref().clone()),
        Some(props),
    )
    .unwrap();
    writer.write(&batch).unwrap();
    let bytes = writer.into_inner().unwrap();
    for needle in needles()
        .into_iter()
        .filter(|n| !n.starts_with(b"CMK") && !n.starts_with(b"DBL"))
    {
        assert!(
            contains(&bytes, &needle),
            "{}",
            String::from_utf8_lossy(&needle)
        );
    }
}
