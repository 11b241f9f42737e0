//! Several workspaces in one home: each has a write-ahead log of its own.
//!
//! Regression (a home's second workspace could not ingest): every workspace's log files were
//! kept in `HOME/wal` itself, so the second workspace to ingest found the first one's files and
//! refused them as corrupt.

use std::io::{BufReader, Read};

use logvault::IngestOptions;
use logvault::ingest::Format;

use crate::common::{Home, home};

const OTHER: &str = "ws-other";

/// A sender that sends `payload`, then drops the connection: the rows acknowledged before the
/// cut are in the workspace's log only, as after a crash.
async fn ingest_then_cut(h: &Home, ws: &str, tag: &str, rows: usize) -> u64 {
    struct Cut;
    impl Read for Cut {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("connection reset by the sender"))
        }
    }
    let payload = Home::lines(tag, 0, rows).join("\n") + "\n";
    let mut options = IngestOptions::new(Format::JsonLines);
    options.parse.batch_rows = 10;
    let mut acked = 0;
    let err = h
        .engine
        .ingest(
            ws,
            "AppLogs",
            BufReader::with_capacity(512, std::io::Cursor::new(payload).chain(Cut)),
            &options,
            Some(&mut |p| acked = p.accepted),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("connection reset"), "{err}");
    assert!(acked >= 10, "nothing acknowledged before the cut");
    acked
}

#[tokio::test]
async fn two_workspaces_of_one_home_each_ingest_and_query_their_own_rows() {
    let h = home().await;
    h.workspace("alpha");
    h.workspace(OTHER);
    let a = h.ingest("alpha", "App", &Home::lines("a", 0, 7)).await;
    let b = h.ingest(OTHER, "App", &Home::lines("b", 0, 5)).await;
    assert_eq!((a.accepted, b.accepted), (7, 5));
    // And again, in the other order, from another process on the same home.
    let engine = h.reopen().await;
    h.ingest_with(&engine, OTHER, "App", &Home::lines("b", 100, 3))
        .await;
    h.ingest_with(&engine, "alpha", "App", &Home::lines("a", 100, 2))
        .await;
    assert_eq!(h.count(&engine, "alpha", "App").await.unwrap(), 9);
    assert_eq!(h.count(&engine, OTHER, "App").await.unwrap(), 8);
    let tags = h
        .column(&engine, OTHER, "SELECT DISTINCT Tag FROM App")
        .await
        .unwrap();
    assert_eq!(tags, vec!["b".to_owned()]);
    // Each log lives in its workspace's directory; none in the shared one.
    let wal = h.dir.path().join("wal");
    for ws in ["alpha", OTHER] {
        assert!(wal.join(ws).join("checkpoint").exists(), "{ws}");
    }
    let shared: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name())
        .collect();
    assert!(shared.is_empty(), "files in HOME/wal: {shared:?}");
}

#[tokio::test]
async fn interrupted_ingests_into_several_workspaces_replay_each_exactly_once() {
    let h = home().await;
    h.workspace("alpha");
    h.workspace(OTHER);
    let acked_a = ingest_then_cut(&h, "alpha", "a", 60).await;
    let acked_b = ingest_then_cut(&h, OTHER, "b", 45).await;
    // Another process replays each workspace's log before its query, and only that one's.
    let engine = h.reopen().await;
    assert_eq!(h.count(&engine, "alpha", "AppLogs").await.unwrap(), acked_a);
    assert_eq!(h.count(&engine, OTHER, "AppLogs").await.unwrap(), acked_b);
    let distinct = h
        .column(
            &engine,
            OTHER,
            "SELECT count(DISTINCT Seq) FROM AppLogs WHERE Tag = 'b'",
        )
        .await
        .unwrap();
    assert_eq!(distinct, vec![acked_b.to_string()]);
    // Replayed once: new ingests and another reopen add nothing twice.
    h.ingest_with(&engine, "alpha", "AppLogs", &Home::lines("a2", 500, 3))
        .await;
    let engine = h.reopen().await;
    assert_eq!(
        h.count(&engine, "alpha", "AppLogs").await.unwrap(),
        acked_a + 3
    );
    assert_eq!(h.count(&engine, OTHER, "AppLogs").await.unwrap(), acked_b);
}

/// A home written by an earlier version: its only workspace's unreplayed log in `HOME/wal`
/// itself. Opening it moves the log to the workspace's directory and replays it there; a second
/// workspace can then ingest.
#[tokio::test]
async fn a_home_with_its_log_in_the_shared_directory_is_upgraded_at_open() {
    let h = home().await;
    h.workspace("alpha");
    let acked = ingest_then_cut(&h, "alpha", "a", 50).await;
    // Put the home in the old layout: the workspace's log files and checkpoint in HOME/wal.
    let wal = h.dir.path().join("wal");
    for entry in std::fs::read_dir(wal.join("alpha")).unwrap().flatten() {
        let name = entry.file_name();
        let name = name.to_str().unwrap();
        if name == "checkpoint" || name.ends_with(".lvw") {
            std::fs::rename(entry.path(), wal.join(name)).unwrap();
        }
    }
    let root_logs = || {
        std::fs::read_dir(&wal)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_str().unwrap().ends_with(".lvw"))
            .count()
    };
    assert!(root_logs() > 0);

    let engine = h.reopen().await;
    assert_eq!(root_logs(), 0, "not upgraded");
    assert!(!wal.join("checkpoint").exists());
    assert_eq!(h.count(&engine, "alpha", "AppLogs").await.unwrap(), acked);
    engine
        .control()
        .create_workspace(logvault::control::WorkspaceSpec::new(OTHER))
        .unwrap();
    let r = h
        .ingest_with(&engine, OTHER, "AppLogs", &Home::lines("b", 0, 4))
        .await;
    assert_eq!(r.accepted, 4);
    assert_eq!(h.count(&engine, OTHER, "AppLogs").await.unwrap(), 4);
    assert_eq!(h.count(&engine, "alpha", "AppLogs").await.unwrap(), acked);
}
