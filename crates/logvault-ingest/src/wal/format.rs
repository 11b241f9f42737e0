//! The on-disk format of the write-ahead log, version 1 (specified in `docs/ingest.md`).
//!
//! ```text
//! file   = file-header frame*
//! file-header (18 + n bytes):
//!   0  5  magic "LVWAL"
//!   5  1  version (1)
//!   6  2  reserved (0)
//!   8  8  first sequence number in the file (u64 LE)
//!  16  2  workspace name length n (u16 LE)
//!  18  n  workspace name (UTF-8)
//! frame  = frame-header body
//! frame-header (28 + m bytes), all of it authenticated as associated data of the body:
//!   0  4  magic "LVWF"
//!   4  4  body length (u32 LE)
//!   8  8  sequence number (u64 LE)
//!  16  8  group number (u64 LE), 1, 2, ... within a file
//!  24  1  flags: bit 0 = last frame of its group
//!  25  1  key scheme: 1 service key, 2 customer key
//!  26  2  account length m (u16 LE)
//!  28  m  account (UTF-8): which account's key the body is sealed under
//! body   = AES-256-GCM seal (nonce 12 || ciphertext || tag 16) of the record,
//!          associated data = "logvault/wal/v1" || u16 LE n || workspace || frame-header
//! ```

use super::{WalKeyRef, WalKeyScheme};

pub(crate) const FILE_MAGIC: &[u8; 5] = b"LVWAL";
pub(crate) const VERSION: u8 = 1;
pub(crate) const FRAME_MAGIC: &[u8; 4] = b"LVWF";
pub(crate) const FILE_HEADER_FIXED: usize = 18;
pub(crate) const FRAME_HEADER_FIXED: usize = 28;
pub(crate) const FLAG_END_OF_GROUP: u8 = 1;
/// Largest sealed body a frame may declare.
pub(crate) const MAX_BODY: usize = 1 << 30;
/// Longest account name in a frame header.
pub(crate) const MAX_ACCOUNT: usize = 1024;
const AAD_DOMAIN: &[u8] = b"logvault/wal/v1";

/// The name of the log file whose first record is `first_seq`.
pub(crate) fn file_name(first_seq: u64) -> String {
    format!("wal-{first_seq:020}.lvw")
}

/// The first sequence number in a log file's name, if it is one.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("wal-")?.strip_suffix(".lvw")?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

pub(crate) fn file_header(workspace: &str, first_seq: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(FILE_HEADER_FIXED + workspace.len());
    h.extend_from_slice(FILE_MAGIC);
    h.push(VERSION);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&first_seq.to_le_bytes());
    // Workspace names are at most 63 bytes (core's naming rules).
    h.extend_from_slice(
        &u16::try_from(workspace.len())
            .unwrap_or(u16::MAX)
            .to_le_bytes(),
    );
    h.extend_from_slice(workspace.as_bytes());
    h
}

/// A parsed file header.
#[derive(Debug)]
pub(crate) struct FileHeader {
    pub(crate) first_seq: u64,
    pub(crate) workspace: String,
    pub(crate) len: usize,
}

/// Why a header could not be parsed: the bytes end too early, or they are wrong.
#[derive(Debug)]
pub(crate) enum HeaderError {
    Short,
    Bad(String),
}

pub(crate) fn parse_file_header(b: &[u8]) -> Result<FileHeader, HeaderError> {
    if b.len() < FILE_HEADER_FIXED {
        return Err(HeaderError::Short);
    }
    if &b[..5] != FILE_MAGIC {
        return Err(HeaderError::Bad(
            "not a logvault write-ahead log file".into(),
        ));
    }
    if b[5] != VERSION {
        return Err(HeaderError::Bad(format!(
            "format version {} is not supported (this build reads version {VERSION})",
            b[5]
        )));
    }
    if b[6..8] != [0, 0] {
        return Err(HeaderError::Bad(
            "reserved header bytes are not zero".into(),
        ));
    }
    let first_seq = u64_at(b, 8);
    let n = usize::from(u16_at(b, 16));
    let end = FILE_HEADER_FIXED + n;
    let name = b.get(FILE_HEADER_FIXED..end).ok_or(HeaderError::Short)?;
    let workspace = std::str::from_utf8(name)
        .map_err(|_| HeaderError::Bad("workspace name is not UTF-8".into()))?
        .to_owned();
    Ok(FileHeader {
        first_seq,
        workspace,
        len: end,
    })
}

/// A parsed frame header.
#[derive(Debug, Clone)]
pub(crate) struct FrameHeader {
    pub(crate) body_len: usize,
    pub(crate) seq: u64,
    pub(crate) group: u64,
    pub(crate) flags: u8,
    pub(crate) key: WalKeyRef,
    pub(crate) len: usize,
}

impl FrameHeader {
    pub(crate) fn end_of_group(&self) -> bool {
        self.flags & FLAG_END_OF_GROUP != 0
    }
}

pub(crate) fn frame_header(
    body_len: usize,
    seq: u64,
    group: u64,
    end_of_group: bool,
    key: &WalKeyRef,
) -> Vec<u8> {
    let account = key.account.as_bytes();
    let mut h = Vec::with_capacity(FRAME_HEADER_FIXED + account.len());
    h.extend_from_slice(FRAME_MAGIC);
    h.extend_from_slice(&u32::try_from(body_len).unwrap_or(u32::MAX).to_le_bytes());
    h.extend_from_slice(&seq.to_le_bytes());
    h.extend_from_slice(&group.to_le_bytes());
    h.push(if end_of_group { FLAG_END_OF_GROUP } else { 0 });
    h.push(key.scheme.code());
    // Account names are checked to be at most MAX_ACCOUNT bytes when the key is made.
    h.extend_from_slice(
        &u16::try_from(account.len())
            .unwrap_or(u16::MAX)
            .to_le_bytes(),
    );
    h.extend_from_slice(account);
    h
}

pub(crate) fn parse_frame_header(b: &[u8]) -> Result<FrameHeader, HeaderError> {
    if b.len() < FRAME_HEADER_FIXED {
        return Err(HeaderError::Short);
    }
    if &b[..4] != FRAME_MAGIC {
        return Err(HeaderError::Bad("bad frame magic".into()));
    }
    let body_len = u32_at(b, 4) as usize;
    if !(logvault_crypto::aead::SEAL_OVERHEAD..=MAX_BODY).contains(&body_len) {
        return Err(HeaderError::Bad(format!(
            "implausible frame length {body_len}"
        )));
    }
    let scheme = WalKeyScheme::from_code(b[25])
        .ok_or_else(|| HeaderError::Bad(format!("unknown key scheme {}", b[25])))?;
    let m = usize::from(u16_at(b, 26));
    if m > MAX_ACCOUNT {
        return Err(HeaderError::Bad(format!("implausible account length {m}")));
    }
    let account = b
        .get(FRAME_HEADER_FIXED..FRAME_HEADER_FIXED + m)
        .ok_or(HeaderError::Short)?;
    let account = std::str::from_utf8(account)
        .map_err(|_| HeaderError::Bad("account is not UTF-8".into()))?
        .to_owned();
    Ok(FrameHeader {
        body_len,
        seq: u64_at(b, 8),
        group: u64_at(b, 16),
        flags: b[24],
        key: WalKeyRef { scheme, account },
        len: FRAME_HEADER_FIXED + m,
    })
}

/// The associated data of a frame's body.
pub(crate) fn frame_aad(workspace: &str, header: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + 2 + workspace.len() + header.len());
    aad.extend_from_slice(AAD_DOMAIN);
    aad.extend_from_slice(
        &u16::try_from(workspace.len())
            .unwrap_or(u16::MAX)
            .to_le_bytes(),
    );
    aad.extend_from_slice(workspace.as_bytes());
    aad.extend_from_slice(header);
    aad
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let h = file_header("ws-one", 42);
        let p = parse_file_header(&h).unwrap();
        assert_eq!(
            (p.first_seq, p.workspace.as_str(), p.len),
            (42, "ws-one", h.len())
        );
        assert!(matches!(
            parse_file_header(&h[..10]),
            Err(HeaderError::Short)
        ));
        let mut v2 = h.clone();
        v2[5] = 2;
        assert!(
            matches!(parse_file_header(&v2), Err(HeaderError::Bad(r)) if r.contains("version 2"))
        );

        let key = WalKeyRef {
            scheme: WalKeyScheme::Customer,
            account: "acct1".into(),
        };
        let f = frame_header(100, 7, 3, true, &key);
        let p = parse_frame_header(&f).unwrap();
        assert_eq!((p.body_len, p.seq, p.group, p.len), (100, 7, 3, f.len()));
        assert!(p.end_of_group());
        assert_eq!(p.key, key);
        assert!(matches!(
            parse_frame_header(&f[..30]),
            Err(HeaderError::Short)
        ));
    }

    #[test]
    fn file_names() {
        assert_eq!(file_name(7), "wal-00000000000000000007.lvw");
        assert_eq!(parse_file_name(&file_name(123_456)), Some(123_456));
        assert_eq!(parse_file_name("wal-12.lvw"), None);
        assert_eq!(parse_file_name("checkpoint"), None);
    }
}
