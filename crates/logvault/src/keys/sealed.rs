//! The local copy of a cluster's account key, sealed under the service key.
//!
//! So that a one-shot CLI goes on through a vault outage as a long-running process does (R-B6),
//! the key lifecycle keeps the last verified account key of each cluster on local disk, sealed
//! with AES-256-GCM under a purpose key derived from the service account's key, with the time it
//! was verified. It is deleted at revocation, like the hot cache (R-F3). It is never written in
//! plaintext.
//!
//! File `HOME/keys/<cluster>.aek` (format version 1): JSON `{version, account, verifiedAt,
//! sealed}` where `sealed` is base64 of `aead::seal(purpose, aad, aek)` and the associated data
//! is `logvault/aek-cache/v1/<account>`.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use logvault_crypto::{Aek, Key256, aead};
use serde::{Deserialize, Serialize};

use crate::EngineError;
use crate::fsutil::write_atomic;

const VERSION: u32 = 1;
/// The purpose label of the service-account subkey that seals local copies.
pub(crate) const PURPOSE: &str = "aek-cache";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SealedFile {
    version: u32,
    account: String,
    verified_at: DateTime<Utc>,
    sealed: String,
}

fn path(dir: &Path, cluster: &str) -> PathBuf {
    dir.join(format!("{cluster}.aek"))
}

fn aad(account: &str) -> Vec<u8> {
    format!("logvault/aek-cache/v{VERSION}/{account}").into_bytes()
}

fn error(path: &Path, reason: impl ToString) -> EngineError {
    EngineError::State {
        what: "sealed account key",
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Seals and stores `aek`.
pub(crate) fn store(
    dir: &Path,
    cluster: &str,
    account: &str,
    purpose: &Key256,
    aek: &Aek,
    verified_at: DateTime<Utc>,
) -> Result<(), EngineError> {
    let p = path(dir, cluster);
    let sealed =
        aead::seal_secret(purpose, &aad(account), &aek.to_secret()).map_err(|e| error(&p, e))?;
    let file = SealedFile {
        version: VERSION,
        account: account.to_owned(),
        verified_at,
        sealed: STANDARD.encode(sealed),
    };
    let bytes = serde_json::to_vec(&file).map_err(|e| error(&p, e))?;
    write_atomic(&p, &bytes).map_err(|e| error(&p, e))
}

/// The stored copy and when it was verified, if there is one.
pub(crate) fn load(
    dir: &Path,
    cluster: &str,
    account: &str,
    purpose: &Key256,
) -> Result<Option<(Aek, DateTime<Utc>)>, EngineError> {
    let p = path(dir, cluster);
    let bytes = match fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(error(&p, e)),
    };
    let file: SealedFile =
        serde_json::from_slice(&bytes).map_err(|e| error(&p, format!("corrupted: {e}")))?;
    if file.version != VERSION || file.account != account {
        return Err(error(
            &p,
            "not a sealed key of this account in format version 1",
        ));
    }
    let sealed = STANDARD
        .decode(file.sealed)
        .map_err(|e| error(&p, format!("corrupted: {e}")))?;
    let secret = aead::open_secret(purpose, &aad(account), &sealed, &p.display().to_string())
        .map_err(|e| error(&p, e))?;
    let aek = Aek::from_secret(&secret).map_err(|e| error(&p, e))?;
    Ok(Some((aek, file.verified_at)))
}

/// Deletes the stored copy (revocation).
pub(crate) fn delete(dir: &Path, cluster: &str) -> Result<(), EngineError> {
    let p = path(dir, cluster);
    match fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(error(&p, e)),
    }
}
