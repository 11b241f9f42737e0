//! Entra ID's client credentials flow (an application's id and secret): the credential a node
//! in Azure would use against Azure Key Vault itself. The second implementation of
//! [`TokenCredential`], proving the trait is the only seam a real credential needs.
//!
//! `POST {authority}/{tenant}/oauth2/v2.0/token` with `grant_type=client_credentials`,
//! `client_id`, `client_secret` and `scope`, answered `{"access_token", "expires_in"}`. The
//! secret is read from an environment variable at each request, never kept in a file of
//! logvault's.

use std::time::Duration;

use async_trait::async_trait;
use logvault_core::SharedClock;
use logvault_kms::VaultErrorKind;
use url::Url;
use zeroize::Zeroizing;

use crate::credential::{AccessToken, TokenCredential, TokenRequest};
use crate::transport::{Tls, http_client, read_capped, transport_reason};
use crate::{ClientError, config};

/// Where a client secret is.
#[derive(Clone)]
pub enum ClientSecret {
    /// In this environment variable, read at each token request.
    Env(String),
    /// Held by the embedder.
    Given(Zeroizing<String>),
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(name) => write!(f, "Env({name})"),
            Self::Given(_) => f.write_str("Given(REDACTED)"),
        }
    }
}

/// Entra ID's client credentials with a client secret.
#[derive(Debug)]
pub struct ClientSecretCredential {
    http: reqwest::Client,
    authority: Url,
    tenant: Option<String>,
    client_id: String,
    secret: ClientSecret,
    clock: SharedClock,
}

impl ClientSecretCredential {
    /// The application `client_id` with its `secret`, signing in at `authority` (`https://login.microsoftonline.com`) in `tenant` (or the
    /// tenant the vault's challenge names). A token's expiry is read on `clock`.
    ///
    /// # Errors
    /// [`ClientError::Config`] for an authority that is not `https` (or `http` on loopback).
    pub fn new(
        authority: &str,
        tenant: Option<String>,
        client_id: impl Into<String>,
        secret: ClientSecret,
        timeout: Duration,
        clock: SharedClock,
    ) -> Result<Self, ClientError> {
        let authority = config::parse_base_url(authority, "authorityHost")?;
        Ok(Self {
            http: http_client(&Tls::SystemRoots, timeout, timeout)?,
            authority,
            tenant,
            client_id: client_id.into(),
            secret,
            clock,
        })
    }

    fn fail(
        &self,
        request: &TokenRequest<'_>,
        reason: String,
        kind: VaultErrorKind,
    ) -> ClientError {
        ClientError::Credential {
            credential: format!("client secret of application {}", self.client_id),
            principal: request.principal.0.clone(),
            reason,
            kind,
        }
    }
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<i64>,
}

#[async_trait]
impl TokenCredential for ClientSecretCredential {
    async fn token(&self, request: &TokenRequest<'_>) -> Result<AccessToken, ClientError> {
        let tenant = self
            .tenant
            .as_deref()
            .or(request.tenant)
            .filter(|t| {
                !t.is_empty()
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            })
            .ok_or_else(|| {
                self.fail(
                    request,
                    "no tenant: configure one, or the vault's challenge must name it".into(),
                    VaultErrorKind::Internal,
                )
            })?;
        let secret = match &self.secret {
            ClientSecret::Env(name) => Zeroizing::new(std::env::var(name).map_err(|e| {
                self.fail(
                    request,
                    format!("environment variable {name}: {e}"),
                    VaultErrorKind::Internal,
                )
            })?),
            ClientSecret::Given(secret) => secret.clone(),
        };
        let mut url = self.authority.clone();
        url.path_segments_mut()
            .map_err(|()| {
                self.fail(
                    request,
                    "the authority cannot be a base".into(),
                    VaultErrorKind::Internal,
                )
            })?
            .pop_if_empty()
            .extend([tenant, "oauth2", "v2.0", "token"]);
        let mut body = Zeroizing::new(String::with_capacity(256 + secret.len() * 3));
        url::form_urlencoded::Serializer::new(&mut *body)
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", &secret)
            .append_pair("scope", request.scope)
            .finish();
        let body = bytes::Bytes::from_owner(Zeroizing::new(body.as_bytes().to_vec()));
        let response = self
            .http
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| self.fail(request, transport_reason(&e), VaultErrorKind::Transient))?;
        let status = response.status();
        let (text, _) = read_capped(response)
            .await
            .map_err(|e| self.fail(request, transport_reason(&e), VaultErrorKind::Transient))?;
        if !status.is_success() {
            // The identity provider's error code (`invalid_client`), never the body's echo.
            let code = serde_json::from_slice::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_default();
            let kind = if status.is_server_error() || status.as_u16() == 429 {
                VaultErrorKind::Transient
            } else {
                VaultErrorKind::Forbidden
            };
            return Err(self.fail(
                request,
                format!("the token endpoint answered {status} {code}"),
                kind,
            ));
        }
        let answer: TokenAnswer = serde_json::from_slice(&text).map_err(|e| {
            self.fail(
                request,
                format!("the token endpoint's answer is not a token: {e}"),
                VaultErrorKind::Internal,
            )
        })?;
        let expires_on = answer
            .expires_in
            .and_then(chrono::Duration::try_seconds)
            .map(|d| self.clock.now() + d);
        Ok(AccessToken::new(
            Zeroizing::new(answer.access_token),
            expires_on,
        ))
    }
}
