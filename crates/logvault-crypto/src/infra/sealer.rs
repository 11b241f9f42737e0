//! Format version 2: an object encrypted as its plaintext arrives.

use std::fmt;

use chacha20poly1305::ChaCha20Poly1305;

use super::{HEADER_LEN, seal_chunk};
use crate::CryptoError;

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
    /// A sealer with the header `raw` (its salt gave `cipher`), before anything was pushed.
    pub(super) fn new(
        cipher: ChaCha20Poly1305,
        raw: [u8; HEADER_LEN],
        location: &str,
        chunk_size: u32,
    ) -> Self {
        Self {
            cipher,
            raw,
            location: location.to_owned(),
            chunk_size: chunk_size as usize,
            next: 0,
            pending: Vec::new(),
            started: false,
        }
    }

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
        let (raw, location) = (&self.raw, self.location.as_str());
        seal_chunk(&self.cipher, raw, self.next, last, chunk, location, out)?;
        self.next += 1;
        Ok(())
    }
}
