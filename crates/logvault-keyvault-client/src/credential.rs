//! Where bearer tokens come from: the [`TokenCredential`] trait (Azure's `TokenCredential`,
//! asked for a scope, here also told the principal the call is for) and the static token of
//! `logvault token create`. Entra ID's client credentials are a second implementation
//! ([`crate::ClientSecretCredential`]).
//!
//! A token's text lives in a zeroizing string, prints as `REDACTED`, and is never logged or put
//! in an error.

use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use logvault_kms::{PrincipalId, VaultErrorKind};
use zeroize::Zeroizing;

use crate::ClientError;

/// A bearer token and when it expires.
pub struct AccessToken {
    secret: Zeroizing<String>,
    expires_on: Option<DateTime<Utc>>,
}

impl AccessToken {
    /// A token (its text) valid until `expires_on` (`None`: until the vault refuses it).
    pub fn new(secret: Zeroizing<String>, expires_on: Option<DateTime<Utc>>) -> Self {
        Self { secret, expires_on }
    }

    /// When it expires, if known.
    pub fn expires_on(&self) -> Option<DateTime<Utc>> {
        self.expires_on
    }

    /// The text for the `Authorization` header.
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }

    pub(crate) fn duplicate(&self) -> Self {
        Self {
            secret: self.secret.clone(),
            expires_on: self.expires_on,
        }
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"REDACTED")
            .field("expires_on", &self.expires_on)
            .finish()
    }
}

/// What a token is asked for.
#[derive(Debug, Clone, Copy)]
pub struct TokenRequest<'a> {
    /// The principal the vault call is made for (a cluster's identity). A credential that
    /// holds one identity answers for every principal; a managed-identity credential would ask
    /// its endpoint for this principal's token.
    pub principal: &'a PrincipalId,
    /// The scope the vault's challenge asked for (`https://vault.azure.net/.default`).
    pub scope: &'a str,
    /// The tenant the challenge named, if any.
    pub tenant: Option<&'a str>,
}

/// A source of bearer tokens.
#[async_trait]
pub trait TokenCredential: Send + Sync + fmt::Debug {
    /// A token for `request`. The client caches it until five minutes before it expires, and
    /// asks again once when the vault refuses it.
    ///
    /// # Errors
    /// [`ClientError::Credential`], whose kind says whether the failure is an outage, a refusal
    /// or a misconfiguration.
    async fn token(&self, request: &TokenRequest<'_>) -> Result<AccessToken, ClientError>;
}

/// Where a static token is read from.
#[derive(Clone)]
enum Source {
    Env(String),
    File(PathBuf),
    Given(Zeroizing<String>),
}

/// A bearer token given as it is: one `logvault token create` issued on the vault's server (or
/// any token obtained elsewhere). It is read from an environment variable or a file at every
/// request for a token, so a token rotated in the file (as Kubernetes rotates a projected
/// token) is picked up when the cached one nears its expiry or is refused. Every principal gets
/// the same token: the vault sees the token's principal.
#[derive(Clone)]
pub struct StaticTokenCredential {
    source: Source,
}

impl fmt::Debug for StaticTokenCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StaticTokenCredential({})", self.describe())
    }
}

impl StaticTokenCredential {
    /// The token in environment variable `name`.
    pub fn from_env(name: impl Into<String>) -> Self {
        Self {
            source: Source::Env(name.into()),
        }
    }

    /// The token in the file at `path` (surrounding whitespace ignored).
    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        Self {
            source: Source::File(path.into()),
        }
    }

    /// A token the embedder holds.
    pub fn new(token: Zeroizing<String>) -> Self {
        Self {
            source: Source::Given(token),
        }
    }

    fn describe(&self) -> String {
        match &self.source {
            Source::Env(name) => format!("token from ${name}"),
            Source::File(path) => format!("token from {}", path.display()),
            Source::Given(_) => "token given".into(),
        }
    }

    fn read(&self) -> Result<Zeroizing<String>, String> {
        let text = match &self.source {
            Source::Env(name) => Zeroizing::new(
                std::env::var(name).map_err(|e| format!("environment variable {name}: {e}"))?,
            ),
            Source::File(path) => Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            ),
            Source::Given(token) => token.clone(),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("the token is empty".into());
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("the token holds whitespace or control characters".into());
        }
        Ok(Zeroizing::new(trimmed.to_owned()))
    }
}

#[async_trait]
impl TokenCredential for StaticTokenCredential {
    async fn token(&self, request: &TokenRequest<'_>) -> Result<AccessToken, ClientError> {
        let secret = self.read().map_err(|reason| ClientError::Credential {
            credential: self.describe(),
            principal: request.principal.0.clone(),
            reason,
            kind: VaultErrorKind::Internal,
        })?;
        let expires_on = jwt_expiry(&secret);
        Ok(AccessToken::new(secret, expires_on))
    }
}

/// The `exp` claim of a JWT, read without verifying it (only to know when to read the token
/// again); `None` for a token that is not a JWT or has no `exp`.
pub(crate) fn jwt_expiry(token: &str) -> Option<DateTime<Utc>> {
    let claims = token.split('.').nth(1)?;
    let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(claims.trim_end_matches('=')).ok()?);
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    DateTime::from_timestamp(value.get("exp")?.as_i64()?, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn a_jwt_s_expiry_is_read_and_anything_else_has_none() {
        assert_eq!(
            jwt_expiry(&jwt(r#"{"sub":"p","exp":1772366400}"#)),
            DateTime::from_timestamp(1_772_366_400, 0)
        );
        assert_eq!(jwt_expiry(&jwt(r#"{"sub":"p"}"#)), None);
        assert_eq!(jwt_expiry("opaque-token"), None);
        assert_eq!(jwt_expiry("a.%%%.c"), None);
    }

    #[tokio::test]
    async fn a_static_token_comes_from_its_file_and_prints_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let principal = PrincipalId("p1".into());
        let request = TokenRequest {
            principal: &principal,
            scope: "https://vault.azure.net/.default",
            tenant: None,
        };
        let credential = StaticTokenCredential::from_file(&path);
        let missing = credential.token(&request).await.unwrap_err();
        assert!(
            matches!(
                missing,
                ClientError::Credential {
                    kind: VaultErrorKind::Internal,
                    ..
                }
            ),
            "{missing}"
        );
        let token = jwt(r#"{"exp":1772366400}"#);
        std::fs::write(&path, format!("{token}\n")).unwrap();
        let got = credential.token(&request).await.unwrap();
        assert_eq!(got.secret(), token);
        assert_eq!(got.expires_on(), DateTime::from_timestamp(1_772_366_400, 0));
        assert!(!format!("{got:?}").contains(&token));
        // A rotated token is read at the next request.
        std::fs::write(&path, "second-token").unwrap();
        assert_eq!(
            credential.token(&request).await.unwrap().secret(),
            "second-token"
        );
        std::fs::write(&path, "two words").unwrap();
        assert!(credential.token(&request).await.is_err());
    }
}
