//! The catalog: conditional updates lose nothing under concurrency; manifests are sealed.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Duration;
use logvault_store::{AccountId, DEFAULT_RETENTION_DAYS, SegmentEntry, StoreError};

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
