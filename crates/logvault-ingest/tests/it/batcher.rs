//! The batcher: time partitions, size and age triggers, widening merges, sink failures,
//! checkpoints.

// Test helpers outside `#[test]` functions unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, TimestampMicrosecondType};
use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use logvault_core::TestClock;
use logvault_ingest::{
    Batcher, BatcherOptions, Format, Granularity, IngestError, OpenSegment, ParseOptions,
    PartitionKey, SegmentBatch, SegmentDone, SegmentSink, TIME_GENERATED, TableSchema,
    parse_payload,
};

#[derive(Default)]
struct MemorySink {
    segments: Mutex<Vec<SegmentBatch>>,
    failing: Mutex<bool>,
}

#[async_trait]
impl SegmentSink for MemorySink {
    async fn write_segment(&self, segment: SegmentBatch) -> Result<(), IngestError> {
        if *self.failing.lock().unwrap() {
            return Err(IngestError::Sink {
                table: segment.table,
                reason: "store unavailable".into(),
            });
        }
        self.segments.lock().unwrap().push(segment);
        Ok(())
    }
}

fn clock() -> TestClock {
    TestClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap())
}

fn batches(schema: &mut TableSchema, payload: &str) -> Vec<RecordBatch> {
    parse_payload(
        Cursor::new(payload.to_owned()),
        Format::JsonLines,
        schema,
        &ParseOptions::default(),
        &clock(),
    )
    .unwrap()
    .batches
}

fn rows(day: u32, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"TimeGenerated\": \"2021-04-{day:02}T{:02}:00:00Z\", \"i\": {i}}}\n",
                i % 24
            )
        })
        .collect()
}

fn batcher(sink: &Arc<MemorySink>, options: BatcherOptions) -> Batcher {
    Batcher::new(options, Arc::clone(sink) as Arc<dyn SegmentSink>, 0).unwrap()
}

#[tokio::test]
async fn rows_are_partitioned_by_utc_day_of_time_generated() {
    let sink = Arc::new(MemorySink::default());
    let mut b = batcher(&sink, BatcherOptions::default());
    let mut schema = TableSchema::new("T").unwrap();
    let payload = format!("{}{}{}", rows(26, 3), rows(28, 2), rows(26, 1));
    for batch in batches(&mut schema, &payload) {
        assert_eq!(b.add("T", &batch, None).await.unwrap(), 0);
    }
    assert_eq!(b.buffered_rows(), 6);
    assert_eq!(b.flush_all().await.unwrap(), 2);
    let segs = sink.segments.lock().unwrap();
    let summary: Vec<(String, usize)> = segs
        .iter()
        .map(|s| (s.partition.label(), s.batch.num_rows()))
        .collect();
    assert_eq!(
        summary,
        vec![("2021-04-26".into(), 4), ("2021-04-28".into(), 2)]
    );
    let day26 = &segs[0];
    assert_eq!(
        day26.min_time,
        Utc.with_ymd_and_hms(2021, 4, 26, 0, 0, 0)
            .unwrap()
            .timestamp_micros()
    );
    assert_eq!(
        day26.max_time,
        Utc.with_ymd_and_hms(2021, 4, 26, 2, 0, 0)
            .unwrap()
            .timestamp_micros()
    );
    assert!(day26.partition.start() <= Utc.timestamp_micros(day26.min_time).unwrap());
    assert!(Utc.timestamp_micros(day26.max_time).unwrap() < day26.partition.end());
    // Row order within a partition is arrival order.
    let i = day26
        .batch
        .column_by_name("i")
        .unwrap()
        .as_primitive::<arrow::datatypes::Int64Type>();
    assert_eq!(i.values().to_vec(), vec![0, 1, 2, 0]);
    assert_eq!(b.buffered_rows(), 0);
}

#[tokio::test]
async fn hourly_partitions() {
    let key = PartitionKey::of(
        Granularity::Hour,
        Utc.with_ymd_and_hms(2021, 4, 26, 19, 17, 58)
            .unwrap()
            .timestamp_micros(),
    );
    assert_eq!(key.label(), "2021-04-26T19");
    let before_epoch = PartitionKey::of(Granularity::Day, -1);
    assert_eq!(before_epoch.label(), "1969-12-31");
}

#[tokio::test]
async fn size_finishes_segments_without_splitting_a_batch() {
    let sink = Arc::new(MemorySink::default());
    let options = BatcherOptions {
        max_rows: 10,
        ..BatcherOptions::default()
    };
    let mut b = batcher(&sink, options);
    let mut schema = TableSchema::new("T").unwrap();
    let three = batches(&mut schema, &rows(26, 3)).remove(0);
    for expected in [0, 0, 0, 1] {
        assert_eq!(b.add("T", &three, None).await.unwrap(), expected);
    }
    assert_eq!(sink.segments.lock().unwrap()[0].batch.num_rows(), 12);

    b.add("T", &three, None).await.unwrap();
    assert_eq!(sink.segments.lock().unwrap().len(), 1);
    assert_eq!(b.flush_all().await.unwrap(), 1);
    assert_eq!(sink.segments.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn batches_of_growing_schemas_merge_into_the_widest_kinds() {
    let sink = Arc::new(MemorySink::default());
    let mut b = batcher(&sink, BatcherOptions::default());
    let mut schema = TableSchema::new("T").unwrap();
    let t = "\"TimeGenerated\": \"2021-04-26T10:00:00Z\"";
    for payload in [
        format!("{{{t}, \"x\": 1, \"y\": true, \"d\": {{\"k\": 1}}}}"),
        format!("{{{t}, \"x\": 1.5, \"z\": \"new\"}}"),
        format!("{{{t}, \"x\": \"text\", \"y\": 3, \"d\": [2]}}"),
    ] {
        for batch in batches(&mut schema, &payload) {
            b.add("T", &batch, None).await.unwrap();
        }
    }
    b.flush_all().await.unwrap();
    let segs = sink.segments.lock().unwrap();
    let seg = &segs[0].batch;
    let col = |n: &str| {
        let c = seg.column_by_name(n).unwrap().as_string::<i32>();
        (0..c.len())
            .map(|i| c.is_valid(i).then(|| c.value(i).to_owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        col("x"),
        vec![Some("1".into()), Some("1.5".into()), Some("text".into())]
    );
    assert_eq!(col("y"), vec![Some("true".into()), None, Some("3".into())]);
    assert_eq!(col("z"), vec![None, Some("new".into()), None]);
    assert_eq!(
        col("d"),
        vec![Some("{\"k\": 1}".into()), None, Some("[2]".into())]
    );
    assert!(logvault_ingest::is_dynamic(
        seg.schema().field_with_name("d").unwrap()
    ));
    let tg = seg.column_by_name(TIME_GENERATED).unwrap();
    assert_eq!(tg.null_count(), 0);
    assert!(matches!(tg.data_type(), DataType::Timestamp(_, Some(tz)) if tz.as_ref() == "UTC"));
    let names: Vec<String> = seg
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        vec!["TimeGenerated", "_TimeReceived", "x", "y", "d", "z"]
    );
    let _ = tg.as_primitive::<TimestampMicrosecondType>();
}

#[tokio::test]
async fn a_failing_sink_loses_the_segment_from_memory_but_never_from_the_log() {
    let sink = Arc::new(MemorySink::default());
    let options = BatcherOptions {
        max_rows: 2,
        ..BatcherOptions::default()
    };
    let mut b = batcher(&sink, options);
    let mut schema = TableSchema::new("T").unwrap();
    let batch = batches(&mut schema, &rows(26, 3)).remove(0);
    *sink.failing.lock().unwrap() = true;
    let err = b.add("T", &batch, Some(1)).await.unwrap_err();
    assert!(err.to_string().contains("store unavailable"), "{err}");
    assert_eq!(
        b.buffered_rows(),
        0,
        "the failed segment's rows leave memory"
    );
    assert_eq!(
        b.checkpoint(),
        0,
        "the log keeps record 1 for the next open"
    );
    *sink.failing.lock().unwrap() = false;
    b.add("T", &batch, Some(2)).await.unwrap();
    b.flush_all().await.unwrap();
    assert_eq!(sink.segments.lock().unwrap().len(), 1);
    assert_eq!(
        b.checkpoint(),
        0,
        "record 1's rows were lost from memory: the checkpoint never passes it"
    );
}

/// A finished segment: its columns, the rows of each write, its log ranges.
type Finished = (Vec<String>, Vec<usize>, Vec<(u64, u64)>);

/// A sink that takes rows as they arrive, as the store's does.
#[derive(Default)]
struct StreamingSink {
    /// Per finished segment: its schema's column names, the rows of each write, its log ranges.
    finished: Mutex<Vec<Finished>>,
    fail_writes: Mutex<bool>,
}

struct Streaming {
    sink: Arc<StreamingSink>,
    schema: arrow::datatypes::SchemaRef,
    writes: Vec<usize>,
}

/// The sink as the batcher holds it.
struct Streams(Arc<StreamingSink>);

#[async_trait]
impl SegmentSink for Streams {
    async fn write_segment(&self, _segment: SegmentBatch) -> Result<(), IngestError> {
        panic!("a streaming sink is never handed a whole segment");
    }

    async fn open_segment(
        &self,
        _table: &str,
        _partition: PartitionKey,
        schema: arrow::datatypes::SchemaRef,
    ) -> Result<Option<Box<dyn OpenSegment>>, IngestError> {
        Ok(Some(Box::new(Streaming {
            sink: Arc::clone(&self.0),
            schema,
            writes: Vec::new(),
        })))
    }
}

#[async_trait]
impl OpenSegment for Streaming {
    async fn write(&mut self, batch: RecordBatch) -> Result<(), IngestError> {
        assert_eq!(
            batch.schema(),
            self.schema,
            "rows come aligned to the segment"
        );
        if *self.sink.fail_writes.lock().unwrap() {
            return Err(IngestError::Sink {
                table: "T".into(),
                reason: "disk full".into(),
            });
        }
        self.writes.push(batch.num_rows());
        Ok(())
    }

    fn memory(&self) -> usize {
        // Stands for the encoded bytes: 10 per row.
        self.writes.iter().sum::<usize>() * 10
    }

    async fn finish(self: Box<Self>, done: SegmentDone) -> Result<(), IngestError> {
        let names = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let wal = done.wal.iter().map(|r| (r.first, r.last)).collect();
        self.sink
            .finished
            .lock()
            .unwrap()
            .push((names, self.writes, wal));
        Ok(())
    }
}

#[tokio::test]
async fn a_streaming_sink_takes_rows_as_they_arrive_and_a_new_column_starts_a_segment() {
    let sink = Arc::new(StreamingSink::default());
    let options = BatcherOptions {
        max_buffered_bytes: 1_000,
        ..BatcherOptions::default()
    };
    let mut b = Batcher::new(options, Arc::new(Streams(Arc::clone(&sink))), 0).unwrap();
    let mut schema = TableSchema::new("T").unwrap();
    let t = "\"TimeGenerated\": \"2021-04-26T10:00:00Z\"";
    let mut seq = 0;
    for payload in [
        format!("{{{t}, \"x\": 1}}\n{{{t}, \"x\": 2}}"),
        format!("{{{t}, \"x\": 3}}"),
        // A new column: the open segment is finished, a new one has x and z.
        format!("{{{t}, \"z\": \"new\"}}"),
        // x again, and no z: fits the new segment (z null there).
        format!("{{{t}, \"x\": 4}}"),
    ] {
        for batch in batches(&mut schema, &payload) {
            seq += 1;
            b.add("T", &batch, Some(seq)).await.unwrap();
        }
    }
    // What is buffered is what the open segment says it holds, not the rows' Arrow size.
    assert_eq!(b.buffered_bytes(), 20);
    assert_eq!(b.buffered_rows(), 2);
    b.flush_all().await.unwrap();
    let finished = sink.finished.lock().unwrap().clone();
    assert_eq!(finished.len(), 2, "{finished:?}");
    assert_eq!(finished[0].1, vec![2, 1]);
    assert_eq!(finished[0].2, vec![(1, 2)]);
    assert!(finished[0].0.contains(&"x".to_owned()) && !finished[0].0.contains(&"z".to_owned()));
    assert!(finished[1].0.contains(&"x".to_owned()) && finished[1].0.contains(&"z".to_owned()));
    assert_eq!(finished[1].1, vec![1, 1]);
    assert_eq!(finished[1].2, vec![(3, 4)]);
    assert_eq!(b.checkpoint(), 4);

    // More than the memory bound of open segments: the largest is finished.
    for i in 0..150 {
        let batch = batches(&mut schema, &format!("{{{t}, \"x\": {i}}}\n")).remove(0);
        b.add("T", &batch, None).await.unwrap();
        assert!(b.buffered_bytes() <= 1_000, "{}", b.buffered_bytes());
    }
    assert!(sink.finished.lock().unwrap().len() >= 3);

    // A failed write: the segment's rows leave memory, the checkpoint stays before them.
    b.flush_all().await.unwrap();
    *sink.fail_writes.lock().unwrap() = true;
    let batch = batches(&mut schema, &format!("{{{t}, \"x\": 9}}")).remove(0);
    let err = b.add("T", &batch, Some(5)).await.unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    assert_eq!((b.buffered_rows(), b.buffered_bytes()), (0, 0));
    assert_eq!(b.checkpoint(), 4);
}

#[tokio::test]
async fn the_checkpoint_trails_the_oldest_unflushed_record() {
    let sink = Arc::new(MemorySink::default());
    let options = BatcherOptions {
        max_rows: 4,
        ..BatcherOptions::default()
    };
    let mut b = batcher(&sink, options);
    let mut schema = TableSchema::new("T").unwrap();
    let day26 = batches(&mut schema, &rows(26, 2)).remove(0);
    let day27 = batches(&mut schema, &rows(27, 1)).remove(0);
    b.add("T", &day26, Some(1)).await.unwrap();
    b.add("T", &day27, Some(2)).await.unwrap();
    assert_eq!(b.checkpoint(), 0);
    // Records arriving out of order: 4 before 3.
    b.add("T", &day26, Some(4)).await.unwrap(); // day 26 reaches 4 rows: flushed (records 1, 4)
    let wal: Vec<(u64, u64)> = sink.segments.lock().unwrap()[0]
        .wal
        .iter()
        .map(|r| (r.first, r.last))
        .collect();
    assert_eq!(wal, vec![(1, 1), (4, 4)], "exactly the records it holds");
    assert_eq!(
        b.checkpoint(),
        1,
        "record 2 is still buffered, record 3 not seen"
    );
    b.add("T", &day27, Some(3)).await.unwrap();
    assert_eq!(b.checkpoint(), 1);
    b.flush_all().await.unwrap();
    assert_eq!(b.checkpoint(), 4);
}

#[tokio::test]
async fn total_buffered_bytes_are_bounded() {
    let sink = Arc::new(MemorySink::default());
    let mut schema = TableSchema::new("T").unwrap();
    let one_day = batches(&mut schema, &rows(26, 50)).remove(0);
    let limit = one_day.get_array_memory_size() * 2 + 1;
    let options = BatcherOptions {
        max_buffered_bytes: limit,
        ..BatcherOptions::default()
    };
    let mut b = batcher(&sink, options);
    let mut flushed = 0;
    for day in 1..=6 {
        let batch = batches(&mut schema, &rows(day, 50)).remove(0);
        flushed += b.add("T", &batch, None).await.unwrap();
        assert!(b.buffered_bytes() <= limit);
    }
    assert!(flushed >= 3, "{flushed}");
}

/// Over the bound, the segment that the last batch did not touch finishes first: rows in time
/// order leave yesterday's segment open and quiet, and today's keeps filling (the largest would
/// be today's once it outgrows yesterday's, cutting it short while the quiet one stayed open).
#[tokio::test]
async fn over_the_bound_the_quiet_segment_finishes_before_the_one_being_filled() {
    let sink = Arc::new(MemorySink::default());
    let mut schema = TableSchema::new("T").unwrap();
    let small = batches(&mut schema, &rows(1, 20)).remove(0);
    let big = batches(&mut schema, &rows(2, 60)).remove(0);
    // Yesterday's 20 rows and today's 60 fit, and so would today's 120 alone; all three
    // batches do not.
    let limit = 2 * big.get_array_memory_size() + small.get_array_memory_size() / 2;
    let options = BatcherOptions {
        max_buffered_bytes: limit,
        ..BatcherOptions::default()
    };
    let mut b = batcher(&sink, options);
    assert_eq!(b.add("T", &small, None).await.unwrap(), 0);
    assert_eq!(b.add("T", &big, None).await.unwrap(), 0);
    let more = batches(&mut schema, &rows(2, 60)).remove(0);
    let flushed = b.add("T", &more, None).await.unwrap();
    assert_eq!(flushed, 1, "one segment finished: yesterday's");
    let segments = sink.segments.lock().unwrap();
    assert_eq!(segments.len(), 1);
    assert_eq!(segments[0].batch.num_rows(), 20);
    drop(segments);
    assert!(b.buffered_bytes() <= limit);
}

/// Rows in time order leave yesterday's segment behind: once its table has received
/// `quiet_rows` rows without any for it, it is finished (it would otherwise hold its encoders
/// until the end of the payload); rows of other tables do not count, and a late row of the
/// quiet day goes to a new segment.
#[tokio::test]
async fn a_segment_its_table_left_behind_for_quiet_rows_is_finished() {
    let sink = Arc::new(MemorySink::default());
    let options = BatcherOptions {
        quiet_rows: 30,
        ..BatcherOptions::default()
    };
    let mut b = batcher(&sink, options);
    let mut t = TableSchema::new("T").unwrap();
    let mut u = TableSchema::new("U").unwrap();
    let add = |schema: &mut TableSchema, day, n| batches(schema, &rows(day, n)).remove(0);
    assert_eq!(b.add("T", &add(&mut t, 1, 20), None).await.unwrap(), 0);
    // 20 rows of day 2 since day 1 got any: not quiet yet.
    assert_eq!(b.add("T", &add(&mut t, 2, 20), None).await.unwrap(), 0);
    // Another table's rows do not make T's day 1 quiet.
    assert_eq!(b.add("U", &add(&mut u, 5, 100), None).await.unwrap(), 0);
    assert!(sink.segments.lock().unwrap().is_empty());
    // 40 rows of T since: day 1 is finished, day 2 stays open.
    assert_eq!(b.add("T", &add(&mut t, 2, 20), None).await.unwrap(), 1);
    let summary = |sink: &MemorySink| -> Vec<(String, String, usize)> {
        sink.segments
            .lock()
            .unwrap()
            .iter()
            .map(|s| (s.table.clone(), s.partition.label(), s.batch.num_rows()))
            .collect()
    };
    assert_eq!(summary(&sink), vec![("T".into(), "2021-04-01".into(), 20)]);
    assert_eq!(b.buffered_rows(), 140);
    // A late row of day 1 opens a new segment, which goes quiet in turn; U's day 5 is quiet
    // only by U's own rows.
    assert_eq!(b.add("T", &add(&mut t, 1, 1), None).await.unwrap(), 0);
    assert_eq!(b.add("T", &add(&mut t, 2, 29), None).await.unwrap(), 0);
    assert_eq!(b.add("T", &add(&mut t, 2, 1), None).await.unwrap(), 1);
    assert_eq!(
        summary(&sink),
        vec![
            ("T".into(), "2021-04-01".into(), 20),
            ("T".into(), "2021-04-01".into(), 1)
        ]
    );
    assert_eq!(b.add("U", &add(&mut u, 6, 30), None).await.unwrap(), 1);
    assert_eq!(summary(&sink)[2], ("U".into(), "2021-04-05".into(), 100));
}
