//! The infrastructure encryption layer (double encryption, R-B4).
//!
//! A second layer under the Parquet encryption, with a different algorithm (ChaCha20-Poly1305)
//! and an independent key. An object is cut into fixed-size chunks, each sealed on its own, so
//! that a range read fetches and decrypts only the chunks it covers.
//!
//! Layout (format version 1, a whole object, and 2, a streamed one; see `docs/format.md`):
//!
//! ```text
//! header (40 bytes, plaintext):
//!   magic "LVX1" | version u8 (1 or 2) | 3 reserved zero bytes | chunk_size u32 LE
//!   | plaintext_len u64 LE (version 1; zero in version 2) | salt [u8; 16] | 4 reserved zero bytes
//! chunk i (i = 0 .. n): ciphertext of plaintext[i*chunk_size ..][..chunk_size] || tag (16)
//! ```
//!
//! Each object gets its own key, `HKDF-SHA256(infra key, salt, "logvault/infra/v1" || location)`,
//! so an object copied to another location fails to open. Chunk `i` uses the nonce
//! `0u32 || i as u64` (big endian) and the associated data `header || i || last?`, so chunks
//! can be neither reordered, dropped at the end, nor moved between objects.
//!
//! Version 2 is written as the plaintext arrives ([`InfraSealer`]), before its length is known:
//! its header does not hold the length, which follows from the object's stored size (a reader
//! knows it: [`InfraHeader::parse_sized`]). It always has at least one chunk (an empty
//! plaintext is one empty last chunk), and its last chunk is the only one sealed as last, so a
//! truncation at a chunk boundary or an appended chunk fails authentication as in version 1.

use std::fmt;
use std::ops::Range;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::CryptoError;
use crate::secret::{Key256, fill_random};

mod sealer;
pub use sealer::InfraSealer;

/// Length of the plaintext header at the start of every object.
pub const HEADER_LEN: usize = 40;
/// Authentication tag bytes added to every chunk.
pub const CHUNK_TAG_LEN: usize = 16;
/// Default plaintext bytes per chunk.
pub const DEFAULT_CHUNK_SIZE: u32 = 64 * 1024;
const MAGIC: &[u8; 4] = b"LVX1";
/// A whole object: its header holds the plaintext length.
const VERSION: u8 = 1;
/// A streamed object: the length follows from the stored size.
const VERSION_STREAMED: u8 = 2;

/// The independent key of the infrastructure layer.
pub struct InfraKey(Key256);

impl fmt::Debug for InfraKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InfraKey(REDACTED)")
    }
}

/// The parsed header of an infrastructure-encrypted object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfraHeader {
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// Total plaintext length.
    pub plaintext_len: u64,
    salt: [u8; 16],
    raw: [u8; HEADER_LEN],
    /// Written as a stream (format version 2): at least one chunk.
    streamed: bool,
}

impl InfraHeader {
    /// Parses and checks the header at the start of a whole object (format version 1, whose
    /// header holds the length); a streamed one needs its stored size
    /// ([`InfraHeader::parse_sized`]).
    ///
    /// # Errors
    /// [`CryptoError::Integrity`] naming `location` if the header is short, of another format or
    /// of an unsupported version.
    pub fn parse(bytes: &[u8], location: &str) -> Result<Self, CryptoError> {
        let header = Self::parse_raw(bytes, location)?;
        if header.streamed {
            return Err(CryptoError::Integrity {
                context: format!(
                    "infrastructure layer of {location}: a streamed object's length comes from its stored size"
                ),
            });
        }
        Ok(header)
    }

    /// Parses and checks the header of an object stored in `object_len` bytes, of either
    /// format version: a whole object's header must agree with the size, a streamed object's
    /// length is computed from it.
    ///
    /// # Errors
    /// [`CryptoError::Integrity`] naming `location` if the header is short, of another format
    /// or of an unsupported version, or the size is not one the object can have.
    pub fn parse_sized(bytes: &[u8], object_len: u64, location: &str) -> Result<Self, CryptoError> {
        let mut header = Self::parse_raw(bytes, location)?;
        if header.streamed {
            header.plaintext_len = streamed_plaintext_len(header.chunk_size, object_len)
                .ok_or_else(|| CryptoError::Integrity {
                    context: format!(
                        "infrastructure layer of {location}: {object_len} bytes is no streamed object's size"
                    ),
                })?;
        }
        if header.object_len() != object_len {
            return Err(CryptoError::Integrity {
                context: format!(
                    "infrastructure layer of {location}: object is {object_len} bytes, header says {}",
                    header.object_len()
                ),
            });
        }
        Ok(header)
    }

    fn parse_raw(bytes: &[u8], location: &str) -> Result<Self, CryptoError> {
        let fail = |what: &str| CryptoError::Integrity {
            context: format!("infrastructure layer of {location}: {what}"),
        };
        let raw: [u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| fail("header truncated"))?;
        if &raw[..4] != MAGIC {
            return Err(fail("bad magic"));
        }
        let streamed = match raw[4] {
            VERSION => false,
            VERSION_STREAMED => true,
            v => return Err(fail(&format!("unsupported format version {v}"))),
        };
        let chunk_size = u32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]);
        if chunk_size == 0 {
            return Err(fail("zero chunk size"));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&raw[12..20]);
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&raw[20..36]);
        Ok(Self {
            chunk_size,
            plaintext_len: if streamed { 0 } else { u64::from_le_bytes(len) },
            salt,
            raw,
            streamed,
        })
    }

    /// Number of chunks in the object.
    pub fn chunk_count(&self) -> u64 {
        let n = self.plaintext_len.div_ceil(u64::from(self.chunk_size));
        if self.streamed { n.max(1) } else { n }
    }

    /// Total length of the encrypted object.
    pub fn object_len(&self) -> u64 {
        HEADER_LEN as u64 + self.plaintext_len + self.chunk_count() * CHUNK_TAG_LEN as u64
    }

    /// The chunks covering the plaintext range `plain`, and where they sit in the object.
    pub fn chunks_for(&self, plain: &Range<u64>) -> (Range<u64>, Range<u64>) {
        let cs = u64::from(self.chunk_size);
        let end = plain.end.min(self.plaintext_len);
        if plain.start >= end {
            return (0..0, 0..0);
        }
        let first = plain.start / cs;
        let last = (end - 1) / cs;
        let stride = cs + CHUNK_TAG_LEN as u64;
        let start_byte = HEADER_LEN as u64 + first * stride;
        let end_byte = (HEADER_LEN as u64 + (last + 1) * stride).min(self.object_len());
        (first..last + 1, start_byte..end_byte)
    }
}

impl InfraKey {
    /// A fresh random infrastructure key.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if the random source fails.
    pub fn generate() -> Result<Self, CryptoError> {
        Key256::generate().map(Self)
    }

    /// Rebuilds the key from its unwrapped form.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if the bytes are not 32 long.
    pub fn from_secret(secret: &crate::SecretBytes) -> Result<Self, CryptoError> {
        Key256::try_from(secret).map(Self)
    }

    /// The key as secret bytes, for wrapping.
    pub fn to_secret(&self) -> crate::SecretBytes {
        crate::SecretBytes::new(self.0.expose().to_vec())
    }

    fn object_cipher(
        &self,
        salt: &[u8; 16],
        location: &str,
    ) -> Result<ChaCha20Poly1305, CryptoError> {
        let hk = Hkdf::<Sha256>::new(Some(salt), self.0.expose());
        let mut okm = crate::secret::Scratch::new(vec![0u8; crate::KEY_LEN]);
        let mut info = b"logvault/infra/v1".to_vec();
        info.extend_from_slice(location.as_bytes());
        hk.expand(&info, &mut okm)
            .map_err(|_| CryptoError::InvalidKey {
                reason: "hkdf expand failed".into(),
            })?;
        ChaCha20Poly1305::new_from_slice(&okm).map_err(|_| CryptoError::InvalidKey {
            reason: "chacha20-poly1305 needs a 32-byte key".into(),
        })
    }

    /// Encrypts a whole object destined for `location`.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if no salt can be drawn; [`CryptoError::InvalidKey`] if
    /// `chunk_size` is zero.
    pub fn encrypt_object(
        &self,
        location: &str,
        plaintext: &[u8],
        chunk_size: u32,
    ) -> Result<Vec<u8>, CryptoError> {
        self.encrypt_object_pieces(location, &[plaintext], chunk_size)
    }

    /// Encrypts a whole object given as consecutive `pieces` (the object is their
    /// concatenation, which is never made: an encoded segment is kept in pieces).
    ///
    /// # Errors
    /// As [`InfraKey::encrypt_object`].
    pub fn encrypt_object_pieces(
        &self,
        location: &str,
        pieces: &[&[u8]],
        chunk_size: u32,
    ) -> Result<Vec<u8>, CryptoError> {
        let total: usize = pieces.iter().map(|p| p.len()).sum();
        let (raw, salt) = new_header(VERSION, chunk_size, total as u64)?;
        let header = Self::header_from_raw(raw, location)?;
        let cipher = self.object_cipher(&salt, location)?;
        let mut out = Vec::with_capacity(usize::try_from(header.object_len()).unwrap_or(0));
        out.extend_from_slice(&raw);
        let n = header.chunk_count();
        let cs = chunk_size as usize;
        let seal = |i: u64, chunk: &[u8], out: &mut Vec<u8>| {
            seal_chunk(&cipher, &raw, i, i + 1 == n, chunk, location, out)
        };
        // A chunk lies within one piece (sealed from it) or across pieces (gathered first).
        let mut gathered: Vec<u8> = Vec::new();
        let mut i = 0u64;
        for piece in pieces {
            let mut rest: &[u8] = piece;
            if !gathered.is_empty() {
                let take = (cs - gathered.len()).min(rest.len());
                gathered.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if gathered.len() == cs {
                    seal(i, &gathered, &mut out)?;
                    i += 1;
                    gathered.clear();
                }
            }
            while rest.len() >= cs {
                seal(i, &rest[..cs], &mut out)?;
                i += 1;
                rest = &rest[cs..];
            }
            gathered.extend_from_slice(rest);
        }
        if !gathered.is_empty() {
            seal(i, &gathered, &mut out)?;
        }
        Ok(out)
    }

    fn header_from_raw(raw: [u8; HEADER_LEN], location: &str) -> Result<InfraHeader, CryptoError> {
        InfraHeader::parse(&raw, location)
    }

    /// Decrypts the consecutive chunks `chunks` (as given by [`InfraHeader::chunks_for`]) from
    /// `bytes`, the object bytes of exactly those chunks.
    ///
    /// # Errors
    /// [`CryptoError::Integrity`] naming `location` if a chunk is missing, altered or moved.
    pub fn decrypt_chunks(
        &self,
        location: &str,
        header: &InfraHeader,
        chunks: Range<u64>,
        bytes: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let cipher = self.object_cipher(&header.salt, location)?;
        let stride = header.chunk_size as usize + CHUNK_TAG_LEN;
        let n = header.chunk_count();
        let mut out = Vec::with_capacity(bytes.len());
        let mut pieces = bytes.chunks(stride);
        for i in chunks {
            let fail = || CryptoError::Integrity {
                context: format!(
                    "infrastructure layer of {location}: chunk {i} fails authentication"
                ),
            };
            let piece = pieces.next().ok_or_else(fail)?;
            let aad = chunk_aad(&header.raw, i, i + 1 == n);
            let pt = cipher
                .decrypt(
                    &chunk_nonce(i),
                    Payload {
                        msg: piece,
                        aad: &aad,
                    },
                )
                .map_err(|_| fail())?;
            out.extend_from_slice(&pt);
        }
        if pieces.next().is_some() {
            return Err(CryptoError::Integrity {
                context: format!("infrastructure layer of {location}: trailing bytes"),
            });
        }
        Ok(out)
    }

    /// Decrypts a whole object.
    ///
    /// # Errors
    /// [`CryptoError::Integrity`] naming `location` if anything is altered, truncated or moved.
    pub fn decrypt_object(&self, location: &str, object: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let header = InfraHeader::parse_sized(object, object.len() as u64, location)?;
        self.decrypt_chunks(
            location,
            &header,
            0..header.chunk_count(),
            &object[HEADER_LEN..],
        )
    }

    /// A sealer of an object destined for `location`, encrypted as its plaintext arrives
    /// (format version 2, see the module documentation).
    ///
    /// # Errors
    /// [`CryptoError::Random`] if no salt can be drawn; [`CryptoError::InvalidKey`] if
    /// `chunk_size` is zero.
    pub fn sealer(&self, location: &str, chunk_size: u32) -> Result<InfraSealer, CryptoError> {
        let (raw, salt) = new_header(VERSION_STREAMED, chunk_size, 0)?;
        let cipher = self.object_cipher(&salt, location)?;
        Ok(InfraSealer::new(cipher, raw, location, chunk_size))
    }
}

/// A new object's header of format `version` (`len`, the plaintext length, is zero for a
/// streamed one) with a fresh salt, and the salt.
fn new_header(
    version: u8,
    chunk_size: u32,
    len: u64,
) -> Result<([u8; HEADER_LEN], [u8; 16]), CryptoError> {
    if chunk_size == 0 {
        return Err(CryptoError::InvalidKey {
            reason: "infrastructure chunk size must be positive".into(),
        });
    }
    let mut salt = [0u8; 16];
    fill_random(&mut salt)?;
    let mut raw = [0u8; HEADER_LEN];
    raw[..4].copy_from_slice(MAGIC);
    raw[4] = version;
    raw[8..12].copy_from_slice(&chunk_size.to_le_bytes());
    raw[12..20].copy_from_slice(&len.to_le_bytes());
    raw[20..36].copy_from_slice(&salt);
    Ok((raw, salt))
}

/// Seals chunk `i` of the object with header `raw` (the last one if `last`), appending it to
/// `out`.
fn seal_chunk(
    cipher: &ChaCha20Poly1305,
    raw: &[u8; HEADER_LEN],
    i: u64,
    last: bool,
    chunk: &[u8],
    location: &str,
    out: &mut Vec<u8>,
) -> Result<(), CryptoError> {
    let aad = chunk_aad(raw, i, last);
    let ct = cipher
        .encrypt(
            &chunk_nonce(i),
            Payload {
                msg: chunk,
                aad: &aad,
            },
        )
        .map_err(|_| CryptoError::Integrity {
            context: format!("infrastructure layer of {location}: seal failed"),
        })?;
    out.extend_from_slice(&ct);
    Ok(())
}

/// The plaintext length of a streamed object stored in `object_len` bytes: every chunk full
/// but the last, which holds 0 to `chunk_size` bytes; `None` if no such object has that size.
fn streamed_plaintext_len(chunk_size: u32, object_len: u64) -> Option<u64> {
    let body = object_len.checked_sub(HEADER_LEN as u64)?;
    let cs = u64::from(chunk_size);
    let stride = cs + CHUNK_TAG_LEN as u64;
    // At least one chunk: the last, of 1 to `stride` bytes stored.
    let before_last = body.checked_sub(1)? / stride;
    let last = body - before_last * stride;
    let last_plain = last.checked_sub(CHUNK_TAG_LEN as u64)?;
    Some(before_last * cs + last_plain)
}

fn chunk_nonce(i: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&i.to_be_bytes());
    Nonce::from(n)
}

fn chunk_aad(header: &[u8; HEADER_LEN], i: u64, last: bool) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_LEN + 9);
    aad.extend_from_slice(header);
    aad.extend_from_slice(&i.to_be_bytes());
    aad.push(u8::from(last));
    aad
}

#[cfg(test)]
mod tests;
