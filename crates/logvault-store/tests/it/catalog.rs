//! The catalog: conditional updates lose nothing under concurrency; manifests are sealed.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Duration;
use logvault_store::{
    AccountId, DEFAULT_RETENTION_DAYS, SegmentEntry, Store, StoreConfig, StoreError,
};
use logvault_testkit::faults::{Fault, FaultyStore, Op};

use crate::common::*;

fn entry(i: u32) -> SegmentEntry {
    SegmentEntry {
        id: logvault_store::SegmentId::generate(),
        account: AccountId::service(),
        min_time: t0(),
        max_time: t0() + Duration::seconds(i64::from(i)),
        rows: u64::from(i),
        bytes: 1000,
        schema: log_schema(),
        key_scheme: logvault_store::KeyScheme::Service {
            key_version: "1".into(),
        },
        epoch: 1,
        created: t0(),
        wal: Vec::new(),
    }
}

#[tokio::test]
async fn concurrent_writers_in_two_processes_lose_no_update() {
    let h = Harness::new().await;
    let second = h.reopen().await;
    let Harness {
        dir: _dir, store, ..
    } = h;
    let stores = Arc::new([store, second]);
    let writers = 8u32;
    let per_writer = 6u32;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let stores = stores.clone();
        tasks.push(tokio::spawn(async move {
            let store = &stores[(w % 2) as usize];
            let mut ids = Vec::new();
            for i in 0..per_writer {
                let e = entry(w * 100 + i);
                ids.push(e.id);
                store
                    .catalog()
                    .add_segments(WS, TABLE, t0(), vec![e])
                    .await
                    .unwrap();
            }
            ids
        }));
    }
    let mut expected = HashSet::new();
    for t in tasks {
        expected.extend(t.await.unwrap());
    }
    let manifest = stores[0].catalog().manifest(WS, TABLE).await.unwrap();
    let got: HashSet<_> = manifest.segments.iter().map(|s| s.id).collect();
    assert_eq!(got, expected);
    assert_eq!(manifest.version, u64::from(writers * per_writer));
    assert_eq!(
        stores[1].catalog().manifest(WS, TABLE).await.unwrap(),
        manifest
    );
}

#[tokio::test]
async fn manifests_carry_retention_and_list_tables() {
    let h = Harness::new().await;
    let catalog = h.store.catalog();
    assert_eq!(catalog.manifest(WS, TABLE).await.unwrap().version, 0);
    assert_eq!(
        catalog.manifest(WS, TABLE).await.unwrap().retention_days,
        DEFAULT_RETENTION_DAYS
    );
    catalog.set_retention(WS, TABLE, t0(), 7).await.unwrap();
    catalog
        .add_segments(WS, "Other", t0(), vec![entry(1)])
        .await
        .unwrap();
    catalog
        .add_segments("ws-two", TABLE, t0(), vec![entry(2)])
        .await
        .unwrap();
    let m = catalog.manifest(WS, TABLE).await.unwrap();
    assert_eq!((m.version, m.retention_days), (1, 7));
    let err = catalog.set_retention(WS, TABLE, t0(), 0).await.unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidRetention { .. }) && err.to_string().contains(TABLE),
        "{err}"
    );
    assert_eq!(catalog.workspaces().await.unwrap(), [WS, "ws-two"]);
    assert_eq!(catalog.tables(WS).await.unwrap(), ["Other", TABLE]);
    // Removing leaves the others.
    let e = entry(3);
    let id = e.id;
    catalog
        .add_segments(WS, TABLE, t0(), vec![e, entry(4)])
        .await
        .unwrap();
    let m = catalog
        .remove_segments(WS, TABLE, t0(), &[id])
        .await
        .unwrap();
    assert_eq!(m.segments.len(), 1);
    assert_ne!(m.segments[0].id, id);
}

#[tokio::test]
async fn a_tampered_manifest_is_an_integrity_error_naming_the_table() {
    let h = Harness::new().await;
    h.store
        .catalog()
        .add_segments(WS, TABLE, t0(), vec![entry(1)])
        .await
        .unwrap();
    let dir = h
        .storage()
        .join("service/objects/catalog")
        .join(WS)
        .join(TABLE);
    let file = files(&dir).pop().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&file, &bytes).unwrap();
    let err = h.store.catalog().manifest(WS, TABLE).await.unwrap_err();
    assert!(matches!(err, StoreError::ManifestIntegrity { .. }), "{err}");
    assert!(
        err.to_string().contains(TABLE) && err.to_string().contains(WS),
        "{err}"
    );
    // A manifest of another table copied over this one does not open either.
    h.store
        .catalog()
        .add_segments(WS, "Other", t0(), vec![entry(2)])
        .await
        .unwrap();
    let other = files(
        &h.storage()
            .join("service/objects/catalog")
            .join(WS)
            .join("Other"),
    )
    .pop()
    .unwrap();
    std::fs::copy(other, &file).unwrap();
    assert!(
        h.store
            .catalog()
            .manifest(WS, TABLE)
            .await
            .unwrap_err()
            .is_integrity()
    );
}

/// The directory of the test table's manifest versions.
fn manifest_dir(h: &Harness) -> std::path::PathBuf {
    h.storage()
        .join("service/objects/catalog")
        .join(WS)
        .join(TABLE)
}

/// The manifest files of the test table, by version number.
fn manifest_versions(h: &Harness) -> Vec<u64> {
    let mut out: Vec<u64> = std::fs::read_dir(manifest_dir(h))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".manifest")?.parse().ok()
        })
        .collect();
    out.sort_unstable();
    out
}

/// The manifest files once the updates up to `latest` deleted what they delete (each right
/// after its version; waits up to 5 s in case that changes).
async fn settled_versions(h: &Harness, latest: u64) -> Vec<u64> {
    let settled: Vec<u64> = (latest - logvault_store::MANIFEST_VERSIONS_KEPT..=latest).collect();
    for _ in 0..500 {
        if manifest_versions(h) == settled {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    manifest_versions(h)
}

/// Old manifest versions deleted as soon as they are far enough behind (the tests of the count;
/// the default also waits for them to be old enough, below).
fn without_min_age() -> StoreConfig {
    StoreConfig {
        manifest_version_min_age: Duration::zero(),
        ..StoreConfig::default()
    }
}

/// A second process on `h`'s storage (with `config`) that adds one segment to the test table and
/// whose write of the catalog waits 1.5 s before it happens (it has read the latest version by
/// then). Returns its update, running, and the segment's id.
async fn stalled_writer(
    h: &Harness,
    config: StoreConfig,
) -> (
    tokio::task::JoinHandle<Result<logvault_store::Manifest, StoreError>>,
    logvault_store::SegmentId,
) {
    let faulty = FaultyStore::new(logvault_store::local_root(&h.storage()).unwrap());
    let slow = Store::open(
        faulty.clone(),
        h.vault.clone(),
        service_binding(),
        config,
        Arc::new(h.clock.clone()),
    )
    .await
    .unwrap();
    faulty.fail_next(
        Op::Put,
        "/catalog/",
        Fault::Latency(std::time::Duration::from_millis(3000)),
        1,
    );
    let e = entry(1);
    let id = e.id;
    let task =
        tokio::spawn(async move { slow.catalog().add_segments(WS, TABLE, t0(), vec![e]).await });
    // Returned once its write has begun (and stalls): it has read the manifest by then. A fixed
    // sleep here let a late-scheduled writer read a later version on a loaded machine.
    logvault_testkit::eventually("the stalled write", || async {
        faulty.injected_total() >= 1
    })
    .await;
    (task, id)
}

/// Regression (CI, 2026-12-07: `concurrent_writers_in_two_processes_lose_no_update` found 47 of
/// 48 segments): an update that read version 1 and stalled while another process wrote versions
/// 2 to 21 created version 2 again, since the later updates had deleted it as old; its create
/// succeeded, over a version newer ones replaced, and its segment was lost. Versions are now
/// deleted only once a newer one is the minimum age younger, so the stalled create finds version 2
/// there and the update is applied to the latest.
#[tokio::test]
async fn a_writer_stalled_while_others_write_many_versions_loses_no_update() {
    let h = Harness::new().await;
    let catalog = h.store.catalog();
    catalog
        .add_segments(WS, TABLE, t0(), vec![entry(0)])
        .await
        .unwrap();
    // Its write of version 2 waits: it has read version 1 by then.
    let (stalled, stalled_id) = stalled_writer(&h, StoreConfig::default()).await;
    let mut expected: HashSet<_> = catalog
        .manifest(WS, TABLE)
        .await
        .unwrap()
        .segments
        .iter()
        .map(|s| s.id)
        .collect();
    for i in 0..20 {
        let e = entry(10 + i);
        expected.insert(e.id);
        catalog
            .add_segments(WS, TABLE, t0(), vec![e])
            .await
            .unwrap();
    }
    stalled.await.unwrap().unwrap();
    expected.insert(stalled_id);
    let manifest = catalog.manifest(WS, TABLE).await.unwrap();
    let got: HashSet<_> = manifest.segments.iter().map(|s| s.id).collect();
    assert_eq!(got, expected, "the stalled update was lost");
    assert_eq!(manifest.version, 22);
}

/// A writer that stalls longer than the minimum age may find the number it read as free
/// written and deleted meanwhile: its create succeeds over a version newer ones replaced. It
/// must then not report success: the update says it is not known to have taken effect.
#[tokio::test]
async fn a_writer_stalled_past_the_minimum_age_is_told_its_update_is_uncertain() {
    let config = StoreConfig {
        manifest_version_min_age: Duration::milliseconds(500),
        ..StoreConfig::default()
    };
    let h = Harness::with_config(config.clone()).await;
    let catalog = h.store.catalog();
    catalog
        .add_segments(WS, TABLE, t0(), vec![entry(0)])
        .await
        .unwrap();
    let (stalled, stalled_id) = stalled_writer(&h, config).await;
    // Versions 2 to 9, then, more than the minimum age later, 10 to 21: these delete version 2.
    for i in 0..20 {
        if i == 8 {
            tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        }
        catalog
            .add_segments(WS, TABLE, t0(), vec![entry(10 + i)])
            .await
            .unwrap();
    }
    let err = stalled.await.unwrap().unwrap_err();
    assert!(matches!(err, StoreError::Uncertain { .. }), "{err}");
    assert!(err.to_string().contains(TABLE), "{err}");
    // It was right not to claim success: the latest version does not hold its segment.
    let manifest = catalog.manifest(WS, TABLE).await.unwrap();
    assert!(!manifest.segments.iter().any(|s| s.id == stalled_id));
    assert_eq!(manifest.version, 21);
}

/// With the default minimum age, versions written within it are all kept, by updates and by the
/// collection pass alike (deleted by a later one once old enough).
#[tokio::test]
async fn versions_younger_than_the_minimum_age_are_kept() {
    let h = Harness::new().await;
    for i in 0..30 {
        h.store
            .catalog()
            .add_segments(WS, TABLE, t0(), vec![entry(i)])
            .await
            .unwrap();
    }
    assert_eq!(manifest_versions(&h), (1..=30).collect::<Vec<_>>());
    let report = h.store.collect_segments(WS, TABLE).await.unwrap();
    assert_eq!(report.versions_deleted, 0, "{report:?}");
    assert_eq!(manifest_versions(&h).len(), 30);
}

/// Regression: every update kept its manifest version forever, and a reader lists the versions
/// to find the latest, so a long-running server (a version per stored segment, a segment per
/// query) made every query and every commit slower as it ran: listing 10,000 versions on local
/// files took about 100 ms, 100,000 about a second.
#[tokio::test]
async fn old_manifest_versions_are_deleted_as_new_ones_are_written() {
    let h = Harness::with_config(without_min_age()).await;
    let updates = 60u64;
    for i in 0..updates {
        h.store
            .catalog()
            .add_segments(WS, TABLE, t0(), vec![entry(i as u32)])
            .await
            .unwrap();
    }
    let kept = logvault_store::MANIFEST_VERSIONS_KEPT;
    assert_eq!(
        settled_versions(&h, updates).await,
        (updates - kept..=updates).collect::<Vec<_>>()
    );
    let manifest = h.store.catalog().manifest(WS, TABLE).await.unwrap();
    assert_eq!(
        (manifest.version, manifest.segments.len()),
        (updates, updates as usize)
    );
    let report = h
        .store
        .verify_workspace(WS, None, &Default::default(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.tables[0].manifest_versions, kept + 1);
    assert!(report.tables[0].damaged_manifests.is_empty(), "{report:?}");
}

#[tokio::test]
async fn the_collection_pass_deletes_old_versions_an_update_left() {
    let h = Harness::with_config(without_min_age()).await;
    for i in 0..30 {
        h.store
            .catalog()
            .add_segments(WS, TABLE, t0(), vec![entry(i)])
            .await
            .unwrap();
    }
    // The updates' own deletes first (when they were spawned, the pass below found one not yet
    // done: a race seen in CI).
    settled_versions(&h, 30).await;
    // Versions an update did not delete (written before versions were deleted, or a failed
    // delete): three old numbers present again.
    let dir = manifest_dir(&h);
    let latest = std::fs::read(dir.join(format!("{:020}.manifest", 30))).unwrap();
    for n in [1u64, 2, 9] {
        std::fs::write(dir.join(format!("{n:020}.manifest")), &latest).unwrap();
    }
    let report = h.store.collect_segments(WS, TABLE).await.unwrap();
    assert_eq!(report.versions_deleted, 3, "{report:?}");
    let kept = logvault_store::MANIFEST_VERSIONS_KEPT;
    assert_eq!(manifest_versions(&h), (30 - kept..=30).collect::<Vec<_>>());
    assert_eq!(
        h.store.catalog().manifest(WS, TABLE).await.unwrap().version,
        30
    );
}

/// Readers that list a version which is deleted before they read it list again: while a
/// writer adds a hundred versions, every read succeeds and versions never go back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_fail_while_old_versions_are_deleted() {
    let h = Harness::new().await;
    let reader = h.reopen().await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reading = {
        let done = done.clone();
        tokio::spawn(async move {
            let (mut reads, mut last) = (0u64, 0u64);
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                let m = reader.catalog().manifest(WS, TABLE).await.unwrap();
                assert!(m.version >= last, "{} after {last}", m.version);
                last = m.version;
                reads += 1;
            }
            reads
        })
    };
    for i in 0..100 {
        h.store
            .catalog()
            .add_segments(WS, TABLE, t0(), vec![entry(i)])
            .await
            .unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let reads = reading.await.unwrap();
    assert!(reads > 0);
    assert_eq!(
        h.store.catalog().manifest(WS, TABLE).await.unwrap().version,
        100
    );
}
