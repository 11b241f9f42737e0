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

    /// Whether the key's bytes occur anywhere in `haystack` (see [`SecretBytes::occurs_in`]).
    pub fn occurs_in(&self, haystack: &[u8]) -> bool {
        leaks(self.0.as_slice(), haystack)
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

    /// Secret bytes a client sent as base64url (padded or not): the plaintext of a Key Vault
    /// `wrapkey` request. Decoded here, so that the bytes live in this type from the start.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if `text` is not base64url or decodes to nothing.
    pub fn from_base64url(text: &str) -> Result<Self, CryptoError> {
        use base64::Engine as _;
        use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
        const LENIENT: GeneralPurpose = GeneralPurpose::new(
            &base64::alphabet::URL_SAFE,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let mut bytes =
            Scratch::new(
                LENIENT
                    .decode(text.trim())
                    .map_err(|e| CryptoError::InvalidKey {
                        reason: format!("the value is not base64url: {e}"),
                    })?,
            );
        if bytes.is_empty() {
            return Err(CryptoError::InvalidKey {
                reason: "the value is empty".into(),
            });
        }
        Ok(Self(std::mem::take(&mut *bytes)))
    }

    /// The bytes as base64url without padding: the answer to a Key Vault `unwrapkey` request,
    /// the one place secret bytes leave as text (the caller asked for them, over TLS).
    pub fn to_base64url(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.0)
    }

    /// The length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether these secret bytes occur anywhere in `haystack`: raw, as hex (either case), or as
    /// base64 at any alignment within a longer base64 text (standard or URL-safe alphabet). A leak
    /// check for files, logs and output: it answers one bit about a buffer the caller already
    /// holds and never reveals the bytes.
    pub fn occurs_in(&self, haystack: &[u8]) -> bool {
        leaks(&self.0, haystack)
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

/// Whether `secret` occurs in `haystack` raw, hex-encoded or base64-encoded.
pub(crate) fn leaks(secret: &[u8], haystack: &[u8]) -> bool {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
    }
    if secret.is_empty() {
        return false;
    }
    if contains(haystack, secret) {
        return true;
    }
    let lower = Zeroizing::new(hex::encode(secret));
    let upper = Zeroizing::new(lower.to_ascii_uppercase());
    if contains(haystack, lower.as_bytes()) || contains(haystack, upper.as_bytes()) {
        return true;
    }
    // Embedded in a longer base64 text, the secret's bytes starting at offset `skip` (0, 1 or 2)
    // are aligned to a 3-byte group for one of the three skips; the groups fully inside the
    // secret always encode to the same characters, whatever surrounds them.
    for skip in 0..3.min(secret.len()) {
        let rest = &secret[skip..];
        let whole = rest.len() - rest.len() % 3;
        if whole < 3 {
            continue;
        }
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let text = Zeroizing::new(engine.encode(&rest[..whole]));
            if contains(haystack, text.as_bytes()) {
                return true;
            }
        }
    }
    false
}

/// A scratch buffer for secrets that zeroizes when dropped.
pub(crate) type Scratch = Zeroizing<Vec<u8>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_in_and_out() {
        let s = SecretBytes::from_base64url("-_8B").unwrap();
        assert_eq!(s.expose(), &[0xfb, 0xff, 0x01]);
        assert_eq!(s.to_base64url(), "-_8B");
        assert_eq!(SecretBytes::from_base64url("AQ==").unwrap().expose(), &[1]);
        assert!(SecretBytes::from_base64url("A+/=").is_err());
        assert!(SecretBytes::from_base64url("").is_err());
    }

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
    fn occurs_in_finds_raw_hex_and_base64_leaks_only() {
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD;
        let key = Key256::generate().unwrap();
        let raw = key.expose().to_vec();
        let mut file = b"header ".to_vec();
        assert!(!key.occurs_in(&file));
        file.extend_from_slice(&raw);
        assert!(key.occurs_in(&file));
        assert!(key.occurs_in(hex::encode_upper(&raw).as_bytes()));
        // Base64 of the key inside a longer blob, at each alignment.
        for prefix in 0..3 {
            let mut blob = vec![7u8; prefix];
            blob.extend_from_slice(&raw);
            blob.extend_from_slice(b"tail");
            let text = format!("{{\"value\":\"{}\"}}", STANDARD.encode(&blob));
            assert!(key.occurs_in(text.as_bytes()), "prefix {prefix}");
        }
        // One flipped byte is not the key.
        let mut near = raw.clone();
        near[15] ^= 1;
        assert!(!key.occurs_in(&near));
        assert!(!key.occurs_in(STANDARD.encode(&near).as_bytes()));
        let secret = SecretBytes::from(key);
        assert!(secret.occurs_in(&file));
    }

    #[test]
    fn from_slice_checks_length() {
        assert!(Key256::from_slice(&[0u8; 31]).is_err());
        assert!(Key256::from_slice(&[0u8; 32]).is_ok());
    }
}
