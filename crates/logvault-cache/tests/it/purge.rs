//! Purge (R-F3) and reload (R-F4) racing with each other and with admissions.

use logvault_cache::{HotCacheConfig, WarmState};
use logvault_store::AccountId;

use crate::common::*;

#[tokio::test]
async fn a_purge_during_a_reload_leaves_nothing_of_the_workspace() {
    let h = Harness::new().await;
    for day in 0..6 {
        h.append(&AccountId::service(), WS_A, day, 2000, "race")
            .await;
    }
    let cache = h.cache(HotCacheConfig::default()).await;
    let handle = cache.warm(WS_A);
    tokio::task::yield_now().await;
    let report = cache.purge_workspace(WS_A);
    let end = handle.wait().await;
    assert!(
        matches!(end.state, WarmState::Cancelled | WarmState::Done),
        "{end:?}"
    );
    assert_eq!(report.warm_cancelled, end.state == WarmState::Cancelled);
    // Any write that was under way finishes and is refused.
    cache.settle().await;
    assert!(files_of(&h.cache_dir(), WS_A).is_empty());
    let a = cache.workspace_status(WS_A);
    assert_eq!((a.memory_entries, a.disk_entries), (0, 0));
}

#[tokio::test]
async fn a_reload_skips_the_data_of_a_key_that_is_still_revoked() {
    let h = Harness::new().await;
    let cluster = h.cluster_account().await;
    h.append(&cluster, WS_A, 0, 500, "cmk").await;
    h.append(&AccountId::service(), WS_A, 1, 500, "mmk").await;
    h.vault
        .set_key_enabled("contoso", "cmk", None, false)
        .unwrap();
    h.store.keyring().evict(&cluster);
    let cache = h.cache(HotCacheConfig::default()).await;
    let p = cache.warm(WS_A).wait().await;
    assert_eq!(p.state, WarmState::Done);
    assert_eq!((p.segments_done, p.failed, p.memory_segments), (2, 1, 1));
    let err = p.last_error.unwrap();
    assert!(err.contains("cluster-prod1"), "{err}");
    let files = files_of(&h.cache_dir(), WS_A);
    assert_eq!(files.len(), 1);
    assert!(files[0].starts_with(h.cache_dir().join("v1").join("service")));
    assert_eq!(cache.read_counts().by_account.get("cluster-prod1"), None);
}

/// Regression (seen as flaky revocation tests under load): a segment admitted before a purge,
/// whose promotion was still waiting for quiet when the purge ran, was fetched into the disk tier
/// after it, so a revoked workspace's data was back in the cache. Work decided before a purge
/// must not fetch or keep anything after it, in either tier.
#[tokio::test]
async fn an_admission_waiting_for_quiet_across_a_purge_brings_nothing_back() {
    let h = Harness::new().await;
    let loc = h
        .append(&AccountId::service(), WS_A, 0, 1000, "admitted")
        .await;
    for config in [
        HotCacheConfig::default(),
        HotCacheConfig {
            promote_on_read: false,
            ..HotCacheConfig::default()
        },
    ] {
        let cache = h.cache(config).await;
        // Queries are busy: the admission waits for quiet.
        cache.note_activity();
        cache.admit(loc.clone(), t0());
        cache.purge_workspace(WS_A);
        cache.settle().await;
        let status = cache.workspace_status(WS_A);
        assert_eq!(
            (status.memory_entries, status.disk_entries),
            (0, 0),
            "{status:?}"
        );
        assert!(files_of(&h.cache_dir(), WS_A).is_empty());
        // Work decided after the purge is served as usual.
        cache.admit(loc.clone(), t0());
        cache.settle().await;
        assert_eq!(cache.workspace_status(WS_A).disk_entries, 1);
        cache.purge_workspace(WS_A);
    }
}
