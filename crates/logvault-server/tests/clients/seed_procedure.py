"""The seed's customer-managed-key procedure, end to end, with only Azure's SDK calls against
`logvault serve`: azure-mgmt-keyvault (vault with soft delete and purge protection, access
policy for the cluster's identity), azure-keyvault-keys (create, local wrap with the RSA public
key and remote unwrap, disable, enable, rotate), azure-mgmt-loganalytics (cluster with a system
identity, key update, workspace, link, unlink, delete: long-running operations polled as the
SDK does), azure-monitor-ingestion and azure-monitor-query (data in and out, refused while the
key is disabled). Exits non-zero on the first difference.

Environment: LV_URL, LV_CERT, LV_OWNER (an Owner token), LV_CRYPTO (a Key Vault Crypto Officer
token), LV_PUBLISHER, LV_READER (tokens for ingestion and queries), LV_SUB, LV_RG, LV_WORKSPACE
(the workspace to make), LV_NOW
(the server's clock, ISO 8601), LV_SLOW ("1" when cluster operations take seconds: the poller
must see them in progress).
"""

import os
import sys
import time
from datetime import datetime, timedelta

from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.loganalytics import LogAnalyticsManagementClient
from azure.monitor.ingestion import LogsIngestionClient
from azure.monitor.query import LogsQueryClient, LogsQueryStatus


class StaticToken:
    """A credential is any object with get_token: it gives the token of `logvault token create`."""

    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes, options=None):
        return AccessTokenInfo(self.token, int(time.time()) + 3600)


def check(what, got, expected):
    if got != expected:
        print(f"MISMATCH {what}: got {got!r}, expected {expected!r}", file=sys.stderr)
        sys.exit(1)
    print(f"ok {what}")


def refused(what, call, status, *needles):
    """Runs `call`, which must raise HttpResponseError with `status` and every needle in it."""
    try:
        call()
    except HttpResponseError as e:
        text = str(e)
        check(f"{what}: status", e.status_code, status)
        for needle in needles:
            if needle not in text:
                print(f"MISMATCH {what}: {needle!r} not in {text!r}", file=sys.stderr)
                sys.exit(1)
        print(f"ok {what}: refused ({e.status_code})")
        return e
    print(f"MISMATCH {what}: not refused", file=sys.stderr)
    sys.exit(1)


env = os.environ
url, cert = env["LV_URL"], env["LV_CERT"]
sub, rg = env["LV_SUB"], env["LV_RG"]
workspace, stream = env["LV_WORKSPACE"], "Custom-SeedEvents"
slow = env.get("LV_SLOW") == "1"
now = datetime.fromisoformat(env["LV_NOW"].replace("Z", "+00:00"))
owner = StaticToken(env["LV_OWNER"])
tenant = "local"
location = "eastus"
vault_name, key_name, cluster_name = "seedkv", "cmk", "seed-cluster"

kv_mgmt = KeyVaultManagementClient(owner, sub, base_url=url, connection_verify=cert)
la = LogAnalyticsManagementClient(owner, sub, base_url=url, connection_verify=cert)

# 1. A vault with soft delete and purge protection (R-A2).
vault = kv_mgmt.vaults.begin_create_or_update(
    rg,
    vault_name,
    {
        "location": location,
        "properties": {
            "tenantId": tenant,
            "sku": {"family": "A", "name": "standard"},
            "accessPolicies": [],
            "enableSoftDelete": True,
            "enablePurgeProtection": True,
            "softDeleteRetentionInDays": 7,
        },
    },
).result()
vault_uri = vault.properties.vault_uri
check("vault purge protection", vault.properties.enable_purge_protection, True)
check("vault uri", vault_uri, f"{url}/vaults/{vault_name}/")

# 2. An RSA key, through the vault's URI as given.
keys = KeyClient(
    vault_uri, StaticToken(env["LV_CRYPTO"]), verify_challenge_resource=False, connection_verify=cert
)
key = keys.create_rsa_key(key_name, size=2048)
check("key type", key.key_type, "RSA")
check("key modulus bytes", len(key.key.n), 256)
check("key recovery level", key.properties.recovery_level, "Recoverable")
first_version = key.properties.version

# The SDK wraps locally with the bundle's public key; the vault unwraps it: n and e are real.
crypto = CryptographyClient(
    key, StaticToken(env["LV_CRYPTO"]), verify_challenge_resource=False, connection_verify=cert
)
secret = os.urandom(32)
wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, secret)
check("wrap with the key version", wrapped.key_id, key.id)
check("unwrap gives the secret back", crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key, secret)

# 3. A cluster with a system-assigned identity (long-running).
poller = la.clusters.begin_create_or_update(
    rg,
    cluster_name,
    {
        "location": location,
        "identity": {"type": "SystemAssigned"},
        "sku": {"name": "CapacityReservation", "capacity": 500},
        "properties": {"billingType": "Cluster"},
    },
)
if slow:
    check("cluster create still running after the first answer", poller.done(), False)
cluster = poller.result()
check("cluster provisioned", cluster.properties.provisioning_state, "Succeeded")
principal = cluster.identity.principal_id
if not principal:
    print("MISMATCH cluster has no principal id", file=sys.stderr)
    sys.exit(1)

# The seed's errors before access is granted: the key cannot be validated (R-C3).
refused(
    "key update without access",
    lambda: la.clusters.begin_update(
        rg,
        cluster_name,
        {"properties": {"keyVaultProperties": {"keyVaultUri": vault_uri, "keyName": key_name, "keyVersion": ""}}},
    ).result(),
    400,
    "Failed to validate key in Key Vault",
)

# 4. Grant the identity get, wrapKey and unwrapKey.
kv_mgmt.vaults.update_access_policy(
    rg,
    vault_name,
    "add",
    {
        "properties": {
            "accessPolicies": [
                {"tenantId": tenant, "objectId": principal, "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]}}
            ]
        }
    },
)
policies = kv_mgmt.vaults.get(rg, vault_name).properties.access_policies
check("access policy", [(p.object_id, sorted(p.permissions["keys"])) for p in policies], [(principal, ["get", "unwrapKey", "wrapKey"])])

# 5. Update the cluster with the key (autorotation: empty version).
cluster = la.clusters.begin_update(
    rg,
    cluster_name,
    {"properties": {"keyVaultProperties": {"keyVaultUri": vault_uri, "keyName": key_name, "keyVersion": ""}}},
).result()
check("cluster key", cluster.properties.key_vault_properties.key_name, key_name)
check("cluster provisioned after the key update", cluster.properties.provisioning_state, "Succeeded")


def key_status():
    return la.clusters.get(rg, cluster_name).as_dict()["properties"]["keyStatus"]


check("key state", key_status()["keyState"], "active")
check("key version in use", key_status()["keyVersionInUse"], first_version)

# 6. A workspace, 7. linked to the cluster.
ws = la.workspaces.begin_create_or_update(
    rg, workspace, {"location": location, "properties": {"sku": {"name": "PerGB2018"}}}
).result()
customer_id = ws.properties.customer_id
la.linked_services.begin_create_or_update(
    rg, workspace, "cluster", {"properties": {"writeAccessResourceId": cluster.id}}
).result()
ws = la.workspaces.get(rg, workspace)
check("workspace linked", ws.properties.features.cluster_resource_id, cluster.id)
# Three workspaces (the test made two): with LV_PAGE=1, three pages followed through nextLink.
check("workspaces of the subscription", sorted(w.name for w in la.workspaces.list()), sorted([workspace, "ws-app", "ws-other"]))
check("clusters of the resource group", [c.name for c in la.clusters.list_by_resource_group(rg)], [cluster_name])

# A data collection rule into the workspace (Microsoft.Insights has no client among the pinned
# SDKs: the management client's own pipeline sends it, with the same credential and TLS).
dcr = la.send_request(
    HttpRequest(
        "PUT",
        f"{url}/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Insights/dataCollectionRules/seed-rule?api-version=2023-03-11",
        json={
            "location": location,
            "properties": {
                "destinations": {"logAnalytics": [{"workspaceResourceId": ws.id, "name": "seedws"}]},
                "dataFlows": [{"streams": [stream], "destinations": ["seedws"], "outputStream": "Custom-SeedEvents"}],
            },
        },
    )
)
check("rule created", dcr.status_code, 201)
rule = dcr.json()["properties"]["immutableId"]
check("rule writes to the workspace", dcr.json()["properties"]["destinations"]["logAnalytics"][0]["workspaceId"], customer_id)

# 8. Ingest through the Logs Ingestion API, 9. query through LogsQueryClient.
ingestion = LogsIngestionClient(endpoint=url, credential=StaticToken(env["LV_PUBLISHER"]), connection_verify=cert)
query = LogsQueryClient(StaticToken(env["LV_READER"]), endpoint=url + "/v1", connection_verify=cert)
sent = 0


def upload(n, tag):
    global sent
    records = [
        {"TimeGenerated": (now - timedelta(minutes=5, seconds=i)).isoformat(), "Tag": tag, "Seq": i}
        for i in range(n)
    ]
    ingestion.upload(rule_id=rule, stream_name=stream, logs=records)
    sent += n


def count():
    result = query.query_workspace(customer_id, "SeedEvents | count", timespan=None)
    check("query status", result.status, LogsQueryStatus.SUCCESS)
    return result.tables[0].rows[0][0]


upload(10, "linked")
check("rows under the customer key", count(), sent)

# A saved function and the table's retention, through the workspace's sub-resources.
saved = la.saved_searches.create_or_update(
    rg,
    workspace,
    "seed-count",
    {"properties": {"category": "seed", "displayName": "Seed count", "query": "SeedEvents | count", "functionAlias": "SeedCount"}},
)
check("saved function", saved.properties.function_alias, "SeedCount")
check("saved searches", [x.name for x in la.saved_searches.list_by_workspace(rg, workspace).value], ["seed-count"])
table = la.tables.begin_update(rg, workspace, "SeedEvents", {"properties": {"retentionInDays": 60}}).result()
check("table retention", table.properties.retention_in_days, 60)
check("tables", [t.name for t in la.tables.list_by_workspace(rg, workspace)], ["SeedEvents"])

# 10. Disable the key: ingestion and queries are refused, naming the workspace, cluster and key.
keys.update_key_properties(key_name, enabled=False)
check("key state after disable", key_status()["keyState"], "revoked")
refused("ingestion with the key disabled", lambda: upload(3, "revoked"), 403, cluster_name, key_name)
refused("query with the key disabled", count, 403, cluster_name, key_name)

# 11. Enable it: both resume.
keys.update_key_properties(key_name, enabled=True)
check("key state after enable", key_status()["keyState"], "active")
upload(5, "resumed")
check("rows after the key came back", count(), sent)

# 12. Rotate: the cluster follows (autorotation) ...
second = keys.rotate_key(key_name)
check("rotated version is new", second.properties.version != first_version, True)
check("autorotation follows", key_status()["keyVersionInUse"], second.properties.version)
versions = sorted(v.version for v in keys.list_properties_of_key_versions(key_name))
check("key versions", versions, sorted([first_version, second.properties.version]))
# ... or, on an explicit version, does not.
la.clusters.begin_update(
    rg,
    cluster_name,
    {"properties": {"keyVaultProperties": {"keyVaultUri": vault_uri, "keyName": key_name, "keyVersion": second.properties.version}}},
).result()
third = keys.rotate_key(key_name)
check("explicit version stays", key_status()["keyVersionInUse"], second.properties.version)
upload(4, "explicit")
check("rows on the explicit version", count(), sent)

# Soft delete and purge protection are honoured by the keys API.
refused("purge of a live key", lambda: keys.purge_deleted_key(key_name), 404)

# 13. Unlink: new data goes under the service key; everything stays readable.
la.linked_services.begin_delete(rg, workspace, "cluster").result()
check("workspace unlinked", la.workspaces.get(rg, workspace).properties.features.cluster_resource_id, None)
upload(2, "unlinked")
check("rows after unlink", count(), sent)

# 14. Delete the cluster (long-running; then not found, with the seed's message).
la.clusters.begin_delete(rg, cluster_name).result()
refused("get of the deleted cluster", lambda: la.clusters.get(rg, cluster_name), 404, "Cluster not found")
check("third version exists", third.properties.version not in (first_version, second.properties.version), True)
print("SEED PROCEDURE OK")
