//! Encrypted shuffle files of a distributed query's executors (`docs/distributed.md`).
//!
//! An executor process draws a [`ShuffleKey`] when it starts and keeps it in memory only; every
//! stage output it writes goes through a [`ShuffleSealWriter`] and is read back (to be served to
//! another executor) through a [`ShuffleOpenReader`]. A file outlives its executor only as
//! ciphertext nobody can open, which is fine: Ballista recomputes a lost stage.
//!
//! Layout (shuffle format version 1):
//!
//! ```text
//! header (32 bytes, plaintext):
//!   magic "LVSH" | version u8 = 1 | 3 reserved zero bytes | chunk_size u32 LE
//!   | salt [u8; 16] | 4 reserved zero bytes
//! frame i (i = 0 .. n):
//!   last u8 (1 on the final frame, else 0) | len u32 LE | ciphertext (len bytes, tag included)
//! ```
//!
//! Each file gets its own AES-256-GCM key, `HKDF-SHA256(shuffle key, salt, "logvault/shuffle/v1"
//! || binding)`, where the binding names the file (job, stage, partition, file id). Frame `i`
//! holds at most `chunk_size` plaintext bytes, uses the nonce `0u32 || i as u64` (big endian)
//! and the associated data `header || i as u64 LE || last`. A frame altered, reordered, moved to
//! another file or cut off, a final frame missing, or bytes after it all fail authentication.

use std::fmt;
use std::io::{self, Read, Write};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::CryptoError;
use crate::secret::{Key256, Scratch, fill_random};

/// Length of the plaintext header at the start of every shuffle file.
pub const SHUFFLE_HEADER_LEN: usize = 32;
/// The shuffle file format version this code writes and reads.
pub const SHUFFLE_FORMAT_VERSION: u8 = 1;
/// Default plaintext bytes per frame.
pub const DEFAULT_SHUFFLE_CHUNK: u32 = 256 * 1024;
const MAGIC: &[u8; 4] = b"LVSH";
const TAG_LEN: usize = 16;
const FRAME_HEAD_LEN: usize = 5;
const INFO: &[u8] = b"logvault/shuffle/v1";

/// The ephemeral key of one executor process's shuffle files: random, in memory only, never
/// wrapped or stored. Prints as `REDACTED`.
pub struct ShuffleKey(Key256);

impl fmt::Debug for ShuffleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShuffleKey(REDACTED)")
    }
}

impl ShuffleKey {
    /// A fresh random key.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if the random source fails.
    pub fn generate() -> Result<Self, CryptoError> {
        Key256::generate().map(Self)
    }

    /// Whether the raw key occurs in `haystack` (for tests that search files and messages).
    pub fn occurs_in(&self, haystack: &[u8]) -> bool {
        self.0.occurs_in(haystack)
    }

    fn file_cipher(&self, salt: &[u8; 16], binding: &str) -> Result<Aes256Gcm, CryptoError> {
        let hk = Hkdf::<Sha256>::new(Some(salt), self.0.expose());
        let mut okm = Scratch::new(vec![0u8; crate::KEY_LEN]);
        let mut info = INFO.to_vec();
        info.extend_from_slice(binding.as_bytes());
        hk.expand(&info, &mut okm)
            .map_err(|_| CryptoError::InvalidKey {
                reason: "hkdf expand failed".into(),
            })?;
        Aes256Gcm::new_from_slice(&okm).map_err(|_| CryptoError::InvalidKey {
            reason: "aes-256-gcm needs a 32-byte key".into(),
        })
    }
}

fn frame_nonce(i: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&i.to_be_bytes());
    n
}

fn frame_aad(header: &[u8; SHUFFLE_HEADER_LEN], i: u64, last: bool) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SHUFFLE_HEADER_LEN + 9);
    aad.extend_from_slice(header);
    aad.extend_from_slice(&i.to_le_bytes());
    aad.push(u8::from(last));
    aad
}

fn integrity(binding: &str, what: &str) -> CryptoError {
    CryptoError::Integrity {
        context: format!("shuffle file {binding}: {what}"),
    }
}

fn io_error(e: CryptoError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Encrypts what is written to it into `inner`, in the layout above. [`Self::finish`] writes
/// the final frame; a writer dropped without it leaves a file that fails to open.
pub struct ShuffleSealWriter<W: Write> {
    inner: W,
    cipher: Aes256Gcm,
    header: [u8; SHUFFLE_HEADER_LEN],
    binding: String,
    chunk_size: usize,
    buf: Scratch,
    next: u64,
    written: u64,
}

impl<W: Write> fmt::Debug for ShuffleSealWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShuffleSealWriter")
            .field("binding", &self.binding)
            .field("frames", &self.next)
            .finish_non_exhaustive()
    }
}

impl<W: Write> ShuffleSealWriter<W> {
    /// Starts a shuffle file named by `binding` (job, stage, partition, file id) in `inner`,
    /// with frames of `chunk_size` plaintext bytes, and writes its header.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if no salt can be drawn, [`CryptoError::InvalidKey`] for a zero
    /// chunk size; an I/O error of `inner` as [`io::Error`].
    pub fn new(key: &ShuffleKey, binding: &str, chunk_size: u32, mut inner: W) -> io::Result<Self> {
        if chunk_size == 0 {
            return Err(io_error(CryptoError::InvalidKey {
                reason: "shuffle chunk size must be positive".into(),
            }));
        }
        let mut salt = [0u8; 16];
        fill_random(&mut salt).map_err(io_error)?;
        let mut header = [0u8; SHUFFLE_HEADER_LEN];
        header[..4].copy_from_slice(MAGIC);
        header[4] = SHUFFLE_FORMAT_VERSION;
        header[8..12].copy_from_slice(&chunk_size.to_le_bytes());
        header[12..28].copy_from_slice(&salt);
        let cipher = key.file_cipher(&salt, binding).map_err(io_error)?;
        inner.write_all(&header)?;
        Ok(Self {
            inner,
            cipher,
            header,
            binding: binding.to_owned(),
            chunk_size: chunk_size as usize,
            buf: Scratch::new(Vec::with_capacity(chunk_size as usize)),
            next: 0,
            written: SHUFFLE_HEADER_LEN as u64,
        })
    }

    fn seal_frame(&mut self, last: bool) -> io::Result<()> {
        let aad = frame_aad(&self.header, self.next, last);
        let ct = self
            .cipher
            .encrypt(
                &Nonce::from(frame_nonce(self.next)),
                Payload {
                    msg: &self.buf,
                    aad: &aad,
                },
            )
            .map_err(|_| io_error(integrity(&self.binding, "seal failed")))?;
        let len = u32::try_from(ct.len())
            .map_err(|_| io_error(integrity(&self.binding, "frame too long")))?;
        self.inner.write_all(&[u8::from(last)])?;
        self.inner.write_all(&len.to_le_bytes())?;
        self.inner.write_all(&ct)?;
        self.written += (FRAME_HEAD_LEN + ct.len()) as u64;
        self.buf.clear();
        self.next += 1;
        Ok(())
    }

    /// Seals what is buffered as the final frame, flushes, and returns the inner writer and the
    /// file's length in bytes.
    ///
    /// # Errors
    /// An I/O error of the inner writer.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.seal_frame(true)?;
        self.inner.flush()?;
        let written = self.written;
        Ok((self.inner, written))
    }
}

impl<W: Write> Write for ShuffleSealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.chunk_size - self.buf.len();
        let take = room.min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        if self.buf.len() == self.chunk_size {
            self.seal_frame(false)?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        // A partial frame stays buffered: frames are full except the last.
        self.inner.flush()
    }
}

/// Decrypts a shuffle file from `inner` as it is read; every failure is an
/// [`io::ErrorKind::InvalidData`] error holding a [`CryptoError::Integrity`] that names the
/// binding.
pub struct ShuffleOpenReader<R: Read> {
    inner: R,
    cipher: Aes256Gcm,
    header: [u8; SHUFFLE_HEADER_LEN],
    binding: String,
    max_frame: usize,
    plain: Scratch,
    pos: usize,
    next: u64,
    done: bool,
}

impl<R: Read> fmt::Debug for ShuffleOpenReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShuffleOpenReader")
            .field("binding", &self.binding)
            .field("frames", &self.next)
            .finish_non_exhaustive()
    }
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: Read> ShuffleOpenReader<R> {
    /// Reads and checks the header of the shuffle file named by `binding` from `inner`.
    ///
    /// # Errors
    /// [`CryptoError::Integrity`] (as [`io::Error`]) for a short header, another format or
    /// version; an I/O error of `inner`.
    pub fn new(key: &ShuffleKey, binding: &str, mut inner: R) -> io::Result<Self> {
        let mut header = [0u8; SHUFFLE_HEADER_LEN];
        if read_full(&mut inner, &mut header)? != SHUFFLE_HEADER_LEN {
            return Err(io_error(integrity(binding, "header truncated")));
        }
        if &header[..4] != MAGIC {
            return Err(io_error(integrity(
                binding,
                "not an encrypted shuffle file (bad magic)",
            )));
        }
        if header[4] != SHUFFLE_FORMAT_VERSION {
            return Err(io_error(integrity(
                binding,
                &format!("unsupported shuffle format version {}", header[4]),
            )));
        }
        let chunk_size = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if chunk_size == 0 {
            return Err(io_error(integrity(binding, "zero chunk size")));
        }
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&header[12..28]);
        let cipher = key.file_cipher(&salt, binding).map_err(io_error)?;
        Ok(Self {
            inner,
            cipher,
            header,
            binding: binding.to_owned(),
            max_frame: chunk_size as usize + TAG_LEN,
            plain: Scratch::new(Vec::new()),
            pos: 0,
            next: 0,
            done: false,
        })
    }

    fn open_frame(&mut self) -> io::Result<()> {
        let i = self.next;
        let fail = |what: &str| io_error(integrity(&self.binding, &format!("frame {i}: {what}")));
        let mut head = [0u8; FRAME_HEAD_LEN];
        let got = read_full(&mut self.inner, &mut head)?;
        if got != FRAME_HEAD_LEN {
            return Err(fail("truncated (the final frame is missing)"));
        }
        let last = match head[0] {
            0 => false,
            1 => true,
            _ => return Err(fail("fails authentication")),
        };
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if !(TAG_LEN..=self.max_frame).contains(&len) {
            return Err(fail("fails authentication (bad frame length)"));
        }
        let mut ct = vec![0u8; len];
        if read_full(&mut self.inner, &mut ct)? != len {
            return Err(fail("truncated"));
        }
        let aad = frame_aad(&self.header, i, last);
        let pt = self
            .cipher
            .decrypt(
                &Nonce::from(frame_nonce(i)),
                Payload {
                    msg: &ct,
                    aad: &aad,
                },
            )
            .map_err(|_| fail("fails authentication (altered, moved, or another key)"))?;
        self.plain = Scratch::new(pt);
        self.pos = 0;
        self.next += 1;
        if last {
            let mut extra = [0u8; 1];
            if read_full(&mut self.inner, &mut extra)? != 0 {
                return Err(io_error(integrity(
                    &self.binding,
                    "bytes after the final frame",
                )));
            }
            self.done = true;
        }
        Ok(())
    }
}

impl<R: Read> Read for ShuffleOpenReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain.len() {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            self.open_frame()?;
        }
        let n = (self.plain.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(key: &ShuffleKey, binding: &str, chunk: u32, data: &[u8]) -> Vec<u8> {
        let mut w = ShuffleSealWriter::new(key, binding, chunk, Vec::new()).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap().0
    }

    fn open(key: &ShuffleKey, binding: &str, file: &[u8]) -> io::Result<Vec<u8>> {
        let mut r = ShuffleOpenReader::new(key, binding, file)?;
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trips_at_every_frame_boundary_and_hides_the_plaintext() {
        let key = ShuffleKey::generate().unwrap();
        for len in [0usize, 1, 15, 16, 17, 47, 48, 49, 1000] {
            let data: Vec<u8> = (0..len).map(|i| b"SECRET-VALUE"[i % 12]).collect();
            let file = seal(&key, "job j stage 1 partition 2 file 3", 16, &data);
            assert_eq!(
                open(&key, "job j stage 1 partition 2 file 3", &file).unwrap(),
                data
            );
            if len >= 12 {
                assert!(!file.windows(12).any(|w| w == b"SECRET-VALUE"), "len {len}");
            }
            assert!(!key.occurs_in(&file));
        }
    }

    #[test]
    fn altered_moved_truncated_extended_or_foreign_files_fail_naming_the_binding() {
        let key = ShuffleKey::generate().unwrap();
        let b = "job j stage 1 partition 2 file 3";
        let data = vec![7u8; 100];
        let file = seal(&key, b, 16, &data);
        let expect_fail = |f: &[u8], k: &ShuffleKey, binding: &str, what: &str| {
            let e = open(k, binding, f).expect_err(what);
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{what}");
            assert!(e.to_string().contains(binding), "{what}: {e}");
        };
        for at in [
            0usize,
            4,
            8,
            20,
            SHUFFLE_HEADER_LEN,
            SHUFFLE_HEADER_LEN + 3,
            60,
            file.len() - 1,
        ] {
            let mut bad = file.clone();
            bad[at] ^= 1;
            expect_fail(&bad, &key, b, &format!("bit flipped at {at}"));
        }
        expect_fail(
            &file,
            &key,
            "job j stage 1 partition 9 file 3",
            "other binding",
        );
        expect_fail(&file, &ShuffleKey::generate().unwrap(), b, "other key");
        let frame = FRAME_HEAD_LEN + 16 + TAG_LEN;
        expect_fail(
            &file[..file.len() - 1],
            &key,
            b,
            "cut inside the final frame",
        );
        expect_fail(
            &file[..SHUFFLE_HEADER_LEN + 6 * frame],
            &key,
            b,
            "final frame dropped",
        );
        let mut swapped = file.clone();
        let (h, f) = (SHUFFLE_HEADER_LEN, frame);
        let first = swapped[h..h + f].to_vec();
        let second = swapped[h + f..h + 2 * f].to_vec();
        swapped[h..h + f].copy_from_slice(&second);
        swapped[h + f..h + 2 * f].copy_from_slice(&first);
        expect_fail(&swapped, &key, b, "frames swapped");
        let mut extended = file.clone();
        extended.push(0);
        expect_fail(&extended, &key, b, "trailing byte");
        let mut unfinished = ShuffleSealWriter::new(&key, b, 16, Vec::new()).unwrap();
        unfinished.write_all(&data).unwrap();
        unfinished.flush().unwrap();
        expect_fail(&unfinished.inner, &key, b, "never finished");
    }

    #[test]
    fn the_key_prints_redacted() {
        let key = ShuffleKey::generate().unwrap();
        assert_eq!(format!("{key:?}"), "ShuffleKey(REDACTED)");
    }
}
