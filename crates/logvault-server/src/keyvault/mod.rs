//! The Key Vault keys API (azure-keyvault-keys' `KeyClient` and `CryptographyClient`) on the
//! home's local vaults: the same owner operations as `logvault key ...` (one code path), over
//! TLS, with the 401 challenge the client starts with.
//!
//! Where a vault is: a local vault has no host of its own, so this server serves vault `NAME`
//! under the path `/vaults/NAME` (its `vaultUri`, `https://HOST:PORT/vaults/NAME/`, is what a
//! `KeyClient` is given). The SDK parses a key id (`kid`) as `scheme://host[:port]/keys/NAME/
//! VERSION` and sends a `CryptographyClient`'s calls to that host's root, so key ids are
//! `https://HOST:PORT/keys/NAME/VERSION` and the root `/keys/...` routes serve the vault that
//! holds that key version (versions are unique ids; without a version, the one vault holding a
//! key of that name).
//!
//! Who may do what is the token's roles: `Key Vault Crypto Officer` (and `Owner`) manage keys
//! and wrap/unwrap; `Key Vault Crypto Service Encryption User` reads keys and wraps/unwraps.
//! A vault's access policies and role assignments keep governing the identities of the home's
//! directory, as for the CLI: a token whose principal is an identity's principal id (another
//! home's Key Vault client, acting for its clusters; any GUID counts, so that an identity
//! deleted later stays refused) reads, wraps and unwraps only what the vault grants that
//! identity (`get`, `wrapKey`, `unwrapKey`), through the vault's own checked and audited calls;
//! without the grant the answer is 403.

mod bundle;
mod keys;

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use logvault::kms::VaultError;
use logvault::kms::local::SERVICE_VAULT;

use crate::http::errors::{ApiError, Flavor};
use crate::http::routes::{Access, Routes};
use crate::http::{AppState, Shared, auth, blocking};
use crate::roles::Permission;
use crate::tokens::Principal;

/// The challenge Key Vault answers a request without a token with (the client sends its first
/// request without body or token, and reads the tenant and resource from this).
const CHALLENGE: &str = "Bearer authorization=\"https://login.microsoftonline.com/local\", \
     resource=\"https://vault.azure.net\"";

/// The keys routes, at the root (for key ids) and under `/vaults/{vault}` (a vault's URI).
pub(crate) fn routes() -> Routes {
    fn under(prefix: &str) -> Routes {
        use Access::Needs;
        let (read, manage, crypto) = (
            Needs(Permission::KeyRead),
            Needs(Permission::KeyManage),
            Needs(Permission::KeyCrypto),
        );
        let p = |path: &str| format!("{prefix}{path}");
        Routes::new()
            .get(&p("/keys"), read, keys::list)
            .post(&p("/keys/{name}/create"), manage, keys::create)
            .post(&p("/keys/{name}/rotate"), manage, keys::rotate)
            .get(&p("/keys/{name}/versions"), read, keys::versions)
            .get(&p("/keys/{name}"), read, keys::get)
            .patch(&p("/keys/{name}"), manage, keys::update)
            .delete(&p("/keys/{name}"), manage, keys::delete)
            .get(&p("/keys/{name}/"), read, keys::get)
            .patch(&p("/keys/{name}/"), manage, keys::update)
            .get(&p("/keys/{name}/{version}"), read, keys::get)
            .patch(&p("/keys/{name}/{version}"), manage, keys::update)
            .post(&p("/keys/{name}/wrapkey"), crypto, keys::wrap)
            .post(&p("/keys/{name}/unwrapkey"), crypto, keys::unwrap)
            .post(&p("/keys/{name}/{version}/wrapkey"), crypto, keys::wrap)
            .post(&p("/keys/{name}/{version}/unwrapkey"), crypto, keys::unwrap)
            .get(&p("/deletedkeys"), read, keys::list_deleted)
            .get(&p("/deletedkeys/{name}"), read, keys::get_deleted)
            .delete(&p("/deletedkeys/{name}"), manage, keys::purge)
            .post(&p("/deletedkeys/{name}/recover"), manage, keys::recover)
    }
    under("").merge(under("/vaults/{vault}"))
}

/// A request's place: the vault it names (if under `/vaults/{vault}`), the key and version.
pub(crate) struct Target {
    pub(crate) vault: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) version: Option<String>,
}

impl Target {
    pub(crate) fn from(params: &HashMap<String, String>) -> Self {
        let get = |k: &str| params.get(k).filter(|v| !v.is_empty()).cloned();
        Self {
            vault: get("vault"),
            name: get("name"),
            version: get("version"),
        }
    }

    pub(crate) fn name(&self) -> Result<&str, ApiError> {
        self.name
            .as_deref()
            .ok_or_else(|| kv_error(StatusCode::BAD_REQUEST, "BadParameter", "no key name"))
    }
}

/// Authorizes a Key Vault request: 401 with Key Vault's challenge without a token (or with an
/// invalid one), 403 when the token's roles do not allow `permission`.
pub(crate) fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    permission: Permission,
) -> Result<Principal, ApiError> {
    let principal = auth::authenticate(state, headers, Flavor::Azure).map_err(|mut e| {
        if e.status == StatusCode::UNAUTHORIZED {
            e.code = "Unauthorized".into();
            e.headers
                .retain(|(name, _)| *name != header::WWW_AUTHENTICATE);
            e.headers
                .push((header::WWW_AUTHENTICATE, CHALLENGE.to_owned()));
        }
        e
    })?;
    auth::check(&principal, permission, None, Flavor::Azure).map_err(|mut e| {
        e.code = "Forbidden".into();
        e
    })?;
    Ok(principal)
}

/// An error in Key Vault's shape: `{"error": {"code", "message"}}`.
pub(crate) fn kv_error(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message)
}

/// A vault refusal as Key Vault answers it (a disabled key: 403 with `innererror.code`
/// `KeyDisabled`, as Azure answers it, so a client tells it from a missing permission).
pub(crate) fn vault_error(e: &VaultError) -> ApiError {
    let status =
        StatusCode::from_u16(e.kind().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = match e {
        VaultError::VaultNotFound { .. } => "VaultNotFound",
        VaultError::KeyNotFound { .. } | VaultError::Deleted { .. } => "KeyNotFound",
        VaultError::ResourceNotFound { .. } => "KeyNotFound",
        VaultError::Disabled { .. }
        | VaultError::Forbidden { .. }
        | VaultError::UnknownPrincipal { .. }
        | VaultError::Unauthenticated { .. } => "Forbidden",
        VaultError::Conflict { .. } => "Conflict",
        _ => match status.as_u16() {
            400 => "BadParameter",
            503 => "ServiceUnavailable",
            _ => "InternalError",
        },
    };
    let error = kv_error(status, code, e.to_string());
    match e {
        VaultError::Disabled { .. } => error.with_inner(serde_json::json!({"code": "KeyDisabled"})),
        _ => error,
    }
}

/// An engine error (a key change and the key checks after it) as Key Vault answers it.
pub(crate) fn engine_error(e: &logvault::EngineError) -> ApiError {
    match e {
        logvault::EngineError::Vault(v) => vault_error(v),
        other => kv_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            other.to_string(),
        ),
    }
}

/// The vault a request is about: the one its path names, or (at the root) the vault holding
/// the key version (or, without a version, the only vault holding a key of that name).
pub(crate) async fn resolve(state: &Shared, target: &Target) -> Result<String, ApiError> {
    if let Some(vault) = &target.vault {
        if vault == SERVICE_VAULT {
            return Err(kv_error(
                StatusCode::NOT_FOUND,
                "VaultNotFound",
                format!("vault {vault} not found"),
            ));
        }
        return Ok(vault.clone());
    }
    let Some(name) = target.name.clone() else {
        return Err(kv_error(
            StatusCode::NOT_FOUND,
            "VaultNotFound",
            "no vault: use the vault's URI, https://HOST:PORT/vaults/NAME",
        ));
    };
    let version = target.version.clone();
    let holders = blocking(state, move |e| {
        let local = e.vault();
        let mut holders = Vec::new();
        for info in local.list_vaults()? {
            let vault = info.properties.name;
            if vault == SERVICE_VAULT {
                continue;
            }
            let Ok(key) = local.key_properties(&vault, &name) else {
                continue;
            };
            if version
                .as_deref()
                .is_none_or(|v| key.versions.iter().any(|k| k.version == v))
            {
                holders.push(vault);
            }
        }
        Ok::<_, VaultError>(holders)
    })
    .await?
    .map_err(|e| vault_error(&e))?;
    match holders.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(kv_error(
            StatusCode::NOT_FOUND,
            "KeyNotFound",
            format!(
                "key {} (version {}) not found in any vault",
                target.name.as_deref().unwrap_or_default(),
                target.version.as_deref().unwrap_or("latest")
            ),
        )),
        _ => Err(kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            format!(
                "key {} is in vaults {}: name the vault (https://HOST:PORT/vaults/NAME) or the \
                 version",
                target.name.as_deref().unwrap_or_default(),
                holders.join(", ")
            ),
        )),
    }
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> axum::response::Response {
    let mut response = axum::response::IntoResponse::into_response((status, body.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}
