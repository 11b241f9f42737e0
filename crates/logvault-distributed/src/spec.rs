//! What a workspace table is on the wire: its catalog entries, never a key.
//!
//! A [`TableSpec`] is the part of a table's manifest a scan needs (segment ids, accounts, time
//! ranges, sizes, key epochs and schemes, which name a key but hold none) as versioned JSON. The
//! table's schema travels beside it in DataFusion's own protobuf.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use logvault_store::{AccountId, KeyScheme, Manifest, SegmentEntry, SegmentId};
use serde::{Deserialize, Serialize};

use crate::DistributedError;

/// The version of [`TableSpec`]'s JSON this build writes and reads.
pub const TABLE_SPEC_VERSION: u32 = 1;

/// The bytes every logvault table's encoding starts with (so that a codec can tell it from the
/// tables of other codecs).
pub(crate) const TABLE_MAGIC: &[u8] = b"logvault-table:";

/// A workspace table as a scheduler plans it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableSpec {
    /// [`TABLE_SPEC_VERSION`].
    pub version: u32,
    /// The workspace.
    pub workspace: String,
    /// The table.
    pub table: String,
    /// The catalog version the segment list was taken from.
    pub manifest_version: u64,
    /// The segments.
    pub segments: Vec<SegmentSpec>,
}

/// One segment of a [`TableSpec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentSpec {
    /// The segment's id.
    pub id: SegmentId,
    /// The storage account holding it.
    pub account: AccountId,
    /// Its smallest `TimeGenerated`.
    pub min_time: DateTime<Utc>,
    /// Its largest `TimeGenerated`.
    pub max_time: DateTime<Utc>,
    /// Rows.
    pub rows: u64,
    /// Bytes of the Parquet file.
    pub bytes: u64,
    /// The account key epoch it was written under.
    pub epoch: u32,
    /// Which key protected the account key when it was written (names, no key).
    pub key_scheme: KeyScheme,
    /// When it was written.
    pub created: DateTime<Utc>,
}

impl TableSpec {
    /// The spec of `manifest`'s table.
    pub fn from_manifest(manifest: &Manifest) -> Self {
        Self {
            version: TABLE_SPEC_VERSION,
            workspace: manifest.workspace.clone(),
            table: manifest.table.clone(),
            manifest_version: manifest.version,
            segments: manifest
                .segments
                .iter()
                .map(|s| SegmentSpec {
                    id: s.id,
                    account: s.account.clone(),
                    min_time: s.min_time,
                    max_time: s.max_time,
                    rows: s.rows,
                    bytes: s.bytes,
                    epoch: s.epoch,
                    key_scheme: s.key_scheme.clone(),
                    created: s.created,
                })
                .collect(),
        }
    }

    /// A manifest with the spec's segments, each with the table's `schema` (the file's own
    /// schema is read from its footer when it is scanned).
    pub fn to_manifest(&self, schema: &SchemaRef) -> Manifest {
        Manifest {
            workspace: self.workspace.clone(),
            table: self.table.clone(),
            version: self.manifest_version,
            retention_days: logvault_store::DEFAULT_RETENTION_DAYS,
            segments: self
                .segments
                .iter()
                .map(|s| SegmentEntry {
                    id: s.id,
                    account: s.account.clone(),
                    min_time: s.min_time,
                    max_time: s.max_time,
                    rows: s.rows,
                    bytes: s.bytes,
                    schema: Arc::clone(schema),
                    key_scheme: s.key_scheme.clone(),
                    epoch: s.epoch,
                    created: s.created,
                    wal: Vec::new(),
                })
                .collect(),
            updated: DateTime::<Utc>::UNIX_EPOCH,
            declared: Some(Arc::clone(schema)),
            // Replaced segments are never read by queries.
            retired: Vec::new(),
        }
    }

    /// The spec as bytes: [`TABLE_MAGIC`], then JSON.
    ///
    /// # Errors
    /// [`DistributedError::Codec`] (never in practice: every field serialises).
    pub fn encode(&self, buf: &mut Vec<u8>) -> Result<(), DistributedError> {
        buf.extend_from_slice(TABLE_MAGIC);
        serde_json::to_writer(buf, self).map_err(|e| DistributedError::Codec {
            what: format!("table {} of workspace {}", self.table, self.workspace),
            reason: e.to_string(),
        })
    }

    /// Reads a spec written by [`TableSpec::encode`]; `None` if `buf` is not one.
    ///
    /// # Errors
    /// [`DistributedError::Codec`] for damaged JSON or another version.
    pub fn decode(buf: &[u8]) -> Result<Option<Self>, DistributedError> {
        let Some(json) = buf.strip_prefix(TABLE_MAGIC) else {
            return Ok(None);
        };
        let what = || "a logvault table".to_owned();
        let spec: Self = serde_json::from_slice(json).map_err(|e| DistributedError::Codec {
            what: what(),
            reason: e.to_string(),
        })?;
        if spec.version != TABLE_SPEC_VERSION {
            return Err(DistributedError::Codec {
                what: what(),
                reason: format!(
                    "table spec version {} (this logvault reads {TABLE_SPEC_VERSION})",
                    spec.version
                ),
            });
        }
        Ok(Some(spec))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(
                "TimeGenerated",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("Message", DataType::Utf8View, true),
        ]))
    }

    #[test]
    fn a_spec_survives_the_wire_and_refuses_other_versions() {
        let t = DateTime::<Utc>::from_timestamp(1_772_000_000, 0).unwrap();
        let spec = TableSpec {
            version: TABLE_SPEC_VERSION,
            workspace: "ws-one".into(),
            table: "Syslog".into(),
            manifest_version: 7,
            segments: vec![SegmentSpec {
                id: SegmentId::generate(),
                account: AccountId::cluster("prod1").unwrap(),
                min_time: t,
                max_time: t,
                rows: 10,
                bytes: 2048,
                epoch: 1,
                key_scheme: KeyScheme::Service {
                    key_version: "v1".into(),
                },
                created: t,
            }],
        };
        let mut buf = Vec::new();
        spec.encode(&mut buf).unwrap();
        assert_eq!(TableSpec::decode(&buf).unwrap().as_ref(), Some(&spec));
        let manifest = spec.to_manifest(&schema());
        assert_eq!(TableSpec::from_manifest(&manifest), spec);
        assert_eq!(manifest.schema().fields().len(), 2);

        assert_eq!(TableSpec::decode(b"something else").unwrap(), None);
        let mut other = spec.clone();
        other.version = 2;
        let mut buf = Vec::new();
        other.encode(&mut buf).unwrap();
        let err = TableSpec::decode(&buf).unwrap_err().to_string();
        assert!(err.contains("version 2"), "{err}");
        let err = TableSpec::decode(b"logvault-table:{")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a logvault table"), "{err}");
    }
}
