//! Bulk loads (`IngestOptions::load`, what `logvault ingest FILE` does): rows stored without
//! the write-ahead log, acknowledged at checkpoints that list everything read before them in
//! one catalog update, so that what is stored is always a prefix of the input.

use std::io::Cursor;
use std::path::Path;

use logvault::{IngestOptions, LoadOptions};

use crate::common::{
    Home, KEY, VAULT, WS, cut_before_the_end, home, linked_home, revoked_half_way, ten_row_batches,
};

/// Ten-row batches, a checkpoint every `rows` rows.
fn load_every(rows: u64) -> IngestOptions {
    IngestOptions {
        load: Some(LoadOptions {
            interval: None,
            rows: Some(rows),
        }),
        ..ten_row_batches()
    }
}

/// Bytes of the workspace's write-ahead log files.
fn log_bytes(h: &Home) -> u64 {
    let dir = h.dir.path().join("wal").join(WS);
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".lvw"))
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .sum()
        })
        .unwrap_or(0)
}

/// Segment files of `table` in the home's storage, listed or not.
fn segment_files(home: &Path, table: &str) -> usize {
    fn walk(dir: &Path, needle: &str, n: &mut usize) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, needle, n);
            } else if path.to_string_lossy().contains(needle)
                && path.extension().is_some_and(|x| x == "parquet")
            {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(
        &home.join("storage"),
        &format!("/segments/{WS}/{table}/"),
        &mut n,
    );
    n
}

async fn listed_segments(h: &Home) -> u64 {
    let status = h.engine.status(Some(WS)).await.unwrap();
    status
        .workspaces
        .iter()
        .find(|w| w.name == WS)
        .unwrap()
        .segments
}

#[tokio::test]
async fn a_load_stores_every_row_without_the_log_and_acknowledges_at_checkpoints() {
    let h = home().await;
    h.workspace(WS);
    let payload = Home::lines("bulk", 0, 45).join("\n") + "\n";
    let mut acks = Vec::new();
    let r = h
        .engine
        .ingest(
            WS,
            "AppLogs",
            Cursor::new(payload),
            &load_every(20),
            Some(&mut |p| {
                if acks.last() != Some(&p.accepted) {
                    acks.push(p.accepted);
                }
            }),
        )
        .await
        .unwrap();
    assert_eq!((r.accepted, r.dropped), (45, 0), "{r:?}");
    // Checkpoints after 20 and 40 rows (ten-row batches), and at the end.
    assert_eq!(acks, vec![0, 20, 40, 45]);
    assert_eq!(
        r.segments, 3,
        "one segment per checkpoint (one day partition): {r:?}"
    );
    assert!(
        log_bytes(&h) < 100,
        "the load wrote {} bytes to the log",
        log_bytes(&h)
    );
    // Another process sees every row, once.
    let other = h.reopen().await;
    let seqs = h
        .column(
            &other,
            WS,
            "SELECT count(DISTINCT Seq), count(*) FROM AppLogs",
        )
        .await
        .unwrap();
    assert_eq!(seqs, vec!["45"]);
    assert_eq!(h.count(&other, WS, "AppLogs").await.unwrap(), 45);

    // The same rows ingested as a stream go through the log (so the check above can fail).
    h.ingest(WS, "Logged", &Home::lines("bulk", 0, 45)).await;
    assert!(
        log_bytes(&h) > 1000,
        "a logged ingest left {} bytes",
        log_bytes(&h)
    );
}

#[tokio::test]
async fn a_load_cut_part_way_keeps_the_rows_its_checkpoints_stored_and_no_more() {
    let h = home().await;
    h.workspace(WS);
    let payload = Home::lines("cut", 0, 45).join("\n") + "\n";
    let mut acked = 0;
    let err = h
        .engine
        .ingest(
            WS,
            "AppLogs",
            cut_before_the_end(payload),
            &load_every(20),
            Some(&mut |p| acked = p.accepted),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("connection reset"), "{err}");
    assert_eq!(acked, 40);
    // Exactly the rows of the two checkpoints, a prefix of the input; the five rows read after
    // the last one are not stored, and their segment's file was deleted.
    let seqs = h
        .column(&h.engine, WS, "SELECT Seq FROM AppLogs ORDER BY Seq")
        .await
        .unwrap();
    let expected: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    assert_eq!(seqs, expected);
    let listed = listed_segments(&h).await;
    assert_eq!(listed, 2);
    assert_eq!(segment_files(h.dir.path(), "AppLogs") as u64, listed);
}

#[tokio::test]
async fn a_revocation_during_a_load_drops_what_no_checkpoint_stored_and_counts_it() {
    let h = linked_home().await;
    let payload = Home::lines("stream", 0, 40).join("\n") + "\n";
    // The revocation waits until the first checkpoint (20 rows) has stored its rows.
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = revoked_half_way(&h, payload, acked.clone());
    let r = h
        .engine
        .ingest(
            WS,
            "AppLogs",
            reader,
            &load_every(20),
            Some(&mut |p| acked.store(p.accepted, std::sync::atomic::Ordering::SeqCst)),
        )
        .await
        .unwrap();
    assert_eq!((r.accepted, r.dropped), (20, 20), "{r:?}");
    let reason = r.reason.clone().unwrap();
    assert!(
        reason.contains("revoked") && reason.contains(WS),
        "{reason}"
    );
    let status = h.engine.status(Some(WS)).await.unwrap();
    let ws = status.workspaces.iter().find(|w| w.name == WS).unwrap();
    assert_eq!(ws.dropped_rows, 20);
    // Only the checkpoint's segment is stored: no file of the dropped rows stays.
    assert_eq!(segment_files(h.dir.path(), "AppLogs") as u64, ws.segments);
    assert_eq!(ws.segments, 1);

    h.engine
        .vault()
        .set_key_enabled(VAULT, KEY, None, true)
        .unwrap();
    h.pass_check_interval();
    let seqs = h
        .column(&h.engine, WS, "SELECT Seq FROM AppLogs ORDER BY Seq")
        .await
        .unwrap();
    let expected: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    assert_eq!(seqs, expected);
}
