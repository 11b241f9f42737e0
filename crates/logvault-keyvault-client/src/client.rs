//! [`KeyVaultClient`]: the [`KeyVault`] trait over Key Vault's keys API.
//!
//! | Trait call | Requests |
//! |---|---|
//! | `get_key` | `GET /keys/NAME` (the latest bundle), `GET /keys/NAME/versions` (paged) |
//! | `vault_properties` | `GET /keys/NAME[/VERSION]` (`recoveryLevel`; region and tenant from the configuration or the challenge) |
//! | `wrap_key` | `GET /keys/NAME` when no version is given, `POST /keys/NAME/VERSION/wrapkey` |
//! | `unwrap_key` | `POST /keys/NAME/VERSION/unwrapkey` |
//!
//! Wrapping is `RSA-OAEP-256` with an RSA key, done by the vault (the key's private half never
//! leaves it; the public half is not used here). Answers become the kms crate's errors:
//! 401 [`VaultError::Unauthenticated`], 403 [`VaultError::Forbidden`] (or
//! [`VaultError::Disabled`] when Key Vault says `KeyDisabled`), 404 [`VaultError::KeyNotFound`]
//! or [`VaultError::VaultNotFound`] (revocation, all of them); 408, 429 and 5xx after the
//! retries, timeouts, refused connections and failed name resolution
//! [`VaultError::Transient`] (an outage).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use logvault_core::{NameKind, SharedClock, validate_name};
use logvault_crypto::SecretBytes;
use logvault_kms::{
    KeyProperties, KeyRef, KeyVault, PrincipalId, VaultError, VaultProperties, WrappedKey,
};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;
use zeroize::Zeroizing;

use crate::ClientError;
use crate::config::{RemoteVaultConfig, parse_base_url};
use crate::credential::TokenCredential;
use crate::transport::{Answer, Pipeline, Request, RetryPolicy, Tls, http_client};
use crate::wire::{self, B64URL, KeyBundle, KeyItem, OperationResult, Page};

/// The Key Vault API version asked for.
const API_VERSION: &str = "7.5";
/// The one wrapping algorithm used (Key Vault's for RSA keys).
pub const ALG_RSA_OAEP_256: &str = "RSA-OAEP-256";
/// The most pages of versions read for one key.
const MAX_PAGES: usize = 100;

/// Where vault `NAME` is.
#[derive(Debug, Clone)]
enum Endpoint {
    /// A URL template with `{vault}` (Azure Key Vault: `https://{vault}.vault.azure.net/`).
    Template(String),
    /// A `logvault serve` endpoint: vault `NAME` at `BASE/vaults/NAME/`.
    Serve(Url),
}

/// A [`KeyVault`] that speaks Key Vault's REST API to a remote vault (`logvault serve`, or
/// Azure Key Vault): bearer tokens from a [`TokenCredential`] after the 401 challenge, TLS,
/// timeouts and bounded retries, failures classified as revocation or outage. Every customer
/// key call of a home whose `config.json` has a `vault` goes through it.
#[derive(Debug)]
pub struct KeyVaultClient {
    endpoint: Endpoint,
    pipeline: Pipeline,
    region: String,
    tenant: Option<String>,
    clock: SharedClock,
}

fn read_ca(path: &Path) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let fail = |reason: String| ClientError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// Who and what a call is about, for its errors.
struct Ctx<'a> {
    vault: &'a str,
    key: &'a str,
    version: Option<&'a str>,
    principal: &'a PrincipalId,
    permission: &'static str,
}

impl KeyVaultClient {
    /// A client for `config`, with the credential it names.
    ///
    /// # Errors
    /// [`ClientError`] for a bad URL, timeouts or credential, or an unreadable CA file.
    pub fn new(config: &RemoteVaultConfig, clock: SharedClock) -> Result<Self, ClientError> {
        let credential = config.credential(clock.clone())?;
        Self::with_credential(config, credential, clock)
    }

    /// A client for `config` with the embedder's credential (its `credential` is ignored).
    ///
    /// # Errors
    /// As [`KeyVaultClient::new`].
    pub fn with_credential(
        config: &RemoteVaultConfig,
        credential: Arc<dyn TokenCredential>,
        clock: SharedClock,
    ) -> Result<Self, ClientError> {
        let endpoint = if config.url.contains("{vault}") {
            parse_base_url(&config.url.replace("{vault}", "vault"), "url")?;
            Endpoint::Template(config.url.clone())
        } else {
            let mut url = parse_base_url(&config.url, "url")?;
            if !url.path().ends_with('/') {
                url.set_path(&format!("{}/", url.path()));
            }
            Endpoint::Serve(url)
        };
        let tls = match &config.ca_file {
            Some(path) => Tls::Only(read_ca(path)?),
            None => Tls::SystemRoots,
        };
        let (connect_timeout, timeout) = config.timeouts()?;
        let retry = RetryPolicy {
            retries: config.retries,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
        };
        let pipeline = Pipeline::new(
            http_client(&tls, connect_timeout, timeout)?,
            retry,
            credential,
            config.verify_challenge_resource,
            clock.clone(),
        );
        Ok(Self {
            endpoint,
            pipeline,
            region: config.region.clone(),
            tenant: config.tenant.clone(),
            clock,
        })
    }

    /// The URL of vault `vault` (ending in `/`).
    fn vault_url(&self, vault: &str) -> Result<Url, VaultError> {
        validate_name(NameKind::Vault, vault)?;
        let url = match &self.endpoint {
            Endpoint::Template(t) => Url::parse(&t.replace("{vault}", vault)),
            Endpoint::Serve(base) => base.join(&format!("vaults/{vault}/")),
        };
        url.map_err(|e| VaultError::BadRequest {
            vault: vault.to_owned(),
            reason: format!("no URL for the vault: {e}"),
        })
    }

    /// `VAULT_URL/keys/NAME/REST...?api-version=...`.
    fn key_url(&self, vault: &str, name: &str, rest: &[&str]) -> Result<Url, VaultError> {
        validate_name(NameKind::Key, name)?;
        let mut url = self.vault_url(vault)?;
        if let Some(bad) = rest
            .iter()
            .find(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(VaultError::BadRequest {
                vault: vault.to_owned(),
                reason: format!("key {name}: {bad:?} is not a key version"),
            });
        }
        url.path_segments_mut()
            .map_err(|()| VaultError::BadRequest {
                vault: vault.to_owned(),
                reason: "the vault's URL cannot take a path".into(),
            })?
            .pop_if_empty()
            .push("keys")
            .push(name)
            .extend(rest);
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        Ok(url)
    }

    async fn send(
        &self,
        ctx: &Ctx<'_>,
        method: Method,
        url: Url,
        body: Option<Bytes>,
    ) -> Result<Answer, VaultError> {
        let answer = self
            .pipeline
            .send(&Request {
                method,
                url,
                body,
                vault: ctx.vault,
                principal: ctx.principal,
            })
            .await?;
        if answer.status.is_success() {
            Ok(answer)
        } else {
            Err(refused(ctx, &answer))
        }
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        ctx: &Ctx<'_>,
        url: Url,
    ) -> Result<T, VaultError> {
        let answer = self.send(ctx, Method::GET, url, None).await?;
        serde_json::from_slice(&answer.body).map_err(|e| malformed(ctx, &e))
    }

    /// The bundle of `key` (its version, or the latest).
    async fn bundle(&self, principal: &PrincipalId, key: &KeyRef) -> Result<KeyBundle, VaultError> {
        let ctx = Ctx {
            vault: &key.vault,
            key: &key.name,
            version: key.version.as_deref(),
            principal,
            permission: "get",
        };
        let rest: Vec<&str> = key.version.as_deref().into_iter().collect();
        let url = self.key_url(&key.vault, &key.name, &rest)?;
        self.get_json(&ctx, url).await
    }

    /// Every version's item, following `nextLink` on the vault's own origin.
    async fn versions(
        &self,
        principal: &PrincipalId,
        key: &KeyRef,
    ) -> Result<Vec<KeyItem>, VaultError> {
        let ctx = Ctx {
            vault: &key.vault,
            key: &key.name,
            version: None,
            principal,
            permission: "get",
        };
        let first = self.key_url(&key.vault, &key.name, &["versions"])?;
        let origin = first.origin();
        let mut next = Some(first);
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else {
                return Ok(items);
            };
            let page: Page = self.get_json(&ctx, url).await?;
            items.extend(page.value);
            next = match page.next_link.filter(|l| !l.is_empty()) {
                None => None,
                Some(link) => {
                    let url = Url::parse(&link).map_err(|e| malformed(&ctx, &e))?;
                    if url.origin() != origin {
                        return Err(VaultError::Internal {
                            vault: key.vault.clone(),
                            reason: format!(
                                "the versions of key {} continue at another host ({}): not \
                                 followed",
                                key.name,
                                url.origin().ascii_serialization()
                            ),
                        });
                    }
                    Some(url)
                }
            };
        }
        Err(VaultError::Internal {
            vault: key.vault.clone(),
            reason: format!(
                "key {} has more than {MAX_PAGES} pages of versions",
                key.name
            ),
        })
    }
}

/// An answer that is not what was asked for.
fn malformed(ctx: &Ctx<'_>, e: &dyn std::fmt::Display) -> VaultError {
    VaultError::Internal {
        vault: ctx.vault.to_owned(),
        reason: format!("the answer about key {} is not Key Vault's: {e}", ctx.key),
    }
}

/// A refusal (any status but 2xx) as the kms crate's error.
fn refused(ctx: &Ctx<'_>, answer: &Answer) -> VaultError {
    let r = wire::refusal(&answer.body);
    let vault = ctx.vault.to_owned();
    let said = wire::error_message(&answer.body);
    match answer.status {
        StatusCode::BAD_REQUEST => VaultError::BadRequest {
            vault,
            reason: said,
        },
        StatusCode::UNAUTHORIZED => VaultError::Unauthenticated {
            vault,
            principal: ctx.principal.0.clone(),
            reason: said,
        },
        StatusCode::FORBIDDEN => {
            let inner = r.inner_code.as_deref().unwrap_or_default();
            let message = r.message.to_ascii_lowercase();
            if inner.eq_ignore_ascii_case("KeyDisabled")
                || inner.eq_ignore_ascii_case("KeyExpired")
                || message.contains("disabled key")
                || message.contains("is disabled")
            {
                VaultError::Disabled {
                    vault,
                    key: ctx.key.to_owned(),
                    version: ctx.version.map(str::to_owned),
                }
            } else {
                VaultError::Forbidden {
                    vault,
                    principal: ctx.principal.0.clone(),
                    permission: ctx.permission.to_owned(),
                }
            }
        }
        StatusCode::NOT_FOUND if r.code == "VaultNotFound" => VaultError::VaultNotFound { vault },
        StatusCode::NOT_FOUND => VaultError::KeyNotFound {
            vault,
            key: ctx.key.to_owned(),
            version: ctx.version.unwrap_or("latest").to_owned(),
        },
        StatusCode::CONFLICT => VaultError::Conflict {
            resource: format!("key {} in vault {vault}", ctx.key),
            reason: said,
        },
        s if s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429 => {
            VaultError::Transient {
                vault,
                reason: format!("answered {s} after the retries: {said}"),
            }
        }
        s => VaultError::Internal {
            vault,
            reason: format!("answered {s}: {said}"),
        },
    }
}

#[async_trait]
impl KeyVault for KeyVaultClient {
    async fn vault_properties(
        &self,
        principal: &PrincipalId,
        key: &KeyRef,
    ) -> Result<VaultProperties, VaultError> {
        let bundle = self.bundle(principal, key).await?;
        let url = self.vault_url(&key.vault)?;
        let tenant = self
            .tenant
            .clone()
            .or_else(|| self.pipeline.challenge_tenant(&url))
            .unwrap_or_else(|| "unknown".into());
        Ok(bundle.vault_properties(&key.vault, url.as_str(), &self.region, &tenant))
    }

    async fn get_key(
        &self,
        principal: &PrincipalId,
        key: &KeyRef,
    ) -> Result<KeyProperties, VaultError> {
        let latest = self
            .bundle(principal, &KeyRef::latest(&key.vault, &key.name))
            .await?;
        let items = self.versions(principal, key).await?;
        let ctx = Ctx {
            vault: &key.vault,
            key: &key.name,
            version: key.version.as_deref(),
            principal,
            permission: "get",
        };
        let props = latest
            .properties(&key.vault, &key.name, &items, self.clock.now())
            .ok_or_else(|| malformed(&ctx, &"the key's id or type is not one logvault uses"))?;
        if let Some(v) = &key.version
            && !props.versions.iter().any(|p| &p.version == v)
        {
            return Err(VaultError::KeyNotFound {
                vault: key.vault.clone(),
                key: key.name.clone(),
                version: v.clone(),
            });
        }
        Ok(props)
    }

    async fn wrap_key(
        &self,
        principal: &PrincipalId,
        key: &KeyRef,
        plaintext: &SecretBytes,
    ) -> Result<WrappedKey, VaultError> {
        let version = match &key.version {
            Some(v) => v.clone(),
            None => {
                let bundle = self.bundle(principal, key).await?;
                bundle
                    .version()
                    .map(str::to_owned)
                    .ok_or_else(|| VaultError::Internal {
                        vault: key.vault.clone(),
                        reason: format!("the bundle of key {} has no version in its id", key.name),
                    })?
            }
        };
        let ctx = Ctx {
            vault: &key.vault,
            key: &key.name,
            version: Some(&version),
            principal,
            permission: "wrapKey",
        };
        let url = self.key_url(&key.vault, &key.name, &[&version, "wrapkey"])?;
        let value = Zeroizing::new(plaintext.to_base64url());
        let body = Zeroizing::new(format!(
            "{{\"alg\":\"{ALG_RSA_OAEP_256}\",\"value\":\"{}\"}}",
            value.as_str()
        ));
        let answer = self
            .send(&ctx, Method::POST, url, Some(Bytes::from_owner(body)))
            .await?;
        let result: OperationResult<'_> =
            serde_json::from_slice(&answer.body).map_err(|e| malformed(&ctx, &e))?;
        let wrapped = B64URL
            .decode(result.value.trim())
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| malformed(&ctx, &"the wrapped value is not base64url"))?;
        let used = result
            .kid
            .as_deref()
            .and_then(wire::kid_version)
            .unwrap_or(&version)
            .to_owned();
        Ok(WrappedKey {
            vault: key.vault.clone(),
            key: key.name.clone(),
            version: used,
            alg: ALG_RSA_OAEP_256.to_owned(),
            value: wrapped,
        })
    }

    async fn unwrap_key(
        &self,
        principal: &PrincipalId,
        wrapped: &WrappedKey,
    ) -> Result<SecretBytes, VaultError> {
        if wrapped.alg != ALG_RSA_OAEP_256 {
            return Err(VaultError::BadRequest {
                vault: wrapped.vault.clone(),
                reason: format!(
                    "key {} version {} wrapped this blob with {}: a remote vault unwraps {} only",
                    wrapped.key, wrapped.version, wrapped.alg, ALG_RSA_OAEP_256
                ),
            });
        }
        let ctx = Ctx {
            vault: &wrapped.vault,
            key: &wrapped.key,
            version: Some(&wrapped.version),
            principal,
            permission: "unwrapKey",
        };
        let url = self.key_url(
            &wrapped.vault,
            &wrapped.key,
            &[&wrapped.version, "unwrapkey"],
        )?;
        let body = format!(
            "{{\"alg\":\"{ALG_RSA_OAEP_256}\",\"value\":\"{}\"}}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&wrapped.value)
        );
        let answer = self
            .send(&ctx, Method::POST, url, Some(Bytes::from(body)))
            .await?;
        let result: OperationResult<'_> =
            serde_json::from_slice(&answer.body).map_err(|e| malformed(&ctx, &e))?;
        // The decoder's message could quote a byte of the answer: not repeated.
        SecretBytes::from_base64url(result.value)
            .map_err(|_| malformed(&ctx, &"the unwrapped value is not base64url"))
    }
}
