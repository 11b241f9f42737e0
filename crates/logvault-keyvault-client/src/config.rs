//! How a home is told to use a remote vault: the `vault` object of its `config.json`.
//!
//! ```json
//! "vault": {
//!   "url": "https://127.0.0.1:8443/",
//!   "caFile": "/srv/home-a/tls/cert.pem",
//!   "credential": {"type": "token", "tokenEnv": "LOGVAULT_VAULT_TOKEN"},
//!   "verifyChallengeResource": false
//! }
//! ```
//!
//! Secrets are never in the file: a credential names the environment variable (or the file)
//! that holds its token or client secret.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use logvault_core::SharedClock;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::client_secret::ClientSecret;
use crate::credential::{StaticTokenCredential, TokenCredential};
use crate::{ClientError, ClientSecretCredential};

fn yes() -> bool {
    true
}
fn local() -> String {
    "local".into()
}
fn ten() -> u64 {
    10
}
fn five() -> u64 {
    5
}
fn three() -> u32 {
    3
}
fn entra() -> String {
    "https://login.microsoftonline.com".into()
}

/// A remote vault: where it is, what to trust, how to get tokens, how long to wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteVaultConfig {
    /// Where the vaults are. A URL with `{vault}` is a template (`https://{vault}.vault.azure.net/`
    /// for Azure Key Vault); any other URL is a `logvault serve` endpoint, which serves vault
    /// `NAME` at `URL/vaults/NAME/`. `https`, or `http` to a loopback address.
    pub url: String,
    /// A PEM file of the certificates to trust instead of the system's roots (for `logvault
    /// serve`, its home's `tls/cert.pem`). A relative path is relative to the home.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Where tokens come from.
    pub credential: CredentialConfig,
    /// Whether the 401 challenge's resource must be the vault's domain, as Azure SDKs check by
    /// default. `logvault serve` answers Azure's resource on its own address: `false` there.
    #[serde(default = "yes")]
    pub verify_challenge_resource: bool,
    /// The vaults' region (Key Vault's keys API does not say it; the cluster's must match).
    #[serde(default = "local")]
    pub region: String,
    /// The vaults' tenant; by default, the one the vault's challenge names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// How long one attempt may take, in seconds.
    #[serde(default = "ten")]
    pub timeout_secs: u64,
    /// How long connecting may take, in seconds.
    #[serde(default = "five")]
    pub connect_timeout_secs: u64,
    /// How many times a failed attempt (timeout, refused, 408, 429, 5xx) is retried.
    #[serde(default = "three")]
    pub retries: u32,
}

/// A credential, by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum CredentialConfig {
    /// A bearer token as it is (from `logvault token create` on the vault's server), from an
    /// environment variable or a file (re-read when renewed).
    #[serde(rename_all = "camelCase")]
    Token {
        /// The environment variable holding the token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_env: Option<String>,
        /// The file holding the token (relative to the home if relative).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_file: Option<PathBuf>,
    },
    /// Entra ID's client credentials: an application's id and secret.
    #[serde(rename_all = "camelCase")]
    ClientSecret {
        /// The application (client) id.
        client_id: String,
        /// The environment variable holding the client secret.
        client_secret_env: String,
        /// The tenant; by default the one the vault's challenge names.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
        /// The identity provider.
        #[serde(default = "entra")]
        authority_host: String,
    },
}

/// Parses a base URL: `https`, or `http` to a loopback host; no query or fragment.
pub(crate) fn parse_base_url(text: &str, field: &str) -> Result<Url, ClientError> {
    let bad = |reason: String| ClientError::Config {
        reason: format!("{field} {text:?}: {reason}"),
    };
    let url = Url::parse(text).map_err(|e| bad(e.to_string()))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(bad("must be https (http only to a loopback address)".into())),
        other => return Err(bad(format!("scheme {other} is not https"))),
    }
    if url.query().is_some() || url.fragment().is_some() || url.host().is_none() {
        return Err(bad(
            "must be scheme://host[:port]/[path] without query".into()
        ));
    }
    Ok(url)
}

impl RemoteVaultConfig {
    /// A `logvault serve` endpoint at `url` with a token from environment variable `env`,
    /// trusting `ca_file`.
    pub fn logvault_serve(
        url: impl Into<String>,
        ca_file: PathBuf,
        env: impl Into<String>,
    ) -> Self {
        Self {
            url: url.into(),
            ca_file: Some(ca_file),
            credential: CredentialConfig::Token {
                token_env: Some(env.into()),
                token_file: None,
            },
            verify_challenge_resource: false,
            region: local(),
            tenant: None,
            timeout_secs: ten(),
            connect_timeout_secs: five(),
            retries: three(),
        }
    }

    /// The same configuration with relative file paths made relative to `dir` (the home).
    pub fn relative_to(&self, dir: &Path) -> Self {
        let mut out = self.clone();
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        if let Some(p) = out.ca_file.as_mut() {
            fix(p);
        }
        if let CredentialConfig::Token {
            token_file: Some(p),
            ..
        } = &mut out.credential
        {
            fix(p);
        }
        out
    }

    pub(crate) fn timeouts(&self) -> Result<(Duration, Duration), ClientError> {
        if !(1..=300).contains(&self.timeout_secs)
            || !(1..=300).contains(&self.connect_timeout_secs)
        {
            return Err(ClientError::Config {
                reason: "timeoutSecs and connectTimeoutSecs must be 1..=300".into(),
            });
        }
        if self.retries > 10 {
            return Err(ClientError::Config {
                reason: format!("retries {} is more than 10", self.retries),
            });
        }
        Ok((
            Duration::from_secs(self.connect_timeout_secs),
            Duration::from_secs(self.timeout_secs),
        ))
    }

    /// The credential this configuration names.
    ///
    /// # Errors
    /// [`ClientError::Config`] for a token credential with neither or both sources, or a bad
    /// authority.
    pub fn credential(&self, clock: SharedClock) -> Result<Arc<dyn TokenCredential>, ClientError> {
        match &self.credential {
            CredentialConfig::Token {
                token_env: Some(env),
                token_file: None,
            } => Ok(Arc::new(StaticTokenCredential::from_env(env.clone()))),
            CredentialConfig::Token {
                token_env: None,
                token_file: Some(path),
            } => Ok(Arc::new(StaticTokenCredential::from_file(path.clone()))),
            CredentialConfig::Token { .. } => Err(ClientError::Config {
                reason: "a token credential needs one of tokenEnv and tokenFile".into(),
            }),
            CredentialConfig::ClientSecret {
                client_id,
                client_secret_env,
                tenant,
                authority_host,
            } => {
                let (_, timeout) = self.timeouts()?;
                Ok(Arc::new(ClientSecretCredential::new(
                    authority_host,
                    tenant.clone(),
                    client_id.clone(),
                    ClientSecret::Env(client_secret_env.clone()),
                    timeout,
                    clock,
                )?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_reads_with_defaults_and_refuses_typos_and_plain_http() {
        let c: RemoteVaultConfig = serde_json::from_str(
            r#"{"url": "https://127.0.0.1:8443/", "caFile": "tls/cert.pem",
                "credential": {"type": "token", "tokenFile": "vault.token"}}"#,
        )
        .unwrap();
        assert!(c.verify_challenge_resource);
        assert_eq!(
            (c.timeout_secs, c.connect_timeout_secs, c.retries),
            (10, 5, 3)
        );
        let c = c.relative_to(Path::new("/home/h"));
        assert_eq!(
            c.ca_file.as_deref(),
            Some(Path::new("/home/h/tls/cert.pem"))
        );
        assert!(matches!(
            &c.credential,
            CredentialConfig::Token { token_file: Some(p), .. } if p == Path::new("/home/h/vault.token")
        ));
        for bad in [
            r#"{"url": "https://h/", "cafile": "x", "credential": {"type": "token", "tokenEnv": "T"}}"#,
            r#"{"url": "https://h/", "credential": {"type": "token", "token": "secret"}}"#,
            r#"{"url": "https://h/", "credential": {"type": "password"}}"#,
        ] {
            assert!(
                serde_json::from_str::<RemoteVaultConfig>(bad).is_err(),
                "{bad}"
            );
        }
        assert!(parse_base_url("http://127.0.0.1:8080/", "url").is_ok());
        assert!(parse_base_url("http://[::1]:8080/", "url").is_ok());
        for bad in [
            "http://vault.example/",
            "ftp://h/",
            "https://h/?a=b",
            "not a url",
        ] {
            assert!(parse_base_url(bad, "url").is_err(), "{bad}");
        }
    }
}
