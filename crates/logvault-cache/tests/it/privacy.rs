//! R-F2: the disk tier holds no plaintext of any row, and what it holds is sealed again under
//! the service key (not a copy of the workspace's ciphertext), for service-key and customer-key
//! workspaces alike.

use std::sync::Arc;

use logvault_cache::HotCacheConfig;
use logvault_store::{AccountId, SegmentLocation};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::common::*;

const MARKERS: [&str; 2] = ["SVC-CANARY-7f3a", "CMK-CANARY-91bd"];

fn needles() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = MARKERS.iter().map(|m| m.as_bytes().to_vec()).collect();
    out.push(b"user login from".to_vec());
    out.push(b"host-03".to_vec());
    out.push(b"warning".to_vec());
    out
}

/// Whether `bytes` hold a Parquet file anywhere: its leading and trailing magic (`PAR1`, or
/// `PARE` for an encrypted footer) with a second magic after the first. A compressed page hides
/// its strings from a byte scan (zstd codes literals), but not the file's structure; two magics
/// in a row by chance in ciphertext are as likely as a 64-bit collision.
fn holds_parquet(bytes: &[u8]) -> bool {
    for magic in [b"PAR1", b"PARE"] {
        let at: Vec<usize> = bytes
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == magic)
            .map(|(i, _)| i)
            .collect();
        if at.len() >= 2 {
            return true;
        }
    }
    false
}

fn scan_for_plaintext(files: &[std::path::PathBuf]) {
    for file in files {
        let bytes = std::fs::read(file).unwrap();
        for needle in needles() {
            assert!(
                !contains(&bytes, &needle),
                "{} contains plaintext {:?}",
                file.display(),
                String::from_utf8_lossy(&needle)
            );
        }
        assert!(
            !holds_parquet(&bytes),
            "{} holds a Parquet file (plaintext or the stored ciphertext)",
            file.display()
        );
    }
}

/// The segment's file as stored (its Parquet encryption under the workspace's key).
fn stored_segment(h: &Harness, loc: &SegmentLocation) -> Vec<u8> {
    let path = h
        .dir
        .path()
        .join("storage")
        .join(loc.account.as_str())
        .join("objects")
        .join(loc.object_path().as_ref());
    std::fs::read(path).unwrap()
}

#[tokio::test]
async fn the_disk_tier_holds_no_plaintext_and_no_copy_of_the_stored_ciphertext() {
    let h = Harness::new().await;
    let cluster = h.cluster_account().await;
    let mut locs = Vec::new();
    for (account, ws, marker) in [
        (AccountId::service(), WS_A, MARKERS[0]),
        (cluster, WS_B, MARKERS[1]),
    ] {
        for day in 0..2 {
            locs.push(h.append(&account, ws, day, 3000, marker).await);
        }
    }
    let cache = h.cache(HotCacheConfig::default()).await;
    for ws in [WS_A, WS_B] {
        assert_eq!(cache.warm(ws).wait().await.segments_done, 2);
    }
    let files = files(&h.cache_dir());
    assert_eq!(files.len(), 4);
    scan_for_plaintext(&files);

    // Each cache file is sealed again: no 64-byte window of the stored segment appears in it.
    for loc in &locs {
        let stored = stored_segment(&h, loc);
        let mine: Vec<_> = files
            .iter()
            .filter(|f| f.to_string_lossy().contains(&loc.segment.to_string()))
            .collect();
        assert_eq!(mine.len(), 1, "{loc}");
        let cached = std::fs::read(mine[0]).unwrap();
        assert!(cached.len() > stored.len());
        for start in (0..stored.len() - 64).step_by(997) {
            assert!(
                !contains(&cached, &stored[start..start + 64]),
                "{} holds bytes of the stored segment at {start}",
                mine[0].display()
            );
        }
    }
}

/// The control: the same rows in a plaintext Parquet file, uncompressed and compressed with
/// zstd as segments are, are found by the scan, so the scan above can fail. The strings show in
/// the uncompressed file; the compressed one hides them, and is found by its structure.
#[test]
fn the_scan_finds_plaintext_in_an_unencrypted_file_compressed_or_not() {
    let batch = log_batch(t0(), 3000, MARKERS[0]);
    for compression in [
        Compression::UNCOMPRESSED,
        Compression::ZSTD(parquet::basic::ZstdLevel::default()),
    ] {
        let props = WriterProperties::builder()
            .set_compression(compression)
            .build();
        let mut writer =
            ArrowWriter::try_new(Vec::new(), Arc::clone(&batch.schema()), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        let bytes = writer.into_inner().unwrap();
        if compression == Compression::UNCOMPRESSED {
            for needle in needles().iter().filter(|n| !n.starts_with(b"CMK")) {
                assert!(
                    contains(&bytes, needle),
                    "{}",
                    String::from_utf8_lossy(needle)
                );
            }
        }
        assert!(holds_parquet(&bytes), "{compression:?}");
        // Even behind a header of another format, as a cache file would put it.
        let mut framed = b"LVCACHE-HEADER-0123456789".to_vec();
        framed.extend_from_slice(&bytes);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.parquet");
        std::fs::write(&path, framed).unwrap();
        let result = std::panic::catch_unwind(|| scan_for_plaintext(std::slice::from_ref(&path)));
        assert!(
            result.is_err(),
            "the scan missed plaintext ({compression:?})"
        );
    }
}
