//! Cluster rules (R-C1..R-C9), each shown allowed and refused.

use crate::common::{code, fixture};
use chrono::Duration;
use logvault_control::{
    BillingType, ClusterSpec, ClusterUpdate, IdentityType, KeyVaultProperties, ProvisioningState,
    cluster_json,
};

#[tokio::test]
async fn create_is_asynchronous_and_get_has_the_seed_shape() {
    let f = fixture();
    let c = f
        .plane
        .create_cluster(ClusterSpec::new("cluster-01"))
        .await
        .unwrap();
    assert_eq!(c.provisioning_state(), ProvisioningState::Creating);
    assert_eq!(
        f.plane
            .get_cluster("cluster-01")
            .unwrap()
            .provisioning_state(),
        ProvisioningState::Creating
    );
    f.finish_operations();
    let c = f.plane.get_cluster("cluster-01").unwrap();
    assert_eq!(c.provisioning_state(), ProvisioningState::Succeeded);
    let json = cluster_json(&c, &[]);
    for pointer in [
        "/identity/type",
        "/identity/principalId",
        "/identity/tenantId",
        "/sku/capacity",
        "/properties/provisioningState",
        "/properties/clusterId",
        "/properties/billingType",
        "/properties/createdDate",
        "/properties/lastModifiedDate",
        "/properties/isDoubleEncryptionEnabled",
        "/properties/isAvailabilityZonesEnabled",
        "/properties/capacityReservationProperties/minCapacity",
        "/id",
        "/name",
        "/type",
        "/location",
    ] {
        assert!(
            json.pointer(pointer).is_some(),
            "{pointer} missing in {json}"
        );
    }
    assert_eq!(json["properties"]["isDoubleEncryptionEnabled"], true);
    assert_eq!(
        json["id"],
        "/subscriptions/local/resourceGroups/local/providers/Microsoft.OperationalInsights/clusters/cluster-01"
    );
    assert!(json["properties"]["keyVaultProperties"].is_null());
    // the account was provisioned with double encryption
    assert!(f.ports.accounts.lock().unwrap()["cluster-01"].0);
}

#[tokio::test]
async fn bad_input_is_refused_with_400() {
    let f = fixture();
    for spec in [
        ClusterSpec::new("x"),
        ClusterSpec {
            sku_capacity: 700,
            ..ClusterSpec::new("cluster-a")
        },
        ClusterSpec {
            region: Some("West Europe".into()),
            ..ClusterSpec::new("cluster-a")
        },
        ClusterSpec {
            identity_type: IdentityType::UserAssigned,
            ..ClusterSpec::new("cluster-a")
        },
        ClusterSpec {
            user_assigned: Some("someone".into()),
            ..ClusterSpec::new("cluster-a")
        },
    ] {
        let err = f.plane.create_cluster(spec.clone()).await.unwrap_err();
        assert_eq!(code(&err), 400, "{spec:?}: {err}");
    }
    assert!(f.plane.list_clusters(None, None).unwrap().is_empty());
}

#[tokio::test]
async fn system_assigned_with_key_at_creation_fails_user_assigned_succeeds() {
    let f = fixture();
    let uri = f.ports.vault.add_vault("kv-main", "local", true);
    f.ports.vault.add_key("kv-main", "cmk");
    let key = KeyVaultProperties {
        key_vault_uri: uri,
        key_name: "cmk".into(),
        key_version: String::new(),
    };
    let err = f
        .plane
        .create_cluster(ClusterSpec {
            key: Some(key.clone()),
            ..ClusterSpec::new("cluster-sys")
        })
        .await
        .unwrap_err();
    assert_eq!(code(&err), 400);
    assert!(err.to_string().contains("SystemAssigned"), "{err}");

    let ua = f.ports.add_identity("ua-1");
    f.ports.vault.grant(
        "kv-main",
        &ua.principal_id,
        &["get", "wrapKey", "unwrapKey"],
    );
    let c = f
        .plane
        .create_cluster(ClusterSpec {
            identity_type: IdentityType::UserAssigned,
            user_assigned: Some("ua-1".into()),
            key: Some(key.clone()),
            ..ClusterSpec::new("cluster-ua")
        })
        .await
        .unwrap();
    assert_eq!(c.key, Some(key));
    assert_eq!(c.identity.principal_id, Some(ua.principal_id));
    assert_eq!(f.ports.bound_key("cluster-ua").unwrap().name, "cmk");
    let json = cluster_json(&c, &[]);
    assert!(json["identity"]["userAssignedIdentities"][&ua.id]["principalId"].is_string());
}

#[tokio::test]
async fn key_update_succeeds_asynchronously_and_binds_the_account_key() {
    let f = fixture();
    let c = f.provisioned("cluster-01").await;
    let key = f.key_for(&c);
    let c = f
        .plane
        .update_cluster(
            "cluster-01",
            ClusterUpdate {
                key: Some(key.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(c.provisioning_state(), ProvisioningState::Updating);
    assert_eq!(f.ports.bound_key("cluster-01").unwrap().version, None);
    // R-C3: another update while one runs
    let err = f
        .plane
        .update_cluster(
            "cluster-01",
            ClusterUpdate {
                key: Some(key.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), 400);
    assert!(
        err.to_string()
            .starts_with("400 Operation cannot be executed now"),
        "{err}"
    );
    f.finish_operations();
    let c = f.plane.get_cluster("cluster-01").unwrap();
    assert_eq!(c.provisioning_state(), ProvisioningState::Succeeded);
    assert_eq!(c.key, Some(key));
}

#[tokio::test]
async fn key_update_errors_carry_the_seeds_messages() {
    let f = fixture();
    let c = f.provisioned("cluster-01").await;
    let good = f.key_for(&c);
    let principal = c.identity.principal_id.clone().unwrap();
    let update = |key: KeyVaultProperties| ClusterUpdate {
        key: Some(key),
        ..Default::default()
    };

    // bad format
    for bad in [
        KeyVaultProperties {
            key_vault_uri: "http://kv-main.vault.local".into(),
            ..good.clone()
        },
        KeyVaultProperties {
            key_name: String::new(),
            ..good.clone()
        },
    ] {
        let err = f
            .plane
            .update_cluster("cluster-01", update(bad))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("400 KeyVaultProperties is not empty but has a bad format"),
            "{err}"
        );
    }
    // missing key, missing version
    for missing in [
        KeyVaultProperties {
            key_name: "nope".into(),
            ..good.clone()
        },
        KeyVaultProperties {
            key_version: "v9".into(),
            ..good.clone()
        },
    ] {
        let err = f
            .plane
            .update_cluster("cluster-01", update(missing))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("400 Failed to validate key in Key Vault"),
            "{err}"
        );
    }
    // each missing permission
    for perm in ["get", "wrapKey", "unwrapKey"] {
        f.ports.vault.revoke_all("kv-main", &principal);
        let others: Vec<&str> = ["get", "wrapKey", "unwrapKey"]
            .into_iter()
            .filter(|p| *p != perm)
            .collect();
        f.ports.vault.grant("kv-main", &principal, &others);
        let err = f
            .plane
            .update_cluster("cluster-01", update(good.clone()))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("400 Failed to validate key in Key Vault")
                && err.to_string().contains(perm),
            "{perm}: {err}"
        );
    }
    f.ports
        .vault
        .grant("kv-main", &principal, &["get", "wrapKey", "unwrapKey"]);
    // not recoverable
    let uri = f.ports.vault.add_vault("kv-loose", "local", false);
    f.ports.vault.add_key("kv-loose", "cmk");
    f.ports
        .vault
        .grant("kv-loose", &principal, &["get", "wrapKey", "unwrapKey"]);
    let err = f
        .plane
        .update_cluster(
            "cluster-01",
            update(KeyVaultProperties {
                key_vault_uri: uri,
                ..good.clone()
            }),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("400 Key is not recoverable"),
        "{err}"
    );
    // vault in another region (R-C8)
    let uri = f.ports.vault.add_vault("kv-far", "westeurope", true);
    f.ports.vault.add_key("kv-far", "cmk");
    f.ports
        .vault
        .grant("kv-far", &principal, &["get", "wrapKey", "unwrapKey"]);
    let err = f
        .plane
        .update_cluster(
            "cluster-01",
            update(KeyVaultProperties {
                key_vault_uri: uri,
                ..good.clone()
            }),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("region westeurope"), "{err}");
    // vault unreachable: 503, not a validation failure
    f.ports.vault.state.lock().unwrap().outage = true;
    let err = f
        .plane
        .update_cluster("cluster-01", update(good.clone()))
        .await
        .unwrap_err();
    assert_eq!(code(&err), 503, "{err}");
    f.ports.vault.state.lock().unwrap().outage = false;
    // nothing was bound by any refused update
    assert_eq!(f.ports.bound_key("cluster-01"), None);
    // deleting state
    f.plane.delete_cluster("cluster-01").unwrap();
    let err = f
        .plane
        .update_cluster("cluster-01", update(good))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("400 Cluster is in deleting state"),
        "{err}"
    );
}

#[tokio::test]
async fn identity_and_key_in_one_update_is_refused() {
    let f = fixture();
    let c = f.provisioned("cluster-01").await;
    let key = f.key_for(&c);
    f.ports.add_identity("ua-1");
    let err = f
        .plane
        .update_cluster(
            "cluster-01",
            ClusterUpdate {
                key: Some(key.clone()),
                identity_type: Some(IdentityType::UserAssigned),
                user_assigned: Some("ua-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), 400);
    assert!(err.to_string().contains("both identity and key"), "{err}");
    // in two consecutive operations it works
    f.plane
        .update_cluster(
            "cluster-01",
            ClusterUpdate {
                identity_type: Some(IdentityType::UserAssigned),
                user_assigned: Some("ua-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    f.finish_operations();
    let c = f.plane.get_cluster("cluster-01").unwrap();
    assert_eq!(c.identity.kind, IdentityType::UserAssigned);
}

#[tokio::test]
async fn identity_none_revokes_and_cannot_be_reverted() {
    let f = fixture();
    f.provisioned("cluster-01").await;
    let c = f
        .plane
        .update_cluster(
            "cluster-01",
            ClusterUpdate {
                identity_type: Some(IdentityType::None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(c.identity.principal_id, None);
    assert!(c.not_ready_reason().unwrap().contains("None"));
    f.finish_operations();
    for back in [IdentityType::SystemAssigned, IdentityType::None] {
        let err = f
            .plane
            .update_cluster(
                "cluster-01",
                ClusterUpdate {
                    identity_type: Some(back),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot be reverted"), "{err}");
    }
}

#[tokio::test]
async fn capacity_billing_and_moving() {
    let f = fixture();
    f.provisioned("cluster-01").await;
    let t0 = f.plane.get_cluster("cluster-01").unwrap().last_sku_update;
    f.clock.advance(Duration::hours(1));
    let c = f
        .plane
        .update_cluster(
            "cluster-01",
            ClusterUpdate {
                sku_capacity: Some(1000),
                billing_type: Some(BillingType::Workspaces),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (c.sku_capacity, c.billing_type),
        (1000, BillingType::Workspaces)
    );
    assert!(c.last_sku_update > t0);
    assert_eq!(c.provisioning_state(), ProvisioningState::Succeeded);
    let err = f
        .plane
        .update_cluster(
            "cluster-01",
            ClusterUpdate {
                sku_capacity: Some(1500),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), 400);
    for update in [
        ClusterUpdate {
            resource_group: Some("other".into()),
            ..Default::default()
        },
        ClusterUpdate {
            subscription: Some("other".into()),
            ..Default::default()
        },
    ] {
        let err = f
            .plane
            .update_cluster("cluster-01", update)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("Moving cluster"), "{err}");
    }
    // same group is not a move
    f.plane
        .update_cluster(
            "cluster-01",
            ClusterUpdate {
                resource_group: Some("local".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn delete_is_soft_reserves_the_name_and_purges_after_14_days() {
    let f = fixture();
    f.provisioned("cluster-01").await;
    let c = f.plane.delete_cluster("cluster-01").unwrap();
    assert_eq!(c.provisioning_state(), ProvisioningState::Deleting);
    f.finish_operations();
    let err = f.plane.get_cluster("cluster-01").unwrap_err();
    assert!(
        err.to_string().starts_with("404 Cluster not found"),
        "{err}"
    );
    let err = f.plane.delete_cluster("cluster-01").unwrap_err();
    assert_eq!(code(&err), 404);
    let err = f
        .plane
        .create_cluster(ClusterSpec::new("cluster-01"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), 409, "{err}");
    f.clock.advance(Duration::days(13));
    assert_eq!(
        code(
            &f.plane
                .create_cluster(ClusterSpec::new("cluster-01"))
                .await
                .unwrap_err()
        ),
        409
    );
    f.clock.advance(Duration::days(1));
    f.plane
        .create_cluster(ClusterSpec::new("cluster-01"))
        .await
        .unwrap();
}

#[tokio::test]
async fn five_active_and_seven_reserved_per_region_and_subscription() {
    let f = fixture();
    for i in 0..5 {
        f.provisioned(&format!("cluster-{i}")).await;
    }
    let err = f
        .plane
        .create_cluster(ClusterSpec::new("cluster-5"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("5 active clusters"), "{err}");
    // another region or subscription has its own limit
    f.plane
        .create_cluster(ClusterSpec {
            region: Some("westeurope".into()),
            ..ClusterSpec::new("cluster-we")
        })
        .await
        .unwrap();
    f.plane
        .create_cluster(ClusterSpec {
            subscription: Some("sub2".into()),
            ..ClusterSpec::new("cluster-s2")
        })
        .await
        .unwrap();
    // deleting frees an active slot but keeps a reserved one
    f.plane.delete_cluster("cluster-0").unwrap();
    f.finish_operations();
    f.provisioned("cluster-5").await; // 5 active + 1 deleted = 6 reserved
    f.plane.delete_cluster("cluster-1").unwrap();
    f.finish_operations();
    f.provisioned("cluster-6").await; // 5 active + 2 deleted = 7 reserved
    f.plane.delete_cluster("cluster-2").unwrap();
    f.finish_operations();
    let err = f
        .plane
        .create_cluster(ClusterSpec::new("cluster-7"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("reserved clusters"), "{err}");
    // after the soft-delete period the reservations are released
    f.clock.advance(Duration::days(15));
    f.plane
        .create_cluster(ClusterSpec::new("cluster-7"))
        .await
        .unwrap();
}

#[tokio::test]
async fn list_by_resource_group_and_subscription() {
    let f = fixture();
    for (name, group, sub) in [
        ("cluster-a", "rg1", "sub1"),
        ("cluster-b", "rg2", "sub1"),
        ("cluster-c", "rg1", "sub2"),
    ] {
        f.plane
            .create_cluster(ClusterSpec {
                resource_group: Some(group.into()),
                subscription: Some(sub.into()),
                ..ClusterSpec::new(name)
            })
            .await
            .unwrap();
    }
    let names =
        |v: Vec<logvault_control::Cluster>| v.into_iter().map(|c| c.name).collect::<Vec<_>>();
    assert_eq!(
        names(f.plane.list_clusters(Some("rg1"), None).unwrap()),
        ["cluster-a", "cluster-c"]
    );
    assert_eq!(
        names(f.plane.list_clusters(None, Some("sub1")).unwrap()),
        ["cluster-a", "cluster-b"]
    );
    assert_eq!(
        names(f.plane.list_clusters(Some("rg1"), Some("sub2")).unwrap()),
        ["cluster-c"]
    );
    assert_eq!(f.plane.list_clusters(None, None).unwrap().len(), 3);
}

#[tokio::test]
async fn state_survives_reopen_and_an_earlier_clock_cannot_undo_it() {
    let f = fixture();
    f.provisioned("cluster-01").await;
    let later = f.plane.now().unwrap() + Duration::days(10);
    f.clock.set(later);
    f.plane.delete_cluster("cluster-01").unwrap();
    f.finish_operations();
    assert_eq!(code(&f.plane.get_cluster("cluster-01").unwrap_err()), 404);
    // back in time: the floor the delete recorded keeps the control plane at its time (reads
    // record nothing)
    f.clock.set(later - Duration::days(9));
    let reopened = f.reopen();
    assert!(reopened.now().unwrap() >= later);
    let err = reopened.get_cluster("cluster-01").unwrap_err();
    assert_eq!(code(&err), 404, "the delete done later is not undone");
}

#[tokio::test]
async fn wait_returns_once_the_operation_completes() {
    let f = fixture();
    f.plane
        .create_cluster(ClusterSpec::new("cluster-01"))
        .await
        .unwrap();
    let err = f
        .plane
        .wait_cluster("cluster-01", std::time::Duration::from_millis(250))
        .await
        .unwrap_err();
    assert_eq!(code(&err), 503, "{err}");
    f.finish_operations();
    let c = f
        .plane
        .wait_cluster("cluster-01", std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(c.provisioning_state(), ProvisioningState::Succeeded);
    assert_eq!(
        code(
            &f.plane
                .wait_cluster("nope-1", std::time::Duration::from_secs(1))
                .await
                .unwrap_err()
        ),
        404
    );
}

/// Regression (`logvault --now ... cluster create` never returned): a wait on a clock that does
/// not move ends at once with a clear error instead of waiting out its timeout.
#[tokio::test]
async fn a_wait_on_a_stopped_clock_says_so_instead_of_waiting_out_its_timeout() {
    let f = fixture();
    f.plane
        .create_cluster(ClusterSpec::new("cluster-01"))
        .await
        .unwrap();
    let err = f
        .plane
        .wait_cluster("cluster-01", std::time::Duration::from_secs(600))
        .await
        .unwrap_err();
    assert_eq!(code(&err), 503, "{err}");
    let message = err.to_string();
    assert!(message.contains("clock is stopped"), "{message}");
    assert!(!message.contains("after waiting"), "{message}");
}
