//! The account and data keys of the three-level hierarchy (KEK -> AEK -> DEK).
//!
//! - The KEK is the customer's key (or the service key); it never leaves its vault.
//! - The [`Aek`] is one random 256-bit key per storage account, persisted only wrapped by a KEK.
//! - A [`Dek`] is derived per segment from the AEK with HKDF-SHA256 over the segment id, so
//!   nothing is stored for it and two segments never share a key.

use std::fmt;

use hkdf::Hkdf;
use sha2::Sha256;

use crate::secret::Key256;
use crate::{CryptoError, SecretBytes};

/// HKDF salt for data keys; changing it changes every DEK, so it carries the format version.
const DEK_SALT: &[u8] = b"logvault/dek/v1";
/// HKDF salt for the keys of a segment's own blocks beside its Parquet data (the needle index).
const SEGMENT_BLOCK_SALT: &[u8] = b"logvault/segment-block/v1";

/// An account encryption key: one per storage account.
pub struct Aek(Key256);

impl Aek {
    /// A fresh random account key.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if the random source fails.
    pub fn generate() -> Result<Self, CryptoError> {
        Key256::generate().map(Self)
    }

    /// The account key as secret bytes, to hand to a vault for wrapping.
    pub fn to_secret(&self) -> SecretBytes {
        SecretBytes::new(self.0.expose().to_vec())
    }

    /// Rebuilds an account key from the secret bytes a vault unwrapped.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if the bytes are not 32 long.
    pub fn from_secret(secret: &SecretBytes) -> Result<Self, CryptoError> {
        Key256::try_from(secret).map(Self)
    }

    /// Derives the data key of one segment.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] never in practice (HKDF-SHA256 can always expand 32 bytes).
    pub fn derive_dek(&self, segment_id: &str) -> Result<Dek, CryptoError> {
        self.derive(DEK_SALT, segment_id.as_bytes()).map(Dek)
    }

    /// Derives the key of one segment's blocks that Parquet does not encrypt for it (the needle
    /// index written beside its row groups): separate from the segment's DEK, which Parquet
    /// holds, and from every other segment's.
    ///
    /// # Errors
    /// As [`Self::derive_dek`].
    pub fn derive_segment_block_key(&self, segment_id: &str) -> Result<Key256, CryptoError> {
        self.derive(SEGMENT_BLOCK_SALT, segment_id.as_bytes())
    }

    /// Derives a subkey for another purpose (write-ahead log, catalog), separated by `label`.
    ///
    /// # Errors
    /// As [`Self::derive_dek`].
    pub fn derive_purpose_key(&self, label: &str) -> Result<Key256, CryptoError> {
        self.derive(b"logvault/purpose/v1", label.as_bytes())
    }

    fn derive(&self, salt: &[u8], info: &[u8]) -> Result<Key256, CryptoError> {
        let hk = Hkdf::<Sha256>::new(Some(salt), self.0.expose());
        let mut okm = crate::secret::Scratch::new(vec![0u8; crate::KEY_LEN]);
        hk.expand(info, &mut okm)
            .map_err(|_| CryptoError::InvalidKey {
                reason: "hkdf expand failed".into(),
            })?;
        Key256::from_slice(&okm)
    }

    /// A non-secret fingerprint, to tell account keys apart.
    pub fn fingerprint(&self) -> String {
        self.0.fingerprint()
    }
}

impl fmt::Debug for Aek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Aek(REDACTED)")
    }
}

/// The data key of one segment.
pub struct Dek(pub(crate) Key256);

impl Dek {
    /// A non-secret fingerprint, to tell data keys apart.
    pub fn fingerprint(&self) -> String {
        self.0.fingerprint()
    }

    /// Whether the key's bytes occur in `haystack` (raw, hex or base64): a leak check, see
    /// [`Key256::occurs_in`].
    pub fn occurs_in(&self, haystack: &[u8]) -> bool {
        self.0.occurs_in(haystack)
    }
}

impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dek(REDACTED)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deks_are_deterministic_per_segment_and_distinct_across() {
        let aek = Aek::generate().unwrap();
        let a1 = aek.derive_dek("seg-a").unwrap();
        let a2 = aek.derive_dek("seg-a").unwrap();
        let b = aek.derive_dek("seg-b").unwrap();
        assert_eq!(a1.fingerprint(), a2.fingerprint());
        assert_ne!(a1.fingerprint(), b.fingerprint());
        let other = Aek::generate().unwrap().derive_dek("seg-a").unwrap();
        assert_ne!(a1.fingerprint(), other.fingerprint());
    }

    #[test]
    fn segment_block_keys_are_per_segment_and_not_the_data_key() {
        let aek = Aek::generate().unwrap();
        let block = aek.derive_segment_block_key("seg-a").unwrap();
        assert_eq!(
            block.fingerprint(),
            aek.derive_segment_block_key("seg-a").unwrap().fingerprint()
        );
        assert_ne!(
            block.fingerprint(),
            aek.derive_segment_block_key("seg-b").unwrap().fingerprint()
        );
        assert_ne!(
            block.fingerprint(),
            aek.derive_dek("seg-a").unwrap().fingerprint()
        );
    }

    #[test]
    fn aek_survives_secret_round_trip() {
        let aek = Aek::generate().unwrap();
        let back = Aek::from_secret(&aek.to_secret()).unwrap();
        assert_eq!(aek.fingerprint(), back.fingerprint());
        assert_eq!(format!("{back:?}"), "Aek(REDACTED)");
    }

    #[test]
    fn purpose_keys_are_separated_from_deks() {
        let aek = Aek::generate().unwrap();
        assert_ne!(
            aek.derive_purpose_key("wal").unwrap().fingerprint(),
            aek.derive_dek("wal").unwrap().fingerprint()
        );
    }
}
