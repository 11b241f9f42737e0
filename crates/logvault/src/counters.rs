//! Per-workspace counters kept beside its write-ahead log: rows dropped (R-E2), and why.
//!
//! `HOME/wal/<workspace>/counters.json` (format version 1), updated while the workspace's log
//! lock is held, replaced atomically.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::EngineError;
use crate::fsutil::write_atomic;

/// The counters of one workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceCounters {
    /// Format version.
    #[serde(default)]
    pub version: u32,
    /// Rows dropped since the workspace was created.
    pub dropped_rows: u64,
    /// Why rows were last dropped.
    pub last_drop_reason: Option<String>,
}

fn error(path: &Path, reason: impl ToString) -> EngineError {
    EngineError::State {
        what: "workspace counters",
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Reads the counters of the workspace whose log directory is `dir`.
pub(crate) fn load(dir: &Path) -> Result<WorkspaceCounters, EngineError> {
    let path = dir.join("counters.json");
    match fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| error(&path, format!("corrupted: {e}")))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(WorkspaceCounters::default()),
        Err(e) => Err(error(&path, e)),
    }
}

/// Adds `rows` dropped rows, for `reason`.
pub(crate) fn add_dropped(dir: &Path, rows: u64, reason: &str) -> Result<(), EngineError> {
    let path = dir.join("counters.json");
    let mut counters = load(dir)?;
    counters.version = 1;
    counters.dropped_rows += rows;
    counters.last_drop_reason = Some(reason.to_owned());
    let bytes = serde_json::to_vec_pretty(&counters).map_err(|e| error(&path, e))?;
    write_atomic(&path, &bytes).map_err(|e| error(&path, e))
}
