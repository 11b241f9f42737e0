//! The persisted state of each cluster's key, as the key lifecycle last saw it.
//!
//! One small JSON file per cluster under `HOME/keys/` (format version 1), replaced atomically.
//! It is derived state: a lost update between two processes is repaired by the next check.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::EngineError;
use crate::fsutil::write_atomic;

/// Version of the key state files.
pub(crate) const KEY_STATE_VERSION: u32 = 1;

/// Where a cluster's key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyState {
    /// The key unwrapped at the last check: data is readable and writable.
    Active,
    /// The vault could not be reached at the last check; the cached account key stays in use
    /// for the outage (R-B6).
    Degraded,
    /// The key is revoked (disabled, deleted, permission removed, identity `None`): no
    /// ingestion, no queries, the hot cache purged (R-G2, R-F3).
    Revoked,
    /// The cluster has no customer key: its account key is wrapped by the service key.
    None,
}

/// What the lifecycle knows about one cluster's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyStatus {
    /// Format version.
    #[serde(default)]
    pub version: u32,
    /// The cluster.
    pub cluster: String,
    /// The state.
    pub key_state: KeyState,
    /// Since when it is in that state.
    pub since: Option<DateTime<Utc>>,
    /// Why (for degraded and revoked).
    pub reason: Option<String>,
    /// The customer key, `vault/key`.
    pub key: Option<String>,
    /// The key version that wraps the account key now.
    pub key_version_in_use: Option<String>,
    /// When the vault last unwrapped the account key.
    pub last_unwrap: Option<DateTime<Utc>>,
    /// When the next check is due.
    pub next_check: Option<DateTime<Utc>>,
    /// Successful unwraps.
    #[serde(default)]
    pub unwraps: u64,
    /// Failed checks.
    #[serde(default)]
    pub failures: u64,
    /// Hot-cache purges done at revocation.
    #[serde(default)]
    pub purges: u64,
    /// Re-wraps done for autorotation.
    #[serde(default)]
    pub rotations: u64,
}

impl KeyStatus {
    pub(crate) fn new(cluster: &str) -> Self {
        Self {
            version: KEY_STATE_VERSION,
            cluster: cluster.to_owned(),
            key_state: KeyState::None,
            since: None,
            reason: None,
            key: None,
            key_version_in_use: None,
            last_unwrap: None,
            next_check: None,
            unwraps: 0,
            failures: 0,
            purges: 0,
            rotations: 0,
        }
    }

    /// Moves to `state`, keeping `since` when the state does not change.
    pub(crate) fn enter(&mut self, state: KeyState, reason: Option<String>, now: DateTime<Utc>) {
        if self.key_state != state || self.since.is_none() {
            self.since = Some(now);
        }
        self.key_state = state;
        self.reason = reason;
    }
}

pub(crate) fn state_path(dir: &Path, cluster: &str) -> PathBuf {
    dir.join(format!("{cluster}.json"))
}

fn state_error(path: &Path, reason: impl ToString) -> EngineError {
    EngineError::State {
        what: "key state",
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Reads a cluster's key state; a missing file is a fresh state.
pub(crate) fn load(dir: &Path, cluster: &str) -> Result<KeyStatus, EngineError> {
    let path = state_path(dir, cluster);
    match fs::read(&path) {
        Ok(bytes) => {
            let status: KeyStatus = serde_json::from_slice(&bytes)
                .map_err(|e| state_error(&path, format!("corrupted: {e}")))?;
            if status.version > KEY_STATE_VERSION {
                return Err(state_error(
                    &path,
                    format!(
                        "format version {} is newer than this logvault",
                        status.version
                    ),
                ));
            }
            Ok(status)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(KeyStatus::new(cluster)),
        Err(e) => Err(state_error(&path, e)),
    }
}

/// Writes a cluster's key state atomically.
pub(crate) fn save(dir: &Path, status: &KeyStatus) -> Result<(), EngineError> {
    let path = state_path(dir, &status.cluster);
    write_atomic(
        &path,
        &serde_json::to_vec_pretty(status).map_err(|e| state_error(&path, e))?,
    )
    .map_err(|e| state_error(&path, e))
}
