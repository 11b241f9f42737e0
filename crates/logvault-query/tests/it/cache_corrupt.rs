//! A corrupt cache file is detected, dropped and counted, and the segment fetched again: it is
//! never served, neither while running nor after a restart.

use logvault_cache::HotCacheConfig;
use logvault_store::AccountId;

use crate::common::*;

fn disk_only() -> HotCacheConfig {
    HotCacheConfig {
        memory_bytes: 0,
        ..HotCacheConfig::default()
    }
}

/// Offset of the first byte of segment data in a cache file: past the prefix, the sealed
/// metadata and the body header.
fn body_start(file: &[u8]) -> usize {
    let meta_len = u32::from_le_bytes([file[8], file[9], file[10], file[11]]) as usize;
    12 + meta_len + 40
}

#[tokio::test]
async fn a_corrupt_cache_file_is_dropped_and_fetched_again_never_served() {
    let h = Harness::new().await;
    let victim = h.append(&AccountId::service(), WS_A, 0, 2000, "flip").await;
    h.append(&AccountId::service(), WS_A, 1, 2000, "keep").await;
    let expected = run(&h.session(WS_A, None).await, QUERIES[0]).await;
    let cache = h.cache(disk_only()).await;
    let session = h.session(WS_A, Some(&cache)).await;
    assert_eq!(run(&session, QUERIES[0]).await, expected);
    let filled = cache.read_counts();

    let path = files_of(&h.cache_dir(), WS_A)
        .into_iter()
        .find(|p| p.to_string_lossy().contains(&victim.segment.to_string()))
        .unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let at = body_start(&bytes) + 100;
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    assert_eq!(run(&session, QUERIES[0]).await, expected);
    let status = cache.status();
    assert_eq!(status.counters.corrupt_dropped, 1);
    let again = cache.read_counts();
    assert_eq!(
        again.requests,
        filled.requests + 1,
        "the segment was fetched again"
    );
    assert!(!path.exists(), "the corrupt file was deleted");
    let replaced: Vec<_> = files_of(&h.cache_dir(), WS_A)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&victim.segment.to_string()))
        .collect();
    assert_eq!(replaced.len(), 1);
    assert_eq!(status.disk_entries, 2);

    // The new copy serves the next query.
    assert_eq!(run(&session, QUERIES[0]).await, expected);
    assert_eq!(cache.read_counts(), again);
}

#[tokio::test]
async fn corrupt_files_are_dropped_when_the_cache_opens() {
    let h = Harness::new().await;
    for day in 0..4 {
        h.append(&AccountId::service(), WS_A, day, 500, "boot")
            .await;
    }
    let expected = run(&h.session(WS_A, None).await, QUERIES[1]).await;
    let cache = h.cache(disk_only()).await;
    assert_eq!(cache.warm(WS_A).wait().await.segments_done, 4);
    drop(cache);

    let files = files_of(&h.cache_dir(), WS_A);
    assert_eq!(files.len(), 4);
    // A flipped metadata byte, a truncated file, a file renamed over another segment's name.
    let mut meta = std::fs::read(&files[0]).unwrap();
    meta[14] ^= 0x80;
    std::fs::write(&files[0], meta).unwrap();
    let whole = std::fs::read(&files[1]).unwrap();
    std::fs::write(&files[1], &whole[..whole.len() - 7]).unwrap();
    let other = files[3].file_name().unwrap().to_string_lossy().into_owned();
    let (_, generation) = other.split_once('.').unwrap();
    let own = files[2].file_name().unwrap().to_string_lossy().into_owned();
    let (own_id, _) = own.split_once('.').unwrap();
    let moved = files[2].with_file_name(format!("{own_id}.x{generation}"));
    std::fs::rename(&files[3], &moved).unwrap();

    let cache = h.cache(disk_only()).await;
    let scan = cache.startup_scan();
    assert_eq!((scan.loaded, scan.dropped), (1, 3), "{scan:?}");
    assert_eq!(cache.status().counters.corrupt_dropped, 3);
    assert_eq!(files_of(&h.cache_dir(), WS_A).len(), 1);
    let session = h.session(WS_A, Some(&cache)).await;
    assert_eq!(run(&session, QUERIES[1]).await, expected);
    assert_eq!(cache.status().counters.disk_misses, 3);
}
