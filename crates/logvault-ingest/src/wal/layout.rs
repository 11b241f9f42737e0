//! Where the logs of a home's workspaces live, and the upgrade from the old shared layout.
//!
//! Each workspace has a log directory of its own (`<root>/<workspace>/`: log files, checkpoint,
//! and whatever the caller keeps beside them). Homes written before 2026-12 kept every
//! workspace's log files and one checkpoint directly in `<root>`, so a second workspace could
//! not open its log (the files named the first one). [`upgrade_shared_layout`] moves such files
//! into the directory of the workspace their header names.
//!
//! Sequence numbers were shared by all workspaces in the old layout, and a workspace's segments
//! record the sequence numbers of the log records they hold (replay skips what they list). So a
//! workspace's new log must never reuse a number the shared log gave out: every workspace
//! directory without a checkpoint gets one at the highest number the shared log used, and the
//! workspace that owns the remaining files gets the shared checkpoint with them.
//!
//! The steps are ordered so that a crash at any point is finished by the next call: checkpoints
//! are written first (atomically), then files are moved (renames), and the shared checkpoint is
//! removed last.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use logvault_core::NameKind;

use super::files::{io_err, list, read_checkpoint, sync_dir, write_checkpoint};
use super::format::{HeaderError, parse_file_header};
use crate::IngestError;

/// The name under which upgrade errors are reported (no single workspace is at fault).
const SHARED: &str = "(shared log directory)";

/// What [`upgrade_shared_layout`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayoutUpgrade {
    /// Log files moved, by the workspace they belong to.
    pub moved: BTreeMap<String, usize>,
    /// Workspace directories given a checkpoint so that their sequence numbers go on after the
    /// shared log's.
    pub floored: Vec<String>,
    /// The highest sequence number the shared log used.
    pub floor: u64,
}

impl LayoutUpgrade {
    /// Whether anything was changed.
    pub fn is_empty(&self) -> bool {
        self.moved.is_empty() && self.floored.is_empty()
    }
}

/// The log directory of `workspace` under `root`.
pub fn workspace_dir(root: &Path, workspace: &str) -> PathBuf {
    root.join(workspace)
}

/// Moves log files kept directly in `root` (the old shared layout) into the directory of the
/// workspace each belongs to, and makes sure no workspace reuses a sequence number they used.
/// Does nothing on a root in the current layout. The caller must hold off every writer of the
/// logs under `root` while this runs (the engine calls it once at open, under a lock).
///
/// # Errors
/// [`IngestError::WalIo`] if the directory cannot be read or written;
/// [`IngestError::WalCorrupt`] if a file in `root` is not a log file of this format.
pub fn upgrade_shared_layout(root: &Path) -> Result<LayoutUpgrade, IngestError> {
    let mut report = LayoutUpgrade::default();
    if !root.is_dir() {
        return Ok(report);
    }
    let shared_checkpoint = root.join("checkpoint");
    let files = list(root, SHARED)?;
    if files.is_empty() && !shared_checkpoint.exists() {
        return Ok(report);
    }
    let checkpoint = read_checkpoint(root, SHARED)?;

    // Whose files they are, and the highest sequence number they hold.
    let mut owners: Vec<(PathBuf, String)> = Vec::with_capacity(files.len());
    let mut floor = checkpoint;
    for (first, path) in &files {
        let bytes = fs::read(path).map_err(|e| io_err(SHARED, path, e))?;
        let header = match parse_file_header(&bytes) {
            Ok(h) => h,
            // A file cut before its header was complete holds no record: drop it.
            Err(HeaderError::Short) => {
                fs::remove_file(path).map_err(|e| io_err(SHARED, path, e))?;
                continue;
            }
            Err(HeaderError::Bad(reason)) => {
                return Err(super::files::corrupt(SHARED, path, 0, reason));
            }
        };
        if logvault_core::validate_name(NameKind::Workspace, &header.workspace).is_err() {
            return Err(super::files::corrupt(
                SHARED,
                path,
                0,
                format!("{:?} is not a workspace name", header.workspace),
            ));
        }
        let (last, _) = super::peek::scan_seqs(&bytes, header.len);
        floor = floor.max(first.saturating_sub(1)).max(last.unwrap_or(0));
        owners.push((path.clone(), header.workspace));
    }
    report.floor = floor;

    // 1. Every workspace directory that has no checkpoint yet starts after the shared log's
    //    numbers; the owners of files get the shared checkpoint, so that replay finds their
    //    records after it.
    let owner_names: BTreeMap<&str, ()> = owners.iter().map(|(_, w)| (w.as_str(), ())).collect();
    for name in owner_names.keys() {
        let dir = workspace_dir(root, name);
        fs::create_dir_all(&dir).map_err(|e| io_err(name, &dir, e))?;
        write_checkpoint(&dir, name, checkpoint)?;
    }
    for entry in fs::read_dir(root).map_err(|e| io_err(SHARED, root, e))? {
        let entry = entry.map_err(|e| io_err(SHARED, root, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let is_dir = entry
            .file_type()
            .map_err(|e| io_err(SHARED, &entry.path(), e))?;
        if !is_dir.is_dir() || owner_names.contains_key(name.as_str()) {
            continue;
        }
        if !entry.path().join("checkpoint").exists() {
            write_checkpoint(&entry.path(), &name, floor)?;
            report.floored.push(name);
        }
    }

    // 2. The files move to their owners' directories.
    for (path, owner) in &owners {
        let dir = workspace_dir(root, owner);
        let Some(file_name) = path.file_name() else {
            continue;
        };
        let to = dir.join(file_name);
        fs::rename(path, &to).map_err(|e| io_err(owner, &to, e))?;
        *report.moved.entry(owner.clone()).or_default() += 1;
    }
    for owner in owner_names.keys() {
        sync_dir(&workspace_dir(root, owner), owner)?;
    }

    // 3. The shared checkpoint goes last: while it is there, a rerun knows the old layout.
    match fs::remove_file(&shared_checkpoint) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(SHARED, &shared_checkpoint, e)),
    }
    sync_dir(root, SHARED)?;
    if !report.is_empty() {
        tracing::info!(
            root = %root.display(),
            moved = ?report.moved,
            floored = ?report.floored,
            floor,
            "moved write-ahead log files from the shared directory into each workspace's own"
        );
    }
    Ok(report)
}
