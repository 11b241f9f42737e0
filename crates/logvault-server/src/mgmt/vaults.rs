//! `Microsoft.KeyVault/vaults` (create, update, get), their `accessPolicies` (add, replace,
//! remove) and `Microsoft.Authorization/roleAssignments` on a vault, in azure-mgmt-keyvault's
//! shapes, on the local vault's owner operations (the same as `logvault vault ...`).
//!
//! The local vault keeps no subscription or resource group: a vault answers under whichever
//! the request names. Its `vaultUri` is where this server serves its keys:
//! `https://HOST:PORT/vaults/NAME/` (see the Key Vault data plane in `crate::keyvault`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use logvault::kms::PrincipalId;
use logvault::kms::local::{CreateVaultOptions, UpdateVaultOptions, VaultInfo};
use serde_json::{Value, json};

use super::{Arm, arm, bad, body_json, json_response, text, vault_error};
use crate::http::errors::ApiError;
use crate::http::{Shared, blocking};
use crate::roles::Permission;

type VaultPath = Path<(String, String, String)>;

/// The vault as azure-mgmt-keyvault's `Vault`.
fn vault_json(arm: &Arm, sub: &str, rg: &str, info: &VaultInfo) -> Value {
    let name = &info.properties.name;
    let policies: Vec<Value> = info
        .access_policies
        .iter()
        .map(|p| {
            json!({
                "tenantId": p.tenant_id,
                "objectId": p.object_id,
                "permissions": { "keys": p.key_permissions, "secrets": [], "certificates": [] },
            })
        })
        .collect();
    json!({
        "id": format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}"),
        "name": name,
        "type": "Microsoft.KeyVault/vaults",
        "location": info.properties.region,
        "tags": {},
        "properties": {
            "tenantId": info.properties.tenant,
            "sku": { "family": "A", "name": "standard" },
            "accessPolicies": policies,
            "vaultUri": format!("{}/vaults/{name}/", arm.base),
            "enableSoftDelete": info.properties.soft_delete,
            "softDeleteRetentionInDays": info.soft_delete_retention_days,
            "enablePurgeProtection": info.properties.purge_protection.then_some(true),
            "enableRbacAuthorization": false,
            "provisioningState": "Succeeded",
            "createdAt": info.created.to_rfc3339(),
        },
    })
}

/// `GET .../Microsoft.KeyVault/vaults/{vault}`.
pub(crate) async fn get(
    State(state): State<Shared>,
    Path((sub, rg, vault)): VaultPath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let arm = arm(&state, &headers, &uri, Permission::ManageRead)?;
    let info = blocking(&state, move |e| e.vault().vault_info(&vault))
        .await?
        .map_err(|e| vault_error(&e))?;
    Ok(json_response(
        StatusCode::OK,
        &vault_json(&arm, &sub, &rg, &info),
    ))
}

/// The key permissions of each access policy in `body.properties.accessPolicies`.
fn policies(body: &Value) -> Result<Vec<(PrincipalId, Vec<String>)>, ApiError> {
    let Some(list) = body.pointer("/properties/accessPolicies") else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| bad("properties.accessPolicies must be an array"))?;
    list.iter()
        .map(|p| {
            let object =
                text(p, "/objectId").ok_or_else(|| bad("an access policy needs objectId"))?;
            let keys: Vec<String> = p
                .pointer("/permissions/keys")
                .and_then(Value::as_array)
                .map(|k| {
                    k.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            Ok((PrincipalId(object.to_owned()), keys))
        })
        .collect()
}

/// `PUT .../Microsoft.KeyVault/vaults/{vault}`: creates the vault, or turns on its soft delete
/// and purge protection; the access policies given are set.
pub(crate) async fn put(
    State(state): State<Shared>,
    Path((sub, rg, vault)): VaultPath,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let arm = arm(&state, &headers, &uri, Permission::ManageVaults)?;
    let body = body_json(&body)?;
    let policies = policies(&body)?;
    let flag = |p: &str| body.pointer(p).and_then(Value::as_bool);
    let soft_delete = flag("/properties/enableSoftDelete");
    let purge_protection = flag("/properties/enablePurgeProtection");
    let retention = body
        .pointer("/properties/softDeleteRetentionInDays")
        .and_then(Value::as_u64)
        .and_then(|d| u32::try_from(d).ok());
    let region = text(&body, "/location").map(str::to_ascii_lowercase);
    let tenant = text(&body, "/properties/tenantId").map(str::to_owned);
    let (info, status) = blocking(&state, move |e| {
        let local = e.vault();
        let (info, status) = match local.vault_info(&vault) {
            Ok(_) => {
                // Turning either off is refused by the vault, as by Azure.
                let options = UpdateVaultOptions {
                    soft_delete,
                    purge_protection,
                };
                (local.update_vault(&vault, &options)?, StatusCode::OK)
            }
            Err(logvault::kms::VaultError::VaultNotFound { .. }) => {
                let defaults = CreateVaultOptions::default();
                let options = CreateVaultOptions {
                    region: region.unwrap_or(defaults.region),
                    tenant: tenant.unwrap_or(defaults.tenant),
                    soft_delete: soft_delete.unwrap_or(true),
                    purge_protection: purge_protection.unwrap_or(false),
                    retention_days: retention,
                };
                (local.create_vault(&vault, &options)?, StatusCode::OK)
            }
            Err(other) => return Err(other),
        };
        for (principal, keys) in &policies {
            local.set_policy(&vault, principal, keys)?;
        }
        let info = if policies.is_empty() {
            info
        } else {
            local.vault_info(&vault)?
        };
        Ok((info, status))
    })
    .await?
    .map_err(|e| vault_error(&e))?;
    Ok(json_response(status, &vault_json(&arm, &sub, &rg, &info)))
}

/// `PUT .../vaults/{vault}/accessPolicies/{add|replace|remove}`: grants key permissions to
/// principals (add: on top of what they have; replace: instead; remove: takes them away).
pub(crate) async fn access_policy(
    State(state): State<Shared>,
    Path((sub, rg, vault, kind)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let arm = arm(&state, &headers, &uri, Permission::ManageVaults)?;
    let body = body_json(&body)?;
    let policies = policies(&body)?;
    let kind = kind.to_ascii_lowercase();
    if !matches!(kind.as_str(), "add" | "replace" | "remove") {
        return Err(bad(format!(
            "access policy operation {kind} is not one of add, replace, remove"
        )));
    }
    let name = vault.clone();
    let info = blocking(&state, move |e| {
        let local = e.vault();
        for (principal, keys) in &policies {
            let had: Vec<String> = local
                .vault_info(&name)?
                .access_policies
                .iter()
                .find(|p| p.object_id == principal.0)
                .map(|p| p.key_permissions.clone())
                .unwrap_or_default();
            match kind.as_str() {
                "add" => {
                    let mut all = had;
                    all.extend(keys.iter().cloned());
                    local.set_policy(&name, principal, &all)?;
                }
                "replace" => {
                    local.set_policy(&name, principal, keys)?;
                }
                _ => {
                    let left: Vec<String> = had
                        .into_iter()
                        .filter(|h| !keys.iter().any(|k| k.eq_ignore_ascii_case(h)))
                        .collect();
                    if left.is_empty() || keys.is_empty() {
                        local.delete_policy(&name, principal)?;
                    } else {
                        local.set_policy(&name, principal, &left)?;
                    }
                }
            }
        }
        local.vault_info(&name)
    })
    .await?
    .map_err(|e| vault_error(&e))?;
    let full = vault_json(&arm, &sub, &rg, &info);
    let body = json!({
        "id": format!("{}/accessPolicies/{}", full["id"].as_str().unwrap_or_default(), "update"),
        "name": "update",
        "type": "Microsoft.KeyVault/vaults/accessPolicies",
        "location": info.properties.region,
        "properties": { "accessPolicies": full["properties"]["accessPolicies"] },
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// A role assignment as Microsoft.Authorization answers it.
fn assignment_json(a: &logvault::kms::local::RoleAssignment, scope: &str) -> Value {
    json!({
        "id": format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{}", a.name),
        "name": a.name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": format!(
                "/providers/Microsoft.Authorization/roleDefinitions/{}", a.role_definition_id
            ),
            "principalId": a.principal_id,
            "principalType": "ServicePrincipal",
            "scope": scope,
            "createdOn": a.created_on.to_rfc3339(),
        },
    })
}

fn scope(sub: &str, rg: &str, vault: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{vault}")
}

fn assignment_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "RoleAssignmentNotFound",
        format!("The role assignment '{id}' is not found."),
    )
}

/// `GET {vault}/providers/Microsoft.Authorization/roleAssignments/{id}`.
pub(crate) async fn get_role_assignment(
    State(state): State<Shared>,
    Path((sub, rg, vault, id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::ManageRead)?;
    let name = vault.clone();
    let all = blocking(&state, move |e| e.vault().role_assignments(&name))
        .await?
        .map_err(|e| vault_error(&e))?;
    let found = all
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(&id))
        .ok_or_else(|| assignment_not_found(&id))?;
    Ok(json_response(
        StatusCode::OK,
        &assignment_json(found, &scope(&sub, &rg, &vault)),
    ))
}

/// `PUT {vault}/providers/Microsoft.Authorization/roleAssignments/{id}` with
/// `{"properties": {"roleDefinitionId", "principalId"}}`: assigns the role on the vault ("Key
/// Vault Crypto Service Encryption User", the role a cluster's identity needs). The assignment
/// keeps the vault's own name for it.
pub(crate) async fn put_role_assignment(
    State(state): State<Shared>,
    Path((sub, rg, vault, _id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::ManageVaults)?;
    let body = body_json(&body)?;
    let role = text(&body, "/properties/roleDefinitionId")
        .map(|r| r.rsplit('/').next().unwrap_or(r).to_owned())
        .ok_or_else(|| bad("properties.roleDefinitionId is required"))?;
    let principal = text(&body, "/properties/principalId")
        .map(|p| PrincipalId(p.to_owned()))
        .ok_or_else(|| bad("properties.principalId is required"))?;
    let name = vault.clone();
    let assigned = blocking(&state, move |e| {
        e.vault().assign_role(&name, &principal, &role)
    })
    .await?
    .map_err(|e| vault_error(&e))?;
    Ok(json_response(
        StatusCode::CREATED,
        &assignment_json(&assigned, &scope(&sub, &rg, &vault)),
    ))
}

/// `DELETE {vault}/providers/Microsoft.Authorization/roleAssignments/{id}`.
pub(crate) async fn delete_role_assignment(
    State(state): State<Shared>,
    Path((sub, rg, vault, id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::ManageVaults)?;
    let name = vault.clone();
    let wanted = id.clone();
    let removed = blocking(&state, move |e| {
        let local = e.vault();
        let all = local.role_assignments(&name)?;
        match all.iter().find(|a| a.name.eq_ignore_ascii_case(&wanted)) {
            Some(a) => local
                .delete_role_assignment(
                    &name,
                    &PrincipalId(a.principal_id.clone()),
                    &a.role_definition_name,
                )
                .map(Some),
            None => Ok(None),
        }
    })
    .await?
    .map_err(|e| vault_error(&e))?;
    match removed {
        Some(a) => Ok(json_response(
            StatusCode::OK,
            &assignment_json(&a, &scope(&sub, &rg, &vault)),
        )),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}
