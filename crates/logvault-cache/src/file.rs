//! The format of a disk-tier cache file (version 1; see `docs/cache.md`).
//!
//! ```text
//! prefix (12 bytes, plaintext): magic "LVHC" | version u8 = 1 | 3 reserved zero bytes
//!                               | meta_len u32 LE
//! meta (meta_len bytes):        AES-256-GCM sealed JSON (`logvault_crypto::aead`), key = the
//!                               service AEK's purpose key `hot-cache/meta`, AAD =
//!                               "logvault/hot-cache/v1/meta/<routed path>"
//! body:                         the cached object in the chunked format of the infrastructure
//!                               layer (40-byte header, ChaCha20-Poly1305 chunks), key = the
//!                               service AEK's purpose key `hot-cache`, location =
//!                               "logvault/hot-cache/v1/<routed path>"
//! ```
//!
//! Both layers are bound to the object's routed path (`<account>/segments/<ws>/<table>/<id>
//! .parquet`), so a file renamed or copied over another entry fails to open. The body is chunked
//! so that a range read decrypts only the chunks it covers.

use std::fmt;
use std::ops::Range;

use chrono::{DateTime, Utc};
use logvault_crypto::infra::HEADER_LEN;
use logvault_crypto::{Aek, CryptoError, InfraHeader, InfraKey, Key256, SecretBytes, aead};
use serde::{Deserialize, Serialize};

/// Format version of cache files.
pub const CACHE_FILE_VERSION: u8 = 1;
const MAGIC: &[u8; 4] = b"LVHC";
/// Bytes before the sealed metadata.
pub(crate) const PREFIX_LEN: usize = 12;
/// Largest sealed metadata accepted (it is a few hundred bytes).
const MAX_META_LEN: u32 = 64 * 1024;
/// The purpose label of the key that seals cached objects (under the service account's AEK).
pub const DATA_KEY_LABEL: &str = "hot-cache";
/// The purpose label of the key that seals cache file metadata.
pub const META_KEY_LABEL: &str = "hot-cache/meta";

/// The two keys of the disk tier, derived from the service account's key.
pub(crate) struct CacheKeys {
    data: InfraKey,
    meta: Key256,
}

impl fmt::Debug for CacheKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CacheKeys(REDACTED)")
    }
}

impl CacheKeys {
    /// The keys derived from the service account's AEK.
    pub(crate) fn from_service_aek(aek: &Aek) -> Result<Self, CryptoError> {
        let data =
            InfraKey::from_secret(&SecretBytes::from(aek.derive_purpose_key(DATA_KEY_LABEL)?))?;
        let meta = aek.derive_purpose_key(META_KEY_LABEL)?;
        Ok(Self { data, meta })
    }
}

/// What a cache file says about the object it holds. Stored sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FileMeta {
    /// Always [`CACHE_FILE_VERSION`].
    pub(crate) format_version: u8,
    /// The object's routed path (`<account>/segments/<ws>/<table>/<id>.parquet`).
    pub(crate) path: String,
    /// The workspace the object belongs to (purge selects by it).
    pub(crate) workspace: String,
    /// The object's size.
    pub(crate) size: u64,
    /// The object's last modification, as storage reported it.
    pub(crate) last_modified: DateTime<Utc>,
    /// The object's entity tag, as storage reported it.
    pub(crate) e_tag: Option<String>,
    /// The newest row of the segment, when known (for the hot window).
    pub(crate) max_time: Option<DateTime<Utc>>,
    /// When the file was written.
    pub(crate) cached_at: DateTime<Utc>,
}

/// Why a cache file cannot be used.
#[derive(Debug)]
pub(crate) enum FileError {
    /// Malformed, altered, truncated or bound to another path.
    Corrupt(String),
    /// Another format version.
    Version(u8),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Corrupt(reason) => f.write_str(reason),
            Self::Version(v) => write!(f, "unsupported format version {v}"),
        }
    }
}

fn data_location(path: &str) -> String {
    format!("logvault/hot-cache/v{CACHE_FILE_VERSION}/{path}")
}

fn meta_aad(path: &str) -> Vec<u8> {
    format!("logvault/hot-cache/v{CACHE_FILE_VERSION}/meta/{path}").into_bytes()
}

/// Seals `plaintext` (the object at `meta.path`) into a cache file.
pub(crate) fn encode(
    keys: &CacheKeys,
    meta: &FileMeta,
    plaintext: &[u8],
    chunk_size: u32,
) -> Result<Vec<u8>, CryptoError> {
    let json = serde_json::to_vec(meta).map_err(|e| CryptoError::Integrity {
        context: format!("hot cache metadata of {}: {e}", meta.path),
    })?;
    let sealed = aead::seal(&keys.meta, &meta_aad(&meta.path), &json)?;
    let body = keys
        .data
        .encrypt_object(&data_location(&meta.path), plaintext, chunk_size)?;
    let meta_len = u32::try_from(sealed.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(PREFIX_LEN + sealed.len() + body.len());
    out.extend_from_slice(MAGIC);
    out.push(CACHE_FILE_VERSION);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&meta_len.to_le_bytes());
    out.extend_from_slice(&sealed);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Parses the fixed prefix: the length of the sealed metadata that follows.
pub(crate) fn meta_len(prefix: &[u8]) -> Result<usize, FileError> {
    let p = prefix
        .get(..PREFIX_LEN)
        .ok_or_else(|| FileError::Corrupt("file shorter than its prefix".into()))?;
    if &p[..4] != MAGIC {
        return Err(FileError::Corrupt("bad magic".into()));
    }
    if p[4] != CACHE_FILE_VERSION {
        return Err(FileError::Version(p[4]));
    }
    if p[5..8] != [0, 0, 0] {
        return Err(FileError::Corrupt("reserved bytes are not zero".into()));
    }
    let len = u32::from_le_bytes([p[8], p[9], p[10], p[11]]);
    if len > MAX_META_LEN {
        return Err(FileError::Corrupt(format!(
            "metadata length {len} is too large"
        )));
    }
    Ok(len as usize)
}

/// An opened cache file: its metadata and where its body is.
#[derive(Debug, Clone)]
pub(crate) struct Opened {
    pub(crate) meta: FileMeta,
    pub(crate) header: InfraHeader,
    /// Offset of the body (the infrastructure header) in the file.
    pub(crate) body_offset: u64,
}

impl Opened {
    /// The file's expected length.
    pub(crate) fn file_len(&self) -> u64 {
        self.body_offset + self.header.object_len()
    }
}

/// Opens the head of a cache file (`head` holds at least the prefix, the sealed metadata and the
/// 40-byte body header) expected to hold the object at `path`, of total length `file_len`.
pub(crate) fn open_head(
    keys: &CacheKeys,
    path: &str,
    head: &[u8],
    file_len: u64,
) -> Result<Opened, FileError> {
    let len = meta_len(head)?;
    let sealed = head
        .get(PREFIX_LEN..PREFIX_LEN + len)
        .ok_or_else(|| FileError::Corrupt("metadata truncated".into()))?;
    let json = aead::open(&keys.meta, &meta_aad(path), sealed, path)
        .map_err(|_| FileError::Corrupt("metadata fails authentication".into()))?;
    let meta: FileMeta = serde_json::from_slice(&json)
        .map_err(|e| FileError::Corrupt(format!("metadata is not valid: {e}")))?;
    if meta.format_version != CACHE_FILE_VERSION {
        return Err(FileError::Version(meta.format_version));
    }
    if meta.path != path {
        return Err(FileError::Corrupt(format!("holds {}", meta.path)));
    }
    let body_offset = PREFIX_LEN + len;
    let raw = head
        .get(body_offset..body_offset + HEADER_LEN)
        .ok_or_else(|| FileError::Corrupt("body header truncated".into()))?;
    let header = InfraHeader::parse(raw, path).map_err(|e| FileError::Corrupt(e.to_string()))?;
    if header.plaintext_len != meta.size {
        return Err(FileError::Corrupt(format!(
            "body holds {} bytes, metadata says {}",
            header.plaintext_len, meta.size
        )));
    }
    let opened = Opened {
        meta,
        header,
        body_offset: body_offset as u64,
    };
    if opened.file_len() != file_len {
        return Err(FileError::Corrupt(format!(
            "file is {file_len} bytes, expected {}",
            opened.file_len()
        )));
    }
    Ok(opened)
}

/// Where in the file the chunks covering the plaintext `range` are, and which chunks they are.
pub(crate) fn chunk_span(opened: &Opened, range: &Range<u64>) -> (Range<u64>, Range<u64>) {
    let (chunks, bytes) = opened.header.chunks_for(range);
    let file = opened.body_offset + bytes.start..opened.body_offset + bytes.end;
    (chunks, file)
}

/// Decrypts `range` of the object from `cipher`, the file bytes of the chunks `chunks`.
pub(crate) fn decrypt_range(
    keys: &CacheKeys,
    opened: &Opened,
    chunks: Range<u64>,
    cipher: &[u8],
    range: &Range<u64>,
) -> Result<Vec<u8>, FileError> {
    if chunks.is_empty() {
        return Ok(Vec::new());
    }
    let first = chunks.start;
    let plain = keys
        .data
        .decrypt_chunks(
            &data_location(&opened.meta.path),
            &opened.header,
            chunks,
            cipher,
        )
        .map_err(|e| FileError::Corrupt(e.to_string()))?;
    let chunk = u64::from(opened.header.chunk_size);
    let offset = usize::try_from(range.start - first * chunk).unwrap_or(usize::MAX);
    let end = range.end.min(opened.header.plaintext_len);
    let len = usize::try_from(end.saturating_sub(range.start)).unwrap_or(usize::MAX);
    plain
        .get(offset..offset.saturating_add(len))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| FileError::Corrupt("chunk shorter than its range".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str =
        "service/segments/ws-one/Syslog/0f0e0d0c-0000-4000-8000-000000000001.parquet";

    fn meta(path: &str, size: u64) -> FileMeta {
        FileMeta {
            format_version: CACHE_FILE_VERSION,
            path: path.into(),
            workspace: "ws-one".into(),
            size,
            last_modified: Utc::now(),
            e_tag: Some("e1".into()),
            max_time: None,
            cached_at: Utc::now(),
        }
    }

    fn read(
        keys: &CacheKeys,
        file: &[u8],
        path: &str,
        range: Range<u64>,
    ) -> Result<Vec<u8>, FileError> {
        let opened = open_head(keys, path, file, file.len() as u64)?;
        let (chunks, span) = chunk_span(&opened, &range);
        let cipher = &file[span.start as usize..span.end as usize];
        decrypt_range(keys, &opened, chunks, cipher, &range)
    }

    #[test]
    fn round_trip_and_range_reads() {
        let keys = CacheKeys::from_service_aek(&Aek::generate().unwrap()).unwrap();
        let plain: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let file = encode(&keys, &meta(PATH, plain.len() as u64), &plain, 4096).unwrap();
        assert_eq!(read(&keys, &file, PATH, 0..20_000).unwrap(), plain);
        assert_eq!(
            read(&keys, &file, PATH, 4000..9000).unwrap(),
            plain[4000..9000]
        );
        assert_eq!(
            read(&keys, &file, PATH, 19_990..20_000).unwrap(),
            plain[19_990..]
        );
        assert!(read(&keys, &file, PATH, 5..5).unwrap().is_empty());
        // Plaintext does not appear in the file.
        assert!(!file.windows(64).any(|w| w == &plain[1000..1064]));
    }

    #[test]
    fn tampering_other_paths_keys_and_versions_are_refused() {
        let keys = CacheKeys::from_service_aek(&Aek::generate().unwrap()).unwrap();
        let plain = vec![7u8; 10_000];
        let file = encode(&keys, &meta(PATH, 10_000), &plain, 4096).unwrap();
        // A flipped byte in the body, in the metadata, truncation.
        let mut flipped = file.clone();
        let n = flipped.len();
        flipped[n - 100] ^= 1;
        assert!(matches!(
            read(&keys, &flipped, PATH, 0..10_000),
            Err(FileError::Corrupt(_))
        ));
        let mut flipped = file.clone();
        flipped[PREFIX_LEN + 3] ^= 1;
        assert!(matches!(
            read(&keys, &flipped, PATH, 0..10),
            Err(FileError::Corrupt(_))
        ));
        assert!(read(&keys, &file[..n - 1], PATH, 0..10).is_err());
        // Another path, another key.
        let other = PATH.replace("ws-one", "ws-two");
        assert!(read(&keys, &file, &other, 0..10).is_err());
        let keys2 = CacheKeys::from_service_aek(&Aek::generate().unwrap()).unwrap();
        assert!(read(&keys2, &file, PATH, 0..10).is_err());
        // Another version.
        let mut v2 = file.clone();
        v2[4] = 2;
        assert!(matches!(
            read(&keys, &v2, PATH, 0..10),
            Err(FileError::Version(2))
        ));
    }
}
