/// Errors of the control plane.
///
/// Refusals carry the HTTP-like status code and message of the service (R-C3's messages are
/// kept verbatim, as scripts written for Azure match on them); the CLI prints them as
/// `error: 400 Key is not recoverable ...`.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The request was refused by a rule of the service.
    #[error("{code} {message}")]
    Refused {
        /// HTTP-like status: 400 bad request, 404 not found, 409 conflict, 503 unavailable.
        code: u16,
        /// The service's message, naming the resource at fault.
        message: String,
    },
    /// The control-plane state cannot be read or written.
    #[error("control-plane state {path}: {reason}")]
    Storage {
        /// The state file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A vault call failed (kept whole so callers can match on its kind).
    #[error(transparent)]
    Vault(#[from] logvault_kms::VaultError),
    /// Re-wrapping a cluster's account key with a customer key failed; `kind` is the vault's
    /// failure kind when the vault refused or was unreachable.
    #[error("cluster {cluster}: binding the account key to the customer key failed: {reason}")]
    KeyBinding {
        /// The cluster.
        cluster: String,
        /// The vault's failure kind, if the vault refused or was unreachable.
        kind: Option<logvault_kms::VaultErrorKind>,
        /// What went wrong.
        reason: String,
    },
    /// Provisioning the cluster's storage account or wrapping its account key failed.
    #[error("cluster {cluster}: {reason}")]
    Provisioning {
        /// The cluster.
        cluster: String,
        /// What went wrong.
        reason: String,
    },
}

impl ControlError {
    /// The HTTP-like status code (500 for internal failures).
    pub fn code(&self) -> u16 {
        match self {
            Self::Refused { code, .. } => *code,
            Self::Vault(e) => match e.kind() {
                logvault_kms::VaultErrorKind::NotFound => 404,
                logvault_kms::VaultErrorKind::Forbidden => 403,
                logvault_kms::VaultErrorKind::Transient => 503,
                logvault_kms::VaultErrorKind::Internal => 500,
                _ => 400,
            },
            Self::KeyBinding { .. } | Self::Storage { .. } | Self::Provisioning { .. } => 500,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::Refused {
            code: 400,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::Refused {
            code: 404,
            message: message.into(),
        }
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::Refused {
            code: 409,
            message: message.into(),
        }
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::Refused {
            code: 503,
            message: message.into(),
        }
    }
}
