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

use parquet::encryption::decrypt::{FileDecryptionProperties, KeyRetriever};
use parquet::encryption::encrypt::FileEncryptionProperties;

use crate::{CryptoError, Dek};

/// A check run on a segment's key metadata before its key is handed to parquet: it returns why
/// the metadata is not acceptable (unknown format version, another account), or `Ok`.
pub type KeyMetadataCheck = dyn Fn(&[u8]) -> Result<(), String> + Send + Sync;

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

/// Decryption properties for reading a segment written under `dek` with `aad_prefix`, that first
/// runs `check` on the key metadata stored in the file and refuses to decrypt when it fails.
///
/// The data key is only handed to parquet once the file's key metadata passed the check, so a
/// reader can refuse a segment of an unknown format version with a clear reason instead of an
/// integrity failure. The reason `check` gives comes back inside parquet's error.
///
/// # Errors
/// [`CryptoError::Parquet`] if parquet refuses the properties.
pub fn segment_decryption_properties_checked(
    dek: Dek,
    aad_prefix: &[u8],
    check: Box<KeyMetadataCheck>,
) -> Result<Arc<FileDecryptionProperties>, CryptoError> {
    let retriever = CheckedRetriever { dek, check };
    FileDecryptionProperties::with_key_retriever(Arc::new(retriever))
        .with_aad_prefix(aad_prefix.to_vec())
        .build()
        .map_err(|e| CryptoError::Parquet {
            reason: e.to_string(),
        })
}

struct CheckedRetriever {
    dek: Dek,
    check: Box<KeyMetadataCheck>,
}

impl KeyRetriever for CheckedRetriever {
    fn retrieve_key(&self, key_metadata: &[u8]) -> parquet::errors::Result<Vec<u8>> {
        (self.check)(key_metadata).map_err(parquet::errors::ParquetError::General)?;
        Ok(self.dek.0.to_owned_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Aek;

    #[test]
    fn checked_properties_hand_out_the_key_only_after_the_check() {
        let aek = Aek::generate().unwrap();
        let props = segment_decryption_properties_checked(
            aek.derive_dek("s1").unwrap(),
            b"aad",
            Box::new(|meta: &[u8]| {
                if meta == b"v1" {
                    Ok(())
                } else {
                    Err("unknown version".to_owned())
                }
            }),
        )
        .unwrap();
        assert!(props.uses_key_retriever());
        let good = props.footer_key(Some(b"v1")).unwrap().into_owned();
        assert_eq!(good.len(), crate::KEY_LEN);
        let err = props.footer_key(Some(b"v2")).unwrap_err().to_string();
        assert!(err.contains("unknown version"), "{err}");
    }
}
