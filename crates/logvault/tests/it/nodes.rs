//! Two nodes on one object store (in process): the follower copies the primary's control plane
//! and refuses changes, each sees the other's rows, and maintenance waits for the lease.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use logvault::control::WorkspaceSpec;
use logvault::store::StoreError;
use logvault::{Engine, EngineError, HomeConfig, NodeConfig, NodeSync};
use logvault_core::TestClock;
use object_store::ObjectStore;
use object_store::memory::InMemory;

use logvault::store::CompactionOptions;
use logvault_core::Clock;

use crate::common::{Home, timings};

const WS: &str = "ws-nodes";

fn node(name: &str, follows: Option<&str>) -> NodeConfig {
    NodeConfig {
        name: name.into(),
        follows: follows.map(str::to_owned),
        refresh_secs: 1,
        lease_secs: 30,
        // Every query reads the storage; the cache is checked on its own below.
        catalog_cache_millis: 0,
    }
}

/// A node's home on `store`; a follower's service vault is copied from `first`.
async fn open(
    dir: &std::path::Path,
    clock: &TestClock,
    store: &Arc<dyn ObjectStore>,
    node: NodeConfig,
    first: Option<&std::path::Path>,
) -> Result<Engine, EngineError> {
    if let Some(first) = first {
        let vault = dir.join("vault/vaults/logvault-service");
        std::fs::create_dir_all(&vault).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("vault"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        std::fs::copy(first.join("vault/master.key"), dir.join("vault/master.key")).unwrap();
        for f in std::fs::read_dir(first.join("vault/vaults/logvault-service")).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), vault.join(f.file_name())).unwrap();
        }
    }
    let config = HomeConfig {
        version: 1,
        timings: timings(),
        node: Some(node),
        ..HomeConfig::default()
    };
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
    Engine::builder(dir)
        .clock(Arc::new(clock.clone()))
        .object_store(store.clone())
        .open()
        .await
}

#[tokio::test]
async fn a_follower_copies_the_control_plane_and_nodes_share_rows_and_the_lease() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open(a_dir.path(), &clock, &store, node("node-a", None), None)
        .await
        .unwrap();
    a.control()
        .create_workspace(WorkspaceSpec::new(WS))
        .unwrap();
    assert_eq!(a.sync_nodes().await.unwrap(), NodeSync::Published);
    assert_eq!(a.sync_nodes().await.unwrap(), NodeSync::Unchanged);

    // Without the service vault, a node cannot open the shared storage.
    let lone = tempfile::tempdir().unwrap();
    assert!(
        open(
            lone.path(),
            &clock,
            &store,
            node("node-x", Some("node-a")),
            None
        )
        .await
        .is_err()
    );

    // The follower starts from the primary's control plane.
    let b = open(
        b_dir.path(),
        &clock,
        &store,
        node("node-b", Some("node-a")),
        Some(a_dir.path()),
    )
    .await
    .unwrap();
    assert_eq!(b.control().get_workspace(WS).unwrap().name, WS);
    let err = b
        .control()
        .create_workspace(WorkspaceSpec::new("ws-other"))
        .unwrap_err();
    assert_eq!(err.code(), 409, "{err}");
    assert!(err.to_string().contains("node-a"), "{err}");

    // Rows ingested on either node are read on both, once.
    let h = Home {
        dir: tempfile::tempdir().unwrap(),
        clock: clock.clone(),
        engine: a.clone(),
    };
    assert_eq!(
        h.ingest_with(&a, WS, "App", &Home::lines("a", 0, 40))
            .await
            .accepted,
        40
    );
    assert_eq!(
        h.ingest_with(&b, WS, "App", &Home::lines("b", 100, 60))
            .await
            .accepted,
        60
    );
    assert_eq!(h.count(&a, WS, "App").await.unwrap(), 100);
    assert_eq!(h.count(&b, WS, "App").await.unwrap(), 100);
    let tags = h
        .column(&b, WS, "SELECT count(DISTINCT \"Tag\" || \"Seq\") FROM App")
        .await
        .unwrap();
    assert_eq!(tags, vec!["100".to_owned()]);

    // A change on the primary reaches the follower at its next synchronization.
    a.control()
        .create_workspace(WorkspaceSpec::new("ws-later"))
        .unwrap();
    assert!(b.control().get_workspace("ws-later").is_err());
    assert_eq!(a.sync_nodes().await.unwrap(), NodeSync::Published);
    assert_eq!(b.sync_nodes().await.unwrap(), NodeSync::Copied);
    assert_eq!(
        b.control().get_workspace("ws-later").unwrap().name,
        "ws-later"
    );
    assert_eq!(b.sync_nodes().await.unwrap(), NodeSync::Unchanged);

    // Compaction waits for the lease: held by node-b, node-a is told so; released, it runs.
    let leases = b.store().leases();
    let grant = leases
        .acquire(
            logvault::MAINTENANCE_LEASE,
            "node-b",
            Duration::seconds(30),
            clock.now(),
        )
        .await
        .unwrap();
    let err = a
        .compact(WS, None, CompactionOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            EngineError::Store(StoreError::LeaseHeld { holder, .. }) if holder == "node-b"
        ),
        "{err}"
    );
    assert_eq!(err.code(), Some(409));
    assert!(a.purge_expired().await.is_err());
    leases.release(&grant, clock.now()).await.unwrap();
    a.compact(WS, None, CompactionOptions::default())
        .await
        .unwrap();
    assert_eq!(h.count(&b, WS, "App").await.unwrap(), 100);
    // With a catalog cache, a query on node-a may see node-b's rows only once its copy is
    // older than the period (or forgotten); node-b sees its own rows at once.
    a.store()
        .catalog()
        .set_query_refresh(Some(std::time::Duration::from_secs(600)));
    assert_eq!(h.count(&a, WS, "App").await.unwrap(), 100);
    h.ingest_with(&b, WS, "App", &Home::lines("c", 300, 10))
        .await;
    assert_eq!(h.count(&b, WS, "App").await.unwrap(), 110);
    assert_eq!(
        h.count(&a, WS, "App").await.unwrap(),
        100,
        "a cached catalog"
    );
    a.store().catalog().forget_for_queries();
    assert_eq!(h.count(&a, WS, "App").await.unwrap(), 110);
    h.ingest_with(&a, WS, "App", &Home::lines("d", 400, 5))
        .await;
    assert_eq!(
        h.count(&a, WS, "App").await.unwrap(),
        115,
        "its own write at once"
    );
    // The lease is free again once the compaction is over.
    assert_eq!(
        leases
            .holder(logvault::MAINTENANCE_LEASE, clock.now())
            .await
            .unwrap(),
        None
    );
}
