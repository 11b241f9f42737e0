//! The encrypted columnar store: where logvault's data rests.
//!
//! This crate owns:
//! - storage accounts ([`StorageAccount`]): `service` for the service's own storage,
//!   `cluster-<name>` per dedicated cluster, each a prefix of one object_store root (the local
//!   filesystem by default, any object_store backend by URL);
//! - the [`Keyring`]: each account's key (AEK), random, persisted only wrapped by a vault key
//!   (KEK) as numbered records, re-wrapped on rotation, and cached unwrapped;
//! - segments: Arrow batches as Parquet files under Parquet Modular Encryption, with a data key
//!   (DEK) per segment derived from the AEK and an AAD binding the file to its place;
//! - the [`Catalog`]: a sealed manifest per workspace and table, updated with conditional puts;
//! - double encryption: the [`InfraEncryptedStore`] wrapper, a second layer with another
//!   algorithm and an independent key, fixed at account creation;
//! - retention: purging segments past their table's retention, even under a revoked key;
//! - the scrub ([`Store::verify_workspace`]): every module of every segment and every catalog
//!   version read and authenticated, damaged segments reported by name;
//! - the DataFusion side: the [`AccountRouter`] object store and the
//!   [`SegmentEncryptionFactory`], which decrypts from cached account keys only.
//!
//! It must never: write a byte of data or catalog in plaintext, persist an unwrapped key, call
//! the vault per file while a query runs, or decide what a vault failure means beyond keeping a
//! cached key through an outage and evicting it on revocation (the key lifecycle decides the
//! rest). The on-disk format is specified in `docs/format.md`.

mod account;
mod catalog;
mod catalog_cache;
mod compaction;
mod documents;
mod error;
mod factory;
mod gc;
mod infra_store;
mod keyring;
mod layout;
mod lease;
mod local_reads;
pub mod needles;
mod read_cache;
mod reader_factory;
mod records;
mod retention;
mod router;
pub mod schema;
mod segment;
mod segment_layout;
mod segment_writer;
mod store;
mod verify;

pub use account::{
    ACCOUNT_FORMAT_VERSION, AccountMeta, StorageAccount, local_root, url_root, url_root_env,
};
pub use catalog::{
    Catalog, DEFAULT_MANIFEST_VERSION_MIN_AGE_SECS, DEFAULT_RETENTION_DAYS, KeyScheme,
    MANIFEST_FORMAT_VERSION, MANIFEST_VERSIONS_KEPT, MAX_RETENTION_DAYS, MIN_RETENTION_DAYS,
    Manifest, RetiredSegment, SegmentEntry, WalRange,
};
pub use compaction::{CompactionOptions, CompactionReport, MergedSegments};
pub use documents::DOCUMENT_FORMAT_VERSION;
pub use error::StoreError;
pub use factory::{ENCRYPTION_FACTORY_ID, SegmentEncryptionFactory, table_parquet_options};
pub use gc::CollectReport;
pub use infra_store::InfraEncryptedStore;
pub use keyring::{
    AccountKeyLease, AekRecord, CURRENT_AEK_EPOCH, KEY_RECORD_FORMAT_VERSION, KekBinding, Keyring,
    KeyringConfig,
};
pub use layout::{AccountId, SERVICE_ACCOUNT, SegmentId, SegmentLocation};
pub use lease::{LEASE_FORMAT_VERSION, LeaseGrant, LeaseHolder, Leases};
pub use local_reads::LocalReads;
pub use read_cache::{
    DEFAULT_FOOTER_CACHE_BYTES, DEFAULT_OUTER_CACHE_BYTES, ReadCacheConfig, ReadCacheStats,
    ReadCaches,
};
pub use reader_factory::SegmentReaderFactory;
pub use retention::{PurgeReport, PurgedSegment, expired, retention_cutoff};
pub use router::AccountRouter;
pub use segment::{
    DEFAULT_PART_BYTES, SEGMENT_FORMAT_VERSION, SegmentCompression, SegmentOptions, TIME_COLUMN,
};
pub use segment_layout::column_encodings;
pub use segment_writer::SegmentWriter;
pub use store::{DEFAULT_SEGMENT_GRACE_SECS, STORAGE_URL, Store, StoreConfig};
pub use verify::{
    ManifestDamage, SegmentCheck, SegmentStatus, TableVerification, VerifyProgress, VerifyReport,
};
