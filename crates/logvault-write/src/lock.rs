//! One writer per workspace log across processes: an exclusive lock on `<log dir>/LOCK`.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::WriteError;

/// How long a writer waits for another process to let go of a workspace's log.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(120);

/// Holds a workspace's log for this process; released when dropped.
#[derive(Debug)]
pub(crate) struct WorkspaceLock(File);

impl Drop for WorkspaceLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn open(dir: &Path, workspace: &str) -> Result<File, WriteError> {
    let busy = |e: std::io::Error| WriteError::Busy {
        workspace: workspace.to_owned(),
        reason: format!("cannot lock its log in {}: {e}", dir.display()),
    };
    std::fs::create_dir_all(dir).map_err(busy)?;
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))
        .map_err(busy)
}

/// Takes the lock, waiting (without blocking a runtime thread) up to `wait` for another process
/// to release it.
pub(crate) async fn lock(
    dir: &Path,
    workspace: &str,
    wait: Duration,
) -> Result<WorkspaceLock, WriteError> {
    let file = open(dir, workspace)?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(WorkspaceLock(file)),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                return Err(WriteError::Busy {
                    workspace: workspace.to_owned(),
                    reason: format!(
                        "another process is ingesting into it and has held its log for more \
                         than {} s ({e})",
                        wait.as_secs()
                    ),
                });
            }
        }
    }
}

/// Takes the lock if no other process holds it.
pub(crate) fn try_lock(dir: &Path, workspace: &str) -> Result<Option<WorkspaceLock>, WriteError> {
    let file = open(dir, workspace)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(WorkspaceLock(file))),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(WriteError::Busy {
            workspace: workspace.to_owned(),
            reason: format!("cannot lock its log in {}: {e}", dir.display()),
        }),
    }
}
