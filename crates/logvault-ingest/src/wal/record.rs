//! The plaintext of a log record: one parsed batch of one table, and the idempotency keys of the
//! client requests whose rows the record's group holds (on the group's first record only).
//!
//! ```text
//! record = kind (u8) || [request keys, kind 2 only] || table length (u16 LE) || table (UTF-8)
//!          || Arrow IPC stream (schema, one record batch, end of stream)
//! kind   = 1: a batch; 2: a batch, then the request keys of its group
//! request keys = count (u16 LE) || count x (length (u16 LE) || key (UTF-8))
//! ```
//!
//! The batch is logged after parsing, so replay gives back exactly the rows that were
//! acknowledged, with the `TimeGenerated` and `_TimeReceived` they were given then. A group
//! without request keys is written with kind 1 only, byte for byte as before kind 2 existed.

use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

const KIND_BATCH: u8 = 1;
const KIND_BATCH_WITH_KEYS: u8 = 2;

/// The longest request key a record holds (longer ones are refused at encoding).
pub const MAX_REQUEST_KEY_LEN: usize = 1024;

/// A decoded record.
pub(crate) struct Decoded {
    pub(crate) table: String,
    pub(crate) batch: RecordBatch,
    pub(crate) request_keys: Vec<String>,
}

/// Encodes a record; `request_keys` are written only when not empty (kind 2).
pub(crate) fn encode(
    table: &str,
    batch: &RecordBatch,
    request_keys: &[String],
) -> Result<Vec<u8>, String> {
    let table_len =
        u16::try_from(table.len()).map_err(|_| format!("table name {table:?} is too long"))?;
    let keys_len: usize = request_keys.iter().map(|k| 2 + k.len()).sum();
    let mut out =
        Vec::with_capacity(5 + keys_len + table.len() + batch.get_array_memory_size() + 512);
    if request_keys.is_empty() {
        out.push(KIND_BATCH);
    } else {
        out.push(KIND_BATCH_WITH_KEYS);
        let count = u16::try_from(request_keys.len())
            .map_err(|_| format!("{} request keys in one group", request_keys.len()))?;
        out.extend_from_slice(&count.to_le_bytes());
        for key in request_keys {
            if key.len() > MAX_REQUEST_KEY_LEN {
                return Err(format!(
                    "a request key of {} bytes (at most {MAX_REQUEST_KEY_LEN})",
                    key.len()
                ));
            }
            out.extend_from_slice(&(key.len() as u16).to_le_bytes());
            out.extend_from_slice(key.as_bytes());
        }
    }
    out.extend_from_slice(&table_len.to_le_bytes());
    out.extend_from_slice(table.as_bytes());
    let mut writer = StreamWriter::try_new(&mut out, &batch.schema())
        .map_err(|e| format!("encoding a batch of {table}: {e}"))?;
    writer
        .write(batch)
        .and_then(|()| writer.finish())
        .map_err(|e| format!("encoding a batch of {table}: {e}"))?;
    drop(writer);
    Ok(out)
}

/// Reads a little-endian u16 at the front of `bytes`.
fn take_u16(bytes: &[u8]) -> Result<(usize, &[u8]), String> {
    match bytes {
        [a, b, rest @ ..] => Ok((usize::from(u16::from_le_bytes([*a, *b])), rest)),
        _ => Err("truncated record".into()),
    }
}

/// Splits a record into its request keys and what follows them (table and batch).
fn split_keys(bytes: &[u8]) -> Result<(Vec<String>, &[u8]), String> {
    let (&kind, rest) = bytes.split_first().ok_or("empty record")?;
    match kind {
        KIND_BATCH => Ok((Vec::new(), rest)),
        KIND_BATCH_WITH_KEYS => {
            let (count, mut rest) = take_u16(rest)?;
            let mut keys = Vec::with_capacity(count);
            for _ in 0..count {
                let (len, after) = take_u16(rest)?;
                let key = after.get(..len).ok_or("truncated record")?;
                let key = std::str::from_utf8(key).map_err(|_| "a request key is not UTF-8")?;
                keys.push(key.to_owned());
                rest = &after[len..];
            }
            Ok((keys, rest))
        }
        other => Err(format!("unknown record kind {other}")),
    }
}

/// The request keys of a record, without decoding its batch (for records already stored).
pub(crate) fn request_keys(bytes: &[u8]) -> Result<Vec<String>, String> {
    split_keys(bytes).map(|(keys, _)| keys)
}

/// Decodes a record into its table, batch and request keys.
pub(crate) fn decode(bytes: &[u8]) -> Result<Decoded, String> {
    let (request_keys, rest) = split_keys(bytes)?;
    let (len, rest) = take_u16(rest)?;
    let table = rest.get(..len).ok_or("truncated record")?;
    let table = std::str::from_utf8(table)
        .map_err(|_| "table name is not UTF-8")?
        .to_owned();
    let ipc = &rest[len..];
    let mut reader = StreamReader::try_new(Cursor::new(ipc), None)
        .map_err(|e| format!("decoding a batch of {table}: {e}"))?;
    let batch = reader
        .next()
        .ok_or_else(|| format!("record of {table} holds no batch"))?
        .map_err(|e| format!("decoding a batch of {table}: {e}"))?;
    Ok(Decoded {
        table,
        batch,
        request_keys,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))])
            .expect("batch")
    }

    #[test]
    fn a_record_without_keys_is_kind_1_and_one_with_keys_gives_them_back() {
        let plain = encode("App", &batch(), &[]).expect("encode");
        assert_eq!(plain[0], KIND_BATCH);
        let d = decode(&plain).expect("decode");
        assert_eq!((d.table.as_str(), d.batch.num_rows()), ("App", 3));
        assert!(d.request_keys.is_empty());

        let keys = vec!["req-1:abcd".to_owned(), "req-2:ef01".to_owned()];
        let tagged = encode("App", &batch(), &keys).expect("encode");
        assert_eq!(tagged[0], KIND_BATCH_WITH_KEYS);
        let d = decode(&tagged).expect("decode");
        assert_eq!(d.request_keys, keys);
        assert_eq!(d.batch, batch());
        assert_eq!(request_keys(&tagged).expect("keys"), keys);
        // The part after the keys is the kind 1 record's, byte for byte.
        assert_eq!(&tagged[tagged.len() - (plain.len() - 1)..], &plain[1..]);
    }

    #[test]
    fn damaged_key_lists_are_errors_not_panics() {
        let keys = vec!["k".repeat(40)];
        let tagged = encode("App", &batch(), &keys).expect("encode");
        for cut in 1..48 {
            assert!(decode(&tagged[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(&[9, 0, 0]).is_err());
        let too_long = vec!["k".repeat(MAX_REQUEST_KEY_LEN + 1)];
        assert!(encode("App", &batch(), &too_long).is_err());
    }
}
