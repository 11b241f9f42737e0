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
//!
//! ```
//! use std::io::Cursor;
//!
//! use chrono::{TimeZone, Utc};
//! use logvault_core::TestClock;
//! use logvault_ingest::{ColumnKind, Format, ParseOptions, TableSchema, parse_payload};
//!
//! let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
//! let mut schema = TableSchema::new("SigninLogs")?;
//! let payload = "\u{feff}TimeGenerated [UTC],UserPrincipalName,ResultType\n\
//!                \"4/28/2021, 2:08:45.221 PM\",adele@contoso.com,0\n\
//!                not,enough\n";
//! let options = ParseOptions::default();
//! let out = parse_payload(Cursor::new(payload), Format::Csv, &mut schema, &options, &clock)?;
//! assert_eq!((out.report.accepted, out.report.rejected), (1, 1));
//! assert_eq!(out.report.errors[0].to_string(), "line 3: expected 3 fields as in the header, found 2");
//! assert_eq!(schema.get("ResultType").map(|c| c.kind), Some(ColumnKind::Int));
//! assert_eq!(out.batches[0].schema().field(0).name(), "TimeGenerated");
//! # Ok::<(), logvault_ingest::IngestError>(())
//! ```

mod arrow_input;
pub mod batcher;
mod chunk;
mod declared;
mod error;
mod input;
mod kind;
pub mod parse;
mod rows;
mod schema;
pub mod time;
mod value;
pub mod wal;

pub use arrow_input::conform_batch;
pub use batcher::{
    Batcher, BatcherOptions, DEFAULT_QUIET_ROWS, Granularity, OpenSegment, PartitionKey,
    SegmentBatch, SegmentDone, SegmentSink, SeqRange,
};
pub use declared::{ConformReport, KUSTO_TYPE_METADATA_KEY, conform_to_declared};
pub use error::IngestError;
pub use kind::{
    ColumnKind, DYNAMIC_KIND, KIND_METADATA_KEY, SOURCE_TIME_ZONE_METADATA_KEY, TIME_GENERATED,
    TIME_RECEIVED, is_dynamic, timestamp_type,
};
pub use parse::{
    ErrorPolicy, Format, ParseOptions, ParseOutcome, ParseReport, Parser, RecordError,
    parse_json_array, parse_payload,
};
pub use rows::RowBuilder;
pub use schema::{ColumnDef, SchemaChange, TableSchema};
pub use wal::{
    LayoutUpgrade, RecoveredRecord, Recovery, TornTail, Wal, WalKey, WalKeyError, WalKeyRef,
    WalKeyScheme, WalKeyring, WalOptions, WalRecord, WalStats,
};
