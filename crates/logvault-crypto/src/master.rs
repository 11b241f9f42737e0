//! Root keys kept in files: the local vault's master key.
//!
//! A root key has to be stored somewhere in the clear; for the embedded default that is a file
//! readable only by its owner (mode 0600), as with TiKV's file master key. Everything else is
//! stored wrapped, directly or indirectly, under such a root. Real deployments put customer keys
//! in a real vault instead.
//!
//! File format v1: `"LVMK" | 0x01 | key (32) | first 8 bytes of SHA-256("LVMK" | 0x01 | key)`.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::CryptoError;
use crate::secret::{KEY_LEN, Key256, Scratch};

const MAGIC: &[u8; 4] = b"LVMK";
const VERSION: u8 = 1;
const FILE_LEN: usize = 5 + KEY_LEN + 8;

fn checksum(prefix_and_key: &[u8]) -> [u8; 8] {
    let digest = Sha256::digest(prefix_and_key);
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// Loads the root key at `path`, creating it (mode 0600) if the file does not exist.
///
/// Creation uses `create_new`, so two processes racing to create it end up with the same key.
///
/// # Errors
/// [`CryptoError::MasterKey`] if the file cannot be read or written, has loose permissions, or is
/// corrupted or truncated. A damaged file is reported, never replaced.
pub fn load_or_create_root_key(path: &Path) -> Result<Key256, CryptoError> {
    match load_root_key(path) {
        Err(CryptoError::MasterKey { missing: true, .. }) => {}
        other => return other,
    }
    let key = Key256::generate()?;
    let mut body = Scratch::new(Vec::with_capacity(FILE_LEN));
    body.extend_from_slice(MAGIC);
    body.push(VERSION);
    body.extend_from_slice(key.expose());
    let sum = checksum(&body);
    body.extend_from_slice(&sum);
    let fail = |e: std::io::Error| CryptoError::MasterKey {
        path: path.display().to_string(),
        reason: e.to_string(),
        missing: false,
    };
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(mut file) => {
            file.write_all(&body).map_err(fail)?;
            file.sync_all().map_err(fail)?;
            Ok(key)
        }
        // Someone else created it first: use theirs.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => load_root_key(path),
        Err(e) => Err(fail(e)),
    }
}

/// Loads the root key at `path`.
///
/// # Errors
/// [`CryptoError::MasterKey`] (with `missing` set when the file does not exist).
pub fn load_root_key(path: &Path) -> Result<Key256, CryptoError> {
    let fail = |reason: String, missing: bool| CryptoError::MasterKey {
        path: path.display().to_string(),
        reason,
        missing,
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(fail("not found".into(), true)),
        Err(e) => return Err(fail(e.to_string(), false)),
    };
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(fail(
            format!(
                "permissions {:o} are too open; expected 600",
                meta.permissions().mode() & 0o777
            ),
            false,
        ));
    }
    let body = Scratch::new(fs::read(path).map_err(|e| fail(e.to_string(), false))?);
    if body.len() != FILE_LEN {
        return Err(fail(
            format!("corrupted: {} bytes, expected {FILE_LEN}", body.len()),
            false,
        ));
    }
    if &body[..4] != MAGIC || body[4] != VERSION {
        return Err(fail(
            "corrupted: not a logvault root key file v1".into(),
            false,
        ));
    }
    if checksum(&body[..5 + KEY_LEN]) != body[5 + KEY_LEN..] {
        return Err(fail("corrupted: checksum mismatch".into(), false));
    }
    Key256::from_slice(&body[5..5 + KEY_LEN])
}

/// Seals a key under another (a vault's key material under its master key).
///
/// # Errors
/// As [`crate::aead::seal`].
pub fn seal_key(under: &Key256, aad: &[u8], key: &Key256) -> Result<Vec<u8>, CryptoError> {
    crate::aead::seal(under, aad, key.expose())
}

/// Opens a key sealed by [`seal_key`].
///
/// # Errors
/// [`CryptoError::Integrity`] naming `context` if the blob does not open.
pub fn open_key(
    under: &Key256,
    aad: &[u8],
    blob: &[u8],
    context: &str,
) -> Result<Key256, CryptoError> {
    let bytes = Scratch::new(crate::aead::open(under, aad, blob, context)?);
    Key256::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_then_loads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let a = load_or_create_root_key(&path).unwrap();
        let b = load_or_create_root_key(&path).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn corrupted_truncated_or_open_files_are_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        load_or_create_root_key(&path).unwrap();
        let good = fs::read(&path).unwrap();

        let mut bad = good.clone();
        bad[10] ^= 1;
        fs::write(&path, &bad).unwrap();
        let err = load_or_create_root_key(&path).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
        assert_eq!(
            fs::read(&path).unwrap(),
            bad,
            "a damaged file must not be replaced"
        );

        fs::write(&path, &good[..20]).unwrap();
        assert!(
            load_root_key(&path)
                .unwrap_err()
                .to_string()
                .contains("corrupted")
        );

        fs::write(&path, &good).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            load_root_key(&path)
                .unwrap_err()
                .to_string()
                .contains("too open")
        );
    }

    #[test]
    fn sealed_keys_open_only_under_their_root_and_context() {
        let root = Key256::generate().unwrap();
        let key = Key256::generate().unwrap();
        let blob = seal_key(&root, b"vault/k/1", &key).unwrap();
        assert_eq!(
            open_key(&root, b"vault/k/1", &blob, "k")
                .unwrap()
                .fingerprint(),
            key.fingerprint()
        );
        assert!(open_key(&root, b"vault/k/2", &blob, "k").is_err());
    }
}
