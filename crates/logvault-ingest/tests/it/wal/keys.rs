//! Keys per frame: each frame names its key, replay asks for each, a revoked key's records
//! are held, checkpointed frames need none.

use super::*;

#[tokio::test]
async fn frames_record_their_key_and_replay_asks_for_each() {
    let dir = tempfile::tempdir().unwrap();
    let mmk = key(WalKeyScheme::Service, "acct-mmk");
    let cmk = key(WalKeyScheme::Customer, "acct-cmk");
    let ring = Ring::new(&[&mmk, &cmk]);
    {
        let (wal, _) = open(dir.path(), &ring, WalOptions::default()).unwrap();
        append(&wal, &mmk, &[&batch(1, "m")]).await;
        append(&wal, &cmk, &[&batch(2, "c")]).await;
    }
    let ring2 = Ring::new(&[&mmk, &cmk]);
    let (_, rec) = open(dir.path(), &ring2, WalOptions::default()).unwrap();
    assert_eq!(rec.records.len(), 2);
    let mut asked = ring2.asked.lock().unwrap().clone();
    asked.sort();
    assert_eq!(asked, vec![mmk.key_ref().clone(), cmk.key_ref().clone()]);

    // A revoked key: its records are held (not replayed); an unreachable one fails the open.
    let mut revoked = Ring::new(&[&mmk]);
    revoked.keys.insert(cmk.key_ref().clone(), None);
    let (_, rec) = open(dir.path(), &revoked, WalOptions::default()).unwrap();
    assert_eq!((rec.records.len(), rec.held_revoked), (1, 1));
    let outage = Ring::new(&[&mmk]);
    let err = open(dir.path(), &outage, WalOptions::default()).unwrap_err();
    assert!(
        matches!(&err, IngestError::WalKeyUnavailable { key, .. } if key == "customer:acct-cmk"),
        "{err}"
    );
}

/// Regression: records acknowledged under a customer key that was revoked before they reached a
/// segment were dropped at the next replay, losing acknowledged rows (R-E3). They must be held
/// through replays and checkpoints while the key is revoked, and replayed once it is back.
#[tokio::test]
async fn records_under_a_revoked_key_are_held_until_the_key_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let mmk = key(WalKeyScheme::Service, "acct-mmk");
    let cmk = key(WalKeyScheme::Customer, "acct-cmk");
    let small = small_files();
    let acked = batch(2, "acked-under-cmk");
    {
        let (wal, _) = open(dir.path(), &Ring::new(&[&mmk, &cmk]), small.clone()).unwrap();
        append(&wal, &mmk, &[&batch(1, "before")]).await;
        assert_eq!(append(&wal, &cmk, &[&acked]).await, (2, 2));
        wal.close();
    }
    let mut revoked = Ring::new(&[&mmk]);
    revoked.keys.insert(cmk.key_ref().clone(), None);
    // While revoked: new records (say, under the service key after an unlink) are appended and
    // checkpointed past, and the log is reopened several times; the held record stays.
    for round in 0..3 {
        let (wal, rec) = open(dir.path(), &revoked, small.clone()).unwrap();
        assert_eq!(rec.held_revoked, 1, "round {round}");
        assert_eq!(rec.held_from, Some(2), "round {round}");
        assert!(rec.records.iter().all(|r| r.key == *mmk.key_ref()));
        let (_, last) = append(&wal, &mmk, &[&batch(3, &format!("after-{round}"))]).await;
        wal.checkpoint(last).await.unwrap();
        wal.close();
    }
    // The key is back: the held record is replayed, with the records after it that a
    // checkpoint could not pass; the checkpoint stopped just before it.
    let (wal, rec) = open(dir.path(), &Ring::new(&[&mmk, &cmk]), small.clone()).unwrap();
    assert_eq!(
        (rec.held_revoked, rec.held_from, rec.checkpoint),
        (0, None, 1)
    );
    let replayed: Vec<&RecoveredRecord> = rec.records.iter().filter(|r| r.seq == 2).collect();
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].batch, acked);
    assert_eq!(replayed[0].key, *cmk.key_ref());
    assert_eq!(rec.records.len(), 4);
    // Now a checkpoint can pass it, and the files before it go.
    let last = rec.records.iter().map(|r| r.seq).max().unwrap();
    wal.checkpoint(last).await.unwrap();
    wal.close();
    let (_, rec) = open(dir.path(), &Ring::new(&[&mmk, &cmk]), small).unwrap();
    assert!(rec.records.is_empty());
    assert_eq!(rec.checkpoint, last);
}

/// Regression (found as an intermittent failure of the engine's
/// `ingest_and_query_while_the_key_is_rotated_revoked_and_restored` under load): opening a log
/// asked the keyring for the key of every frame still on disk, also of frames the checkpoint had
/// passed (the last file is kept until the next open). With that key revoked and evicted, the
/// open failed with `WalKeyUnavailable` although nothing needed it: a query's replay, or any
/// writer of the workspace (now under another account), stopped.
#[tokio::test]
async fn checkpointed_frames_need_no_key_to_open_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(WalKeyScheme::Customer, "cluster-gone");
    {
        let (wal, _) = open(dir.path(), &Ring::new(&[&k]), WalOptions::default()).unwrap();
        append_groups(&wal, &k, 2).await;
        wal.checkpoint(2).await.unwrap();
    }
    assert_eq!(
        log_files(dir.path()).len(),
        1,
        "the checkpointed file is still there"
    );
    let none = Ring::new(&[]);
    let (wal, rec) = open(dir.path(), &none, WalOptions::default()).unwrap();
    assert_eq!(
        (rec.checkpoint, rec.records.len(), rec.held_revoked),
        (2, 0, 0)
    );
    drop(wal);

    // A record after the checkpoint does need its key: still an error, nothing dropped.
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = open(dir.path(), &Ring::new(&[&k]), WalOptions::default()).unwrap();
        append_groups(&wal, &k, 3).await;
        wal.checkpoint(2).await.unwrap();
    }
    match open(dir.path(), &none, WalOptions::default()) {
        Err(IngestError::WalKeyUnavailable { key, .. }) => assert!(key.contains("cluster-gone")),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a record after the checkpoint was opened without its key"),
    }
}
