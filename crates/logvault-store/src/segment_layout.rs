//! How a segment's columns are laid out in its Parquet file: their encodings and codecs
//! (docs/format.md, "Segments"). Chosen when a segment's first rows arrive, from their types
//! and, for a column of few values, from those rows.

use std::collections::HashSet;
use std::hash::Hash;

use arrow::array::{Array, ArrowPrimitiveType, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::WriterPropertiesBuilder;
use parquet::schema::types::ColumnPath;

/// Rows of a segment's first batch looked at to tell a column of few values.
pub(crate) const LABEL_SAMPLE_ROWS: usize = 4096;
/// Non-null values a column needs in that sample to be told one.
pub(crate) const LABEL_MIN_VALUES: usize = 256;
/// A column of few values has at most one distinct value in this many of its sampled values.
pub(crate) const LABEL_VALUES_PER_DISTINCT: usize = 16;

/// The column encodings and codecs of a segment whose first rows are `first`, written with
/// `compression`, added to `builder` (public so that a plaintext baseline can write its
/// Parquet as logvault does).
///
/// Timestamp columns are written with `DELTA_BINARY_PACKED` and no dictionary: their values
/// are mostly distinct (a dictionary would take every value of a row group, interned one by one,
/// before Parquet's writer gave up on it at its 1 MiB limit: 131,072 timestamps, a row group
/// exactly) and close to their neighbours, which deltas store in a few bits. Other columns keep
/// the writer's default (a dictionary, plain when it outgrows its limit).
///
/// A floating-point column most of whose first values are distinct (`mostly_distinct`: a
/// measured value, a latency or a duration) is written in plain pages, without a dictionary and
/// without compression, whatever the segment's codec. Its row groups hold tens of thousands of
/// distinct values, so a dictionary saves little and a reader gathers every value from it (the
/// gather was a fifth of the top-10 hosts' CPU); and a general-purpose codec finds in such
/// values only short matches, each a step of its decoder (LZ4 shrank the benchmark's
/// `LatencyMs` from 80 MB to 46.6 and its decoding was then a third of the top-10 hosts' CPU).
/// Plain pages are read by copying: the top-10 hosts took 0.68x and the join 0.85x of their time
/// with a dictionary under LZ4, for a file 11.6% larger (docs/bench/journal.md, "Floats of many
/// values in plain pages").
///
/// Under zstd, two kinds of column are compressed with LZ4 (`LZ4_RAW`) instead, their
/// dictionary kept:
/// - floating-point columns of fewer values: zstd's entropy stage decodes their pages at well
///   under 1 GB/s (20% of the top-10 hosts' CPU when `LatencyMs` was stored so), for a third of
///   the column's bytes; LZ4 keeps most of that saving.
/// - string and integer columns of few values (labels: a level, a host, a service, a status),
///   told by `few_values` on `first`: their pages hold bit-packed dictionary indices that
///   zstd shrinks by a third at most, and a reader pays for each column chunk under zstd
///   a decompression context (parquet creates one, with a compression context, per column chunk
///   it reads: 3.5% of a join's CPU), then zstd's decoding; LZ4 needs no context and decodes
///   several times faster (the benchmark's grouping and join 10% faster, the file 1.25%
///   larger).
///
/// docs/format.md, "Segments", and docs/bench/journal.md give the figures.
pub fn column_encodings(
    mut builder: WriterPropertiesBuilder,
    first: &RecordBatch,
    compression: Compression,
) -> WriterPropertiesBuilder {
    builder = builder.set_compression(compression);
    let zstd = matches!(compression, Compression::ZSTD(_));
    for (field, column) in first.schema().fields().iter().zip(first.columns()) {
        let path = ColumnPath::from(field.name().as_str());
        match field.data_type() {
            DataType::Timestamp(..) => {
                builder = builder
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
            }
            DataType::Float16 | DataType::Float32 | DataType::Float64
                if mostly_distinct(column.as_ref()) =>
            {
                builder = builder
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_compression(path, Compression::UNCOMPRESSED);
            }
            DataType::Float16 | DataType::Float32 | DataType::Float64 if zstd => {
                builder = builder.set_column_compression(path, Compression::LZ4_RAW);
            }
            _ if zstd && few_values(column.as_ref()) == Some(true) => {
                builder = builder.set_column_compression(path, Compression::LZ4_RAW);
            }
            _ => {}
        }
    }
    builder
}

/// Whether `column` holds few distinct values: among its first [`LABEL_SAMPLE_ROWS`] rows, at
/// least [`LABEL_MIN_VALUES`] non-null values and at most one distinct value in
/// [`LABEL_VALUES_PER_DISTINCT`]. `None` for a type it does not tell (other than strings and
/// integers).
pub(crate) fn few_values(column: &dyn Array) -> Option<bool> {
    if column.data_type().is_floating() {
        return None;
    }
    let (values, distinct) = sampled(column)?;
    Some(values >= LABEL_MIN_VALUES && distinct * LABEL_VALUES_PER_DISTINCT <= values)
}

/// Whether more than half of the non-null values among `column`'s first [`LABEL_SAMPLE_ROWS`]
/// rows are distinct, with at least [`LABEL_MIN_VALUES`] of them (fewer tell nothing: `false`).
/// Floats count by their bits, so `0.0` and `-0.0` are two values, as a dictionary holds them.
pub(crate) fn mostly_distinct(column: &dyn Array) -> bool {
    sampled(column)
        .is_some_and(|(values, distinct)| values >= LABEL_MIN_VALUES && distinct * 2 > values)
}

/// Non-null values and distinct ones among `column`'s first [`LABEL_SAMPLE_ROWS`] rows; `None`
/// for a type not counted (other than strings, integers and floats).
fn sampled(column: &dyn Array) -> Option<(usize, usize)> {
    let sample = column.slice(0, column.len().min(LABEL_SAMPLE_ROWS));
    let sample = sample.as_ref();
    Some(match sample.data_type() {
        DataType::Utf8 => count(sample.as_string::<i32>().iter()),
        DataType::LargeUtf8 => count(sample.as_string::<i64>().iter()),
        DataType::Utf8View => count(sample.as_string_view().iter()),
        DataType::Int8 => primitive::<Int8Type>(sample),
        DataType::Int16 => primitive::<Int16Type>(sample),
        DataType::Int32 => primitive::<Int32Type>(sample),
        DataType::Int64 => primitive::<Int64Type>(sample),
        DataType::UInt8 => primitive::<UInt8Type>(sample),
        DataType::UInt16 => primitive::<UInt16Type>(sample),
        DataType::UInt32 => primitive::<UInt32Type>(sample),
        DataType::UInt64 => primitive::<UInt64Type>(sample),
        DataType::Float16 => count(
            sample
                .as_primitive::<Float16Type>()
                .iter()
                .map(|v| v.map(|v| v.to_bits())),
        ),
        DataType::Float32 => count(
            sample
                .as_primitive::<Float32Type>()
                .iter()
                .map(|v| v.map(f32::to_bits)),
        ),
        DataType::Float64 => count(
            sample
                .as_primitive::<Float64Type>()
                .iter()
                .map(|v| v.map(f64::to_bits)),
        ),
        _ => return None,
    })
}

fn primitive<T: ArrowPrimitiveType>(sample: &dyn Array) -> (usize, usize)
where
    T::Native: Hash + Eq,
{
    count(sample.as_primitive::<T>().iter())
}

/// Non-null values and distinct ones.
fn count<V: Hash + Eq>(values: impl Iterator<Item = Option<V>>) -> (usize, usize) {
    let mut seen = HashSet::new();
    let mut n = 0;
    for v in values.flatten() {
        n += 1;
        seen.insert(v);
    }
    (n, seen.len())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, Float32Array, Float64Array, Int64Array, StringArray, StringViewArray,
        TimestampNanosecondArray,
    };
    use arrow::datatypes::{Field, Schema};
    use parquet::basic::ZstdLevel;
    use parquet::file::properties::WriterProperties;

    use super::*;

    /// 4,096 rows: a time, labels of 3 and 200 values, an id, a status of 8 values, a number
    /// of many values, two floats, a label column that is null but for 100 rows.
    fn first_rows() -> RecordBatch {
        let n = 4096;
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "TimeGenerated",
                Arc::new(TimestampNanosecondArray::from_iter_values(0..n as i64)),
            ),
            (
                "Level",
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| ["INFO", "WARN", "ERROR"][i % 3]),
                )),
            ),
            (
                "Host",
                Arc::new(StringViewArray::from_iter_values(
                    (0..n).map(|i| format!("host-{:04}", i * 7 % 200)),
                )),
            ),
            (
                "RequestId",
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("req-{i:08}")),
                )),
            ),
            (
                "Status",
                Arc::new(Int64Array::from_iter_values(
                    (0..n).map(|i| [200, 201, 204, 301, 400, 404, 500, 503][i % 8]),
                )),
            ),
            (
                "Bytes",
                Arc::new(Int64Array::from_iter_values((0..n).map(|i| i as i64 * 13))),
            ),
            (
                "LatencyMs",
                Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64))),
            ),
            ("Ratio", Arc::new(Float32Array::from(vec![0.5; n]))),
            (
                "Rare",
                Arc::new(StringArray::from_iter(
                    (0..n).map(|i| (i % 41 == 0).then_some("x")),
                )),
            ),
        ];
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        RecordBatch::try_new(schema, columns.into_iter().map(|(_, a)| a).collect()).expect("batch")
    }

    /// docs/format.md, "Segments": under zstd a floating-point column and a column of few
    /// values get LZ4, their dictionary kept, but a float of mostly distinct values is plain and
    /// uncompressed under every codec; any other codec the home chose is every other column's.
    #[test]
    fn floats_and_labels_take_lz4_under_zstd_and_the_chosen_codec_otherwise() {
        let first = first_rows();
        let zstd = Compression::ZSTD(ZstdLevel::try_new(1).expect("level"));
        let props = column_encodings(WriterProperties::builder(), &first, zstd).build();
        let codec =
            |props: &WriterProperties, name: &str| props.compression(&ColumnPath::from(name));
        // A column of 100 values (under the minimum) is not told a label.
        for name in ["TimeGenerated", "RequestId", "Bytes", "Rare"] {
            assert_eq!(codec(&props, name), zstd, "{name}");
        }
        for name in ["Ratio", "Level", "Host", "Status"] {
            assert_eq!(codec(&props, name), Compression::LZ4_RAW, "{name}");
            assert!(props.dictionary_enabled(&ColumnPath::from(name)), "{name}");
        }
        // A float whose every value differs: plain pages, no codec.
        let latency = ColumnPath::from("LatencyMs");
        assert!(!props.dictionary_enabled(&latency));
        assert_eq!(props.compression(&latency), Compression::UNCOMPRESSED);
        let time = ColumnPath::from("TimeGenerated");
        assert!(!props.dictionary_enabled(&time));
        assert_eq!(props.encoding(&time), Some(Encoding::DELTA_BINARY_PACKED));
        for chosen in [Compression::SNAPPY, Compression::UNCOMPRESSED] {
            let props = column_encodings(WriterProperties::builder(), &first, chosen).build();
            for field in first.schema().fields() {
                let name = field.name();
                let expected = if name == "LatencyMs" {
                    Compression::UNCOMPRESSED
                } else {
                    chosen
                };
                assert_eq!(codec(&props, name), expected, "{name}");
            }
            assert!(!props.dictionary_enabled(&latency));
            assert!(props.dictionary_enabled(&ColumnPath::from("Ratio")));
        }
    }

    #[test]
    fn few_values_counts_distinct_values_among_the_first_rows() {
        let strings = |n: usize, distinct: usize| {
            StringArray::from_iter_values((0..n).map(|i| format!("v{}", i % distinct)))
        };
        // One distinct value in 16: a label; one more distinct value: not.
        assert_eq!(few_values(&strings(4096, 256)), Some(true));
        assert_eq!(few_values(&strings(4096, 257)), Some(false));
        // Too few values to tell.
        assert_eq!(few_values(&strings(255, 1)), Some(false));
        assert_eq!(few_values(&strings(256, 1)), Some(true));
        // Only the first rows count: many values after them do not change the answer.
        let late = StringArray::from_iter_values((0..10_000).map(|i| {
            if i < 4096 {
                "a".to_owned()
            } else {
                format!("v{i}")
            }
        }));
        assert_eq!(few_values(&late), Some(true));
        assert_eq!(few_values(&Int64Array::from(vec![7; 300])), Some(true));
        assert_eq!(few_values(&Float64Array::from(vec![7.0; 300])), None);
    }

    #[test]
    fn mostly_distinct_counts_a_floats_distinct_values_among_the_first_rows() {
        let floats = |n: usize, distinct: usize| {
            Float64Array::from_iter_values((0..n).map(|i| (i % distinct) as f64 * 0.25))
        };
        // More than half of the values distinct: yes; exactly half: no.
        assert!(mostly_distinct(&floats(4096, 4096)));
        assert!(mostly_distinct(&floats(4096, 2049)));
        assert!(!mostly_distinct(&floats(4096, 2048)));
        // Too few values to tell, nulls not counted.
        assert!(!mostly_distinct(&floats(255, 255)));
        let sparse = Float64Array::from_iter((0..4096).map(|i| (i % 20 == 0).then_some(i as f64)));
        assert!(!mostly_distinct(&sparse));
        let dense = Float64Array::from_iter((0..4096).map(|i| (i % 20 != 0).then_some(i as f64)));
        assert!(mostly_distinct(&dense));
        // Only the first rows count.
        let late = Float64Array::from_iter_values(
            (0..10_000).map(|i| if i < 4096 { 1.0 } else { i as f64 }),
        );
        assert!(!mostly_distinct(&late));
        // 0.0 and -0.0 are two values, as a dictionary keeps them; f32 and f16 are counted too.
        let zeros =
            Float64Array::from_iter_values((0..300).map(|i| if i % 2 == 0 { 0.0 } else { -0.0 }));
        assert_eq!(sampled(&zeros), Some((300, 2)));
        let f32s = Float32Array::from_iter_values((0..300).map(|i| i as f32));
        assert!(mostly_distinct(&f32s));
        let f16s = arrow::compute::cast(
            &Float32Array::from_iter_values((0..300).map(|i| (i % 3) as f32)),
            &DataType::Float16,
        )
        .expect("cast");
        assert_eq!(sampled(f16s.as_ref()), Some((300, 3)));
        // Strings and integers are counted the same way.
        assert!(mostly_distinct(&Int64Array::from_iter_values(0..300)));
    }
}
