//! Secret types, authenticated encryption and the key hierarchy of logvault.
//!
//! This crate owns every raw key byte in logvault. It provides:
//! - [`Key256`] and [`SecretBytes`], which zeroize on drop and print as `REDACTED`;
//! - [`aead`]: AES-256-GCM sealing of small blobs (wrapped keys, vault records, log frames);
//! - [`Aek`] and [`Dek`], the account and data keys of the hierarchy (DEK = HKDF-SHA256 of the
//!   AEK over the segment id);
//! - [`parquet_keys`]: the Parquet Modular Encryption properties of a segment;
//! - [`infra`]: the chunked ChaCha20-Poly1305 infrastructure layer (double encryption);
//! - [`shuffle`]: the ephemeral key and chunked AES-256-GCM files of a distributed query's
//!   shuffle (stage outputs on executors);
//! - [`master`]: root key files (mode 0600) for the local vault;
//! - [`rsa_oaep`]: the local vault's RSA keys and their RSA-OAEP-256 wrapping;
//! - [`MacKey`]: HMAC-SHA256 signing and constant-time verification (the server's tokens);
//! - [`tls`]: the server's self-signed certificate, its private key only ever sealed or handed
//!   to rustls.
//!
//! It must never: talk to a vault, do I/O beyond root key files (the shuffle's sealing writer
//! and opening reader only wrap a stream their caller opened), log, or hand raw key bytes to
//! another logvault crate. Other crates hold keys only through these opaque types.
//!
//! A round trip through the hierarchy:
//!
//! ```
//! use logvault_crypto::{aead, Aek, Key256};
//!
//! // The KEK lives in a vault; here a local key stands in for it.
//! let kek = Key256::generate()?;
//! let aek = Aek::generate()?;
//! let wrapped = aead::seal_secret(&kek, b"account-1", &aek.to_secret())?;
//!
//! let unwrapped = aead::open_secret(&kek, b"account-1", &wrapped, "account-1")?;
//! let aek2 = Aek::from_secret(&unwrapped)?;
//! assert_eq!(
//!     aek.derive_dek("segment-1")?.fingerprint(),
//!     aek2.derive_dek("segment-1")?.fingerprint()
//! );
//! # Ok::<(), logvault_crypto::CryptoError>(())
//! ```

pub mod aead;
mod error;
mod hierarchy;
pub mod infra;
mod mac;
pub mod master;
pub mod parquet_keys;
pub mod rsa_oaep;
mod secret;
pub mod shuffle;
pub mod tls;

#[cfg(test)]
mod interop_tests;

pub use error::CryptoError;
pub use hierarchy::{Aek, Dek};
pub use infra::{InfraHeader, InfraKey, InfraSealer};
pub use mac::{MAC_LEN, MacKey};
pub use rsa_oaep::RsaKey;
pub use secret::{KEY_LEN, Key256, SecretBytes, fill_random};
pub use shuffle::{ShuffleKey, ShuffleOpenReader, ShuffleSealWriter};
