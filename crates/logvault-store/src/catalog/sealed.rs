//! A manifest as stored: the file's shape (schemas kept once and referenced by index), sealed
//! with AES-256-GCM under the catalog key, bound to its workspace, table and version.

use std::collections::BTreeMap;
use std::io::Cursor;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use logvault_crypto::{Key256, aead};
use serde::{Deserialize, Serialize};

use super::{KeyScheme, MANIFEST_FORMAT_VERSION, Manifest, RetiredSegment, SegmentEntry, WalRange};
use crate::StoreError;
use crate::error::parse_versioned;
use crate::layout::{AccountId, SegmentId};

/// The manifest as stored (before sealing): schemas are kept once and referenced by index.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestFile {
    format_version: u32,
    workspace: String,
    table: String,
    version: u64,
    retention_days: u32,
    updated: DateTime<Utc>,
    /// Arrow IPC stream (schema only), base64.
    schemas: Vec<String>,
    segments: Vec<EntryFile>,
    /// The declared schema (Arrow IPC stream, schema only, base64). Added within format
    /// version 1: a reader that predates it ignores the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    declared_schema: Option<String>,
    /// Segments replaced and waiting for deletion. Added within format version 1: absent in
    /// older manifests (nothing waiting), ignored by older readers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    retired: Vec<RetiredSegment>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryFile {
    id: SegmentId,
    account: AccountId,
    min_time: DateTime<Utc>,
    max_time: DateTime<Utc>,
    rows: u64,
    bytes: u64,
    schema: usize,
    key_scheme: KeyScheme,
    epoch: u32,
    created: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    wal: Vec<WalRange>,
}

fn aad(workspace: &str, table: &str, version: u64) -> Vec<u8> {
    format!("logvault/catalog/v{MANIFEST_FORMAT_VERSION}/{workspace}/{table}/{version}")
        .into_bytes()
}

pub(super) fn seal_manifest(key: &Key256, m: &Manifest) -> Result<Vec<u8>, StoreError> {
    let what = || format!("catalog of table {} in workspace {}", m.table, m.workspace);
    let mut schemas: Vec<String> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut segments = Vec::with_capacity(m.segments.len());
    for s in &m.segments {
        let ipc = schema_to_b64(&s.schema).map_err(|e| StoreError::corrupt(what(), e))?;
        let i = *index.entry(ipc.clone()).or_insert_with(|| {
            schemas.push(ipc);
            schemas.len() - 1
        });
        segments.push(EntryFile {
            id: s.id,
            account: s.account.clone(),
            min_time: s.min_time,
            max_time: s.max_time,
            rows: s.rows,
            bytes: s.bytes,
            schema: i,
            key_scheme: s.key_scheme.clone(),
            epoch: s.epoch,
            created: s.created,
            wal: s.wal.clone(),
        });
    }
    let file = ManifestFile {
        format_version: MANIFEST_FORMAT_VERSION,
        workspace: m.workspace.clone(),
        table: m.table.clone(),
        version: m.version,
        retention_days: m.retention_days,
        updated: m.updated,
        schemas,
        segments,
        declared_schema: m
            .declared
            .as_ref()
            .map(|s| schema_to_b64(s))
            .transpose()
            .map_err(|e| StoreError::corrupt(what(), e))?,
        retired: m.retired.clone(),
    };
    let json = serde_json::to_vec(&file).map_err(|e| StoreError::corrupt(what(), e.to_string()))?;
    aead::seal(key, &aad(&m.workspace, &m.table, m.version), &json)
        .map_err(|e| StoreError::crypto(what(), &e))
}

pub(super) fn open_manifest(
    key: &Key256,
    workspace: &str,
    table: &str,
    version: u64,
    sealed: &[u8],
) -> Result<Manifest, StoreError> {
    let integrity = |reason: String| StoreError::ManifestIntegrity {
        workspace: workspace.to_owned(),
        table: table.to_owned(),
        version,
        reason,
    };
    let what = format!("catalog of table {table} in workspace {workspace} (version {version})");
    let json = aead::open(key, &aad(workspace, table, version), sealed, &what)
        .map_err(|e| integrity(e.to_string()))?;
    let file: ManifestFile = parse_versioned(&json, &what, MANIFEST_FORMAT_VERSION)?;
    let schemas = file
        .schemas
        .iter()
        .map(|s| schema_from_b64(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::corrupt(&what, e))?;
    let mut segments = Vec::with_capacity(file.segments.len());
    for s in file.segments {
        let schema = schemas
            .get(s.schema)
            .cloned()
            .ok_or_else(|| StoreError::corrupt(&what, format!("segment {} has no schema", s.id)))?;
        segments.push(SegmentEntry {
            id: s.id,
            account: s.account,
            min_time: s.min_time,
            max_time: s.max_time,
            rows: s.rows,
            bytes: s.bytes,
            schema,
            key_scheme: s.key_scheme,
            epoch: s.epoch,
            created: s.created,
            wal: s.wal,
        });
    }
    let declared = file
        .declared_schema
        .as_deref()
        .map(schema_from_b64)
        .transpose()
        .map_err(|e| StoreError::corrupt(&what, format!("declared schema: {e}")))?;
    Ok(Manifest {
        workspace: file.workspace,
        table: file.table,
        version: file.version,
        retention_days: file.retention_days,
        segments,
        updated: file.updated,
        declared,
        retired: file.retired,
    })
}

fn schema_to_b64(schema: &Schema) -> Result<String, String> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    let bytes = writer.into_inner().map_err(|e| e.to_string())?;
    Ok(STANDARD.encode(bytes))
}

fn schema_from_b64(text: &str) -> Result<SchemaRef, String> {
    let bytes = STANDARD.decode(text).map_err(|e| e.to_string())?;
    let reader = StreamReader::try_new(Cursor::new(bytes), None).map_err(|e| e.to_string())?;
    Ok(reader.schema())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_RETENTION_DAYS;
    use arrow::datatypes::{DataType, Field, TimeUnit};

    #[test]
    fn schemas_survive_ipc_base64() {
        let schema = Schema::new(vec![
            Field::new(
                "TimeGenerated",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                false,
            ),
            Field::new("Message", DataType::Utf8, true),
        ]);
        let back = schema_from_b64(&schema_to_b64(&schema).unwrap()).unwrap();
        assert_eq!(back.as_ref(), &schema);
    }

    #[test]
    fn manifests_are_bound_to_table_and_version() {
        let key = Key256::generate().unwrap();
        let mut m = Manifest::empty("ws-one", "Syslog");
        m.version = 3;
        let sealed = seal_manifest(&key, &m).unwrap();
        assert_eq!(
            open_manifest(&key, "ws-one", "Syslog", 3, &sealed).unwrap(),
            m
        );
        for (ws, t, v) in [
            ("ws-two", "Syslog", 3),
            ("ws-one", "Other", 3),
            ("ws-one", "Syslog", 2),
        ] {
            let err = open_manifest(&key, ws, t, v, &sealed).unwrap_err();
            assert!(err.is_integrity(), "{err}");
        }
        assert!(m.clone().set_retention(0).is_err());
        assert!(m.set_retention(MAX_RETENTION_DAYS).is_ok());
    }
}
