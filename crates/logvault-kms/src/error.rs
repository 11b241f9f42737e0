/// What kind of failure a vault call met. The key lifecycle matches on it: `Forbidden`,
/// `Disabled`, `Deleted` and `NotFound` revoke access to data; `Transient` keeps a cached account
/// key in use for the length of the outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum VaultErrorKind {
    /// The vault, key or version does not exist (or was purged).
    NotFound,
    /// The principal lacks the permission the operation needs.
    Forbidden,
    /// The key, or the version asked for, is disabled.
    Disabled,
    /// The key is soft-deleted (recoverable until purged).
    Deleted,
    /// The vault lacks soft delete or purge protection, so the key may be lost for good.
    NotRecoverable,
    /// The request is malformed (bad name, wrong key type for the operation, bad blob).
    BadRequest,
    /// The resource already exists, or is in a state that forbids the operation (a deleted key
    /// blocks reuse of its name until purged; purge protection refuses a purge).
    Conflict,
    /// The vault could not be reached (timeout, connection refused, name resolution failure).
    Transient,
    /// The vault's own state is damaged or unreadable; neither revocation nor an outage.
    Internal,
}

/// An error from a key vault. Messages name the vault, key, version and principal at fault, and
/// never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The vault does not exist.
    #[error("vault {vault} not found")]
    VaultNotFound {
        /// The vault's name.
        vault: String,
    },
    /// The key (or the given version of it) does not exist.
    #[error("key {key} (version {version}) not found in vault {vault}")]
    KeyNotFound {
        /// The vault's name.
        vault: String,
        /// The key's name.
        key: String,
        /// The version asked for, or `latest`.
        version: String,
    },
    /// The principal lacks a permission.
    #[error("principal {principal} lacks the {permission} permission on keys of vault {vault}")]
    Forbidden {
        /// The vault's name.
        vault: String,
        /// The principal's id.
        principal: String,
        /// The missing permission (`get`, `wrapKey`, `unwrapKey`).
        permission: String,
    },
    /// The principal is not a known identity (never created, or deleted with its cluster), so it
    /// cannot authenticate, whatever permissions still name it.
    #[error(
        "principal {principal} is not a known identity and cannot authenticate to vault {vault}"
    )]
    UnknownPrincipal {
        /// The vault's name.
        vault: String,
        /// The principal's id.
        principal: String,
    },
    /// The vault refused the caller's credential (a remote vault answered 401 to a token): the
    /// principal cannot authenticate, so its access is as good as revoked.
    #[error("vault {vault} refused the credential of principal {principal}: {reason}")]
    Unauthenticated {
        /// The vault's name.
        vault: String,
        /// The principal on whose behalf the call was made.
        principal: String,
        /// The vault's answer.
        reason: String,
    },
    /// The key or version is disabled.
    #[error("key {key}{} in vault {vault} is disabled", version.as_ref().map(|v| format!(" version {v}")).unwrap_or_default())]
    Disabled {
        /// The vault's name.
        vault: String,
        /// The key's name.
        key: String,
        /// The disabled version, or `None` when the whole key is disabled.
        version: Option<String>,
    },
    /// The key is soft-deleted.
    #[error("key {key} in vault {vault} is deleted (recoverable until {purge_date})")]
    Deleted {
        /// The vault's name.
        vault: String,
        /// The key's name.
        key: String,
        /// When it will be purged.
        purge_date: String,
    },
    /// The vault does not protect the key against loss.
    #[error("key {key} in vault {vault} is not recoverable: {reason}")]
    NotRecoverable {
        /// The vault's name.
        vault: String,
        /// The key's name.
        key: String,
        /// Which protection is missing.
        reason: String,
    },
    /// The request is malformed.
    #[error("bad request to vault {vault}: {reason}")]
    BadRequest {
        /// The vault's name (or the URI given).
        vault: String,
        /// What is wrong.
        reason: String,
    },
    /// The resource already exists, or its state forbids the operation.
    #[error("{resource} {reason}")]
    Conflict {
        /// The resource at fault, e.g. `vault contoso` or `key cmk in vault contoso`.
        resource: String,
        /// What conflicts, e.g. `already exists`.
        reason: String,
    },
    /// A name or resource id is malformed.
    #[error(transparent)]
    InvalidInput(#[from] logvault_core::CoreError),
    /// Another resource of the vault (an access policy, a role assignment) does not exist.
    #[error("{resource} not found")]
    ResourceNotFound {
        /// The resource, e.g. `access policy for principal P in vault V`.
        resource: String,
    },
    /// An identity does not exist.
    #[error("identity {identity} not found")]
    IdentityNotFound {
        /// The identity's name, resource id or principal id.
        identity: String,
    },
    /// The identity directory cannot be read or written.
    #[error("identity directory {path} is unusable: {reason}")]
    Directory {
        /// The directory's file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The vault cannot be reached.
    #[error("vault {vault} is unreachable: {reason}")]
    Transient {
        /// The vault's name.
        vault: String,
        /// What went wrong (timeout, connection refused, name resolution failure).
        reason: String,
    },
    /// The vault's own state is damaged or cannot be read or written.
    #[error("vault {vault} state is unusable: {reason}")]
    Internal {
        /// The vault's name (or the store's path).
        vault: String,
        /// What is wrong.
        reason: String,
    },
}

impl VaultError {
    /// The kind of failure, for callers that decide what it means.
    pub fn kind(&self) -> VaultErrorKind {
        match self {
            Self::VaultNotFound { .. }
            | Self::KeyNotFound { .. }
            | Self::ResourceNotFound { .. }
            | Self::IdentityNotFound { .. } => VaultErrorKind::NotFound,
            Self::Forbidden { .. }
            | Self::UnknownPrincipal { .. }
            | Self::Unauthenticated { .. } => VaultErrorKind::Forbidden,
            Self::Disabled { .. } => VaultErrorKind::Disabled,
            Self::Deleted { .. } => VaultErrorKind::Deleted,
            Self::NotRecoverable { .. } => VaultErrorKind::NotRecoverable,
            Self::BadRequest { .. } | Self::InvalidInput(_) => VaultErrorKind::BadRequest,
            Self::Conflict { .. } => VaultErrorKind::Conflict,
            Self::Transient { .. } => VaultErrorKind::Transient,
            Self::Internal { .. } | Self::Directory { .. } => VaultErrorKind::Internal,
        }
    }

    /// Whether the failure means access to the key is revoked (as opposed to unreachable).
    pub fn is_revocation(&self) -> bool {
        self.kind().is_revocation()
    }
}

impl VaultErrorKind {
    /// Whether a failure of this kind means access to the key is revoked (R-G1: a missing,
    /// forbidden, disabled or deleted key or version), as opposed to an outage (R-B6) or a
    /// damaged state. The one place this rule is written: the store, the key lifecycle and the
    /// write path all ask it.
    pub fn is_revocation(self) -> bool {
        matches!(
            self,
            Self::NotFound | Self::Forbidden | Self::Disabled | Self::Deleted
        )
    }

    /// The HTTP status a REST vault would answer with, for command lines and servers that print
    /// one (`404`, `403`, `400`, `409`, `503`, `500`).
    pub fn http_status(self) -> u16 {
        match self {
            Self::NotFound | Self::Deleted => 404,
            Self::Forbidden | Self::Disabled => 403,
            Self::BadRequest | Self::NotRecoverable => 400,
            Self::Conflict => 409,
            Self::Transient => 503,
            Self::Internal => 500,
        }
    }
}

impl std::fmt::Display for VaultErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotFound => "notFound",
            Self::Forbidden => "forbidden",
            Self::Disabled => "disabled",
            Self::Deleted => "deleted",
            Self::NotRecoverable => "notRecoverable",
            Self::BadRequest => "badRequest",
            Self::Conflict => "conflict",
            Self::Transient => "transient",
            Self::Internal => "internal",
        })
    }
}
