//! R-B3: a flipped byte, a truncated file, or a segment copied over another gives an integrity
//! error naming the segment, never rows; with and without double encryption.

use std::path::PathBuf;

use chrono::Duration;
use logvault_store::{AccountId, SegmentLocation, StoreError};

use crate::common::*;

struct Written {
    h: Harness,
    locs: Vec<SegmentLocation>,
}

async fn two_segments(double: bool) -> Written {
    let h = Harness::new().await;
    let account = if double {
        h.cluster_account(true).await
    } else {
        AccountId::service()
    };
    let mut locs = Vec::new();
    for i in 0..2 {
        let (entry, manifest) = h
            .store
            .append(
                &account,
                WS,
                TABLE,
                vec![log_batch(t0() + Duration::days(i), 2000, "i")],
            )
            .await
            .unwrap();
        locs.push(manifest.location(&entry));
    }
    Written { h, locs }
}

fn file_of(h: &Harness, loc: &SegmentLocation) -> PathBuf {
    h.storage()
        .join(loc.account.as_str())
        .join("objects")
        .join(loc.object_path().as_ref())
}

fn assert_integrity(
    result: Result<Vec<arrow::array::RecordBatch>, StoreError>,
    loc: &SegmentLocation,
) {
    match result {
        Err(StoreError::Integrity { segment, reason }) => {
            assert_eq!(segment, loc.to_string(), "{reason}");
            let text = StoreError::Integrity { segment, reason }.to_string();
            assert!(text.contains(&loc.segment.to_string()), "{text}");
        }
        Err(other) => panic!("expected an integrity error for {loc}, got: {other}"),
        Ok(rows) => panic!("tampered segment {loc} yielded {} batches", rows.len()),
    }
}

async fn flipped_bytes_are_caught(double: bool) {
    let w = two_segments(double).await;
    let loc = &w.locs[0];
    let path = file_of(&w.h, loc);
    let good = std::fs::read(&path).unwrap();
    // The start, the middle (data pages), near the end (footer) and the very last byte.
    let len = good.len();
    for pos in [0, 5, 41, len / 3, len / 2, len - 40, len - 9, len - 1] {
        let mut bad = good.clone();
        bad[pos] ^= 0x01;
        std::fs::write(&path, &bad).unwrap();
        assert_integrity(w.h.store.read_segment(loc, None).await, loc);
    }
    std::fs::write(&path, &good).unwrap();
    assert!(w.h.store.read_segment(loc, None).await.is_ok());
}

async fn truncation_is_caught(double: bool) {
    let w = two_segments(double).await;
    let loc = &w.locs[1];
    let path = file_of(&w.h, loc);
    let good = std::fs::read(&path).unwrap();
    for keep in [0, 4, 100, good.len() / 2, good.len() - 1] {
        std::fs::write(&path, &good[..keep]).unwrap();
        assert_integrity(w.h.store.read_segment(loc, None).await, loc);
    }
}

async fn a_segment_copied_over_another_is_caught(double: bool) {
    let w = two_segments(double).await;
    let (a, b) = (&w.locs[0], &w.locs[1]);
    std::fs::copy(file_of(&w.h, a), file_of(&w.h, b)).unwrap();
    assert_integrity(w.h.store.read_segment(b, None).await, b);
    assert!(w.h.store.read_segment(a, None).await.is_ok());
}

#[tokio::test]
async fn flipped_bytes_single_encryption() {
    flipped_bytes_are_caught(false).await;
}

#[tokio::test]
async fn flipped_bytes_double_encryption() {
    flipped_bytes_are_caught(true).await;
}

#[tokio::test]
async fn truncation_single_encryption() {
    truncation_is_caught(false).await;
}

#[tokio::test]
async fn truncation_double_encryption() {
    truncation_is_caught(true).await;
}

#[tokio::test]
async fn copy_over_single_encryption() {
    a_segment_copied_over_another_is_caught(false).await;
}

#[tokio::test]
async fn copy_over_double_encryption() {
    a_segment_copied_over_another_is_caught(true).await;
}

#[tokio::test]
async fn a_segment_moved_to_another_table_is_caught() {
    let w = two_segments(false).await;
    let from = &w.locs[0];
    let to = SegmentLocation::new(from.account.clone(), WS, "OtherTable", from.segment).unwrap();
    let dest = file_of(&w.h, &to);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(file_of(&w.h, from), &dest).unwrap();
    assert_integrity(w.h.store.read_segment(&to, None).await, &to);
}
