//! Tests of the memory tier's segments: projections and casts, each batch's own buffer, held
//! dictionaries, and time bounds and ranges.

use super::*;
use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::Int32Type;
use arrow::datatypes::{DataType, Field, Schema};
use logvault_store::{AccountId, SegmentId};

fn loc() -> SegmentLocation {
    SegmentLocation::new(AccountId::service(), "ws-one", "T", SegmentId::generate()).unwrap()
}

fn batch(n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, false),
        Field::new("s", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(0..n)),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("row {i}")),
            )),
        ],
    )
    .unwrap()
}

#[test]
fn round_trip_with_projection_casts_and_missing_columns() {
    let zeroized = Arc::new(AtomicU64::new(0));
    let b = [batch(10), batch(5)];
    let seg = HotSegment::encode(&loc(), b[0].schema(), &b, None, zeroized.clone()).unwrap();
    assert_eq!(seg.rows(), 15);
    let target = Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, true),
        Field::new("a", DataType::Float64, true),
        Field::new("new", DataType::Boolean, true),
    ]));
    let out = seg.read_as(&target, |_, _| true).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].num_rows(), 5);
    assert_eq!(out[0].column(2).null_count(), 10);
    let a = out[0]
        .column(1)
        .as_any()
        .downcast_ref::<arrow::array::Float64Array>()
        .unwrap();
    assert_eq!(a.value(9), 9.0);
    // No columns at all (count(*)): row counts only.
    let empty = Arc::new(Schema::empty());
    let counts: usize = seg
        .read_as(&empty, |_, _| true)
        .unwrap()
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(counts, 15);
    // The buffer is wiped when the last reference (here, the decoded arrays) goes.
    let bytes = seg.bytes() as u64;
    drop(seg);
    assert_eq!(
        zeroized.load(Ordering::Relaxed),
        0,
        "arrays still point into it"
    );
    drop(out);
    assert!(zeroized.load(Ordering::Relaxed) >= bytes);
}

#[test]
fn each_batch_has_a_buffer_of_its_own_freed_when_no_query_holds_it() {
    let zeroized = Arc::new(AtomicU64::new(0));
    let allocated = AtomicU64::new(0);
    let b = [batch(1_000), batch(1_000), batch(0), batch(1_000)];
    let schema = b[0].schema();
    let seg = HotSegment::encode_from(
        &loc(),
        Arc::clone(&schema),
        b.iter().map(|b| Ok(b.clone())),
        None,
        Arc::clone(&zeroized),
        &allocated,
    )
    .unwrap();
    assert_eq!(
        (seg.rows(), seg.batch_count()),
        (3_000, 3),
        "the empty batch is left out"
    );
    // Each buffer about its batch's size: nothing held twice, no large spare room.
    let alive = allocated.load(Ordering::Relaxed) as usize;
    assert!(
        alive >= seg.bytes() && alive <= seg.bytes() * 9 / 8,
        "{alive} for {}",
        seg.bytes()
    );
    // A query that still holds one batch of an evicted segment keeps that batch's buffer
    // alone alive.
    let mut out = seg.read_as(&schema, |_, _| true).unwrap();
    drop(seg);
    let kept = out.remove(1);
    drop(out);
    let freed = zeroized.load(Ordering::Relaxed) as usize;
    assert!(freed > 0 && freed < alive, "{freed} of {alive} freed");
    assert_eq!(kept.num_rows(), 1_000);
    drop(kept);
    assert_eq!(zeroized.load(Ordering::Relaxed) as usize, alive);
}

#[test]
fn a_column_of_few_values_is_read_as_its_held_dictionary_and_one_of_many_is_cast() {
    use arrow::array::{AsArray, StringViewArray};
    let schema = Arc::new(Schema::new(vec![
        Field::new("level", DataType::Utf8View, true),
        Field::new("user", DataType::Utf8View, false),
    ]));
    let rows = 2_000;
    let level: StringViewArray = (0..rows)
        .map(|i| (i % 9 != 0).then(|| ["INFO", "WARN", "ERROR"][i % 3]))
        .collect();
    let user: StringViewArray = (0..rows).map(|i| Some(format!("user-{i}"))).collect();
    let b =
        RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(level), Arc::new(user)]).unwrap();
    let zeroized = Arc::new(AtomicU64::new(0));
    let allocated = AtomicU64::new(0);
    let seg = HotSegment::encode_from(
        &loc(),
        Arc::clone(&schema),
        [Ok(b.clone()), Ok(b.clone())].into_iter(),
        None,
        Arc::clone(&zeroized),
        &allocated,
    )
    .unwrap();
    assert!(seg.reads_as_dictionary("level"));
    assert!(!seg.reads_as_dictionary("user"));
    assert!(seg.reads_as_dictionary("missing"), "read as nulls");
    let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let target = Arc::new(Schema::new(vec![
        Field::new("level", dictionary.clone(), true),
        Field::new("user", dictionary, true),
    ]));
    let first = seg.read_as(&target, |_, _| true).unwrap();
    let again = seg.read_as(&target, |_, _| true).unwrap();
    assert_eq!(first.len(), 2);
    for (got, other) in first.iter().zip(&again) {
        assert!(
            Arc::ptr_eq(got.column(0), other.column(0)),
            "the held dictionary, shared, not a cast per read"
        );
        assert!(
            !Arc::ptr_eq(got.column(1), other.column(1)),
            "a cast per read"
        );
        for (i, column) in got.columns().iter().enumerate() {
            let back = arrow::compute::cast(column, &DataType::Utf8View).unwrap();
            assert_eq!(&back, b.column(i), "column {i}: the same strings and nulls");
        }
        assert_eq!(got.column(0).as_dictionary::<Int32Type>().values().len(), 3);
    }
    // The views are read as views still.
    let views = seg.read_as(&schema, |_, _| true).unwrap();
    assert_eq!(views[1].column(0).as_ref(), b.column(0).as_ref());
    // The dictionaries are in the batches' buffers: wiped with them.
    drop((seg, first, again, views));
    assert_eq!(
        zeroized.load(Ordering::Relaxed),
        allocated.load(Ordering::Relaxed)
    );
}

/// Regression: a batch holding two dictionaries failed to promote ("dictionary id 1 not
/// found in schema": the decoder took the tier's schema, whose fields carry no dictionary
/// ids, instead of the IPC file's own).
#[test]
fn a_batch_with_two_columns_of_few_values_holds_both_dictionaries() {
    use arrow::array::StringViewArray;
    let schema = Arc::new(Schema::new(vec![
        Field::new("level", DataType::Utf8View, false),
        Field::new("host", DataType::Utf8View, false),
    ]));
    let level: StringViewArray = (0..1_000).map(|i| Some(["INFO", "WARN"][i % 2])).collect();
    let host: StringViewArray = (0..1_000).map(|i| Some(format!("h{}", i % 7))).collect();
    let b =
        RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(level), Arc::new(host)]).unwrap();
    let seg = HotSegment::encode(
        &loc(),
        Arc::clone(&schema),
        std::slice::from_ref(&b),
        None,
        Arc::default(),
    )
    .unwrap();
    assert!(seg.reads_as_dictionary("level") && seg.reads_as_dictionary("host"));
    let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let target = Arc::new(Schema::new(vec![
        Field::new("level", dictionary.clone(), true),
        Field::new("host", dictionary, true),
    ]));
    let read = seg.read_as(&target, |_, _| true).unwrap();
    for (i, column) in read[0].columns().iter().enumerate() {
        let back = arrow::compute::cast(column, &DataType::Utf8View).unwrap();
        assert_eq!(&back, b.column(i), "column {i}");
    }
}

fn timed(times: &[i64]) -> RecordBatch {
    use arrow::array::TimestampMicrosecondArray;
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            TIME_COLUMN,
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("n", DataType::Int64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(TimestampMicrosecondArray::from(times.to_vec()).with_timezone("UTC")),
            Arc::new(Int64Array::from_iter_values(times.iter().map(|t| t * 10))),
        ],
    )
    .unwrap()
}

#[test]
fn batches_outside_the_time_bounds_are_skipped() {
    let b = [
        timed(&[100, 150, 199]),
        timed(&[200, 250, 299]),
        timed(&[300]),
    ];
    let seg = HotSegment::encode(&loc(), b[0].schema(), &b, None, Arc::default()).unwrap();
    assert_eq!(seg.batch_count(), 3);
    let target = b[0].schema();
    // Bounds [220, 260]: only the middle batch can hold a match.
    let out = seg
        .read_as(&target, |lo, hi| hi >= 220 && lo <= 260)
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].num_rows(), 3);
    // Touching bounds are inclusive: [199, 200] overlaps the first two.
    let out = seg
        .read_as(&target, |lo, hi| hi >= 199 && lo <= 200)
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(seg.read_as(&target, |_, _| false).unwrap().len(), 0);
}

#[test]
fn time_ranges_cover_every_row_in_any_unit() {
    use arrow::array::{TimestampMillisecondArray, TimestampNanosecondArray};
    let nanos: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![1_500, -1_500, 7_000]));
    assert_eq!(time_range(&nanos), Some((-2, 7)));
    let millis: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![3, -1]));
    assert_eq!(time_range(&millis), Some((-1_000, 3_000)));
    let none: ArrayRef = Arc::new(Int64Array::from(vec![1]));
    assert_eq!(time_range(&none), None);
    let empty: ArrayRef = Arc::new(TimestampNanosecondArray::from(Vec::<i64>::new()));
    assert_eq!(time_range(&empty), None);
}
