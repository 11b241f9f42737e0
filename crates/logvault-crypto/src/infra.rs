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
        if chunk_size == 0 {
            return Err(CryptoError::InvalidKey {
                reason: "infrastructure chunk size must be positive".into(),
            });
        }
        let total: usize = pieces.iter().map(|p| p.len()).sum();
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        let mut raw = [0u8; HEADER_LEN];
        raw[..4].copy_from_slice(MAGIC);
        raw[4] = VERSION;
        raw[8..12].copy_from_slice(&chunk_size.to_le_bytes());
        raw[12..20].copy_from_slice(&(total as u64).to_le_bytes());
        raw[20..36].copy_from_slice(&salt);
        let header = Self::header_from_raw(raw, location)?;
        let cipher = self.object_cipher(&salt, location)?;
        let mut out = Vec::with_capacity(usize::try_from(header.object_len()).unwrap_or(0));
        out.extend_from_slice(&raw);
        let n = header.chunk_count();
        let cs = chunk_size as usize;
        let seal = |i: u64, chunk: &[u8], out: &mut Vec<u8>| -> Result<(), CryptoError> {
            let aad = chunk_aad(&raw, i, i + 1 == n);
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
        if chunk_size == 0 {
            return Err(CryptoError::InvalidKey {
                reason: "infrastructure chunk size must be positive".into(),
            });
        }
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        let mut raw = [0u8; HEADER_LEN];
        raw[..4].copy_from_slice(MAGIC);
        raw[4] = VERSION_STREAMED;
        raw[8..12].copy_from_slice(&chunk_size.to_le_bytes());
        raw[20..36].copy_from_slice(&salt);
        Ok(InfraSealer {
            cipher: self.object_cipher(&salt, location)?,
            raw,
            location: location.to_owned(),
            chunk_size: chunk_size as usize,
            next: 0,
            pending: Vec::new(),
            started: false,
        })
    }
}

/// An object being encrypted as its plaintext arrives (format version 2): each chunk is sealed
/// as soon as it is known not to be the last, so it holds at most one chunk of plaintext.
pub struct InfraSealer {
    cipher: ChaCha20Poly1305,
    raw: [u8; HEADER_LEN],
    location: String,
    chunk_size: usize,
    /// The index of the next chunk to seal.
    next: u64,
    /// Plaintext not sealed yet: at most one chunk, which may be the last.
    pending: Vec<u8>,
    /// Whether the header was given out.
    started: bool,
}

impl fmt::Debug for InfraSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InfraSealer")
            .field("location", &self.location)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl InfraSealer {
    /// Encrypts the next `plaintext`, appending to `out` the object's bytes that are ready (the
    /// header first): every chunk but the one that may still be the last.
    ///
    /// # Errors
    /// [`CryptoError::Integrity`] if sealing fails.
    pub fn push(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.start(out);
        let cs = self.chunk_size;
        let mut rest = plaintext;
        while !rest.is_empty() {
            // A full pending chunk is not the last: more plaintext came.
            if self.pending.len() == cs {
                let chunk = std::mem::take(&mut self.pending);
                self.seal(&chunk, false, out)?;
                self.pending = chunk;
                self.pending.clear();
            }
            if self.pending.is_empty() && rest.len() > cs {
                let (chunk, later) = rest.split_at(cs);
                self.seal(chunk, false, out)?;
                rest = later;
                continue;
            }
            let take = (cs - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        Ok(())
    }

    /// Ends the object: appends to `out` what is left of it (the header if nothing was pushed,
    /// and the last chunk, empty for an empty object).
    ///
    /// # Errors
    /// [`CryptoError::Integrity`] if sealing fails.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.start(out);
        let last = std::mem::take(&mut self.pending);
        self.seal(&last, true, out)
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            out.extend_from_slice(&self.raw);
            self.started = true;
        }
    }

    fn seal(&mut self, chunk: &[u8], last: bool, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let i = self.next;
        let aad = chunk_aad(&self.raw, i, last);
        let ct = self
            .cipher
            .encrypt(
                &chunk_nonce(i),
                Payload {
                    msg: chunk,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Integrity {
                context: format!("infrastructure layer of {}: seal failed", self.location),
            })?;
        out.extend_from_slice(&ct);
        self.next += 1;
        Ok(())
    }
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn whole_object_round_trip_and_location_binding() {
        let key = InfraKey::generate().unwrap();
        let pt = data(10_000);
        let obj = key.encrypt_object("a/b.parquet", &pt, 1024).unwrap();
        assert_eq!(
            obj.len() as u64,
            InfraHeader::parse(&obj, "x").unwrap().object_len()
        );
        assert_eq!(key.decrypt_object("a/b.parquet", &obj).unwrap(), pt);
        assert!(key.decrypt_object("a/c.parquet", &obj).is_err());
        assert!(
            InfraKey::generate()
                .unwrap()
                .decrypt_object("a/b.parquet", &obj)
                .is_err()
        );
        // truncation by a whole chunk is caught (length and last flag)
        let short = &obj[..obj.len() - (1024 + CHUNK_TAG_LEN)];
        assert!(key.decrypt_object("a/b.parquet", short).is_err());
        let mut flipped = obj.clone();
        flipped[HEADER_LEN + 5] ^= 0x40;
        let err = key
            .decrypt_object("a/b.parquet", &flipped)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a/b.parquet") && err.contains("chunk 0"),
            "{err}"
        );
    }

    #[test]
    fn empty_object_round_trips() {
        let key = InfraKey::generate().unwrap();
        let obj = key.encrypt_object("e", &[], 64).unwrap();
        assert_eq!(obj.len(), HEADER_LEN);
        assert!(key.decrypt_object("e", &obj).unwrap().is_empty());
    }

    /// `pt` streamed through a sealer in the pieces `cuts` makes.
    fn streamed(key: &InfraKey, loc: &str, pt: &[u8], cuts: &[usize], chunk: u32) -> Vec<u8> {
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(pt.len())).collect();
        cuts.push(0);
        cuts.push(pt.len());
        cuts.sort_unstable();
        let mut sealer = key.sealer(loc, chunk).unwrap();
        let mut out = Vec::new();
        for w in cuts.windows(2) {
            let before = out.len();
            sealer.push(&pt[w[0]..w[1]], &mut out).unwrap();
            // What a push gives out is whole chunks (and the header once).
            let stride = chunk as usize + CHUNK_TAG_LEN;
            let header = if before == 0 && !out.is_empty() {
                HEADER_LEN
            } else {
                0
            };
            assert_eq!((out.len() - before - header) % stride, 0);
        }
        sealer.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn a_streamed_object_needs_its_size_and_catches_truncation_and_appending() {
        let key = InfraKey::generate().unwrap();
        let pt = data(4096 * 3);
        // Exactly three chunks: the third is the last, held back until the end.
        let obj = streamed(&key, "s/t", &pt, &[100, 5000], 4096);
        assert_eq!(obj.len(), HEADER_LEN + 3 * (4096 + CHUNK_TAG_LEN));
        assert!(
            InfraHeader::parse(&obj, "s/t").is_err(),
            "version 2 has no length"
        );
        let header = InfraHeader::parse_sized(&obj, obj.len() as u64, "s/t").unwrap();
        assert_eq!(header.plaintext_len, pt.len() as u64);
        assert_eq!(header.chunk_count(), 3);
        assert_eq!(key.decrypt_object("s/t", &obj).unwrap(), pt);
        assert!(key.decrypt_object("s/u", &obj).is_err());
        // Dropping the last chunk, or appending one sealed as the last elsewhere, fails.
        let short = &obj[..obj.len() - (4096 + CHUNK_TAG_LEN)];
        let err = key.decrypt_object("s/t", short).unwrap_err().to_string();
        assert!(err.contains("s/t") && err.contains("chunk 1"), "{err}");
        let mut long = obj.clone();
        long.extend_from_slice(&obj[HEADER_LEN + 2 * (4096 + CHUNK_TAG_LEN)..]);
        assert!(key.decrypt_object("s/t", &long).is_err());
        // A size no streamed object has: the header alone (an object has at least its last
        // chunk), or a last chunk shorter than a tag.
        assert!(key.decrypt_object("s/t", &obj[..HEADER_LEN]).is_err());
        assert!(
            key.decrypt_object("s/t", &obj[..HEADER_LEN + 4096 + CHUNK_TAG_LEN + 5])
                .is_err()
        );
        // An empty object is one empty chunk.
        let empty = streamed(&key, "e", &[], &[], 64);
        assert_eq!(empty.len(), HEADER_LEN + CHUNK_TAG_LEN);
        assert!(key.decrypt_object("e", &empty).unwrap().is_empty());
        // Whole objects (version 1) still parse both ways.
        let whole = key.encrypt_object("w", &pt, 4096).unwrap();
        assert_eq!(
            InfraHeader::parse(&whole, "w").unwrap().plaintext_len,
            pt.len() as u64
        );
        assert!(InfraHeader::parse_sized(&whole, whole.len() as u64 + 1, "w").is_err());
    }

    proptest! {
        #[test]
        fn an_object_in_pieces_encrypts_as_the_whole(
            len in 0usize..5000, chunk in 1u32..700, cuts in proptest::collection::vec(0usize..5000, 0..6)
        ) {
            let key = InfraKey::generate().unwrap();
            let pt = data(len);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(len)).collect();
            cuts.push(0);
            cuts.push(len);
            cuts.sort_unstable();
            let pieces: Vec<&[u8]> = cuts.windows(2).map(|w| &pt[w[0]..w[1]]).collect();
            let obj = key.encrypt_object_pieces("loc", &pieces, chunk).unwrap();
            prop_assert_eq!(obj.len() as u64, InfraHeader::parse(&obj, "loc").unwrap().object_len());
            prop_assert_eq!(key.decrypt_object("loc", &obj).unwrap(), pt);
        }

        #[test]
        fn a_streamed_object_decrypts_whole_and_by_range(
            len in 0usize..5000, chunk in 1u32..700, cuts in proptest::collection::vec(0usize..5000, 0..6),
            a in 0u64..6000, b in 0u64..6000
        ) {
            let key = InfraKey::generate().unwrap();
            let pt = data(len);
            let obj = streamed(&key, "loc", &pt, &cuts, chunk);
            prop_assert_eq!(&key.decrypt_object("loc", &obj).unwrap(), &pt);
            let header = InfraHeader::parse_sized(&obj, obj.len() as u64, "loc").unwrap();
            prop_assert_eq!(header.plaintext_len, len as u64);
            let (lo, hi) = (a.min(b), a.max(b));
            let (chunks, bytes) = header.chunks_for(&(lo..hi));
            let got = key
                .decrypt_chunks("loc", &header, chunks.clone(), &obj[bytes.start as usize..bytes.end as usize])
                .unwrap();
            let hi = hi.min(len as u64);
            if lo < hi {
                let offset = (lo - chunks.start * u64::from(chunk)) as usize;
                prop_assert_eq!(&got[offset..offset + (hi - lo) as usize], &pt[lo as usize..hi as usize]);
            }
        }

        #[test]
        fn any_range_decrypts_from_its_chunks_only(
            len in 0usize..5000, chunk in 1u32..700, a in 0u64..6000, b in 0u64..6000
        ) {
            let key = InfraKey::generate().unwrap();
            let pt = data(len);
            let obj = key.encrypt_object("loc", &pt, chunk).unwrap();
            let header = InfraHeader::parse(&obj, "loc").unwrap();
            let (lo, hi) = (a.min(b), a.max(b));
            let (chunks, bytes) = header.chunks_for(&(lo..hi));
            let got = key
                .decrypt_chunks("loc", &header, chunks.clone(), &obj[bytes.start as usize..bytes.end as usize])
                .unwrap();
            let hi = hi.min(len as u64);
            if lo < hi {
                let offset = (lo - chunks.start * u64::from(chunk)) as usize;
                prop_assert_eq!(&got[offset..offset + (hi - lo) as usize], &pt[lo as usize..hi as usize]);
            } else {
                prop_assert!(got.is_empty());
            }
        }
    }
}
