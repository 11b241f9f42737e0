//! The management API over plain HTTP requests: the long-running operations' headers and
//! polls, the seed's errors in ARM's shape, paging, roles, vaults, access policies and role
//! assignments, and a workspace's saved searches, tables and linked storage; each checked
//! against what the CLI's library sees.
//! The workspace's own resources (lists, linked storage, saved searches, tables, PATCH) are in
//! `workspace.rs`.

use logvault_server::Role;
use serde_json::{Value, json};

use crate::common::{Options, Served, serve};

mod workspace;

const SUB: &str = "local";
const RG: &str = "local";

/// A management request with the owner's token: the status, the headers and the JSON body.
async fn arm(
    s: &Served,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = if path.starts_with("http") {
        path.to_owned()
    } else {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{sep}api-version=2025-07-01", s.url)
    };
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = s.client.request(method, url).bearer_auth(s.owner());
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, headers, value)
}

fn oi(resource: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/{resource}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_lifecycle_answers_as_arm_with_the_seed_errors() {
    let s = serve(Options::default()).await;
    let cluster = oi("clusters/arm-cluster");
    // Create: 200 with the resource and the operation to poll.
    let (status, headers, body) = arm(
        &s,
        "PUT",
        &cluster,
        Some(
            json!({"location": "local", "identity": {"type": "SystemAssigned"},
                    "sku": {"name": "CapacityReservation", "capacity": 500}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "arm-cluster");
    let poll = headers["azure-asyncoperation"].to_str().unwrap().to_owned();
    assert!(
        poll.contains("/operationStatuses/cluster.arm-cluster"),
        "{poll}"
    );
    assert_eq!(headers["retry-after"], "1");
    let (status, _, op) = arm(&s, "GET", &poll, None).await;
    assert_eq!(
        (status, op["status"].as_str()),
        (200, Some("Succeeded")),
        "{op}"
    );
    // The CLI's library and the API answer one shape (but for the key check's times, which
    // move on between the two reads).
    let (_, _, mut got) = arm(&s, "GET", &cluster, None).await;
    let c = s.engine.control().get_cluster("arm-cluster").unwrap();
    let mut expected = s.engine.cluster_view(&c).await.unwrap();
    for v in [&mut expected, &mut got] {
        assert!(
            v["properties"]
                .as_object_mut()
                .unwrap()
                .remove("keyStatus")
                .is_some()
        );
    }
    assert_eq!(got, expected);
    // The seed's errors, as `{"error": {"code", "message"}}`.
    let (status, _, err) = arm(
        &s,
        "PATCH",
        &cluster,
        Some(json!({"properties": {"keyVaultProperties": {"keyVaultUri": "https://nope", "keyName": "k"}}})),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["code"], "BadRequest");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad format"),
        "{err}"
    );
    let (status, _, err) = arm(&s, "GET", &oi("clusters/nothere"), None).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Cluster not found"),
        "{err}"
    );
    // A PUT on the cluster updates what differs from it (create-or-update): the capacity here.
    let (status, _, body) = arm(
        &s,
        "PUT",
        &cluster,
        Some(
            json!({"location": "local", "identity": {"type": "SystemAssigned"},
                    "sku": {"name": "CapacityReservation", "capacity": 1000}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sku"]["capacity"], 1000);
    assert_eq!(
        s.engine
            .control()
            .get_cluster("arm-cluster")
            .unwrap()
            .sku_capacity,
        1000
    );
    // Delete: 202 with Location, polled to 204; then the name is reserved (409).
    let (status, headers, _) = arm(&s, "DELETE", &cluster, None).await;
    assert_eq!(status, 202);
    let location = headers["location"].to_str().unwrap().to_owned();
    let (status, _, _) = arm(&s, "GET", &location, None).await;
    assert_eq!(status, 204);
    let (status, _, err) = arm(
        &s,
        "PUT",
        &cluster,
        Some(json!({"location": "local", "identity": {"type": "SystemAssigned"}})),
    )
    .await;
    assert_eq!(status, 409, "{err}");
    // No api-version: refused as ARM does.
    let response = s
        .client
        .get(format!("{}{cluster}", s.url))
        .bearer_auth(s.owner())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    // A reader may read, not change; an ingestion token may do neither.
    let reader = s.token(&[Role::Reader], None);
    let response = s
        .client
        .put(format!(
            "{}{}?api-version=2025-07-01",
            s.url,
            oi("clusters/other-one")
        ))
        .bearer_auth(&reader)
        .json(&json!({"location": "local"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let response = s
        .client
        .get(format!(
            "{}{}?api-version=2025-07-01",
            s.url,
            oi("clusters")
        ))
        .bearer_auth(s.token(&[Role::Publisher], None))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vaults_policies_and_role_assignments_through_arm_are_the_cli_s() {
    let s = serve(Options::default()).await;
    let vault = format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.KeyVault/vaults/arm-kv"
    );
    let (status, _, body) = arm(
        &s,
        "PUT",
        &vault,
        Some(
            json!({"location": "local", "properties": {"tenantId": "local",
            "sku": {"family": "A", "name": "standard"}, "accessPolicies": [],
            "enableSoftDelete": true, "enablePurgeProtection": true}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["properties"]["vaultUri"],
        format!("{}/vaults/arm-kv/", s.url)
    );
    let info = s.engine.vault().vault_info("arm-kv").unwrap();
    assert!(info.recoverable);
    // Purge protection cannot be turned off (the CLI's refusal, as ARM's 400).
    let (status, _, err) = arm(
        &s,
        "PUT",
        &vault,
        Some(json!({"location": "local", "properties": {"enablePurgeProtection": false}})),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be turned off"),
        "{err}"
    );
    assert!(
        s.engine
            .vault()
            .vault_info("arm-kv")
            .unwrap()
            .properties
            .purge_protection
    );
    // A cluster's identity gets a policy, then a role assignment instead.
    let cluster = s
        .engine
        .control()
        .create_cluster(logvault::control::ClusterSpec::new("arm-kv-cluster"))
        .await
        .unwrap();
    let principal = cluster.identity.principal_id.unwrap().0;
    let (status, _, body) = arm(
        &s,
        "PUT",
        &format!("{vault}/accessPolicies/add"),
        Some(
            json!({"properties": {"accessPolicies": [{"tenantId": "local", "objectId": principal,
            "permissions": {"keys": ["get", "wrapKey"]}}]}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    arm(
        &s,
        "PUT",
        &format!("{vault}/accessPolicies/add"),
        Some(
            json!({"properties": {"accessPolicies": [{"tenantId": "local", "objectId": principal,
            "permissions": {"keys": ["unwrapKey"]}}]}}),
        ),
    )
    .await;
    let policies = s
        .engine
        .vault()
        .vault_info("arm-kv")
        .unwrap()
        .access_policies;
    assert_eq!(policies.len(), 1);
    assert_eq!(
        policies[0].key_permissions,
        vec!["get", "wrapKey", "unwrapKey"]
    );
    let (status, _, _) = arm(
        &s,
        "PUT",
        &format!("{vault}/accessPolicies/remove"),
        Some(
            json!({"properties": {"accessPolicies": [{"tenantId": "local", "objectId": principal,
            "permissions": {"keys": []}}]}}),
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        s.engine
            .vault()
            .vault_info("arm-kv")
            .unwrap()
            .access_policies
            .is_empty()
    );
    let assignment = format!(
        "{vault}/providers/Microsoft.Authorization/roleAssignments/0b8a1f6c-6d3a-4a1e-9d4b-3c2e1f0a9b8c"
    );
    let (status, _, body) = arm(
        &s,
        "PUT",
        &assignment,
        Some(json!({"properties": {
            "roleDefinitionId": "/subscriptions/local/providers/Microsoft.Authorization/roleDefinitions/e147488a-f6f5-4113-8e2d-b22465e65bf6",
            "principalId": principal}})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let assigned = s.engine.vault().role_assignments("arm-kv").unwrap();
    assert_eq!(assigned.len(), 1);
    assert_eq!(assigned[0].principal_id, principal);
    let name = body["name"].as_str().unwrap().to_owned();
    let by_name = format!("{vault}/providers/Microsoft.Authorization/roleAssignments/{name}");
    let (status, _, got) = arm(&s, "GET", &by_name, None).await;
    assert_eq!(
        (status, got["properties"]["principalId"].as_str()),
        (200, Some(principal.as_str()))
    );
    let (status, _, _) = arm(&s, "DELETE", &by_name, None).await;
    assert_eq!(status, 200);
    assert!(
        s.engine
            .vault()
            .role_assignments("arm-kv")
            .unwrap()
            .is_empty()
    );
    // Vaults need Owner: a Log Analytics Contributor is refused.
    let response = s
        .client
        .put(format!("{}{vault}?api-version=2025-07-01", s.url))
        .bearer_auth(s.token(&[Role::Contributor], None))
        .json(&json!({"location": "local"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_assigned_cluster_takes_its_key_at_creation() {
    let s = serve(Options::default()).await;
    let vault = s.engine.vault();
    vault
        .create_vault(
            "ua-kv",
            &logvault::kms::local::CreateVaultOptions {
                purge_protection: true,
                ..Default::default()
            },
        )
        .unwrap();
    vault
        .create_key("ua-kv", "cmk", logvault::kms::KeyType::Rsa, None)
        .unwrap();
    let identity = vault
        .identities()
        .create_user_assigned("ua-id", &logvault::kms::IdentityOptions::default())
        .unwrap();
    vault
        .set_policy(
            "ua-kv",
            &identity.principal_id,
            &["get".into(), "wrapKey".into(), "unwrapKey".into()],
        )
        .unwrap();
    let key = json!({"keyVaultUri": format!("{}/vaults/ua-kv/", s.url), "keyName": "cmk",
                     "keyVersion": ""});
    // A system-assigned identity cannot take a key at creation (R-C2): the seed's advice.
    let (status, _, err) = arm(
        &s,
        "PUT",
        &oi("clusters/sys-cluster"),
        Some(
            json!({"location": "local", "identity": {"type": "SystemAssigned"},
                    "properties": {"keyVaultProperties": key}}),
        ),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    // A user-assigned one can.
    let (status, _, body) = arm(
        &s,
        "PUT",
        &oi("clusters/ua-cluster"),
        Some(json!({"location": "local",
                    "identity": {"type": "UserAssigned", "userAssignedIdentities": {identity.id.clone(): {}}},
                    "sku": {"name": "CapacityReservation", "capacity": 500},
                    "properties": {"keyVaultProperties": key}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["identity"]["type"], "UserAssigned");
    assert!(
        body["identity"]["userAssignedIdentities"]
            .get(&identity.id)
            .is_some(),
        "{body}"
    );
    let cluster = s.engine.control().get_cluster("ua-cluster").unwrap();
    assert_eq!(
        cluster.key.map(|k| (k.key_vault_uri, k.key_name)),
        Some((format!("{}/vaults/ua-kv", s.url), "cmk".to_owned()))
    );
    assert_eq!(cluster.identity.principal_id, Some(identity.principal_id));
}
