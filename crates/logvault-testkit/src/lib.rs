//! Test support shared by logvault's crates, used only as a dev-dependency: log-like Arrow
//! rows with markers that plaintext scans can look for, file helpers, and a fault-injecting
//! object store ([`faults`]).
//!
//! It depends on no logvault crate, so that any crate's tests can use it without a dependency
//! cycle (a crate whose tests depended on a helper that depends on the crate would see two
//! copies of its own types).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failure is a test failure

pub mod faults;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, Duration, Utc};

/// The schema of [`log_batch`]'s rows.
pub fn log_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new(
            "TimeGenerated",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new("Computer", DataType::Utf8, false),
        Field::new("Severity", DataType::Utf8, false),
        Field::new("EventId", DataType::Int64, false),
        Field::new("Message", DataType::Utf8, true),
    ]))
}

/// `n` log-like rows, one a second from `start`; every message carries `marker` and the row's
/// number, so plaintext scans can look for them.
pub fn log_batch(start: DateTime<Utc>, n: usize, marker: &str) -> RecordBatch {
    let severities = ["info", "warning", "error", "debug"];
    let times: Vec<i64> = (0..n)
        .map(|i| {
            (start + Duration::seconds(i as i64))
                .timestamp_nanos_opt()
                .unwrap()
        })
        .collect();
    let computers: Vec<String> = (0..n).map(|i| format!("host-{:02}", i % 7)).collect();
    let sev: Vec<&str> = (0..n).map(|i| severities[i % 4]).collect();
    let ids: Vec<i64> = (0..n).map(|i| 4600 + (i % 40) as i64).collect();
    let messages: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{marker} user login from 10.0.{}.{} row {i}",
                i % 250,
                i % 13
            )
        })
        .collect();
    RecordBatch::try_new(
        log_schema(),
        vec![
            Arc::new(TimestampNanosecondArray::from(times).with_timezone("UTC")),
            Arc::new(StringArray::from(computers)),
            Arc::new(StringArray::from(sev)),
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(messages)),
        ],
    )
    .unwrap()
}

/// Concatenates batches for comparison.
pub fn concat(batches: &[RecordBatch]) -> RecordBatch {
    let schema = batches[0].schema();
    arrow::compute::concat_batches(&schema, batches).unwrap()
}

/// Every regular file under `dir`, recursively, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Polls `check` every 100 ms for up to 20 s; panics naming `what` if it never holds. For a
/// test that waits for something another task or thread does, instead of a fixed sleep.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 20 s");
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rows_carry_their_marker_and_number() {
        let b = log_batch(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(), 3, "M-1");
        assert_eq!(b.num_rows(), 3);
        let msg = b.column(4).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(msg.value(2), "M-1 user login from 10.0.2.2 row 2");
        assert!(contains(b"abcdef", b"cde") && !contains(b"abc", b"abd"));
    }
}
