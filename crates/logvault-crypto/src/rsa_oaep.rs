//! RSA keys of the local vault: generation (2048, 3072 or 4096 bits), sealing of the private key
//! under a root key, and RSA-OAEP-256 wrapping (OAEP with SHA-256 and MGF1-SHA-256, empty label),
//! the algorithm Azure Key Vault names `RSA-OAEP-256`.
//!
//! The private key lives in an opaque [`RsaKey`] (zeroized on drop by the `rsa` crate, printed as
//! `REDACTED`); it leaves this module only sealed, as PKCS#8 DER under AES-256-GCM.

use std::fmt;

use rsa::PrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::rand_core::{TryCryptoRng, TryRng};
use rsa::sha2::Sha256;
use rsa::traits::PublicKeyParts;

use crate::secret::{Key256, Scratch, fill_random};
use crate::{CryptoError, SecretBytes};

/// The RSA modulus sizes a vault key may have.
pub const RSA_SIZES: [u32; 3] = [2048, 3072, 4096];

/// The operating system's random source, for the `rsa` crate.
struct OsRng;

impl TryRng for OsRng {
    type Error = CryptoError;

    fn try_next_u32(&mut self) -> Result<u32, CryptoError> {
        let mut b = [0u8; 4];
        fill_random(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, CryptoError> {
        let mut b = [0u8; 8];
        fill_random(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), CryptoError> {
        fill_random(dst)
    }
}

impl TryCryptoRng for OsRng {}

/// An RSA private key of a vault. Not `Clone`; `Debug` prints `REDACTED`.
pub struct RsaKey(PrivateKey);

impl RsaKey {
    /// A fresh key of `bits` bits (2048, 3072 or 4096) with public exponent 65537.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] for another size; [`CryptoError::Random`] if the random source
    /// fails.
    pub fn generate(bits: u32) -> Result<Self, CryptoError> {
        if !RSA_SIZES.contains(&bits) {
            return Err(CryptoError::InvalidKey {
                reason: format!("rsa key size {bits} is not one of 2048, 3072, 4096"),
            });
        }
        let bits = usize::try_from(bits).map_err(|_| CryptoError::InvalidKey {
            reason: "rsa key size does not fit".into(),
        })?;
        PrivateKey::new(&mut OsRng, bits)
            .map(Self)
            .map_err(|e| CryptoError::InvalidKey {
                reason: format!("rsa key generation failed: {e}"),
            })
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> u32 {
        u32::try_from(self.0.size() * 8).unwrap_or(u32::MAX)
    }

    /// The largest plaintext RSA-OAEP-256 can wrap with this key, in bytes (`k - 2*32 - 2`).
    pub fn max_wrap_len(&self) -> usize {
        self.0.size().saturating_sub(2 * 32 + 2)
    }

    /// The public half: the modulus `n` and the public exponent `e`, big-endian without leading
    /// zeros (as a JSON Web Key carries them, base64url-encoded). Public, so plain bytes.
    pub fn public_parts(&self) -> (Vec<u8>, Vec<u8>) {
        (self.0.n_bytes().into_vec(), self.0.e_bytes().into_vec())
    }

    /// Whether the private key (as PKCS#8 DER, raw, hex or base64) occurs anywhere in
    /// `haystack`: a leak check, see [`SecretBytes::occurs_in`]. `false` if it cannot be encoded.
    pub fn occurs_in(&self, haystack: &[u8]) -> bool {
        self.0
            .to_pkcs8_der()
            .is_ok_and(|der| crate::secret::leaks(der.as_bytes(), haystack))
    }

    /// Seals the private key (PKCS#8 DER) under `under`, bound to `aad`.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if the key cannot be encoded; as [`crate::aead::seal`].
    pub fn seal(&self, under: &Key256, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let der = self.0.to_pkcs8_der().map_err(|e| CryptoError::InvalidKey {
            reason: format!("rsa key cannot be encoded: {e}"),
        })?;
        crate::aead::seal(under, aad, der.as_bytes())
    }

    /// Opens a key sealed by [`RsaKey::seal`].
    ///
    /// # Errors
    /// [`CryptoError::Integrity`] naming `context` if the blob does not open;
    /// [`CryptoError::InvalidKey`] if what it holds is not an RSA private key.
    pub fn open(
        under: &Key256,
        aad: &[u8],
        blob: &[u8],
        context: &str,
    ) -> Result<Self, CryptoError> {
        let der = Scratch::new(crate::aead::open(under, aad, blob, context)?);
        PrivateKey::from_pkcs8_der(&der)
            .map(Self)
            .map_err(|e| CryptoError::InvalidKey {
                reason: format!("{context}: not an rsa private key: {e}"),
            })
    }

    /// Wraps `plaintext` with RSA-OAEP-256 under the public half of the key.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if the plaintext is empty or longer than
    /// [`RsaKey::max_wrap_len`].
    pub fn wrap(&self, plaintext: &SecretBytes) -> Result<Vec<u8>, CryptoError> {
        if plaintext.is_empty() || plaintext.len() > self.max_wrap_len() {
            return Err(CryptoError::InvalidKey {
                reason: format!(
                    "rsa-oaep-256 with a {}-bit key wraps 1 to {} bytes, got {}",
                    self.bits(),
                    self.max_wrap_len(),
                    plaintext.len()
                ),
            });
        }
        self.0
            .as_public_key()
            .oaep_encrypt_with_rng::<Sha256, _>(&mut OsRng, plaintext.expose())
            .map_err(|e| CryptoError::InvalidKey {
                reason: format!("rsa-oaep-256 wrap failed: {e}"),
            })
    }

    /// Unwraps a blob made by [`RsaKey::wrap`].
    ///
    /// # Errors
    /// [`CryptoError::Integrity`] naming `context` if the blob was not wrapped by this key or
    /// was altered.
    pub fn unwrap(&self, blob: &[u8], context: &str) -> Result<SecretBytes, CryptoError> {
        self.0
            .oaep_decrypt_with_rng::<Sha256, _>(&mut OsRng, blob)
            .map(SecretBytes::new)
            .map_err(|_| CryptoError::Integrity {
                context: context.to_owned(),
            })
    }
}

impl fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaKey({} bits, REDACTED)", self.bits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Aek;

    #[test]
    fn wraps_unwraps_and_survives_sealing() {
        let root = Key256::generate().unwrap();
        let key = RsaKey::generate(2048).unwrap();
        assert_eq!(key.bits(), 2048);
        assert_eq!(key.max_wrap_len(), 190);
        let aek = Aek::generate().unwrap();
        let wrapped = key.wrap(&aek.to_secret()).unwrap();
        assert_eq!(wrapped.len(), 256);

        let sealed = key.seal(&root, b"v/k/1").unwrap();
        let reopened = RsaKey::open(&root, b"v/k/1", &sealed, "v/k/1").unwrap();
        let back = Aek::from_secret(&reopened.unwrap(&wrapped, "t").unwrap()).unwrap();
        assert_eq!(back.fingerprint(), aek.fingerprint());

        assert!(RsaKey::open(&root, b"v/k/2", &sealed, "v/k/2").is_err());
        assert!(!key.occurs_in(&sealed));
        let der = key.0.to_pkcs8_der().unwrap();
        assert!(key.occurs_in(der.as_bytes()));
        let mut bad = wrapped.clone();
        bad[7] ^= 1;
        assert!(matches!(
            key.unwrap(&bad, "blob x"),
            Err(CryptoError::Integrity { context }) if context == "blob x"
        ));
        assert!(format!("{key:?}").contains("REDACTED"));
    }

    #[test]
    fn the_public_half_is_the_modulus_and_exponent() {
        let key = RsaKey::generate(2048).unwrap();
        let (n, e) = key.public_parts();
        assert_eq!(n.len(), 256);
        assert!(n[0] & 0x80 != 0, "a 2048-bit modulus has its top bit set");
        assert_eq!(e, vec![1, 0, 1]);
        let other = RsaKey::generate(2048).unwrap();
        assert_ne!(other.public_parts().0, n);
    }

    #[test]
    fn refuses_bad_sizes_and_lengths() {
        assert!(RsaKey::generate(1024).is_err());
        assert!(RsaKey::generate(2047).is_err());
        let key = RsaKey::generate(2048).unwrap();
        let mut big = crate::secret::Scratch::new(vec![1u8; 191]);
        let too_long = SecretBytes::new(std::mem::take(&mut *big));
        assert!(key.wrap(&too_long).is_err());
        assert!(key.wrap(&SecretBytes::new(Vec::new())).is_err());
    }
}
