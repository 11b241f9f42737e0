use std::path::PathBuf;

/// Errors of the server crate outside a request: starting, the token and rule stores, TLS.
/// (A request's errors are answered over HTTP in Azure's shapes, see `http::ApiError`.)
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] logvault::EngineError),
    /// A state file of the server (tokens, data collection rules, TLS) cannot be used.
    #[error("{what} {path}: {reason}")]
    State {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A listener cannot be opened.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The TLS identity cannot be made or used.
    #[error("tls: {0}")]
    Tls(String),
    /// A worker of the distributed engine ([`crate::DistributedQueries`]) could not get a
    /// storage account's key from the vault (revoked, disabled, deleted, or the cluster's
    /// identity lost its permission): the hook reports it inside
    /// `DataFusionError::External`, and the query API answers it as a local query's key
    /// refusal.
    #[error("{message}")]
    DistributedKeyUnavailable {
        /// The storage account (`service`, `cluster-<name>`).
        account: String,
        /// The worker's message, naming itself, the account and the vault's answer.
        message: String,
    },
    /// A request to the stores is invalid or refused (the message starts with the HTTP-like
    /// code, as the control plane's do: `404 ...`, `409 ...`, `400 ...`).
    #[error("{code} {message}")]
    Refused {
        /// The HTTP-like code.
        code: u16,
        /// The message.
        message: String,
    },
}

impl ServerError {
    pub(crate) fn state(what: &'static str, path: &std::path::Path, reason: impl ToString) -> Self {
        Self::State {
            what,
            path: path.to_owned(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn refused(code: u16, message: impl Into<String>) -> Self {
        Self::Refused {
            code,
            message: message.into(),
        }
    }

    /// The [`Self::DistributedKeyUnavailable`] inside `e`, if there is one (at any depth of
    /// DataFusion's wrappers).
    pub fn distributed_key(e: &datafusion::error::DataFusionError) -> Option<&Self> {
        use datafusion::error::DataFusionError as E;
        match e {
            E::External(inner) => inner
                .downcast_ref::<Self>()
                .filter(|s| matches!(s, Self::DistributedKeyUnavailable { .. })),
            E::Context(_, inner) | E::Diagnostic(_, inner) => Self::distributed_key(inner),
            E::Shared(inner) => Self::distributed_key(inner),
            _ => None,
        }
    }

    /// The HTTP-like code of a refusal, if the error is one.
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Refused { code, .. } => Some(*code),
            Self::Engine(e) => e.code(),
            _ => None,
        }
    }
}
