/// Errors of the hot cache. Messages name the cache file, segment or workspace at fault.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache directory or one of its files cannot be read or written.
    #[error("hot cache {path}: {reason}")]
    Io {
        /// The directory or file.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// A cache file does not authenticate or is malformed. It is never served.
    #[error("hot cache file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A cache file of a format version this build does not read.
    #[error(
        "hot cache file {path} has format version {found}; this build reads version {supported}"
    )]
    UnsupportedFormat {
        /// The file.
        path: String,
        /// The version in the file.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// The service account's key, which the disk tier is sealed under, is not available.
    #[error("hot cache key (service account): {reason}")]
    Key {
        /// Why.
        reason: String,
    },
    /// Reading a segment from storage failed.
    #[error("segment {segment}: {reason}")]
    Storage {
        /// The segment (`<account>/<workspace>/<table>/<id>` or its path).
        segment: String,
        /// The storage's reason.
        reason: String,
    },
    /// Decoding a segment for the memory tier failed (including integrity errors).
    #[error("segment {segment}: decoding for the memory tier: {reason}")]
    Decode {
        /// The segment.
        segment: String,
        /// Why.
        reason: String,
    },
    /// Reading a workspace's catalog failed.
    #[error("workspace {workspace}: {reason}")]
    Catalog {
        /// The workspace.
        workspace: String,
        /// The catalog's reason.
        reason: String,
    },
    /// A setting is out of range.
    #[error("hot cache setting {field}: {reason}")]
    Config {
        /// The setting (as in the configuration file).
        field: &'static str,
        /// Why it is refused.
        reason: String,
    },
}

impl CacheError {
    pub(crate) fn io(path: &std::path::Path, e: &std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    }
}

/// The name under which the cache's errors appear inside `object_store` errors.
pub(crate) const STORE_NAME: &str = "HotCache";

impl From<CacheError> for object_store::Error {
    fn from(e: CacheError) -> Self {
        object_store::Error::Generic {
            store: STORE_NAME,
            source: Box::new(e),
        }
    }
}
