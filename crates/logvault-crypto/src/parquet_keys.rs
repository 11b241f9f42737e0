//! Parquet Modular Encryption properties for one segment.
//!
//! Every segment uses its DEK as the footer key with no per-column keys, which in parquet-rs
//! means the footer and every column are encrypted with AES-GCM-256. The AAD prefix binds the file
//! to its segment id and is not stored in the file: a reader must supply the id it expects, so a
//! renamed or swapped file fails to decrypt.
//!
//! parquet takes ownership of key bytes as a plain `Vec<u8>`; those copies live inside parquet's
//! properties for the duration of a read or write and are outside our zeroizing types. That is
//! the one place raw key bytes leave this crate, and only into parquet.

use std::sync::Arc;

use parquet::encryption::decrypt::FileDecryptionProperties;
use parquet::encryption::encrypt::FileEncryptionProperties;

use crate::{CryptoError, Dek};

/// Encryption properties for writing a segment under `dek`.
///
/// # Errors
/// [`CryptoError::Parquet`] if parquet refuses the properties.
pub fn segment_encryption_properties(
    dek: &Dek,
    aad_prefix: &[u8],
    key_metadata: Vec<u8>,
) -> Result<Arc<FileEncryptionProperties>, CryptoError> {
    FileEncryptionProperties::builder(dek.0.to_owned_bytes())
        .with_footer_key_metadata(key_metadata)
        .with_aad_prefix(aad_prefix.to_vec())
        .with_aad_prefix_storage(false)
        .build()
        .map_err(|e| CryptoError::Parquet {
            reason: e.to_string(),
        })
}

/// Decryption properties for reading a segment written under `dek` with `aad_prefix`.
///
/// # Errors
/// [`CryptoError::Parquet`] if parquet refuses the properties.
pub fn segment_decryption_properties(
    dek: &Dek,
    aad_prefix: &[u8],
) -> Result<Arc<FileDecryptionProperties>, CryptoError> {
    FileDecryptionProperties::builder(dek.0.to_owned_bytes())
        .with_aad_prefix(aad_prefix.to_vec())
        .build()
        .map_err(|e| CryptoError::Parquet {
            reason: e.to_string(),
        })
}
