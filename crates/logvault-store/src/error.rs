//! The store's one error enum.

use logvault_kms::{VaultError, VaultErrorKind};

/// Errors of the store. Messages are lowercase and name the storage account, workspace, table or
/// segment at fault; they never contain key material.
///
/// The enum is `Clone` (every field is plain data) so that one failed key load can be handed to
/// every caller waiting on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A name or id is not acceptable (account id, workspace, table, segment id, path).
    #[error("invalid {kind} {name:?}: {reason}")]
    InvalidName {
        /// What was named (`storage account`, `workspace`, `table`, `segment id`).
        kind: &'static str,
        /// The name given.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// The storage account does not exist.
    #[error("storage account {account} not found")]
    AccountNotFound {
        /// The account's id.
        account: String,
    },
    /// The storage account already exists.
    #[error("storage account {account} already exists")]
    AccountExists {
        /// The account's id.
        account: String,
    },
    /// A table's schema cannot be declared: the table already has one, or already holds data.
    #[error("table {table} in workspace {workspace} already exists: {reason}")]
    TableExists {
        /// The workspace.
        workspace: String,
        /// The table.
        table: String,
        /// What is there already.
        reason: String,
    },
    /// The account was created with the other double-encryption setting (R-B4: fixed).
    #[error(
        "storage account {account} was created with double encryption {}; it cannot be opened with double encryption {}",
        on_off(*.stored),
        on_off(*.requested)
    )]
    DoubleEncryptionMismatch {
        /// The account's id.
        account: String,
        /// The setting recorded at creation.
        stored: bool,
        /// The setting asked for.
        requested: bool,
    },
    /// Something on disk has a format version this build does not read.
    #[error(
        "{what} has format version {version}, which this logvault does not read (it reads {supported})"
    )]
    UnsupportedFormat {
        /// What was read (a segment, a manifest, an account's metadata).
        what: String,
        /// The version found.
        version: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A metadata object (account metadata, wrapped key record, manifest) is malformed.
    #[error("{what} is corrupted: {reason}")]
    Corrupt {
        /// What was read.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The storage account has no account key yet.
    #[error("storage account {account} has no account key")]
    NoAccountKey {
        /// The account's id.
        account: String,
    },
    /// The storage account already has an account key.
    #[error("storage account {account} already has an account key")]
    AccountKeyExists {
        /// The account's id.
        account: String,
    },
    /// A wrapped account key unwrapped to a key that is not the account's.
    #[error("the wrapped account key of storage account {account} does not belong to it: {reason}")]
    AccountKeyMismatch {
        /// The account's id.
        account: String,
        /// What did not match.
        reason: String,
    },
    /// The vault refused or failed to wrap or unwrap an account's key.
    #[error("key vault call for storage account {account} failed ({}): {message}", kind_name(*.kind))]
    Vault {
        /// The account whose key was being wrapped or unwrapped.
        account: String,
        /// What kind of failure it was (revocation or outage).
        kind: VaultErrorKind,
        /// The vault's message (names the vault, key, version and principal).
        message: String,
    },
    /// A query needed an account key that is not in the cache (it must be resolved before
    /// planning, never per file).
    #[error(
        "the account key of storage account {account} is not cached: resolve it before reading its segments"
    )]
    AccountKeyNotCached {
        /// The account's id.
        account: String,
    },
    /// A segment failed authentication: tampered, truncated, swapped, or under another key.
    #[error("integrity check failed for segment {segment}: {reason}")]
    Integrity {
        /// The segment (`account/workspace/table/id`).
        segment: String,
        /// What failed.
        reason: String,
    },
    /// A catalog manifest failed authentication.
    #[error(
        "integrity check failed for the catalog of table {table} in workspace {workspace} (version {version}): {reason}"
    )]
    ManifestIntegrity {
        /// The workspace.
        workspace: String,
        /// The table.
        table: String,
        /// The manifest version.
        version: u64,
        /// What failed.
        reason: String,
    },
    /// The segment does not exist in its storage account.
    #[error("segment {segment} not found")]
    SegmentNotFound {
        /// The segment (`account/workspace/table/id`).
        segment: String,
    },
    /// Data handed to the writer cannot become a segment.
    #[error("cannot write to table {table} in workspace {workspace}: {reason}")]
    InvalidData {
        /// The workspace.
        workspace: String,
        /// The table.
        table: String,
        /// What is wrong with the data.
        reason: String,
    },
    /// A retention period is out of range.
    #[error(
        "retention of {days} days for table {table} in workspace {workspace} is out of range ({min} to {max} days)"
    )]
    InvalidRetention {
        /// The workspace.
        workspace: String,
        /// The table.
        table: String,
        /// The days asked for.
        days: u32,
        /// The shortest allowed.
        min: u32,
        /// The longest allowed.
        max: u32,
    },
    /// Parquet failed to encode a segment.
    #[error("writing segment {segment} failed: {reason}")]
    Encode {
        /// The segment (`account/workspace/table/id`).
        segment: String,
        /// parquet's reason.
        reason: String,
    },
    /// The object store failed.
    #[error("storage failed for {what}: {reason}")]
    Storage {
        /// What was being read or written.
        what: String,
        /// The object store's reason.
        reason: String,
    },
    /// A conditional update kept losing races.
    #[error("{what}: gave up after {attempts} conflicting concurrent updates")]
    Conflict {
        /// What was being updated.
        what: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// A conditional update stalled so long that the version it wrote may have been one that
    /// newer versions had already replaced and that was deleted as old: whether it took effect
    /// is not known (read the catalog again).
    #[error(
        "{what}: the update took {secs} s between reading and writing the catalog and newer versions exist: it may not have taken effect"
    )]
    Uncertain {
        /// What was being updated.
        what: String,
        /// Seconds between the read and the write.
        secs: u64,
    },
    /// Another node holds the lease (compaction and retention run on one node at a time).
    #[error("lease {lease} is held by node {holder} until {until}: it runs there; try again later")]
    LeaseHeld {
        /// The lease.
        lease: String,
        /// The node holding it.
        holder: String,
        /// Its expiry unless renewed (RFC 3339).
        until: String,
    },
    /// This node held the lease, but another took it over (this one renewed too late).
    #[error("lease {lease} held by node {holder} was taken over by node {taken_by}")]
    LeaseLost {
        /// The lease.
        lease: String,
        /// This node.
        holder: String,
        /// The node holding it now.
        taken_by: String,
    },
    /// A storage URL cannot be used.
    #[error("storage url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A cryptographic operation failed outside a segment read (random source, sealing).
    #[error("{what}: {reason}")]
    Crypto {
        /// What was being done.
        what: String,
        /// The crypto layer's reason.
        reason: String,
    },
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn kind_name(kind: VaultErrorKind) -> &'static str {
    match kind {
        VaultErrorKind::NotFound => "not found",
        VaultErrorKind::Forbidden => "forbidden",
        VaultErrorKind::Disabled => "disabled",
        VaultErrorKind::Deleted => "deleted",
        VaultErrorKind::NotRecoverable => "not recoverable",
        VaultErrorKind::BadRequest => "bad request",
        VaultErrorKind::Transient => "unreachable",
        VaultErrorKind::Internal => "internal",
        VaultErrorKind::Conflict => "conflict",
    }
}

impl StoreError {
    /// The vault failure kind, when the error comes from the vault.
    pub fn vault_kind(&self) -> Option<VaultErrorKind> {
        match self {
            Self::Vault { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Whether the error means access to the account's key is revoked (not merely unreachable).
    pub fn is_revocation(&self) -> bool {
        self.vault_kind().is_some_and(VaultErrorKind::is_revocation)
    }

    /// Whether the error is an integrity failure (of a segment or a manifest).
    pub fn is_integrity(&self) -> bool {
        matches!(
            self,
            Self::Integrity { .. } | Self::ManifestIntegrity { .. }
        )
    }

    pub(crate) fn vault(account: &str, e: &VaultError) -> Self {
        Self::Vault {
            account: account.to_owned(),
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    pub(crate) fn storage(what: impl Into<String>, e: &object_store::Error) -> Self {
        Self::Storage {
            what: what.into(),
            reason: e.to_string(),
        }
    }

    pub(crate) fn crypto(what: impl Into<String>, e: &logvault_crypto::CryptoError) -> Self {
        Self::Crypto {
            what: what.into(),
            reason: e.to_string(),
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// Parses a JSON object that carries its format version in `formatVersion`: refuses a version
/// other than `supported` with [`StoreError::UnsupportedFormat`] before reading anything else.
pub(crate) fn parse_versioned<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
    supported: u32,
) -> Result<T, StoreError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| StoreError::corrupt(what, e.to_string()))?;
    let version = value
        .get("formatVersion")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| StoreError::corrupt(what, "no formatVersion"))?;
    if version != u64::from(supported) {
        return Err(StoreError::UnsupportedFormat {
            what: what.to_owned(),
            version: u32::try_from(version).unwrap_or(u32::MAX),
            supported,
        });
    }
    serde_json::from_value(value).map_err(|e| StoreError::corrupt(what, e.to_string()))
}
