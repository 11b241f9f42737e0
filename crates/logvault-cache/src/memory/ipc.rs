//! A hot batch's buffer: the batch written as an Arrow IPC file into a zeroizing buffer of about
//! its size, and decoded back from it without a copy (the decoder refuses a misaligned buffer
//! rather than copying it out of the zeroizing one).
//!
//! The decoder does not validate the arrays it decodes (`FileDecoder::with_skip_validation`,
//! the workspace's one `unsafe` call, [`trusted_decoder`]): the buffer holds what arrow's IPC
//! writer wrote a moment before, in this process, from arrays that were valid, and nothing
//! writes it after (it is moved into an immutable owner first). DataFusion reads its own spill
//! files back the same way. Validating them again (every string view's bounds and UTF-8) was
//! half of a promotion's CPU: promoting the benchmark's 10M rows took 0.9 s more.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::buffer::Buffer;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::convert::fb_to_schema;
use arrow::ipc::reader::{FileDecoder, read_footer_length};
use arrow::ipc::writer::FileWriter;
use arrow::ipc::{Block, MetadataVersion, root_as_footer};
use zeroize::Zeroize;

/// Plaintext bytes, zeroized (whole capacity) when dropped.
struct Plaintext {
    bytes: Vec<u8>,
    zeroized: Arc<AtomicU64>,
}

impl AsRef<[u8]> for Plaintext {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Plaintext {
    fn drop(&mut self) {
        let n = self.bytes.capacity() as u64;
        self.bytes.zeroize();
        self.zeroized.fetch_add(n, Ordering::Relaxed);
    }
}

/// A `Write` into a buffer that zeroizes the old allocation whenever it grows, so encoding
/// leaves no stray copy of the plaintext behind.
#[derive(Default)]
struct ZeroizingWriter(Vec<u8>);

impl ZeroizingWriter {
    fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    fn reserve(&mut self, extra: usize) {
        let need = self.0.len() + extra;
        if need <= self.0.capacity() {
            return;
        }
        let mut next = Vec::with_capacity(need.max(self.0.capacity() * 2).max(4096));
        next.extend_from_slice(&self.0);
        self.0.zeroize();
        self.0 = next;
    }

    /// The bytes, in an allocation of about their size: the buffer itself when at most an
    /// eighth of it is spare (it is sized from the batch's arrays), else a copy of exactly their
    /// size (the buffer is zeroized).
    fn into_exact(mut self) -> Vec<u8> {
        let len = self.0.len();
        if self.0.capacity() - len <= len / 8 {
            return std::mem::take(&mut self.0);
        }
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&self.0);
        out
    }
}

impl Write for ZeroizingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.reserve(buf.len());
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ZeroizingWriter {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// `batch` (compacted) encoded as an Arrow IPC file in a zeroizing buffer of about its size, and
/// decoded back from it without a copy: the batch whose arrays point into that buffer, and the
/// buffer's length.
pub(super) fn encode_batch(
    schema: &SchemaRef,
    batch: &RecordBatch,
    zeroized: &Arc<AtomicU64>,
    allocated: &AtomicU64,
) -> Result<(RecordBatch, usize), String> {
    let batch = compact_views(batch).map_err(|e| e.to_string())?;
    // The arrays' bytes, each buffer padded to 64 bytes, and the schema twice (the file's header
    // and footer).
    let columns = schema.fields().len();
    let estimate = batch.get_array_memory_size() + columns * 512 + 4096;
    let mut writer = FileWriter::try_new(ZeroizingWriter::with_capacity(estimate), schema)
        .map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    drop(batch);
    let encoded = writer.into_inner().map_err(|e| e.to_string())?;
    let owner = Plaintext {
        bytes: encoded.into_exact(),
        zeroized: Arc::clone(zeroized),
    };
    allocated.fetch_add(owner.bytes.capacity() as u64, Ordering::Relaxed);
    let data = Buffer::from(bytes::Bytes::from_owner(owner));
    let mut decoded = decode_all(&data)?;
    match (decoded.pop(), decoded.is_empty()) {
        (Some(batch), true) => Ok((batch, data.len())),
        _ => Err("ipc footer lists another number of batches".into()),
    }
}

/// Every batch of the IPC file in `data` (written by [`encode_batch`], and by nothing else: it
/// is not validated), decoded without copying: a buffer that is not aligned is an error rather
/// than a silent copy outside the zeroizing buffer.
fn decode_all(data: &Buffer) -> Result<Vec<RecordBatch>, String> {
    let (schema, version, dictionaries, blocks) = footer(data)?;
    // The file's own schema: it carries the ids the writer gave the dictionaries.
    let mut decoder = trusted_decoder(schema, version);
    for block in &dictionaries {
        decoder
            .read_dictionary(block, &block_of(data, block)?)
            .map_err(|e| e.to_string())?;
    }
    let mut out = Vec::with_capacity(blocks.len());
    for block in &blocks {
        if let Some(batch) = decoder
            .read_record_batch(block, &block_of(data, block)?)
            .map_err(|e| e.to_string())?
        {
            out.push(batch);
        }
    }
    Ok(out)
}

/// A decoder of IPC files this module wrote itself ([`encode_batch`]), which does not validate
/// the arrays it decodes (see the module) and refuses a misaligned buffer.
#[allow(unsafe_code)]
fn trusted_decoder(schema: Schema, version: MetadataVersion) -> FileDecoder {
    let decoder = FileDecoder::new(Arc::new(schema), version).with_require_alignment(true);
    // SAFETY: only `decode_all` uses it, on the buffer `encode_batch` filled with arrow's IPC
    // writer from a `RecordBatch` (whose arrays were validated when they were built) and then
    // moved into an owner that never writes it again: the bytes are a valid IPC file of valid
    // arrays. Not for bytes read from anywhere else.
    unsafe { decoder.with_skip_validation(true) }
}

fn block_of(data: &Buffer, block: &Block) -> Result<Buffer, String> {
    let offset = usize::try_from(block.offset()).map_err(|e| e.to_string())?;
    let meta = usize::try_from(block.metaDataLength()).map_err(|e| e.to_string())?;
    let body = usize::try_from(block.bodyLength()).map_err(|e| e.to_string())?;
    let len = meta + body;
    if offset.saturating_add(len) > data.len() {
        return Err("ipc block outside the buffer".into());
    }
    Ok(data.slice_with_length(offset, len))
}

/// `batch` with its string views copied into buffers of just the strings they view: views
/// decoded from Parquet point into whole decompressed pages, which the IPC writer would copy
/// in full.
fn compact_views(batch: &RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    use arrow::array::AsArray;
    use arrow::datatypes::DataType;
    let columns = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8View => Arc::new(c.as_string_view().gc()) as ArrayRef,
            DataType::BinaryView => Arc::new(c.as_binary_view().gc()) as ArrayRef,
            _ => Arc::clone(c),
        })
        .collect();
    RecordBatch::try_new(batch.schema(), columns)
}

type Blocks = (Schema, MetadataVersion, Vec<Block>, Vec<Block>);

fn footer(data: &Buffer) -> Result<Blocks, String> {
    let n = data.len();
    if n < 10 {
        return Err("ipc file too short".into());
    }
    let mut trailer = [0u8; 10];
    trailer.copy_from_slice(&data[n - 10..]);
    let len = read_footer_length(trailer).map_err(|e| e.to_string())?;
    let start = (n - 10)
        .checked_sub(len)
        .ok_or("ipc footer longer than the file")?;
    let footer = root_as_footer(&data[start..n - 10]).map_err(|e| e.to_string())?;
    let dictionaries = footer
        .dictionaries()
        .map(|d| d.iter().copied().collect())
        .unwrap_or_default();
    let batches = footer
        .recordBatches()
        .map(|b| b.iter().copied().collect())
        .unwrap_or_default();
    let schema = footer
        .schema()
        .map(fb_to_schema)
        .ok_or("ipc footer without a schema")?;
    Ok((schema, footer.version(), dictionaries, batches))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The workspace denies `unsafe` code, and [`trusted_decoder`] is the one place that allows
    /// it: a second one fails here (and needs its own argument in docs/ARCHITECTURE.md).
    #[test]
    fn the_trusted_decoder_is_the_only_code_allowed_to_be_unsafe() {
        use std::path::{Path, PathBuf};
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let needle = concat!("allow(", "unsafe_code)");
        let mut allowing = Vec::new();
        let mut stack: Vec<PathBuf> = vec![root.join("crates"), root.join("benches")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if path.file_name().is_some_and(|n| n != "target") {
                        stack.push(path);
                    }
                    continue;
                }
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if (name.ends_with(".rs") && text.contains(needle))
                    || (name == "Cargo.toml" && text.contains("unsafe_code"))
                {
                    allowing.push(path.strip_prefix(&root).unwrap().display().to_string());
                }
            }
        }
        allowing.sort();
        assert_eq!(allowing, ["crates/logvault-cache/src/memory/ipc.rs"]);
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("unsafe_code = \"deny\""),
            "the workspace denies it"
        );
    }

    #[test]
    fn the_writer_wipes_what_it_outgrows() {
        let mut w = ZeroizingWriter::with_capacity(4);
        w.write_all(&[1; 3]).unwrap();
        w.write_all(&[2; 10_000]).unwrap();
        let v = w.into_exact();
        assert_eq!(v.len(), 10_003);
        assert_eq!(v.capacity(), 10_003);
    }

    #[test]
    fn a_buffer_much_larger_than_its_bytes_is_copied_to_their_size_and_one_close_to_it_kept() {
        let mut w = ZeroizingWriter::with_capacity(100_000);
        w.write_all(&[7; 10]).unwrap();
        let v = w.into_exact();
        assert_eq!((v.len(), v.capacity()), (10, 10));
        let mut w = ZeroizingWriter::with_capacity(1_000);
        w.write_all(&[7; 950]).unwrap();
        let kept = w.0.as_ptr();
        let v = w.into_exact();
        assert_eq!((v.len(), v.capacity()), (950, 1_000));
        assert_eq!(v.as_ptr(), kept, "the buffer itself, not a copy");
    }
}
