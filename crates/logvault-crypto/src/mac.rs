//! Message authentication with HMAC-SHA256, for signed bearer tokens.
//!
//! A [`MacKey`] is a [`Key256`] used for one purpose only: signing and verifying short messages
//! (a token's header and claims). Verification compares in constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{CryptoError, Key256};

type HmacSha256 = Hmac<Sha256>;

/// Length in bytes of an HMAC-SHA256 tag.
pub const MAC_LEN: usize = 32;

/// A key that signs and verifies messages with HMAC-SHA256. Zeroized on drop with the
/// [`Key256`] it holds; `Debug` prints `REDACTED`.
#[derive(Debug)]
pub struct MacKey(Key256);

impl MacKey {
    /// A signing key made of `key` (a purpose key derived for signing only).
    pub fn new(key: Key256) -> Self {
        Self(key)
    }

    fn mac(&self) -> Result<HmacSha256, CryptoError> {
        HmacSha256::new_from_slice(self.0.expose()).map_err(|_| CryptoError::InvalidKey {
            reason: "hmac-sha256 refused the key".into(),
        })
    }

    /// The tag of `message`.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if the key cannot key the MAC (never for a 32-byte key).
    pub fn sign(&self, message: &[u8]) -> Result<[u8; MAC_LEN], CryptoError> {
        let mut mac = self.mac()?;
        mac.update(message);
        let tag = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&tag);
        Ok(out)
    }

    /// Whether `tag` is the tag of `message` under this key (compared in constant time).
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        let Ok(mut mac) = self.mac() else {
            return false;
        };
        mac.update(message);
        mac.verify_slice(tag).is_ok()
    }

    /// Whether the key's bytes occur in `haystack` (see [`Key256::occurs_in`]).
    pub fn occurs_in(&self, haystack: &[u8]) -> bool {
        self.0.occurs_in(haystack)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_tag_verifies_only_its_message_under_its_key() {
        let key = MacKey::new(Key256::generate().unwrap());
        let other = MacKey::new(Key256::generate().unwrap());
        let tag = key.sign(b"header.claims").unwrap();
        assert!(key.verify(b"header.claims", &tag));
        assert!(!key.verify(b"header.claimz", &tag));
        assert!(!other.verify(b"header.claims", &tag));
        assert!(!key.verify(b"header.claims", &tag[..31]));
        let mut flipped = tag;
        flipped[0] ^= 1;
        assert!(!key.verify(b"header.claims", &flipped));
        assert_eq!(format!("{key:?}"), "MacKey(Key256(REDACTED))");
    }

    #[test]
    fn known_answer_agrees_with_an_independent_hmac() {
        // The expected tag is Python's `hmac.new(b"\x0b" * 32, b"Hi There", hashlib.sha256)`.
        let key = MacKey::new(Key256::from_slice(&[0x0b; 32]).unwrap());
        let a = key.sign(b"Hi There").unwrap();
        assert_eq!(a, key.sign(b"Hi There").unwrap());
        assert_eq!(
            hex::encode(a),
            "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7"
        );
    }
}
