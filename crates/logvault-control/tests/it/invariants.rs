//! Random sequences of control-plane operations never break the service's invariants.

use std::collections::BTreeMap;

use crate::common::fixture;
use chrono::Duration;
use logvault_control::{ClusterSpec, ClusterUpdate, IdentityType, WorkspaceSpec, cluster_json};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    CreateCluster(u8, u8),
    DeleteCluster(u8),
    IdentityNone(u8),
    CreateWorkspace(u8),
    DeleteWorkspace(u8),
    RecoverWorkspace(u8),
    Link(u8, u8),
    Unlink(u8),
    AdvanceSeconds(u32),
    AdvanceDays(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..9, 0u8..2).prop_map(|(c, r)| Op::CreateCluster(c, r)),
        (0u8..9).prop_map(Op::DeleteCluster),
        (0u8..9).prop_map(Op::IdentityNone),
        (0u8..4).prop_map(Op::CreateWorkspace),
        (0u8..4).prop_map(Op::DeleteWorkspace),
        (0u8..4).prop_map(Op::RecoverWorkspace),
        (0u8..4, 0u8..9).prop_map(|(w, c)| Op::Link(w, c)),
        (0u8..4).prop_map(Op::Unlink),
        (0u32..5).prop_map(Op::AdvanceSeconds),
        (0u8..20).prop_map(Op::AdvanceDays),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_every_invariant(ops in proptest::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // At most two workspaces per cluster, so that four workspaces can break the limit.
        let mut f = fixture();
        let limits = logvault_control::Limits {
            max_workspaces_per_cluster: 2,
            ..logvault_control::Limits::default()
        };
        f.plane = f.plane.clone().with_limits(limits);
        let cname = |c: u8| format!("cluster-{c}");
        let wname = |w: u8| format!("ws-{w:03}");
        for op in ops {
            // Every successful operation must be visible right after it (no lost update).
            match op {
                Op::CreateCluster(c, r) => {
                    let region = if r == 0 { "local" } else { "westeurope" };
                    let spec = ClusterSpec { region: Some(region.into()), ..ClusterSpec::new(&cname(c)) };
                    if rt.block_on(f.plane.create_cluster(spec)).is_ok() {
                        prop_assert!(f.plane.get_cluster(&cname(c)).is_ok());
                    }
                }
                Op::DeleteCluster(c) => { let _ = f.plane.delete_cluster(&cname(c)); }
                Op::IdentityNone(c) => {
                    let update = ClusterUpdate { identity_type: Some(IdentityType::None), ..Default::default() };
                    if rt.block_on(f.plane.update_cluster(&cname(c), update)).is_ok() {
                        prop_assert_eq!(f.plane.get_cluster(&cname(c)).unwrap().identity.kind, IdentityType::None);
                    }
                }
                Op::CreateWorkspace(w) => {
                    if f.plane.create_workspace(WorkspaceSpec::new(&wname(w))).is_ok() {
                        prop_assert!(f.plane.get_workspace(&wname(w)).is_ok());
                    }
                }
                Op::DeleteWorkspace(w) => { let _ = f.plane.delete_workspace(&wname(w)); }
                Op::RecoverWorkspace(w) => { let _ = f.plane.recover_workspace(&wname(w)); }
                Op::Link(w, c) => {
                    if f.plane.link_workspace(&wname(w), &cname(c)).is_ok() {
                        prop_assert_eq!(f.plane.get_workspace(&wname(w)).unwrap().cluster, Some(cname(c)));
                    }
                }
                Op::Unlink(w) => {
                    if f.plane.unlink_workspace(&wname(w)).is_ok() {
                        prop_assert_eq!(f.plane.get_workspace(&wname(w)).unwrap().cluster, None);
                    }
                }
                Op::AdvanceSeconds(s) => f.clock.advance(Duration::seconds(i64::from(s))),
                Op::AdvanceDays(d) => f.clock.advance(Duration::days(i64::from(d))),
            }

            // Invariants, read through a fresh handle (as another process would).
            let plane = f.reopen();
            let clusters = plane.list_clusters(None, None).unwrap();
            let workspaces = plane.list_workspaces().unwrap();
            let mut active: BTreeMap<(String, String), usize> = BTreeMap::new();
            for c in &clusters {
                *active.entry((c.subscription.clone(), c.region.clone())).or_default() += 1;
                // no state the API can't show
                let shown = plane.get_cluster(&c.name).unwrap();
                prop_assert!(cluster_json(&shown, &[]).get("properties").is_some());
            }
            prop_assert!(active.values().all(|n| *n <= 5), "active {active:?}");
            let mut reserved = active.clone();
            for c in plane.list_deleted_clusters().unwrap() {
                *reserved.entry((c.subscription.clone(), c.region.clone())).or_default() += 1;
                prop_assert_eq!(plane.get_cluster(&c.name).unwrap_err().code(), 404);
            }
            prop_assert!(reserved.values().all(|n| *n <= 7), "reserved {reserved:?}");
            let mut per_cluster: BTreeMap<String, usize> = BTreeMap::new();
            for w in &workspaces {
                if let Some(c) = &w.cluster {
                    // a workspace is linked to at most one cluster, and that cluster exists
                    prop_assert!(clusters.iter().any(|x| &x.name == c), "{} linked to missing {c}", w.name);
                    *per_cluster.entry(c.clone()).or_default() += 1;
                }
                let window_start = plane.now().unwrap() - Duration::days(30);
                prop_assert!(w.link_operations.iter().filter(|t| **t > window_start).count() <= 2);
            }
            prop_assert!(
                per_cluster.values().all(|n| *n <= limits.max_workspaces_per_cluster),
                "per cluster {per_cluster:?}"
            );
        }
    }
}
