//! Time partitions of rows, and the write-ahead log sequence numbers a segment holds.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::TimestampMicrosecondType;
use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::IngestError;
use crate::kind::TIME_GENERATED;

/// The time span of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Granularity {
    /// One partition per UTC hour.
    Hour,
    /// One partition per UTC day.
    #[default]
    Day,
}

impl Granularity {
    fn micros(self) -> i64 {
        match self {
            Self::Hour => 3_600_000_000,
            Self::Day => 86_400_000_000,
        }
    }
}

/// A time partition: the UTC hour or day its rows' `TimeGenerated` falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    /// Its span.
    pub granularity: Granularity,
    /// Its start, in UTC microseconds since the epoch.
    pub start_micros: i64,
}

impl PartitionKey {
    /// The partition holding time `micros`.
    pub fn of(granularity: Granularity, micros: i64) -> Self {
        let span = granularity.micros();
        Self {
            granularity,
            start_micros: micros.div_euclid(span) * span,
        }
    }

    /// Its start.
    pub fn start(&self) -> DateTime<Utc> {
        Utc.timestamp_micros(self.start_micros)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// Its end (exclusive).
    pub fn end(&self) -> DateTime<Utc> {
        self.start() + Duration::microseconds(self.granularity.micros())
    }

    /// A label for paths and logs: `2021-04-26` for a day, `2021-04-26T19` for an hour.
    pub fn label(&self) -> String {
        match self.granularity {
            Granularity::Day => self.start().format("%Y-%m-%d").to_string(),
            Granularity::Hour => self.start().format("%Y-%m-%dT%H").to_string(),
        }
    }
}

/// An inclusive range of write-ahead log sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    /// The first.
    pub first: u64,
    /// The last.
    pub last: u64,
}

impl SeqRange {
    /// Whether `seq` is in the range.
    pub fn contains(&self, seq: u64) -> bool {
        (self.first..=self.last).contains(&seq)
    }
}

/// Adds `seq` to sorted, disjoint, non-adjacent ranges.
pub(super) fn add_seq(ranges: &mut Vec<SeqRange>, seq: u64) {
    let i = ranges.partition_point(|r| r.last < seq);
    if ranges.get(i).is_some_and(|r| r.contains(seq)) {
        return;
    }
    let joins_prev = i > 0 && ranges[i - 1].last + 1 == seq;
    let joins_next = ranges.get(i).is_some_and(|r| r.first == seq + 1);
    match (joins_prev, joins_next) {
        (true, true) => {
            ranges[i - 1].last = ranges[i].last;
            ranges.remove(i);
        }
        (true, false) => ranges[i - 1].last = seq,
        (false, true) => ranges[i].first = seq,
        (false, false) => ranges.insert(
            i,
            SeqRange {
                first: seq,
                last: seq,
            },
        ),
    }
}

/// Splits a batch by the partition of each row's `TimeGenerated`, keeping row order within a
/// partition; with each part, its earliest and latest time.
pub(super) fn split_by_partition(
    table: &str,
    batch: &RecordBatch,
    granularity: Granularity,
) -> Result<Vec<(PartitionKey, RecordBatch, i64, i64)>, IngestError> {
    let times = batch
        .column_by_name(TIME_GENERATED)
        .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
        .filter(|c| c.null_count() == 0)
        .ok_or_else(|| {
            IngestError::arrow(
                table,
                "batch has no non-null TimeGenerated timestamp column",
            )
        })?;
    let values = times.values();
    let (Some(&lo), Some(&hi)) = (values.iter().min(), values.iter().max()) else {
        return Ok(Vec::new());
    };
    let first = PartitionKey::of(granularity, lo);
    if first == PartitionKey::of(granularity, hi) {
        return Ok(vec![(first, batch.clone(), lo, hi)]);
    }
    let mut groups: BTreeMap<PartitionKey, Vec<u32>> = BTreeMap::new();
    for (row, &t) in values.iter().enumerate() {
        let row = u32::try_from(row).map_err(|e| IngestError::arrow(table, e))?;
        groups
            .entry(PartitionKey::of(granularity, t))
            .or_default()
            .push(row);
    }
    groups
        .into_iter()
        .map(|(key, rows)| {
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            for &r in &rows {
                let t = values[r as usize];
                lo = lo.min(t);
                hi = hi.max(t);
            }
            let part = take_record_batch(batch, &UInt32Array::from(rows))
                .map_err(|e| IngestError::arrow(table, e))?;
            Ok((key, part, lo, hi))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_ranges_stay_sorted_and_coalesced() {
        let mut r = Vec::new();
        for s in [5, 1, 2, 9, 4, 3, 7, 2, 8] {
            add_seq(&mut r, s);
        }
        let got: Vec<(u64, u64)> = r.iter().map(|x| (x.first, x.last)).collect();
        assert_eq!(got, vec![(1, 5), (7, 9)]);
        add_seq(&mut r, 6);
        assert_eq!(r, vec![SeqRange { first: 1, last: 9 }]);
    }
}
