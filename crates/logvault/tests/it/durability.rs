//! Acknowledged rows and revocation (R-E3 with R-E2): revocation drops the data that arrives
//! while it lasts, never rows that were acknowledged before it.

use std::io::BufReader;

use crate::common::{
    Home, KEY, Scripted, VAULT, WS, cut_before_the_end, linked_home, revoked_half_way,
    ten_row_batches, wait_until,
};

/// Regression: rows acknowledged under the customer key, still only in the write-ahead log when
/// the key was revoked, were dropped (and reported as dropped) by the next replay of the log,
/// here the first ingest after an unlink. They must wait in the log and be replayed, exactly
/// once, when the key is back.
#[tokio::test]
async fn rows_acknowledged_before_a_revocation_are_replayed_after_the_restore() {
    let h = linked_home().await;

    let payload = Home::lines("inflight", 0, 40).join("\n") + "\n";
    let options = ten_row_batches();
    let mut acked = 0;
    let err = h
        .engine
        .ingest(
            WS,
            "AppLogs",
            // An ingest that stops part-way, after some batches were acknowledged (in the log)
            // and before they reached a segment.
            cut_before_the_end(payload),
            &options,
            Some(&mut |p| acked = p.accepted),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("connection reset"), "{err}");
    assert!(
        acked >= 10,
        "nothing was acknowledged before the cut: {acked}"
    );

    // Revoked; then unlinked, so that new data goes under the service key and its ingest
    // replays the log while the customer key is still revoked.
    h.engine
        .vault()
        .set_key_enabled(VAULT, KEY, None, false)
        .unwrap();
    h.pass_check_interval();
    h.engine.control().unlink_workspace(WS).unwrap();
    let r = h.ingest(WS, "AppLogs", &Home::lines("after", 100, 5)).await;
    assert_eq!((r.accepted, r.dropped), (5, 0), "{r:?}");

    // The key is back: every acknowledged row is there, once.
    h.engine
        .vault()
        .set_key_enabled(VAULT, KEY, None, true)
        .unwrap();
    h.pass_check_interval();
    let seqs = h
        .column(
            &h.engine,
            WS,
            "SELECT Seq FROM AppLogs WHERE Tag = 'inflight' ORDER BY Seq",
        )
        .await
        .unwrap();
    let expected: Vec<String> = (0..acked).map(|i| i.to_string()).collect();
    assert_eq!(seqs, expected, "acknowledged rows lost or duplicated");
    assert_eq!(h.count(&h.engine, WS, "AppLogs").await.unwrap(), acked + 5);
}

/// A revocation stops a running ingest too (a long file, an endless pipe): the rows acknowledged
/// before it stay in the log, are not written under the revoked key, and are readable after the
/// restore; the rest is dropped, counted and reported.
#[tokio::test]
async fn a_revocation_during_an_ingest_drops_the_rest_of_it_and_counts_it() {
    let h = linked_home().await;

    let payload = Home::lines("stream", 0, 40).join("\n") + "\n";
    let options = ten_row_batches();
    // Once half of the input has been read (ahead of the writer), and the writer has
    // acknowledged a batch, the key is revoked and the next check is due.
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = revoked_half_way(&h, payload, acked.clone());
    let r = h
        .engine
        .ingest(
            WS,
            "AppLogs",
            reader,
            &options,
            Some(&mut |p| acked.store(p.accepted, std::sync::atomic::Ordering::SeqCst)),
        )
        .await
        .unwrap();
    assert_eq!(r.accepted + r.dropped, 40, "{r:?}");
    assert!(r.accepted > 0 && r.dropped > 0, "{r:?}");
    // Nothing is written under the revoked key: the acknowledged rows wait in the log.
    assert_eq!(r.segments, 0, "{r:?}");
    let reason = r.reason.clone().unwrap();
    assert!(
        reason.contains("revoked") && reason.contains(WS),
        "{reason}"
    );
    let status = h.engine.status(Some(WS)).await.unwrap();
    let ws = status.workspaces.iter().find(|w| w.name == WS).unwrap();
    assert_eq!(ws.dropped_rows, r.dropped);

    h.engine
        .vault()
        .set_key_enabled(VAULT, KEY, None, true)
        .unwrap();
    h.pass_check_interval();
    assert_eq!(h.count(&h.engine, WS, "AppLogs").await.unwrap(), r.accepted);
}

/// Rows dropped from a long or endless stream reach the workspace's counters (and so `status`)
/// while the stream runs, not only when it ends.
#[tokio::test]
async fn dropped_rows_of_a_running_stream_show_before_it_ends() {
    let h = linked_home().await;
    h.engine
        .vault()
        .set_key_enabled(VAULT, KEY, None, false)
        .unwrap();
    h.pass_check_interval();

    let payload = Home::lines("stream", 0, 40).join("\n") + "\n";
    let options = ten_row_batches();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    // The clock moves a second per read; at the end of the input, before the ingest returns, the
    // dropped count the workspace's counters show is recorded.
    let clock = h.clock.clone();
    let counters = h.dir.path().join("wal").join(WS).join("counters.json");
    let seen_before_end = seen.clone();
    let shown = move || {
        std::fs::read(&counters)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["droppedRows"].as_u64())
    };
    let reader = Scripted::new(payload, move |left| {
        clock.advance(chrono::Duration::seconds(1));
        (left == 0).then(|| {
            // The input is read ahead of the counting: give the counting a moment to catch up
            // (it records at most once a second on the engine's clock, which moved per read).
            wait_until(|| shown().is_some_and(|n| n > 0));
            *seen_before_end.lock().unwrap() = shown();
            Ok(0)
        })
    });
    let r = h
        .engine
        .ingest(
            WS,
            "AppLogs",
            BufReader::with_capacity(512, reader),
            &options,
            None,
        )
        .await
        .unwrap();
    assert_eq!((r.accepted, r.dropped), (0, 40), "{r:?}");
    let shown = seen
        .lock()
        .unwrap()
        .expect("no counters while the stream ran");
    // Counted while reading (the rows already parsed when the input ended), not only at the end;
    // and counted once: the status shows 40 in all.
    assert!(shown > 0, "counters showed {shown} before the end");
    let status = h.engine.status(Some(WS)).await.unwrap();
    let ws = status.workspaces.iter().find(|w| w.name == WS).unwrap();
    assert_eq!(ws.dropped_rows, 40);
}
