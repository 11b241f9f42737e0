//! Ingestion for logvault: from payloads to time-partitioned Arrow batches, durably.
//!
//! - [`parse`]: JSON lines, JSON arrays, CSV and text (syslog) payloads into Arrow
//!   `RecordBatch`es, streaming and in bounded memory, with malformed records reported by line;
//! - [`TableSchema`]: each table's schema, inferred and growing, with the widening rule of
//!   [`ColumnKind::widen`]; `TimeGenerated` (UTC) always present, from the data or the clock;
//! - [`batcher`]: accumulates rows per table and time partition into segments-to-be and hands
//!   them to a [`SegmentSink`];
//! - [`wal`]: the per-workspace write-ahead log, frames sealed with AES-256-GCM, group commit.
//!
//! It must never: touch raw key bytes (keys come in as `logvault_crypto::Key256`), print, or
//! write anything unencrypted to disk. The formats and rules are specified in `docs/ingest.md`.

pub mod batcher;
mod chunk;
mod error;
mod input;
mod kind;
pub mod parse;
mod schema;
pub mod time;
mod value;
pub mod wal;

pub use batcher::{
    Batcher, BatcherOptions, Granularity, PartitionKey, SegmentBatch, SegmentSink, SeqRange,
};
pub use error::IngestError;
pub use kind::{
    ColumnKind, DYNAMIC_KIND, KIND_METADATA_KEY, SOURCE_TIME_ZONE_METADATA_KEY, TIME_GENERATED,
    TIME_RECEIVED, is_dynamic, timestamp_type,
};
pub use parse::{
    ErrorPolicy, Format, ParseOptions, ParseOutcome, ParseReport, Parser, RecordError,
    parse_payload,
};
pub use schema::{ColumnDef, SchemaChange, TableSchema};
pub use wal::{
    KeyScheme, RecoveredRecord, Recovery, TornTail, Wal, WalKey, WalKeyRef, WalKeyring, WalOptions,
    WalRecord, WalStats,
};
