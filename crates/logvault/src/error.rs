use std::path::PathBuf;

/// Errors of the engine facade: the home cannot be opened, or a layer below failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The home directory cannot be created or read.
    #[error("home {path}: {reason}")]
    Home {
        /// The directory or file at fault.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] logvault_core::CoreError),
    /// The key vault refused or failed.
    #[error(transparent)]
    Vault(#[from] logvault_kms::VaultError),
    /// The remote vault of the home's configuration cannot be used.
    #[error(transparent)]
    RemoteVault(#[from] logvault_keyvault_client::ClientError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] logvault_store::StoreError),
    /// The control plane refused (the message starts with the HTTP-like code).
    #[error(transparent)]
    Control(#[from] logvault_control::ControlError),
    /// The hot cache failed.
    #[error(transparent)]
    Cache(#[from] logvault_cache::CacheError),
    /// Ingestion failed.
    #[error(transparent)]
    Ingest(#[from] logvault_ingest::IngestError),
    /// The write path failed.
    #[error(transparent)]
    Write(#[from] logvault_write::WriteError),
    /// The query failed.
    #[error(transparent)]
    Query(#[from] logvault_query::QueryError),
    /// A KQL query does not parse or plan (the message has the line, column and a caret).
    #[error(transparent)]
    Kql(#[from] logvault_kql::KqlError),
    /// A workspace's data cannot be read or written because of its cluster's key state.
    #[error("{0}")]
    Key(#[from] crate::keys::KeyStateError),
    /// A storage account's key cannot be used (revoked, or the vault unreachable): what it
    /// holds (saved queries, alert rules) cannot be read or written until the key is back.
    #[error(
        "storage account {account}: its key {key} is unavailable, so the saved queries and alert \
         rules stored there cannot be read or written until the key is restored: {reason}"
    )]
    StorageKey {
        /// The storage account.
        account: String,
        /// The customer key (vault and name).
        key: String,
        /// The vault's answer.
        reason: String,
    },
    /// A stored artifact (saved search, alert rule, history entry) is not what this version
    /// reads.
    #[error("{what}: {reason}")]
    Artifact {
        /// The artifact.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A declared table schema is not valid (`logvault table create --schema`).
    #[error("invalid schema for table {table}: {reason}")]
    Schema {
        /// The table.
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// Local state of the engine (key states, counters) cannot be read or written.
    #[error("{what} {path}: {reason}")]
    State {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The query runtime cannot be made as asked.
    #[error("query runtime: {reason}")]
    QueryRuntime {
        /// What is wrong.
        reason: String,
    },
}

impl EngineError {
    /// The HTTP-like status code the CLI prints for a refusal, if the error is one.
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Control(e) => Some(e.code()),
            Self::Schema { .. } => Some(400),
            Self::Store(
                logvault_store::StoreError::TableExists { .. }
                | logvault_store::StoreError::LeaseHeld { .. },
            ) => Some(409),
            _ => None,
        }
    }

    /// Whether another writer holds the workspace's log now (another process ingesting): the
    /// caller may retry later.
    pub fn is_busy(&self) -> bool {
        matches!(self, Self::Write(logvault_write::WriteError::Busy { .. }))
    }
}
