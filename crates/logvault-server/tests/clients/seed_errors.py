"""Every error the seed lists (and the rules around them), as Azure's SDKs raise them against
`logvault serve`: HttpResponseError (ResourceNotFoundError, ResourceExistsError) with the HTTP
status, ARM's error code and the seed's message. Cluster operations take seconds here, so that
"while an operation runs" can be caught. Exits non-zero on the first difference.

Environment: LV_URL, LV_CERT, LV_OWNER, LV_CRYPTO, LV_SUB, LV_RG.
"""

import os
import sys
import time

from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.keys import KeyClient
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.loganalytics import LogAnalyticsManagementClient


class StaticToken:
    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes, options=None):
        return AccessTokenInfo(self.token, int(time.time()) + 3600)


def fail(message):
    print(f"MISMATCH {message}", file=sys.stderr)
    sys.exit(1)


def raises(what, call, status, code, needle, kind=HttpResponseError):
    """`call` must raise `kind` with `status`, ARM's `code` (None: not checked) and `needle`."""
    try:
        call()
    except HttpResponseError as e:
        if not isinstance(e, kind):
            fail(f"{what}: raised {type(e).__name__}, expected {kind.__name__}: {e}")
        if e.status_code != status:
            fail(f"{what}: status {e.status_code}, expected {status}: {e}")
        got_code = e.error.code if e.error is not None else None
        if code is not None and got_code != code:
            fail(f"{what}: code {got_code!r}, expected {code!r}: {e}")
        if needle not in str(e):
            fail(f"{what}: {needle!r} not in {e}")
        print(f"ok {what}: {type(e).__name__} {e.status_code} {got_code}")
        return
    fail(f"{what}: no error")


env = os.environ
url, cert = env["LV_URL"], env["LV_CERT"]
sub, rg, workspace = env["LV_SUB"], env["LV_RG"], "err-ws"
owner = StaticToken(env["LV_OWNER"])
crypto = StaticToken(env["LV_CRYPTO"])
tenant, location = "local", "eastus"
kv = KeyVaultManagementClient(owner, sub, base_url=url, connection_verify=cert)
la = LogAnalyticsManagementClient(owner, sub, base_url=url, connection_verify=cert)


def vault(name, purge_protection):
    return kv.vaults.begin_create_or_update(
        rg,
        name,
        {
            "location": location,
            "properties": {
                "tenantId": tenant,
                "sku": {"family": "A", "name": "standard"},
                "accessPolicies": [],
                "enableSoftDelete": True,
                "enablePurgeProtection": purge_protection,
            },
        },
    ).result()


def grant(vault_name, principal):
    kv.vaults.update_access_policy(
        rg,
        vault_name,
        "add",
        {"properties": {"accessPolicies": [
            {"tenantId": tenant, "objectId": principal, "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]}}
        ]}},
    )


def key_props(uri, name, version=""):
    return {"properties": {"keyVaultProperties": {"keyVaultUri": uri, "keyName": name, "keyVersion": version}}}


def cluster_body():
    return {"location": location, "identity": {"type": "SystemAssigned"}, "sku": {"name": "CapacityReservation", "capacity": 500}}


good, weak = vault("goodkv", True), vault("weakkv", False)
good_keys = KeyClient(good.properties.vault_uri, crypto, verify_challenge_resource=False, connection_verify=cert)
weak_keys = KeyClient(weak.properties.vault_uri, crypto, verify_challenge_resource=False, connection_verify=cert)
good_keys.create_rsa_key("cmk")
weak_keys.create_rsa_key("cmk")

# Two clusters at once; while they are Creating, no update (R-C3).
creating = la.clusters.begin_create_or_update(rg, "err-a", cluster_body())
creating_b = la.clusters.begin_create_or_update(rg, "err-b", cluster_body())
raises(
    "update while creating",
    lambda: la.clusters.begin_update(rg, "err-a", {"sku": {"name": "CapacityReservation", "capacity": 1000}}).result(),
    400, "BadRequest", "Operation cannot be executed now",
)
a, b = creating.result(), creating_b.result()
grant("goodkv", a.identity.principal_id)
grant("weakkv", a.identity.principal_id)

raises("key properties with a bad format", lambda: la.clusters.begin_update(rg, "err-a", key_props(good.properties.vault_uri, "")).result(),
       400, "BadRequest", "KeyVaultProperties is not empty but has a bad format")
raises("key in a vault without purge protection", lambda: la.clusters.begin_update(rg, "err-a", key_props(weak.properties.vault_uri, "cmk")).result(),
       400, "BadRequest", "Key is not recoverable")
raises("a key that does not exist", lambda: la.clusters.begin_update(rg, "err-a", key_props(good.properties.vault_uri, "nokey")).result(),
       400, "BadRequest", "Failed to validate key in Key Vault")
both = key_props(good.properties.vault_uri, "cmk")
both["identity"] = {"type": "None"}
raises("identity and key in one update", lambda: la.clusters.begin_update(rg, "err-a", both).result(),
       400, "BadRequest", "should not include both identity and key")
raises("key update of a cluster that does not exist", lambda: la.clusters.begin_update(rg, "nothere", key_props(good.properties.vault_uri, "cmk")).result(),
       404, "ResourceNotFound", "Cluster not found", ResourceNotFoundError)

# Provisioned with the key; a workspace links to one cluster only (R-D2).
la.workspaces.begin_create_or_update(rg, workspace, {"location": location}).result()
la.clusters.begin_update(rg, "err-a", key_props(good.properties.vault_uri, "cmk")).result()
la.linked_services.begin_create_or_update(rg, workspace, "cluster", {"properties": {"writeAccessResourceId": a.id}}).result()
raises("link to a second cluster", lambda: la.linked_services.begin_create_or_update(
    rg, workspace, "cluster", {"properties": {"writeAccessResourceId": b.id}}).result(),
    409, "Conflict", workspace, ResourceExistsError)
la.linked_services.begin_delete(rg, workspace, "cluster").result()

# While it is being deleted, no update; then its name is reserved and GET says not found.
deleting = la.clusters.begin_delete(rg, "err-b")
raises("update while deleting", lambda: la.clusters.begin_update(rg, "err-b", {"sku": {"name": "CapacityReservation", "capacity": 1000}}).result(),
       400, "BadRequest", "Cluster is in deleting state")
deleting.result()
raises("get of a deleted cluster", lambda: la.clusters.get(rg, "err-b"), 404, "ResourceNotFound", "Cluster not found", ResourceNotFoundError)
raises("create with a reserved name", lambda: la.clusters.begin_create_or_update(rg, "err-b", cluster_body()).result(),
       409, "Conflict", "reserved", ResourceExistsError)

# The keys API honours soft delete and purge protection.
good_keys.create_rsa_key("cmk2")
deleted = good_keys.begin_delete_key("cmk2").result()
if deleted.recovery_id is None or deleted.scheduled_purge_date is None:
    fail(f"deleted key has no recovery id or purge date: {deleted}")
raises("purge under purge protection", lambda: good_keys.purge_deleted_key("cmk2"), 409, None, "purge protection")
raises("get of a deleted key", lambda: good_keys.get_key("cmk2"), 404, None, "cmk2", ResourceNotFoundError)
recovered = good_keys.begin_recover_deleted_key("cmk2").result()
if not recovered.properties.enabled:
    fail("recovered key is not enabled")
print("ok delete, purge refused, recover")
weak_keys.create_rsa_key("gone")
weak_keys.begin_delete_key("gone").result()
weak_keys.purge_deleted_key("gone")
raises("get of a purged key", lambda: weak_keys.get_deleted_key("gone"), 404, None, "gone", ResourceNotFoundError)
print("SEED ERRORS OK")
