//! Workspace and link rules (R-D1..R-D4, R-C6 link limits, R-C8), each shown allowed and refused.

use std::sync::Arc;

use crate::common::{code, fixture};
use chrono::Duration;
use logvault_control::{ClusterSpec, Limits, WorkspaceSpec, workspace_json};

#[tokio::test]
async fn create_show_list_and_conflicts() {
    let f = fixture();
    let ws = f
        .plane
        .create_workspace(WorkspaceSpec::new("ws-prod"))
        .unwrap();
    assert_eq!(ws.region, "local");
    assert_eq!(f.plane.get_workspace("ws-prod").unwrap(), ws);
    assert_eq!(
        code(
            &f.plane
                .create_workspace(WorkspaceSpec::new("ws-prod"))
                .unwrap_err()
        ),
        409
    );
    assert_eq!(
        code(
            &f.plane
                .create_workspace(WorkspaceSpec::new("ws"))
                .unwrap_err()
        ),
        400
    );
    assert_eq!(code(&f.plane.get_workspace("nope-ws").unwrap_err()), 404);
    f.plane
        .create_workspace(WorkspaceSpec::new("ws-dev"))
        .unwrap();
    assert_eq!(f.plane.list_workspaces().unwrap().len(), 2);
    let json = workspace_json(&ws, None);
    assert!(json["features"].get("clusterResourceId").is_none());
}

#[tokio::test]
async fn link_needs_a_provisioned_cluster_and_shows_cluster_resource_id() {
    let f = fixture();
    f.plane
        .create_workspace(WorkspaceSpec::new("ws-prod"))
        .unwrap();
    f.plane
        .create_cluster(ClusterSpec::new("cluster-01"))
        .await
        .unwrap();
    let err = f.plane.link_workspace("ws-prod", "cluster-01").unwrap_err();
    assert_eq!(code(&err), 400);
    assert!(err.to_string().contains("not provisioned"), "{err}");
    assert_eq!(
        code(&f.plane.link_workspace("ws-prod", "cluster-99").unwrap_err()),
        404
    );
    assert_eq!(
        code(&f.plane.link_workspace("ws-none", "cluster-01").unwrap_err()),
        404
    );
    f.finish_operations();
    let ws = f.plane.link_workspace("ws-prod", "cluster-01").unwrap();
    assert_eq!(ws.cluster.as_deref(), Some("cluster-01"));
    let cluster = f.plane.get_cluster("cluster-01").unwrap();
    let json = workspace_json(&ws, Some(&cluster));
    assert_eq!(
        json["features"]["clusterResourceId"],
        cluster.resource_id().to_string()
    );
    // linking again to the same cluster is a no-op, not an operation
    f.plane.link_workspace("ws-prod", "cluster-01").unwrap();
    assert_eq!(
        f.plane
            .get_workspace("ws-prod")
            .unwrap()
            .link_operations
            .len(),
        1
    );
}

#[tokio::test]
async fn a_workspace_linked_elsewhere_or_in_another_region_cannot_be_linked() {
    let f = fixture();
    f.provisioned("cluster-01").await;
    f.provisioned("cluster-02").await;
    f.plane
        .create_workspace(WorkspaceSpec::new("ws-prod"))
        .unwrap();
    f.plane.link_workspace("ws-prod", "cluster-01").unwrap();
    let err = f.plane.link_workspace("ws-prod", "cluster-02").unwrap_err();
    assert_eq!(code(&err), 409, "{err}");
    f.plane
        .create_workspace(WorkspaceSpec {
            region: Some("westeurope".into()),
            ..WorkspaceSpec::new("ws-far")
        })
        .unwrap();
    let err = f.plane.link_workspace("ws-far", "cluster-01").unwrap_err();
    assert!(err.to_string().contains("share region"), "{err}");
}

#[tokio::test]
async fn two_link_operations_per_30_days() {
    let f = fixture();
    f.provisioned("cluster-01").await;
    f.plane
        .create_workspace(WorkspaceSpec::new("ws-prod"))
        .unwrap();
    f.plane.link_workspace("ws-prod", "cluster-01").unwrap();
    f.clock.advance(Duration::days(1));
    f.plane.unlink_workspace("ws-prod").unwrap();
    f.plane.link_workspace("ws-prod", "cluster-01").unwrap();
    f.plane.unlink_workspace("ws-prod").unwrap();
    let err = f.plane.link_workspace("ws-prod", "cluster-01").unwrap_err();
    assert!(err.to_string().contains("2 link operations"), "{err}");
    // the first operation leaves the window after 30 days
    f.clock.advance(Duration::days(29));
    f.plane.link_workspace("ws-prod", "cluster-01").unwrap();
}

#[tokio::test]
async fn workspaces_per_cluster_limit() {
    assert_eq!(Limits::default().max_workspaces_per_cluster, 1000);
    let f = fixture();
    let plane = f.plane.clone().with_limits(Limits {
        max_workspaces_per_cluster: 3,
        ..Limits::default()
    });
    f.provisioned("cluster-01").await;
    for i in 0..4 {
        plane
            .create_workspace(WorkspaceSpec::new(&format!("ws-{i:03}")))
            .unwrap();
    }
    for i in 0..3 {
        plane
            .link_workspace(&format!("ws-{i:03}"), "cluster-01")
            .unwrap();
    }
    let err = plane.link_workspace("ws-003", "cluster-01").unwrap_err();
    assert!(err.to_string().contains("3 linked workspaces"), "{err}");
    plane.unlink_workspace("ws-000").unwrap();
    plane.link_workspace("ws-003", "cluster-01").unwrap();
}

#[tokio::test]
async fn unlink_any_time_and_unlinking_an_unlinked_workspace_is_refused() {
    let f = fixture();
    f.provisioned("cluster-01").await;
    f.plane
        .create_workspace(WorkspaceSpec::new("ws-prod"))
        .unwrap();
    assert_eq!(code(&f.plane.unlink_workspace("ws-prod").unwrap_err()), 400);
    f.plane.link_workspace("ws-prod", "cluster-01").unwrap();
    // even while the cluster is busy
    f.plane
        .update_cluster(
            "cluster-01",
            logvault_control::ClusterUpdate {
                identity_type: Some(logvault_control::IdentityType::SystemAssigned),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(f.plane.unlink_workspace("ws-prod").unwrap().cluster, None);
}

#[tokio::test]
async fn deleted_linked_workspace_recovers_still_linked_and_is_purged_after_14_days() {
    let f = fixture();
    f.provisioned("cluster-01").await;
    f.plane
        .create_workspace(WorkspaceSpec::new("ws-prod"))
        .unwrap();
    f.plane.link_workspace("ws-prod", "cluster-01").unwrap();
    f.plane.delete_workspace("ws-prod").unwrap();
    assert_eq!(code(&f.plane.get_workspace("ws-prod").unwrap_err()), 404);
    assert_eq!(
        code(
            &f.plane
                .create_workspace(WorkspaceSpec::new("ws-prod"))
                .unwrap_err()
        ),
        409
    );
    f.clock.advance(Duration::days(13));
    let ws = f.plane.recover_workspace("ws-prod").unwrap();
    assert_eq!(ws.cluster.as_deref(), Some("cluster-01"));
    assert_eq!(
        code(&f.plane.recover_workspace("ws-prod").unwrap_err()),
        400
    );
    f.plane.delete_workspace("ws-prod").unwrap();
    f.clock.advance(Duration::days(14));
    assert_eq!(
        code(&f.plane.recover_workspace("ws-prod").unwrap_err()),
        404
    );
    f.plane
        .create_workspace(WorkspaceSpec::new("ws-prod"))
        .unwrap();
}

#[tokio::test]
async fn deleting_a_cluster_unlinks_its_workspaces() {
    let f = fixture();
    f.provisioned("cluster-01").await;
    f.plane
        .create_workspace(WorkspaceSpec::new("ws-prod"))
        .unwrap();
    f.plane.link_workspace("ws-prod", "cluster-01").unwrap();
    f.plane.delete_cluster("cluster-01").unwrap();
    let ws = f.plane.get_workspace("ws-prod").unwrap();
    assert_eq!(ws.cluster, None);
    assert_eq!(
        ws.link_operations.len(),
        1,
        "the unlink is not a link operation"
    );
}

#[tokio::test]
async fn two_processes_racing_never_lose_an_update() {
    let f = fixture();
    let a = Arc::new(f.plane.clone());
    let b = Arc::new(f.reopen());
    let threads: Vec<_> = [a, b]
        .into_iter()
        .enumerate()
        .map(|(p, plane)| {
            std::thread::spawn(move || {
                for i in 0..20 {
                    plane
                        .create_workspace(WorkspaceSpec::new(&format!("ws-{p}-{i:02}")))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(f.reopen().list_workspaces().unwrap().len(), 40);
}

#[tokio::test]
async fn the_hot_cache_window_is_set_per_workspace_within_bounds() {
    let f = fixture();
    f.plane
        .create_workspace(WorkspaceSpec::new("ws-prod"))
        .unwrap();
    f.plane
        .create_workspace(WorkspaceSpec::new("ws-dev"))
        .unwrap();
    // Refused: out of range, or a missing workspace; nothing changes.
    for days in [0, logvault_control::MAX_HOT_WINDOW_DAYS + 1] {
        let err = f
            .plane
            .set_workspace_hot_window("ws-prod", Some(days))
            .unwrap_err();
        assert_eq!(code(&err), 400, "{err}");
        assert!(err.to_string().contains("out of range"), "{err}");
    }
    assert_eq!(
        code(
            &f.plane
                .set_workspace_hot_window("nope-ws", Some(30))
                .unwrap_err()
        ),
        404
    );
    assert_eq!(
        f.plane.get_workspace("ws-prod").unwrap().hot_window_days,
        None
    );
    // Allowed: kept across a restart, shown, for that workspace only; `None` resets it.
    let ws = f
        .plane
        .set_workspace_hot_window("ws-prod", Some(60))
        .unwrap();
    assert_eq!(ws.hot_window_days, Some(60));
    assert_eq!(workspace_json(&ws, None)["hotCacheWindowDays"], 60);
    let reopened = f.reopen();
    assert_eq!(
        reopened.get_workspace("ws-prod").unwrap().hot_window_days,
        Some(60)
    );
    assert_eq!(
        reopened.get_workspace("ws-dev").unwrap().hot_window_days,
        None
    );
    let ws = reopened.set_workspace_hot_window("ws-prod", None).unwrap();
    assert_eq!(ws.hot_window_days, None);
    assert!(
        workspace_json(&ws, None)
            .get("hotCacheWindowDays")
            .is_none()
    );
}

/// Regression (found by fuzzing the state file): a time near the end of chrono's range (or a
/// hot window of billions of days) in the plain-JSON state made every call panic on an
/// overflowing addition, instead of reporting the damaged file.
#[test]
fn a_state_file_with_times_past_the_year_9999_is_an_error_not_a_panic() {
    let f = fixture();
    f.plane
        .create_workspace(WorkspaceSpec::new("ws-gone"))
        .unwrap();
    f.plane.delete_workspace("ws-gone").unwrap();
    let path = f.dir.path().join("state.json");
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for (field, edit) in [
        (
            "deletedAt",
            serde_json::json!({"deletedAt": "+262142-12-31T23:59:59Z"}),
        ),
        (
            "hotWindowDays",
            serde_json::json!({"hotWindowDays": u32::MAX}),
        ),
    ] {
        let mut state = original.clone();
        for (k, v) in edit.as_object().unwrap() {
            state["workspaces"][0][k] = v.clone();
        }
        let bytes = serde_json::to_vec(&state).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let err = f.plane.list_workspaces().unwrap_err().to_string();
        assert!(
            err.contains("state.json") && err.contains("ws-gone") && err.contains(field),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "the file was left alone"
        );
    }
}
