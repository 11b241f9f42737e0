//! The plaintext of a log record: one parsed batch of one table.
//!
//! ```text
//! record = kind (u8, 1 = batch) || table length (u16 LE) || table (UTF-8)
//!          || Arrow IPC stream (schema, one record batch, end of stream)
//! ```
//!
//! The batch is logged after parsing, so replay gives back exactly the rows that were
//! acknowledged, with the `TimeGenerated` and `_TimeReceived` they were given then.

use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

const KIND_BATCH: u8 = 1;

/// Encodes a record.
pub(crate) fn encode(table: &str, batch: &RecordBatch) -> Result<Vec<u8>, String> {
    let table_len =
        u16::try_from(table.len()).map_err(|_| format!("table name {table:?} is too long"))?;
    let mut out = Vec::with_capacity(3 + table.len() + batch.get_array_memory_size() + 512);
    out.push(KIND_BATCH);
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

/// Decodes a record into its table and batch.
pub(crate) fn decode(bytes: &[u8]) -> Result<(String, RecordBatch), String> {
    let (&kind, rest) = bytes.split_first().ok_or("empty record")?;
    if kind != KIND_BATCH {
        return Err(format!("unknown record kind {kind}"));
    }
    let len = rest.get(..2).ok_or("truncated record")?;
    let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
    let table = rest.get(2..2 + len).ok_or("truncated record")?;
    let table = std::str::from_utf8(table)
        .map_err(|_| "table name is not UTF-8")?
        .to_owned();
    let ipc = &rest[2 + len..];
    let mut reader = StreamReader::try_new(Cursor::new(ipc), None)
        .map_err(|e| format!("decoding a batch of {table}: {e}"))?;
    let batch = reader
        .next()
        .ok_or_else(|| format!("record of {table} holds no batch"))?
        .map_err(|e| format!("decoding a batch of {table}: {e}"))?;
    Ok((table, batch))
}
