//! The audit log (R-A6): every get, wrap and unwrap a vault receives, with its outcome.
//!
//! One append-only file per vault, `vaults/NAME/audit.jsonl`, one JSON object per line. Each
//! entry is written with a single `write` under an exclusive lock on the file and synced, so
//! concurrent callers (threads or processes) never interleave lines. Entries never hold key
//! material: only names, versions, the principal and the outcome.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::local::LocalVault;
use crate::{PrincipalId, VaultError, VaultErrorKind};

/// Which trait call an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditOperation {
    /// `vault_properties`.
    #[serde(rename = "getVault")]
    GetVault,
    /// `get_key`.
    #[serde(rename = "get")]
    Get,
    /// `wrap_key`.
    #[serde(rename = "wrapKey")]
    WrapKey,
    /// `unwrap_key`.
    #[serde(rename = "unwrapKey")]
    UnwrapKey,
}

/// Whether a call succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    /// The call succeeded.
    Success,
    /// The call failed; the entry says why.
    Failure,
}

/// One audited call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// When the call was made (by the vault's clock).
    pub time: DateTime<Utc>,
    /// On whose behalf.
    pub principal: String,
    /// Which call.
    pub operation: AuditOperation,
    /// The vault.
    pub vault: String,
    /// The key (empty for `getVault`).
    pub key: String,
    /// The version used, or the one asked for (`latest` when none was given and the call failed
    /// before resolving it).
    pub version: String,
    /// Success or failure.
    pub outcome: AuditOutcome,
    /// The kind of failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<VaultErrorKind>,
    /// The failure's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AuditEntry {
    /// An entry for a call by `principal` on `vault`/`key`, with the result's outcome.
    pub(crate) fn new<T>(
        time: DateTime<Utc>,
        principal: &PrincipalId,
        operation: AuditOperation,
        target: (&str, &str, &str),
        result: &Result<T, VaultError>,
    ) -> Self {
        let (vault, key, version) = target;
        let (outcome, error_kind, error) = match result {
            Ok(_) => (AuditOutcome::Success, None, None),
            Err(e) => (AuditOutcome::Failure, Some(e.kind()), Some(e.to_string())),
        };
        Self {
            time,
            principal: principal.0.clone(),
            operation,
            vault: vault.to_owned(),
            key: key.to_owned(),
            version: version.to_owned(),
            outcome,
            error_kind,
            error,
        }
    }
}

/// Appends `entry` to the log at `path`.
pub(crate) fn append(path: &Path, entry: &AuditEntry) -> Result<(), VaultError> {
    let fail = |reason: String| VaultError::Internal {
        vault: entry.vault.clone(),
        reason: format!("audit log {}: {reason}", path.display()),
    };
    let mut line = serde_json::to_vec(entry).map_err(|e| fail(e.to_string()))?;
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| fail(e.to_string()))?;
    file.lock().map_err(|e| fail(format!("cannot lock: {e}")))?;
    file.write_all(&line).map_err(|e| fail(e.to_string()))?;
    file.sync_data().map_err(|e| fail(e.to_string()))
}

/// Reads the log at `path` (empty if it does not exist yet).
pub(crate) fn read(path: &Path, vault: &str) -> Result<Vec<AuditEntry>, VaultError> {
    let fail = |reason: String| VaultError::Internal {
        vault: vault.to_owned(),
        reason: format!("audit log {}: {reason}", path.display()),
    };
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(fail(e.to_string())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| fail(format!("line {} is corrupted: {e}", i + 1)))
        })
        .collect()
}

impl LocalVault {
    /// The audit log of `vault`, oldest entry first.
    ///
    /// # Errors
    /// [`VaultError::VaultNotFound`]; [`VaultError::Internal`] naming the file and line if the
    /// log is damaged.
    pub fn audit_log(&self, vault: &str) -> Result<Vec<AuditEntry>, VaultError> {
        self.load(vault)?;
        read(&self.paths(vault)?.audit, vault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_back_and_reports_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        assert!(read(&path, "v").unwrap().is_empty());
        let p = PrincipalId("p1".into());
        let ok: Result<(), VaultError> = Ok(());
        let bad: Result<(), VaultError> = Err(VaultError::Forbidden {
            vault: "v".into(),
            principal: "p1".into(),
            permission: "unwrapKey".into(),
        });
        let t = Utc::now();
        append(
            &path,
            &AuditEntry::new(t, &p, AuditOperation::WrapKey, ("v", "k", "1"), &ok),
        )
        .unwrap();
        append(
            &path,
            &AuditEntry::new(t, &p, AuditOperation::UnwrapKey, ("v", "k", "1"), &bad),
        )
        .unwrap();
        let log = read(&path, "v").unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].outcome, AuditOutcome::Success);
        assert_eq!(log[1].error_kind, Some(VaultErrorKind::Forbidden));
        let json = serde_json::to_string(&log[1]).unwrap();
        assert!(json.contains("\"operation\":\"unwrapKey\""), "{json}");
        assert!(json.contains("\"errorKind\":\"forbidden\""), "{json}");

        let mut text = fs::read_to_string(&path).unwrap();
        text.truncate(text.len() - 10);
        fs::write(&path, text).unwrap();
        let err = read(&path, "v").unwrap_err();
        assert_eq!(err.kind(), VaultErrorKind::Internal);
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
