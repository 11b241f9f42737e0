//! The writer's encoding stage (`logvault-write`, `encoder.rs`): segments are encoded and stored
//! by a task of the writer while it logs the next rows. What must hold: the log goes on
//! acknowledging while a segment is being stored, up to the stage's queue bound, and then waits
//! (bounded memory); a store error in the stage reaches the caller, and the rows it concerned
//! stay in the log for the next open, stored exactly once.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use logvault::ingest::BatcherOptions;
use logvault::{Appended, RequestRows, WorkspaceIngestor};
use logvault_testkit::faults::{Fault, Op};

use crate::common::WS;
use crate::store_faults::{faulty_home_with, rows};

const TABLE: &str = "AppLogs";

/// `n` rows tagged `tag` (`Seq` 0..n), each with a message of `pad` bytes.
fn batch(tag: &str, n: usize, pad: usize) -> RecordBatch {
    let start = 1_772_323_200_000_000_000_i64; // 2026-03-01T00:00:00Z
    let schema = Schema::new(vec![
        Field::new(
            "TimeGenerated",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new("Tag", DataType::Utf8, true),
        Field::new("Seq", DataType::Int64, true),
        Field::new("Message", DataType::Utf8, true),
    ]);
    let message = "m".repeat(pad);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampNanosecondArray::from(
                (0..n as i64)
                    .map(|i| start + i * 60_000_000_000)
                    .collect::<Vec<_>>(),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from(vec![tag; n])),
        Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())),
        Arc::new(StringArray::from(vec![message.as_str(); n])),
    ];
    RecordBatch::try_new(Arc::new(schema), columns).unwrap()
}

fn request(tag: &str, n: usize, pad: usize) -> RequestRows {
    RequestRows {
        key: None,
        records: vec![(TABLE.to_owned(), batch(tag, n, pad))],
    }
}

/// Logs `request`: it must be acknowledged (durable) within a generous time.
async fn log(
    ingestor: &mut WorkspaceIngestor,
    request: RequestRows,
    rows: u64,
) -> logvault::Logged {
    let logged = tokio::time::timeout(
        Duration::from_secs(60),
        ingestor.log_requests(std::slice::from_ref(&request)),
    )
    .await
    .expect("the log acknowledges while a segment is being stored")
    .unwrap();
    assert_eq!(logged.0.outcome, Appended::Accepted { rows });
    logged.1.expect("rows to batch")
}

/// Every tag's rows `0..n` exactly once, and nothing else.
async fn assert_stored_once(engine: &logvault::Engine, tags: &[String], n: usize) {
    let got = rows(engine).await.unwrap();
    for tag in tags {
        for seq in 0..n as i64 {
            assert_eq!(
                got.get(&(tag.clone(), seq)),
                Some(&1),
                "row {tag}-{seq} is not stored exactly once"
            );
        }
    }
    assert_eq!(
        got.len(),
        tags.len() * n,
        "rows that were never sent: {got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_acknowledges_while_a_segment_is_stored_up_to_the_queue_bound_then_waits() {
    const ROWS: usize = 64;
    // Each request about a quarter of the queue's bound, whatever the bound is.
    let pad = logvault::write::ENCODE_QUEUE_BYTES / (4 * ROWS);
    let h = faulty_home_with(false, None).await;
    // Each request fills a segment: batching it stores one.
    let options = BatcherOptions {
        max_rows: ROWS,
        ..BatcherOptions::default()
    };
    let mut ingestor = h.engine.ingestor(WS, options).unwrap();
    let per_request = batch("x", ROWS, pad).get_array_memory_size();
    let bound = logvault::write::ENCODE_QUEUE_BYTES / per_request;
    assert!(
        bound >= 2,
        "requests of {per_request} bytes are too large for the test"
    );
    // A store that stops answering segment puts.
    h.store.hold_puts(".parquet");
    let tags: Vec<String> = (0..2 * bound + 4).map(|i| format!("t{i}")).collect();
    let first = log(&mut ingestor, request(&tags[0], ROWS, pad), ROWS as u64).await;
    ingestor.store_logged(first).await.unwrap();
    // The stage takes it and hangs storing its segment.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while h.store.held_puts() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no segment put was held"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Meanwhile the log acknowledges the next requests, and the stage queues them until its
    // bound: then handing one over waits.
    let mut waited_at = None;
    for (i, tag) in tags.iter().enumerate().skip(1) {
        let logged = log(&mut ingestor, request(tag, ROWS, pad), ROWS as u64).await;
        let handed = ingestor.store_logged(logged);
        tokio::pin!(handed);
        match tokio::time::timeout(Duration::from_millis(500), &mut handed).await {
            // A hand-over that did not wait has no error either.
            Ok(result) => result.unwrap(),
            Err(_) => {
                assert_eq!(h.store.held_puts(), 1, "the segment put is still held");
                waited_at = Some(i);
                // The store answers again: the hand-over completes.
                h.store.release();
                handed.await.unwrap();
                break;
            }
        }
    }
    let waited_at = waited_at.expect("handing groups over never waited: the queue is unbounded");
    assert!(
        waited_at >= 2,
        "the log stopped at the request after the one being stored ({waited_at}): no pipelining"
    );
    assert!(
        waited_at <= 2 * bound + 2,
        "{waited_at} requests were queued, more than the bound allows ({bound} of {per_request} bytes)"
    );
    ingestor.flush().await.unwrap();
    assert_eq!(ingestor.buffered_rows(), 0);
    ingestor.release().await.unwrap();
    assert_stored_once(&h.engine, &tags[..=waited_at], ROWS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_error_in_the_encoding_stage_is_reported_and_its_rows_stored_by_the_next_open() {
    const ROWS: usize = 10;
    let h = faulty_home_with(false, None).await;
    let options = BatcherOptions {
        max_rows: ROWS,
        ..BatcherOptions::default()
    };
    let mut ingestor = h.engine.ingestor(WS, options).unwrap();
    h.store.fail_next(Op::Put, ".parquet", Fault::Error, 1);
    let a = log(&mut ingestor, request("a", ROWS, 8), ROWS as u64).await;
    // Handed over at once: the stage fails later, storing its segment.
    ingestor.store_logged(a).await.unwrap();
    let b = log(&mut ingestor, request("b", ROWS, 8), ROWS as u64).await;
    let handed = ingestor.store_logged(b).await;
    let flushed = ingestor.flush().await;
    let e = match (handed, flushed) {
        (Err(e), Ok(())) | (Ok(()), Err(e)) => e,
        (Ok(()), Ok(())) => panic!("the store error was not reported"),
        (Err(e1), Err(e2)) => panic!("the store error was reported twice: {e1}; {e2}"),
    };
    let text = e.to_string();
    assert!(
        text.contains("injected fault"),
        "the store's reason is lost: {text}"
    );
    assert!(
        text.contains("segment"),
        "the error names no segment: {text}"
    );
    // The writer was closed after the error; the next request opens it again, which stores
    // what the log holds: both acknowledged requests, neither in a segment yet.
    assert!(!ingestor.is_open());
    let c = log(&mut ingestor, request("c", ROWS, 8), ROWS as u64).await;
    // `recovered` counts the rows replay stored: a's and b's (it counted segments finished
    // while replaying before, 0 here).
    assert_eq!(
        ingestor.recovered(),
        2 * ROWS as u64,
        "the next open did not report a's and b's rows as recovered"
    );
    ingestor.store_logged(c).await.unwrap();
    ingestor.release().await.unwrap();
    let tags: Vec<String> = ["a", "b", "c"].iter().map(|t| (*t).to_owned()).collect();
    assert_stored_once(&h.engine, &tags, ROWS).await;
}
