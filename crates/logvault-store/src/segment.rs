//! Segments: Arrow record batches stored as one Parquet file under Parquet Modular Encryption.
//!
//! - DEK = HKDF-SHA256(AEK, segment id); AES-GCM-256; encrypted footer; every column encrypted.
//! - AAD prefix `logvault/segment/v1/<account>/<workspace>/<table>/<id>`, not stored: a reader
//!   supplies the one it expects, so a renamed, moved or swapped file fails to decrypt.
//! - Key metadata (stored, plaintext): `{"format":"logvault-segment","version":1,
//!   "account":"...","epoch":1}`, never a key. Readers check the version first.
//! - zstd compression, page-level statistics (column index) and the offset index, so that
//!   queries prune row groups and pages of encrypted files too.

use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use logvault_crypto::Aek;
use logvault_crypto::parquet_keys::{
    segment_decryption_properties_checked, segment_encryption_properties,
};
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::encryption::decrypt::FileDecryptionProperties;
use parquet::encryption::encrypt::FileEncryptionProperties;
use parquet::file::metadata::PageIndexPolicy;
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::layout::SegmentLocation;

/// Format version of segment files.
pub const SEGMENT_FORMAT_VERSION: u32 = 1;
/// The column every row has (R-D1); segments record its range.
pub const TIME_COLUMN: &str = "TimeGenerated";
const KEY_METADATA_FORMAT: &str = "logvault-segment";

/// How segments are encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentOptions {
    /// Rows per row group at most (the unit of statistics pruning).
    pub max_row_group_rows: usize,
    /// Rows per data page at most (the unit of page-index pruning).
    pub data_page_rows: usize,
    /// Compression of pages (before encryption).
    pub compression: SegmentCompression,
    /// Encoded bytes a segment being written gathers before it sends them to storage as one
    /// part of a multipart upload (S3 refuses parts under 5 MiB but the last). A segment
    /// smaller than this is stored with one put when it is finished.
    pub part_bytes: usize,
    /// Whether segments carry a needle index (`crate::needles`; on by default: about 10 bits
    /// per value of each indexed column, in a sealed block after the row groups that only
    /// lookups of given values read).
    pub needle_index: bool,
}

/// How segment pages are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentCompression {
    /// zstd at the given level (1 is fast and already compresses logs well).
    Zstd(i32),
    /// Snappy.
    Snappy,
    /// None.
    Uncompressed,
}

impl SegmentCompression {
    /// The Parquet codec (a plaintext baseline writes with it too).
    ///
    /// # Errors
    /// A zstd level Parquet does not accept, naming it.
    pub fn parquet(self) -> Result<Compression, String> {
        Ok(match self {
            Self::Zstd(level) => Compression::ZSTD(
                ZstdLevel::try_new(level).map_err(|e| format!("zstd level {level}: {e}"))?,
            ),
            Self::Snappy => Compression::SNAPPY,
            Self::Uncompressed => Compression::UNCOMPRESSED,
        })
    }
}

impl Default for SegmentOptions {
    fn default() -> Self {
        Self {
            max_row_group_rows: 128 * 1024,
            data_page_rows: 16 * 1024,
            compression: SegmentCompression::Zstd(1),
            part_bytes: DEFAULT_PART_BYTES,
            needle_index: true,
        }
    }
}

/// The default of [`SegmentOptions::part_bytes`]: S3's smallest part.
pub const DEFAULT_PART_BYTES: usize = 5 << 20;

/// What the key metadata of a segment says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KeyMetadata {
    format: String,
    version: u32,
    account: String,
    epoch: u32,
}

/// What writing a segment produced.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
    pub(crate) min_time: DateTime<Utc>,
    pub(crate) max_time: DateTime<Utc>,
    pub(crate) schema: SchemaRef,
}

/// Parquet encryption properties for writing the segment at `loc` under `aek`.
pub(crate) fn encryption_properties(
    loc: &SegmentLocation,
    aek: &Aek,
    epoch: u32,
) -> Result<Arc<FileEncryptionProperties>, StoreError> {
    let meta = KeyMetadata {
        format: KEY_METADATA_FORMAT.to_owned(),
        version: SEGMENT_FORMAT_VERSION,
        account: loc.account.to_string(),
        epoch,
    };
    let meta = serde_json::to_vec(&meta).map_err(|e| StoreError::Encode {
        segment: loc.to_string(),
        reason: e.to_string(),
    })?;
    let dek = aek
        .derive_dek(&loc.segment.to_string())
        .map_err(|e| StoreError::crypto(format!("data key of segment {loc}"), &e))?;
    segment_encryption_properties(&dek, &loc.aad_prefix(), meta)
        .map_err(|e| StoreError::crypto(format!("encryption of segment {loc}"), &e))
}

/// A slot where the key-metadata check leaves the precise error it found.
pub(crate) type CheckSlot = Arc<Mutex<Option<StoreError>>>;

/// Parquet decryption properties for reading the segment at `loc` under `aek`: the key is handed
/// out only if the file's key metadata has a known version and names the expected account and
/// epoch.
pub(crate) fn decryption_properties(
    loc: &SegmentLocation,
    aek: &Aek,
    epoch: u32,
    slot: Option<CheckSlot>,
) -> Result<Arc<FileDecryptionProperties>, StoreError> {
    let dek = aek
        .derive_dek(&loc.segment.to_string())
        .map_err(|e| StoreError::crypto(format!("data key of segment {loc}"), &e))?;
    let expected = loc.clone();
    let check = move |meta: &[u8]| {
        check_key_metadata(&expected, epoch, meta).map_err(|e| {
            let text = e.to_string();
            if let Some(slot) = &slot {
                *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
            }
            text
        })
    };
    segment_decryption_properties_checked(dek, &loc.aad_prefix(), Box::new(check))
        .map_err(|e| StoreError::crypto(format!("decryption of segment {loc}"), &e))
}

fn check_key_metadata(loc: &SegmentLocation, epoch: u32, raw: &[u8]) -> Result<(), StoreError> {
    let integrity = |reason: String| StoreError::Integrity {
        segment: loc.to_string(),
        reason,
    };
    let value: serde_json::Value = serde_json::from_slice(raw)
        .map_err(|_| integrity("its key metadata is not logvault's".into()))?;
    if value.get("format").and_then(serde_json::Value::as_str) != Some(KEY_METADATA_FORMAT) {
        return Err(integrity("its key metadata is not logvault's".into()));
    }
    let version = value
        .get("version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| integrity("its key metadata has no version".into()))?;
    if version != u64::from(SEGMENT_FORMAT_VERSION) {
        return Err(StoreError::UnsupportedFormat {
            what: format!("segment {loc}"),
            version: u32::try_from(version).unwrap_or(u32::MAX),
            supported: SEGMENT_FORMAT_VERSION,
        });
    }
    let meta: KeyMetadata = serde_json::from_value(value)
        .map_err(|e| integrity(format!("malformed key metadata: {e}")))?;
    if meta.account != loc.account.as_str() {
        return Err(integrity(format!(
            "its key metadata names storage account {}",
            meta.account
        )));
    }
    if meta.epoch != epoch {
        return Err(integrity(format!(
            "it was written under account key epoch {}, the account's key is epoch {epoch}",
            meta.epoch
        )));
    }
    Ok(())
}

/// Reads and decrypts the segment `loc`, keeping only the named columns when `columns` is given.
/// Any failure to authenticate is an integrity error naming the segment; no row is returned
/// unless the whole file authenticated.
pub(crate) async fn read(
    objects: &Arc<dyn ObjectStore>,
    loc: &SegmentLocation,
    aek: &Aek,
    epoch: u32,
    columns: Option<Vec<String>>,
) -> Result<Vec<RecordBatch>, StoreError> {
    read_with(objects, loc, aek, epoch, columns, Vec::new()).await
}

/// Reads and decrypts the segment `loc` a batch at a time into `tx`, all columns, so that a
/// segment's rows need not be in memory at once (compaction). The footer and the framing of
/// every module authenticate before any row is sent, every page before its rows; a failure
/// later in the file ends the stream with the error after the batches before it were sent, so
/// a receiver keeps nothing it took unless this returns `Ok`. A receiver that goes away ends
/// the reading early, with `Ok`.
pub(crate) async fn read_into(
    objects: &Arc<dyn ObjectStore>,
    loc: &SegmentLocation,
    aek: &Aek,
    epoch: u32,
    tx: tokio::sync::mpsc::Sender<RecordBatch>,
) -> Result<(), StoreError> {
    read_with(objects, loc, aek, epoch, None, tx)
        .await
        .map(|_| ())
}

/// Where [`read_with`] puts the batches it decodes (on a blocking thread).
trait BatchSink: Send + 'static {
    /// Takes a batch; `false` ends the reading early (successfully).
    fn take(&mut self, batch: RecordBatch) -> bool;
}

impl BatchSink for Vec<RecordBatch> {
    fn take(&mut self, batch: RecordBatch) -> bool {
        self.push(batch);
        true
    }
}

impl BatchSink for tokio::sync::mpsc::Sender<RecordBatch> {
    fn take(&mut self, batch: RecordBatch) -> bool {
        self.blocking_send(batch).is_ok()
    }
}

/// The work of [`read`] and [`read_into`]; gives the sink back once the file is read.
async fn read_with<S: BatchSink>(
    objects: &Arc<dyn ObjectStore>,
    loc: &SegmentLocation,
    aek: &Aek,
    epoch: u32,
    columns: Option<Vec<String>>,
    sink: S,
) -> Result<S, StoreError> {
    let bytes = fetch(objects, loc).await?;
    // Parquet readers only look at the end of a file; the leading magic carries no data but is
    // checked too, so that no byte of a segment can change unnoticed.
    if bytes.get(..4) != Some(ENCRYPTED_MAGIC.as_slice()) {
        return Err(StoreError::Integrity {
            segment: loc.to_string(),
            reason: "not a parquet file with an encrypted footer".into(),
        });
    }
    let slot: CheckSlot = Arc::default();
    let props = decryption_properties(loc, aek, epoch, Some(slot.clone()))?;
    let segment = loc.to_string();
    let decoded = tokio::task::spawn_blocking(move || decode(bytes, props, columns, sink))
        .await
        .map_err(|e| StoreError::Integrity {
            segment: segment.clone(),
            reason: e.to_string(),
        })?;
    match decoded {
        Ok(sink) => Ok(sink),
        Err(Decode::Column(name)) => Err(StoreError::InvalidName {
            kind: "column",
            name,
            reason: format!("segment {segment} has no such column"),
        }),
        Err(Decode::Parquet(reason)) => {
            let found = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            Err(found.unwrap_or(StoreError::Integrity { segment, reason }))
        }
    }
}

/// The magic at both ends of a Parquet file with an encrypted footer.
pub(crate) const ENCRYPTED_MAGIC: &[u8; 4] = b"PARE";

pub(crate) async fn fetch(
    objects: &Arc<dyn ObjectStore>,
    loc: &SegmentLocation,
) -> Result<Bytes, StoreError> {
    let got = objects.get(&loc.object_path()).await;
    let got = match got {
        Ok(got) => got.bytes().await,
        Err(e) => Err(e),
    };
    got.map_err(|e| match e {
        object_store::Error::NotFound { .. } => StoreError::SegmentNotFound {
            segment: loc.to_string(),
        },
        e => match infra_failure(&e) {
            Some(reason) => StoreError::Integrity {
                segment: loc.to_string(),
                reason,
            },
            None => StoreError::storage(format!("segment {loc}"), &e),
        },
    })
}

/// The infrastructure layer's authentication failure inside an object store error, if any.
pub(crate) fn infra_failure(e: &object_store::Error) -> Option<String> {
    match e {
        object_store::Error::Generic { source, .. } => source
            .downcast_ref::<logvault_crypto::CryptoError>()
            .map(ToString::to_string),
        _ => None,
    }
}

enum Decode {
    Column(String),
    Parquet(String),
}

fn decode<S: BatchSink>(
    bytes: Bytes,
    props: Arc<FileDecryptionProperties>,
    columns: Option<Vec<String>>,
    mut sink: S,
) -> Result<S, Decode> {
    let parquet = |e: parquet::errors::ParquetError| Decode::Parquet(e.to_string());
    // The page index is read too, so that every module of the file is authenticated.
    let options = ArrowReaderOptions::new()
        .with_page_index_policy(PageIndexPolicy::Required)
        .with_file_decryption_properties(props);
    let mut builder = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes.clone(), options)
        .map_err(parquet)?;
    // Every module's framing, before any page is read (parquet-rs panics on some damaged
    // module lengths; see `verify::check_framing`).
    crate::verify::check_framing(&bytes, builder.metadata()).map_err(Decode::Parquet)?;
    if let Some(columns) = columns {
        let schema = builder.schema().clone();
        let mut indices = Vec::with_capacity(columns.len());
        for name in columns {
            indices.push(schema.index_of(&name).map_err(|_| Decode::Column(name))?);
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
        builder = builder.with_projection(mask);
    }
    let reader = builder.build().map_err(parquet)?;
    for batch in reader {
        if !sink.take(batch.map_err(|e| Decode::Parquet(e.to_string()))?) {
            break;
        }
    }
    Ok(sink)
}

/// The smallest and largest `TimeGenerated` of the batches (nulls ignored).
pub(crate) fn time_range(
    batches: &[RecordBatch],
) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let mut lo: Option<i64> = None;
    let mut hi: Option<i64> = None;
    let mut unit = TimeUnit::Nanosecond;
    for batch in batches {
        let col = batch
            .column_by_name(TIME_COLUMN)
            .ok_or_else(|| format!("no {TIME_COLUMN} column"))?;
        let DataType::Timestamp(u, _) = col.data_type() else {
            return Err(format!(
                "{TIME_COLUMN} must be a timestamp, not {}",
                col.data_type()
            ));
        };
        unit = *u;
        let ints = arrow::compute::cast(col, &DataType::Int64).map_err(|e| e.to_string())?;
        let ints = ints.as_primitive::<Int64Type>();
        if ints.null_count() == ints.len() {
            continue;
        }
        if let Some(v) = arrow::compute::min(ints) {
            lo = Some(lo.map_or(v, |l| l.min(v)));
        }
        if let Some(v) = arrow::compute::max(ints) {
            hi = Some(hi.map_or(v, |h| h.max(v)));
        }
    }
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Err(format!("every {TIME_COLUMN} is null"));
    };
    let convert = |v: i64| {
        to_datetime(v, unit).ok_or_else(|| format!("{TIME_COLUMN} value {v} is out of range"))
    };
    Ok((convert(lo)?, convert(hi)?))
}

fn to_datetime(v: i64, unit: TimeUnit) -> Option<DateTime<Utc>> {
    match unit {
        TimeUnit::Second => DateTime::from_timestamp(v, 0),
        TimeUnit::Millisecond => DateTime::from_timestamp_millis(v),
        TimeUnit::Microsecond => DateTime::from_timestamp_micros(v),
        TimeUnit::Nanosecond => Some(DateTime::from_timestamp_nanos(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{AccountId, SegmentId};
    use object_store::PutPayload;
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    #[test]
    fn a_compression_names_its_parquet_codec_and_a_bad_zstd_level_is_an_error() {
        assert_eq!(
            SegmentCompression::Zstd(3).parquet(),
            Ok(Compression::ZSTD(ZstdLevel::try_new(3).unwrap()))
        );
        assert_eq!(
            SegmentCompression::Snappy.parquet(),
            Ok(Compression::SNAPPY)
        );
        assert_eq!(
            SegmentCompression::Uncompressed.parquet(),
            Ok(Compression::UNCOMPRESSED)
        );
        let err = SegmentCompression::Zstd(99).parquet().unwrap_err();
        assert!(err.contains("99"), "{err}");
    }

    fn loc() -> SegmentLocation {
        SegmentLocation::new(
            AccountId::service(),
            "ws-one",
            "Syslog",
            SegmentId::generate(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_segment_of_an_unknown_format_version_is_refused_clearly() {
        use arrow::array::{Int64Array, TimestampNanosecondArray};
        use arrow::datatypes::{Field, Schema};
        let objects: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let aek = Aek::generate().unwrap();
        let l = loc();
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                TIME_COLUMN,
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
            Field::new("n", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(TimestampNanosecondArray::from(vec![1, 2])),
                Arc::new(Int64Array::from(vec![7, 8])),
            ],
        )
        .unwrap();
        // A file as a future logvault would write it: same keys, key metadata version 2.
        let future = br#"{"format":"logvault-segment","version":2,"account":"service","epoch":1}"#;
        let dek = aek.derive_dek(&l.segment.to_string()).unwrap();
        let props = segment_encryption_properties(&dek, &l.aad_prefix(), future.to_vec()).unwrap();
        let props = WriterProperties::builder()
            .with_file_encryption_properties(props)
            .build();
        let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(props)).unwrap();
        writer.write(&batch).unwrap();
        let bytes = writer.into_inner().unwrap();
        objects
            .put(&l.object_path(), PutPayload::from(bytes))
            .await
            .unwrap();
        let err = read(&objects, &l, &aek, 1, None).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::UnsupportedFormat {
                    version: 2,
                    supported: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains(&l.segment.to_string()), "{err}");

        // The same rows written by this version read back.
        let mut writer = crate::segment_writer::SegmentWriter::new(
            Arc::clone(&objects),
            loc_of(&l),
            &aek,
            1,
            batch.schema(),
            &SegmentOptions::default(),
        )
        .unwrap();
        writer.write(batch.clone()).await.unwrap();
        let written = writer.finish_written().await.unwrap();
        assert_eq!(written.rows, 2);
        let back = read(&objects, &loc_of(&l), &aek, 1, None).await.unwrap();
        assert_eq!(back, vec![batch]);
    }

    fn loc_of(l: &SegmentLocation) -> SegmentLocation {
        SegmentLocation::new(l.account.clone(), &l.workspace, "Other", l.segment).unwrap()
    }

    #[test]
    fn key_metadata_checks_version_account_and_epoch() {
        let l = loc();
        let good = br#"{"format":"logvault-segment","version":1,"account":"service","epoch":1}"#;
        check_key_metadata(&l, 1, good).unwrap();
        let future = br#"{"format":"logvault-segment","version":2,"account":"service","epoch":1}"#;
        let err = check_key_metadata(&l, 1, future).unwrap_err();
        assert!(
            matches!(err, StoreError::UnsupportedFormat { version: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains(&l.segment.to_string()), "{err}");
        let other =
            br#"{"format":"logvault-segment","version":1,"account":"cluster-abcd","epoch":1}"#;
        assert!(check_key_metadata(&l, 1, other).unwrap_err().is_integrity());
        assert!(check_key_metadata(&l, 2, good).unwrap_err().is_integrity());
        assert!(
            check_key_metadata(&l, 1, b"garbage")
                .unwrap_err()
                .is_integrity()
        );
    }
}
