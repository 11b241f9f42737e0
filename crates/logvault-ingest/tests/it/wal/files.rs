//! The log's files: checkpoints delete them, the shared layout's upgrade moves them, a reader
//! looks for records to replay from their headers alone.

use super::*;

#[tokio::test]
async fn checkpoints_delete_files_and_replay_starts_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(WalKeyScheme::Service, "acct");
    let ring = Ring::new(&[&k]);
    let small = small_files();
    {
        let (wal, _) = open(dir.path(), &ring, small.clone()).unwrap();
        append_groups(&wal, &k, 5).await;
        assert_eq!(
            log_files(dir.path()).len(),
            6,
            "one file per group, and the active one"
        );
        wal.checkpoint(3).await.unwrap();
        assert_eq!(log_files(dir.path()).len(), 3, "records 1-3 are gone");
        // A checkpoint never goes back, nor past what was written.
        wal.checkpoint(2).await.unwrap();
        wal.checkpoint(99).await.unwrap();
    }
    let (wal, rec) = open(dir.path(), &ring, small.clone()).unwrap();
    assert_eq!(rec.checkpoint, 5);
    assert!(rec.records.is_empty());
    assert_eq!(append(&wal, &k, &[&batch(1, "x")]).await, (6, 6));
    wal.close();
    let (_, rec) = open(dir.path(), &ring, small).unwrap();
    assert_eq!(
        rec.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![6]
    );
}

/// Regression (a home's second workspace could not ingest): homes written before each workspace
/// had a log directory of its own kept every log file and one checkpoint in the shared root.
/// The upgrade moves the files to the workspace they belong to, keeps their unreplayed records,
/// and starts every other workspace's numbers after the shared log's, so that replay never
/// mistakes a new record for one a segment already holds.
#[tokio::test]
async fn the_shared_layout_upgrade_moves_files_to_their_workspace_and_keeps_numbers_rising() {
    use logvault_ingest::wal::{upgrade_shared_layout, workspace_dir};
    let root = tempfile::tempdir().unwrap();
    let k = key(WalKeyScheme::Service, "acct-mmk");
    let ring = Ring::new(&[&k]);
    let small = small_files();
    // The old layout: WS's log in the root itself, checkpointed part-way, records after it.
    {
        let (wal, _) = open(root.path(), &ring, small.clone()).unwrap();
        append_groups(&wal, &k, 6).await;
        wal.checkpoint(2).await.unwrap();
        wal.close();
    }
    // Another workspace's directory (its lock and counters lived there already).
    std::fs::create_dir(root.path().join("ws-other")).unwrap();
    assert!(!log_files(root.path()).is_empty());

    let report = upgrade_shared_layout(root.path()).unwrap();
    assert_eq!(report.floor, 6, "{report:?}");
    assert_eq!(report.floored, vec!["ws-other".to_owned()]);
    assert!(report.moved.get(WS).is_some_and(|n| *n > 0), "{report:?}");
    assert!(log_files(root.path()).is_empty(), "files left in the root");
    assert!(!root.path().join("checkpoint").exists());

    // WS replays exactly the records after the shared checkpoint, and goes on numbering.
    let (wal, rec) = open(&workspace_dir(root.path(), WS), &ring, small.clone()).unwrap();
    let seqs: Vec<u64> = rec.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![3, 4, 5, 6]);
    assert_eq!(append(&wal, &k, &[&batch(1, "next")]).await, (7, 7));
    wal.close();
    // The other workspace starts after every number the shared log gave out.
    let other = workspace_dir(root.path(), "ws-other");
    let (wal, rec) = Wal::open(&other, "ws-other", small.clone(), &ring).unwrap();
    assert!(rec.records.is_empty());
    assert_eq!(append(&wal, &k, &[&batch(1, "other")]).await, (7, 7));
    wal.close();

    // Run again (a second process, or after a crash once done): nothing to do.
    assert!(upgrade_shared_layout(root.path()).unwrap().is_empty());
}

/// A crash during the upgrade, after the files moved but before the shared checkpoint was
/// removed, is finished by the next run without changing the owner's checkpoint.
#[tokio::test]
async fn an_interrupted_layout_upgrade_is_finished_by_the_next_run() {
    use logvault_ingest::wal::{upgrade_shared_layout, workspace_dir};
    let root = tempfile::tempdir().unwrap();
    let k = key(WalKeyScheme::Service, "acct-mmk");
    let ring = Ring::new(&[&k]);
    {
        let (wal, _) = open(root.path(), &ring, small_files()).unwrap();
        append_groups(&wal, &k, 4).await;
        wal.checkpoint(1).await.unwrap();
        wal.close();
    }
    let checkpoint = std::fs::read(root.path().join("checkpoint")).unwrap();
    upgrade_shared_layout(root.path()).unwrap();
    // As if the last step had not happened.
    std::fs::write(root.path().join("checkpoint"), &checkpoint).unwrap();
    let report = upgrade_shared_layout(root.path()).unwrap();
    assert!(report.moved.is_empty(), "{report:?}");
    assert!(!root.path().join("checkpoint").exists());
    let (_, rec) = open(&workspace_dir(root.path(), WS), &ring, small_files()).unwrap();
    let seqs: Vec<u64> = rec.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![2, 3, 4]);

    // A file in the root whose header names no valid workspace is refused, not followed.
    let bogus = root.path().join("wal-00000000000000000009.lvw");
    let mut bytes = b"LVWAL\x01\x00\x00".to_vec();
    bytes.extend_from_slice(&9u64.to_le_bytes());
    bytes.extend_from_slice(&5u16.to_le_bytes());
    bytes.extend_from_slice(b"../..");
    std::fs::write(&bogus, bytes).unwrap();
    let err = upgrade_shared_layout(root.path()).unwrap_err();
    assert!(err.to_string().contains("not a workspace name"), "{err}");
    assert!(bogus.exists());
}

/// A reader (a query) asks whether there is anything to replay from the clear frame headers,
/// without opening the log (which would start a new file) and without any key.
#[tokio::test]
async fn needs_replay_reads_only_headers_and_sees_records_past_the_checkpoint() {
    use logvault_ingest::wal::needs_replay;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    assert!(!needs_replay(&missing, WS).unwrap());
    let k = key(WalKeyScheme::Service, "acct-mmk");
    let ring = Ring::new(&[&k]);
    let (wal, _) = open(dir.path(), &ring, WalOptions::default()).unwrap();
    assert!(!needs_replay(dir.path(), WS).unwrap(), "an empty log");
    append_groups(&wal, &k, 3).await;
    assert!(
        needs_replay(dir.path(), WS).unwrap(),
        "records after the checkpoint"
    );
    wal.checkpoint(3).await.unwrap();
    assert!(!needs_replay(dir.path(), WS).unwrap(), "all checkpointed");
    wal.close();
    let files_before = log_files(dir.path());
    assert!(!needs_replay(dir.path(), WS).unwrap());
    assert_eq!(log_files(dir.path()), files_before, "asking wrote a file");
    // A torn tail is something to repair: opening must see it.
    let last = files_before.last().unwrap();
    let mut bytes = std::fs::read(last).unwrap();
    bytes.extend_from_slice(b"LVWF\x40");
    std::fs::write(last, bytes).unwrap();
    assert!(needs_replay(dir.path(), WS).unwrap());
}
