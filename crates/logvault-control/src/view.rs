//! The JSON shapes a GET returns, as in the seed's examples (`az monitor log-analytics ...`).

use serde_json::{Value, json};

use crate::model::{Cluster, IdentityType, Workspace};

/// A cluster as `cluster show` returns it: the shape of the seed's GET example.
pub fn cluster_json(cluster: &Cluster, linked: &[&Workspace]) -> Value {
    let identity = match cluster.identity.kind {
        IdentityType::UserAssigned => json!({
            "type": "UserAssigned",
            "tenantId": cluster.identity.tenant_id,
            "userAssignedIdentities": {
                cluster.identity.user_assigned.clone().unwrap_or_default(): {
                    "principalId": cluster.identity.principal_id,
                }
            },
        }),
        IdentityType::SystemAssigned => json!({
            "type": "SystemAssigned",
            "tenantId": cluster.identity.tenant_id,
            "principalId": cluster.identity.principal_id,
        }),
        IdentityType::None => json!({ "type": "None" }),
    };
    let key = cluster.key.as_ref().map(|k| {
        json!({
            "keyVaultUri": k.key_vault_uri,
            "keyName": k.key_name,
            "keyVersion": k.key_version,
        })
    });
    json!({
        "identity": identity,
        "sku": { "name": "capacityreservation", "capacity": cluster.sku_capacity },
        "properties": {
            "keyVaultProperties": key,
            "provisioningState": cluster.provisioning_state(),
            "clusterId": cluster.cluster_id,
            "billingType": cluster.billing_type,
            "lastModifiedDate": cluster.last_modified.to_rfc3339(),
            "createdDate": cluster.created.to_rfc3339(),
            "isDoubleEncryptionEnabled": cluster.double_encryption,
            "isAvailabilityZonesEnabled": cluster.availability_zones,
            "capacityReservationProperties": {
                "lastSkuUpdate": cluster.last_sku_update.to_rfc3339(),
                "minCapacity": cluster.sku_capacity,
            },
            "associatedWorkspaces": linked.iter().map(|w| json!({
                "workspaceId": w.customer_id,
                "workspaceName": w.name,
                "resourceId": w.resource_id().to_string(),
            })).collect::<Vec<_>>(),
        },
        "id": cluster.resource_id().to_string(),
        "name": cluster.name,
        "type": "Microsoft.OperationalInsights/clusters",
        "location": cluster.region,
        "resourceGroup": cluster.resource_group,
    })
}

/// A workspace as `workspace show` returns it and the management API's GET answers it: Azure's
/// ARM shape (`properties.customerId`, `properties.features.clusterResourceId` while linked),
/// with the same fields at the top level as well (the CLI's contract), `hotCacheWindowDays`
/// when set.
pub fn workspace_json(workspace: &Workspace, cluster: Option<&Cluster>) -> Value {
    let mut features = json!({});
    if let Some(c) = cluster {
        features["clusterResourceId"] = Value::String(c.resource_id().to_string());
    }
    let properties = json!({
        "customerId": workspace.customer_id,
        "provisioningState": "Succeeded",
        "createdDate": workspace.created.to_rfc3339(),
        "modifiedDate": workspace.created.to_rfc3339(),
        "sku": { "name": "PerGB2018" },
        "publicNetworkAccessForIngestion": "Enabled",
        "publicNetworkAccessForQuery": "Enabled",
        // Saved queries under the customer's key: a storage account linked for `Query` (R-H2).
        "forceCmkForQuery": workspace.linked_for(crate::storage::DataSourceType::Query).is_some(),
        "features": features,
    });
    let mut out = json!({
        "properties": properties,
        "tags": workspace.tags,
        "id": workspace.resource_id().to_string(),
        "name": workspace.name,
        "type": "Microsoft.OperationalInsights/workspaces",
        "location": workspace.region,
        "resourceGroup": workspace.resource_group,
        "customerId": workspace.customer_id,
        "createdDate": workspace.created.to_rfc3339(),
        "provisioningState": "Succeeded",
        "features": features,
    });
    if let Some(days) = workspace.hot_window_days {
        out["hotCacheWindowDays"] = days.into();
    }
    out
}
