//! A [`KeyVault`](logvault_kms::KeyVault) that speaks Azure Key Vault's REST API: the keys
//! subset logvault uses (get a key and its versions, wrap and unwrap), against `logvault serve`'s
//! vault API or, with the same paths, JSON and challenge, Azure Key Vault itself.
//!
//! This crate owns:
//! - [`KeyVaultClient`], the trait's remote implementation, and how its answers become the kms
//!   crate's errors: 401, 403 (disabled keys included) and 404 are revocation; timeouts,
//!   refused connections, failed name resolution, 408, 429 and 5xx (after bounded retries with
//!   backoff) are outages, during which the key lifecycle keeps the cached account key (R-B6);
//! - the [`TokenCredential`] trait and its two implementations: [`StaticTokenCredential`] (a
//!   token of `logvault token create`, from an environment variable or a file) and
//!   [`ClientSecretCredential`] (Entra ID's client credentials);
//! - the 401 challenge flow of Azure's SDKs (scope and tenant from `WWW-Authenticate`);
//! - [`RemoteVaultConfig`], the `vault` object of a home's `config.json`.
//!
//! It must never: print or log a token or key bytes (they live in zeroizing buffers and print
//! as `REDACTED`), follow a redirect (a token would travel to another host), or decide what a
//! failure means for data (that is the key lifecycle's job, through
//! [`VaultErrorKind::is_revocation`](logvault_kms::VaultErrorKind::is_revocation)).

mod challenge;
mod client;
mod client_secret;
mod config;
mod credential;
mod error;
mod transport;
mod wire;

pub use client::{ALG_RSA_OAEP_256, KeyVaultClient};
pub use client_secret::{ClientSecret, ClientSecretCredential};
pub use config::{CredentialConfig, RemoteVaultConfig};
pub use credential::{AccessToken, StaticTokenCredential, TokenCredential, TokenRequest};
pub use error::ClientError;
