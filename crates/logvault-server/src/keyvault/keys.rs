//! The keys API's handlers: create (a new version when the key exists, as in Azure), get,
//! list, versions, update (enable/disable), rotate, delete, recover, purge, wrap and unwrap.
//! Changes go through the engine when the clusters on the key must see them at once (rotate,
//! enable/disable, delete, recover), as for `logvault key ...`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use logvault::crypto::SecretBytes;
use logvault::kms::local::{ALG_RSA_OAEP_256, VaultInfo};
use logvault::kms::{KeyProperties, KeyRef, KeyType, KeyVault, PrincipalId, WrappedKey};
use serde_json::{Value, json};

use super::bundle::{self, b64url, from_b64url};
use super::{Target, authorize, engine_error, json, kv_error, resolve, vault_error};
use crate::http::errors::ApiError;
use crate::http::{Shared, blocking};
use crate::mgmt::{base_url, page, url_pairs};
use crate::roles::Permission;

type Params = Path<HashMap<String, String>>;

/// What a handler starts from: the vault, the key's name and version, the base URL.
struct Call {
    vault: String,
    target: Target,
    base: String,
}

/// Who calls: the token's principal, and whether it is an identity's principal id (a GUID, or
/// an identity of the home's directory), whose key reads and cryptography the vault's own
/// permissions govern (see the module documentation of `crate::keyvault`).
struct Caller {
    principal: PrincipalId,
    identity: bool,
}

async fn call(
    state: &Shared,
    headers: &HeaderMap,
    uri: &Uri,
    params: &HashMap<String, String>,
    permission: Permission,
) -> Result<(Call, Caller), ApiError> {
    let principal = PrincipalId(authorize(state, headers, permission)?.name);
    let target = Target::from(params);
    let vault = resolve(state, &target).await?;
    // A principal id (a GUID, as identities' are) stays governed by the vault even after its
    // identity is gone (the vault then refuses it), so deleting an identity never widens what
    // its tokens may do.
    let identity = uuid::Uuid::parse_str(&principal.0).is_ok() || {
        let principal = principal.clone();
        blocking(state, move |e| {
            e.vault().identities().by_principal(&principal)
        })
        .await?
        .map_err(|e| vault_error(&e))?
        .is_some()
    };
    Ok((
        Call {
            vault,
            target,
            base: base_url(state, headers, uri),
        },
        Caller {
            principal,
            identity,
        },
    ))
}

/// For an identity's call: the vault's checked and audited `get` (403 without the `get`
/// permission, as the vault answers the identity); nothing for other callers.
async fn check_get(
    state: &Shared,
    call: &Call,
    caller: &Caller,
    name: &str,
) -> Result<(), ApiError> {
    if !caller.identity {
        return Ok(());
    }
    let key = KeyRef {
        vault: call.vault.clone(),
        name: name.to_owned(),
        version: call.target.version.clone(),
    };
    state
        .engine
        .vault()
        .get_key(&caller.principal, &key)
        .await
        .map(|_| ())
        .map_err(|e| vault_error(&e))
}

/// The vault's view and the key's properties (the owner's view: deleted keys included).
async fn load(
    state: &Shared,
    vault: &str,
    name: &str,
) -> Result<(VaultInfo, KeyProperties), ApiError> {
    let (vault, name) = (vault.to_owned(), name.to_owned());
    blocking(state, move |e| {
        let local = e.vault();
        Ok::<_, logvault::kms::VaultError>((
            local.vault_info(&vault)?,
            local.key_properties(&vault, &name)?,
        ))
    })
    .await?
    .map_err(|e| vault_error(&e))
}

fn key_not_found(name: &str, version: Option<&str>) -> ApiError {
    kv_error(
        StatusCode::NOT_FOUND,
        "KeyNotFound",
        format!(
            "A key with (name/id) {name}{} was not found in this key vault.",
            version.map(|v| format!("/{v}")).unwrap_or_default()
        ),
    )
}

/// The bundle of a live key's version (404 for a deleted key or an unknown version).
async fn live_bundle(
    state: &Shared,
    call: &Call,
    name: &str,
    version: Option<&str>,
) -> Result<Value, ApiError> {
    let (info, key) = load(state, &call.vault, name).await?;
    if key.deleted.is_some() {
        return Err(key_not_found(name, version));
    }
    full_bundle(state, call, &info, &key, version).await
}

async fn full_bundle(
    state: &Shared,
    call: &Call,
    info: &VaultInfo,
    key: &KeyProperties,
    version: Option<&str>,
) -> Result<Value, ApiError> {
    let ver = bundle::version(key, version).ok_or_else(|| key_not_found(&key.name, version))?;
    let public = match key.kty {
        KeyType::Rsa => {
            let (vault, name, v) = (call.vault.clone(), key.name.clone(), ver.version.clone());
            blocking(state, move |e| {
                e.vault().public_key(&vault, &name, Some(&v))
            })
            .await?
            .map_err(|e| vault_error(&e))?
        }
        KeyType::Oct => None,
    };
    Ok(bundle::key_bundle(
        &call.base,
        info,
        key,
        ver,
        public.as_ref(),
    ))
}

fn body_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| {
        kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            format!("the request body is not JSON: {e}"),
        )
    })
}

/// `POST /keys/{name}/create` `{"kty", "key_size"?, "attributes"?}`: a new key, or a new
/// version of an existing one.
pub(crate) async fn create(
    State(state): State<Shared>,
    Path(params): Params,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (call, _) = call(&state, &headers, &uri, &params, Permission::KeyManage).await?;
    let name = call.target.name()?.to_owned();
    let body = body_json(&body)?;
    let kty = match body.get("kty").and_then(Value::as_str).unwrap_or_default() {
        "RSA" | "RSA-HSM" => KeyType::Rsa,
        "oct" | "oct-HSM" => KeyType::Oct,
        other => {
            return Err(kv_error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                format!("key type {other:?} is not supported here: RSA, RSA-HSM, oct or oct-HSM"),
            ));
        }
    };
    let size = body
        .get("key_size")
        .and_then(Value::as_u64)
        .and_then(|s| u32::try_from(s).ok());
    let exists = load(&state, &call.vault, &name).await.ok();
    match exists {
        // As in Azure: creating an existing key adds a version.
        Some((_, key)) if key.deleted.is_none() => {
            state
                .engine
                .rotate_key(&call.vault, &name)
                .await
                .map_err(|e| engine_error(&e))?;
        }
        _ => {
            let (vault, key) = (call.vault.clone(), name.clone());
            blocking(&state, move |e| {
                e.vault().create_key(&vault, &key, kty, size)
            })
            .await?
            .map_err(|e| vault_error(&e))?;
        }
    }
    if body.pointer("/attributes/enabled") == Some(&Value::Bool(false)) {
        state
            .engine
            .set_key_enabled(&call.vault, &name, None, false)
            .await
            .map_err(|e| engine_error(&e))?;
    }
    Ok(json(
        StatusCode::OK,
        &live_bundle(&state, &call, &name, None).await?,
    ))
}

/// `GET /keys/{name}[/{version}]`.
pub(crate) async fn get(
    State(state): State<Shared>,
    Path(params): Params,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (call, caller) = call(&state, &headers, &uri, &params, Permission::KeyRead).await?;
    let name = call.target.name()?.to_owned();
    let version = call.target.version.clone();
    check_get(&state, &call, &caller, &name).await?;
    Ok(json(
        StatusCode::OK,
        &live_bundle(&state, &call, &name, version.as_deref()).await?,
    ))
}

/// `PATCH /keys/{name}[/{version}]` `{"attributes": {"enabled"}}`: enables or disables the key
/// (or one version); the clusters on it see it at once.
pub(crate) async fn update(
    State(state): State<Shared>,
    Path(params): Params,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (call, _) = call(&state, &headers, &uri, &params, Permission::KeyManage).await?;
    let name = call.target.name()?.to_owned();
    let version = call.target.version.clone();
    let body = body_json(&body)?;
    if let Some(enabled) = body.pointer("/attributes/enabled").and_then(Value::as_bool) {
        state
            .engine
            .set_key_enabled(&call.vault, &name, version.as_deref(), enabled)
            .await
            .map_err(|e| engine_error(&e))?;
    }
    Ok(json(
        StatusCode::OK,
        &live_bundle(&state, &call, &name, version.as_deref()).await?,
    ))
}

/// `POST /keys/{name}/rotate`: a new version; the clusters on the key follow it
/// (autorotation) or keep theirs (explicit version), at once.
pub(crate) async fn rotate(
    State(state): State<Shared>,
    Path(params): Params,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (call, _) = call(&state, &headers, &uri, &params, Permission::KeyManage).await?;
    let name = call.target.name()?.to_owned();
    state
        .engine
        .rotate_key(&call.vault, &name)
        .await
        .map_err(|e| engine_error(&e))?;
    Ok(json(
        StatusCode::OK,
        &live_bundle(&state, &call, &name, None).await?,
    ))
}

/// `DELETE /keys/{name}`: soft delete when the vault has it (the client then polls
/// `GET /deletedkeys/{name}`).
pub(crate) async fn delete(
    State(state): State<Shared>,
    Path(params): Params,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (call, _) = call(&state, &headers, &uri, &params, Permission::KeyManage).await?;
    let name = call.target.name()?.to_owned();
    let (info, before) = load(&state, &call.vault, &name).await?;
    if before.deleted.is_some() {
        return Err(key_not_found(&name, None));
    }
    let bundle = full_bundle(&state, &call, &info, &before, None).await?;
    let (vault, key) = (call.vault.clone(), name.clone());
    let deleted = blocking(&state, move |e| e.vault().delete_key(&vault, &key))
        .await?
        .map_err(|e| vault_error(&e))?;
    state
        .engine
        .check_keys_using(&call.vault, &name)
        .await
        .map_err(|e| engine_error(&e))?;
    let mut out = bundle;
    if info.properties.soft_delete {
        out = bundle::deleted_bundle(&call.base, out, &deleted);
    }
    Ok(json(StatusCode::OK, &out))
}

/// `GET /deletedkeys/{name}`.
pub(crate) async fn get_deleted(
    State(state): State<Shared>,
    Path(params): Params,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (call, _) = call(&state, &headers, &uri, &params, Permission::KeyRead).await?;
    let name = call.target.name()?.to_owned();
    let (info, key) = load(&state, &call.vault, &name)
        .await
        .map_err(|_| deleted_not_found(&name))?;
    if key.deleted.is_none() {
        return Err(deleted_not_found(&name));
    }
    let bundle = full_bundle(&state, &call, &info, &key, None).await?;
    Ok(json(
        StatusCode::OK,
        &bundle::deleted_bundle(&call.base, bundle, &key),
    ))
}

fn deleted_not_found(name: &str) -> ApiError {
    kv_error(
        StatusCode::NOT_FOUND,
        "KeyNotFound",
        format!("Deleted Key not found: {name}"),
    )
}

/// `POST /deletedkeys/{name}/recover`.
pub(crate) async fn recover(
    State(state): State<Shared>,
    Path(params): Params,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (call, _) = call(&state, &headers, &uri, &params, Permission::KeyManage).await?;
    let name = call.target.name()?.to_owned();
    let (vault, key) = (call.vault.clone(), name.clone());
    blocking(&state, move |e| e.vault().recover_key(&vault, &key))
        .await?
        .map_err(|e| vault_error(&e))?;
    state
        .engine
        .check_keys_using(&call.vault, &name)
        .await
        .map_err(|e| engine_error(&e))?;
    Ok(json(
        StatusCode::OK,
        &live_bundle(&state, &call, &name, None).await?,
    ))
}

/// `DELETE /deletedkeys/{name}`: purge (refused while the vault has purge protection).
pub(crate) async fn purge(
    State(state): State<Shared>,
    Path(params): Params,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (call, _) = call(&state, &headers, &uri, &params, Permission::KeyManage).await?;
    let name = call.target.name()?.to_owned();
    let (vault, key) = (call.vault.clone(), name);
    blocking(&state, move |e| e.vault().purge_key(&vault, &key))
        .await?
        .map_err(|e| vault_error(&e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A page of `items` with `nextLink`, as the Key Vault client pages (`maxresults`,
/// `$skiptoken`): the next page is asked for at the request's own path (`/keys` or
/// `/vaults/{vault}/keys`).
fn paged(state: &Shared, call: &Call, uri: &Uri, items: Vec<Value>) -> Value {
    let query: HashMap<String, String> = uri
        .query()
        .map(url_pairs)
        .unwrap_or_default()
        .into_iter()
        .collect();
    page(
        &call.base,
        uri.path(),
        &query,
        items,
        state.management.page_size,
    )
}

/// `GET /keys`: the live keys, without versions in their ids.
pub(crate) async fn list(
    State(state): State<Shared>,
    Path(params): Params,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    list_where(state, params, headers, uri, false).await
}

/// `GET /deletedkeys`: the soft-deleted keys.
pub(crate) async fn list_deleted(
    State(state): State<Shared>,
    Path(params): Params,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    list_where(state, params, headers, uri, true).await
}

async fn list_where(
    state: Shared,
    params: HashMap<String, String>,
    headers: HeaderMap,
    uri: Uri,
    deleted: bool,
) -> Result<Response, ApiError> {
    let (call, _) = call(&state, &headers, &uri, &params, Permission::KeyRead).await?;
    let vault = call.vault.clone();
    let (info, keys) = blocking(&state, move |e| {
        let local = e.vault();
        Ok::<_, logvault::kms::VaultError>((local.vault_info(&vault)?, local.list_keys(&vault)?))
    })
    .await?
    .map_err(|e| vault_error(&e))?;
    let items: Vec<Value> = keys
        .iter()
        .filter(|k| k.deleted.is_some() == deleted)
        .filter_map(|k| {
            bundle::version(k, None).map(|v| bundle::key_item(&call.base, &info, k, v, false))
        })
        .collect();
    Ok(json(StatusCode::OK, &paged(&state, &call, &uri, items)))
}

/// `GET /keys/{name}/versions`.
pub(crate) async fn versions(
    State(state): State<Shared>,
    Path(params): Params,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (call, caller) = call(&state, &headers, &uri, &params, Permission::KeyRead).await?;
    let name = call.target.name()?.to_owned();
    check_get(&state, &call, &caller, &name).await?;
    let (info, key) = load(&state, &call.vault, &name).await?;
    if key.deleted.is_some() {
        return Err(key_not_found(&name, None));
    }
    let items: Vec<Value> = key
        .versions
        .iter()
        .map(|v| bundle::key_item(&call.base, &info, &key, v, true))
        .collect();
    Ok(json(StatusCode::OK, &paged(&state, &call, &uri, items)))
}

/// The `{"alg", "value"}` of a wrap or unwrap request: checks the algorithm, returns the value.
fn crypto_request(body: &[u8]) -> Result<String, ApiError> {
    let body = body_json(body)?;
    let alg = body.get("alg").and_then(Value::as_str).unwrap_or_default();
    if alg != ALG_RSA_OAEP_256 {
        return Err(kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            format!("algorithm {alg:?} is not supported: keys here wrap with RSA-OAEP-256"),
        ));
    }
    body.get("value")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| bad_value("value is missing"))
}

fn bad_value(reason: impl std::fmt::Display) -> ApiError {
    kv_error(
        StatusCode::BAD_REQUEST,
        "BadParameter",
        format!("value must be base64url bytes: {reason}"),
    )
}

/// The version a crypto call uses: the one named, else the latest.
async fn crypto_version(
    state: &Shared,
    call: &Call,
    name: &str,
) -> Result<(KeyProperties, String), ApiError> {
    let (_, key) = load(state, &call.vault, name).await?;
    if key.kty != KeyType::Rsa {
        return Err(kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            format!(
                "key {name} is {}: wrapkey and unwrapkey here take RSA keys",
                key.kty
            ),
        ));
    }
    let version = match call.target.version.clone() {
        Some(v) => v,
        None => key.version.clone(),
    };
    Ok((key, version))
}

/// `POST /keys/{name}/{version}/wrapkey` `{"alg": "RSA-OAEP-256", "value"}`.
pub(crate) async fn wrap(
    State(state): State<Shared>,
    Path(params): Params,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (call, caller) = call(&state, &headers, &uri, &params, Permission::KeyCrypto).await?;
    let name = call.target.name()?.to_owned();
    let plaintext = SecretBytes::from_base64url(&crypto_request(&body)?).map_err(bad_value)?;
    let (_, version) = crypto_version(&state, &call, &name).await?;
    let key = KeyRef {
        vault: call.vault.clone(),
        name: name.clone(),
        version: Some(version.clone()),
    };
    let wrapped = if caller.identity {
        state
            .engine
            .vault()
            .wrap_key(&caller.principal, &key, &plaintext)
            .await
    } else {
        blocking(&state, move |e| {
            e.vault().wrap_for(&caller.principal, &key, &plaintext)
        })
        .await?
    }
    .map_err(|e| vault_error(&e))?;
    Ok(json(
        StatusCode::OK,
        &json!({
            "kid": bundle::kid(&call.base, &name, Some(&wrapped.version)),
            "value": b64url(&wrapped.value),
        }),
    ))
}

/// `POST /keys/{name}/{version}/unwrapkey` `{"alg": "RSA-OAEP-256", "value"}`: the plaintext
/// key back (the one answer of this server that carries key bytes: the caller asked for them).
pub(crate) async fn unwrap(
    State(state): State<Shared>,
    Path(params): Params,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (call, caller) = call(&state, &headers, &uri, &params, Permission::KeyCrypto).await?;
    let name = call.target.name()?.to_owned();
    let value = from_b64url(&crypto_request(&body)?)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad_value("not base64url"))?;
    let (_, version) = crypto_version(&state, &call, &name).await?;
    let wrapped = WrappedKey {
        vault: call.vault.clone(),
        key: name.clone(),
        version: version.clone(),
        alg: ALG_RSA_OAEP_256.to_owned(),
        value,
    };
    let secret = if caller.identity {
        state
            .engine
            .vault()
            .unwrap_key(&caller.principal, &wrapped)
            .await
    } else {
        blocking(&state, move |e| {
            e.vault().unwrap_for(&caller.principal, &wrapped)
        })
        .await?
    }
    .map_err(|e| vault_error(&e))?;
    Ok(json(
        StatusCode::OK,
        &json!({
            "kid": bundle::kid(&call.base, &name, Some(&version)),
            "value": secret.to_base64url(),
        }),
    ))
}
