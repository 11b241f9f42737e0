//! Secret types: key bytes that zeroize on drop and never print.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::CryptoError;

/// Length in bytes of every symmetric key logvault uses (AES-256, ChaCha20).
pub const KEY_LEN: usize = 32;

/// A 256-bit symmetric key. Zeroized on drop; `Debug` prints `REDACTED`; not `Clone` (share it
/// behind an `Arc`), so that no stray copy outlives its owner.
#[derive(Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Key256(Box<[u8; KEY_LEN]>);

impl Key256 {
    /// A fresh key from the operating system's random source.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if the random source fails.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Box::new([0u8; KEY_LEN]);
        fill_random(key.as_mut_slice())?;
        Ok(Self(key))
    }

    /// A key from bytes produced inside this crate (unwrapping, derivation).
    pub(crate) fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != KEY_LEN {
            return Err(CryptoError::InvalidKey {
                reason: format!("expected {KEY_LEN} bytes, got {}", bytes.len()),
            });
        }
        let mut key = Box::new([0u8; KEY_LEN]);
        key.copy_from_slice(bytes);
        Ok(Self(key))
    }

    pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A copy of the key bytes for an API that insists on owning them (parquet's encryption
    /// properties). Crate-private: no other crate can obtain raw bytes.
    pub(crate) fn to_owned_bytes(&self) -> Vec<u8> {
        self.0.to_vec()
    }

    /// A short, non-secret fingerprint of the key (first 8 bytes of SHA-256 over a domain tag and
    /// the key), for telling keys apart in tests and diagnostics without revealing them.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"logvault key fingerprint v1");
        h.update(self.0.as_slice());
        let digest = h.finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for Key256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key256(REDACTED)")
    }
}

/// Secret bytes of any length (an unwrapped account key on its way somewhere). Zeroized on
/// drop; `Debug` prints `REDACTED`.
#[derive(Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(REDACTED)")
    }
}

impl From<Key256> for SecretBytes {
    fn from(key: Key256) -> Self {
        Self(key.expose().to_vec())
    }
}

impl TryFrom<&SecretBytes> for Key256 {
    type Error = CryptoError;
    fn try_from(secret: &SecretBytes) -> Result<Self, CryptoError> {
        Key256::from_slice(secret.expose())
    }
}

/// Fills `buf` from the operating system's random source.
///
/// # Errors
/// [`CryptoError::Random`] if the source fails.
pub fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|e| CryptoError::Random {
        reason: e.to_string(),
    })
}

/// A scratch buffer for secrets that zeroizes when dropped.
pub(crate) type Scratch = Zeroizing<Vec<u8>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_bytes() {
        let key = Key256::generate().unwrap();
        let shown = format!(
            "{key:?} {:?}",
            SecretBytes::from(Key256::generate().unwrap())
        );
        assert_eq!(shown, "Key256(REDACTED) SecretBytes(REDACTED)");
        let hex: String = key.expose().iter().map(|b| format!("{b:02x}")).collect();
        assert!(!format!("{key:?}").contains(&hex[..8]));
    }

    #[test]
    fn generated_keys_differ_and_fingerprints_are_stable() {
        let a = Key256::generate().unwrap();
        let b = Key256::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.fingerprint(), a.fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 16);
    }

    #[test]
    fn from_slice_checks_length() {
        assert!(Key256::from_slice(&[0u8; 31]).is_err());
        assert!(Key256::from_slice(&[0u8; 32]).is_ok());
    }
}
