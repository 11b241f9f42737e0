//! The crate's errors: a configuration that cannot be used, and a credential that cannot give a
//! token. A vault call's failures are [`VaultError`]s (the [`logvault_kms::KeyVault`] trait's).

use logvault_kms::{VaultError, VaultErrorKind};

/// Why a Key Vault client cannot be built, or its credential gave no token.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The remote vault's configuration is invalid.
    #[error("remote vault configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The certificate authority file cannot be read or holds no certificate.
    #[error("remote vault certificate authority {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client cannot be built (the TLS setup).
    #[error("remote vault http client: {reason}")]
    Http {
        /// What is wrong.
        reason: String,
    },
    /// The credential gave no token. `kind` says what that means for the keys: `Transient`
    /// (the token endpoint is unreachable: an outage), `Forbidden` (the identity provider
    /// refused the credential: as good as revoked), `Internal` (the credential is misconfigured:
    /// a missing variable or file).
    #[error("credential {credential} gave no token for principal {principal}: {reason}")]
    Credential {
        /// The credential (`logvault token from LOGVAULT_VAULT_TOKEN`, `client secret of app X`).
        credential: String,
        /// The principal the token was asked for.
        principal: String,
        /// What failed.
        reason: String,
        /// What the failure means.
        kind: VaultErrorKind,
    },
}

impl ClientError {
    /// This error as the vault call's error on `vault`.
    pub(crate) fn into_vault_error(self, vault: &str) -> VaultError {
        match self {
            Self::Credential {
                kind: VaultErrorKind::Transient,
                ..
            } => VaultError::Transient {
                vault: vault.to_owned(),
                reason: self.to_string(),
            },
            Self::Credential {
                kind: VaultErrorKind::Forbidden,
                ref principal,
                ..
            } => VaultError::Unauthenticated {
                vault: vault.to_owned(),
                principal: principal.clone(),
                reason: self.to_string(),
            },
            other => VaultError::Internal {
                vault: vault.to_owned(),
                reason: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_failures_keep_their_meaning_as_vault_errors() {
        let failure = |kind| ClientError::Credential {
            credential: "client secret of app a1".into(),
            principal: "p1".into(),
            reason: "the token endpoint answered 401".into(),
            kind,
        };
        let outage = failure(VaultErrorKind::Transient).into_vault_error("kv1");
        assert_eq!(outage.kind(), VaultErrorKind::Transient);
        assert!(!outage.is_revocation());
        let refused = failure(VaultErrorKind::Forbidden).into_vault_error("kv1");
        assert!(refused.is_revocation(), "{refused}");
        assert!(refused.to_string().contains("kv1") && refused.to_string().contains("p1"));
        let broken = failure(VaultErrorKind::Internal).into_vault_error("kv1");
        assert_eq!(broken.kind(), VaultErrorKind::Internal);
    }
}
