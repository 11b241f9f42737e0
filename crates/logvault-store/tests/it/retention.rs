//! R-K1: retention purges exactly the segments past it, including those under a revoked key.

use chrono::Duration;
use logvault_kms::VaultErrorKind;
use logvault_store::{AccountId, SegmentId, retention_cutoff};

use crate::common::*;

#[tokio::test]
async fn purges_only_what_is_past_retention_even_under_a_revoked_key() {
    let h = Harness::new().await;
    let cluster = h.cluster_account(true).await;
    let svc = AccountId::service();
    h.store
        .catalog()
        .set_retention(WS, TABLE, t0(), 30)
        .await
        .unwrap();
    // The clock reads t0 + 40 days: the cutoff is t0 + 10 days.
    let now = t0() + Duration::days(40);
    let cutoff = retention_cutoff(now, 30);
    assert_eq!(cutoff, t0() + Duration::days(10));

    // (account, start, rows): each row a second apart.
    let plan = [
        (svc.clone(), t0(), 100),                            // old: purge
        (cluster.clone(), t0() + Duration::days(1), 100),    // old, revoked key: purge
        (svc.clone(), cutoff - Duration::seconds(50), 100),  // spans the cutoff: keep
        (svc.clone(), cutoff - Duration::seconds(100), 100), // ends 1 s before: purge
        (cluster.clone(), t0() + Duration::days(20), 100),   // recent, revoked: keep
        (svc.clone(), t0() + Duration::days(39), 100),       // recent: keep
    ];
    let mut ids: Vec<SegmentId> = Vec::new();
    for (account, start, rows) in &plan {
        let (e, _) = h
            .store
            .append(account, WS, TABLE, vec![log_batch(*start, *rows, "ret")])
            .await
            .unwrap();
        ids.push(e.id);
    }
    // Another table with the default retention (30 days) and one old segment.
    let (other, _) = h
        .store
        .append(&svc, WS, "Other", vec![log_batch(t0(), 10, "o")])
        .await
        .unwrap();

    // Revoke the customer key and forget the cached account key: its segments cannot be read.
    h.vault
        .fail(CUSTOMER_KEY, None, Some(VaultErrorKind::Forbidden));
    h.store.keyring().evict(&cluster);
    let m = h.store.catalog().manifest(WS, TABLE).await.unwrap();
    let revoked = m.location(&m.segments[1]);
    assert!(
        h.store
            .read_segment(&revoked, None)
            .await
            .unwrap_err()
            .is_revocation()
    );

    h.clock.set(now);
    let report = h.store.purge_expired().await.unwrap();
    let mut purged: Vec<SegmentId> = report.purged.iter().map(|p| p.segment).collect();
    purged.sort();
    let mut expected = vec![ids[0], ids[1], ids[3], other.id];
    expected.sort();
    assert_eq!(purged, expected);
    assert_eq!(report.tables_checked, 2);
    assert_eq!(report.rows(), 310);

    // Gone from the catalog and from disk; the rest still there.
    let m = h.store.catalog().manifest(WS, TABLE).await.unwrap();
    let left: Vec<SegmentId> = m.segments.iter().map(|s| s.id).collect();
    assert_eq!(left, [ids[2], ids[4], ids[5]]);
    let on_disk: Vec<String> = files(&h.storage())
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(on_disk.len(), 3);
    for id in &left {
        assert!(on_disk.contains(&id.to_string()), "{id} missing");
    }
    assert!(
        h.store
            .catalog()
            .manifest(WS, "Other")
            .await
            .unwrap()
            .segments
            .is_empty()
    );
    // The kept service-key segments still read.
    assert_eq!(
        h.store
            .read_segment(&m.location(&m.segments[0]), None)
            .await
            .unwrap()[0]
            .num_rows(),
        100
    );

    // Nothing more to purge at the same time.
    assert!(h.store.purge_expired().await.unwrap().purged.is_empty());
}
