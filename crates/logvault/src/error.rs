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
}
