/// Errors of the crypto layer. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Authentication failed: the data was altered, truncated, swapped, or the key is wrong.
    #[error("integrity check failed: {context}")]
    Integrity {
        /// What failed to authenticate (a segment id, a file, a chunk).
        context: String,
    },
    /// A key has the wrong size or shape.
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// Why it is invalid.
        reason: String,
    },
    /// The operating system's random source failed.
    #[error("random source failed: {reason}")]
    Random {
        /// The operating system's reason.
        reason: String,
    },
    /// A root key file cannot be used.
    #[error("root key file {path}: {reason}")]
    MasterKey {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
        /// Whether the file simply does not exist.
        missing: bool,
    },
    /// parquet refused the encryption properties.
    #[error("parquet encryption properties: {reason}")]
    Parquet {
        /// parquet's reason.
        reason: String,
    },
}
