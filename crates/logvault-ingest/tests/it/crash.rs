//! The crash protocol of `docs/ingest.md`: whatever point ingestion crashes at, every
//! acknowledged row ends up in exactly one segment after replay.

// Test helpers outside `#[test]` functions unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::sync::{Arc, Mutex};

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use logvault_core::TestClock;
use logvault_crypto::Aek;
use logvault_ingest::{
    Batcher, BatcherOptions, Format, IngestError, ParseOptions, PartitionKey, SegmentBatch,
    SegmentSink, TableSchema, Wal, WalKey, WalKeyRef, WalKeyScheme, WalOptions, WalRecord,
    parse_payload,
};

/// Stands for the store and its catalog: a segment is "in the catalog" once written here.
#[derive(Default)]
struct Catalog {
    segments: Mutex<Vec<SegmentBatch>>,
}

impl Catalog {
    fn lists(&self, table: &str, partition: PartitionKey, seq: u64) -> bool {
        self.segments.lock().unwrap().iter().any(|s| {
            s.table == table && s.partition == partition && s.wal.iter().any(|r| r.contains(seq))
        })
    }

    fn ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .segments
            .lock()
            .unwrap()
            .iter()
            .flat_map(|s| {
                s.batch
                    .column_by_name("id")
                    .unwrap()
                    .as_primitive::<Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        ids.sort_unstable();
        ids
    }
}

#[async_trait]
impl SegmentSink for Catalog {
    async fn write_segment(&self, segment: SegmentBatch) -> Result<(), IngestError> {
        self.segments.lock().unwrap().push(segment);
        Ok(())
    }
}

const PAYLOADS: i64 = 10;
const ROWS: i64 = 3;

/// Payload `p`: rows `p*3 .. p*3+3`, spread over two days and two tables.
fn payload(p: i64) -> Vec<(&'static str, String)> {
    let mut by_table: BTreeMap<&'static str, String> = BTreeMap::new();
    for id in p * ROWS..(p + 1) * ROWS {
        let table = if id % 4 == 0 { "Other_CL" } else { "Main_CL" };
        let day = 10 + id % 2;
        by_table.entry(table).or_default().push_str(&format!(
            "{{\"TimeGenerated\": \"2021-05-{day}T08:00:00Z\", \"id\": {id}}}\n"
        ));
    }
    by_table.into_iter().collect()
}

struct Node {
    wal: Wal,
    batcher: Batcher,
    schemas: BTreeMap<String, TableSchema>,
}

fn start(
    dir: &std::path::Path,
    key: &Arc<WalKey>,
    catalog: &Arc<Catalog>,
) -> (Node, Vec<logvault_ingest::RecoveredRecord>) {
    let k = Arc::clone(key);
    let ring = move |r: &WalKeyRef| {
        if r == k.key_ref() {
            Ok(Some(Arc::clone(&k)))
        } else {
            Err(format!("unknown {r}"))
        }
    };
    let (wal, rec) = Wal::open(
        dir,
        "ws-crash",
        WalOptions {
            max_file_bytes: 2048,
            ..WalOptions::default()
        },
        &ring,
    )
    .unwrap();
    let options = BatcherOptions {
        max_rows: 4,
        ..BatcherOptions::default()
    };
    let batcher = Batcher::new(
        options,
        Arc::clone(catalog) as Arc<dyn SegmentSink>,
        rec.checkpoint,
    )
    .unwrap();
    (
        Node {
            wal,
            batcher,
            schemas: BTreeMap::new(),
        },
        rec.records,
    )
}

impl Node {
    /// Parse, log (acknowledged once fsynced), batch, and checkpoint what is in segments.
    async fn ingest(&mut self, key: &Arc<WalKey>, p: i64, checkpoint: bool) {
        let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
        let mut parsed = Vec::new();
        for (table, text) in payload(p) {
            let schema = self
                .schemas
                .entry(table.to_owned())
                .or_insert_with(|| TableSchema::new(table).unwrap());
            let out = parse_payload(
                Cursor::new(text),
                Format::JsonLines,
                schema,
                &ParseOptions::default(),
                &clock,
            )
            .unwrap();
            parsed.extend(out.batches.into_iter().map(|b| (table, b)));
        }
        let records: Vec<WalRecord<'_>> = parsed
            .iter()
            .map(|(t, b)| WalRecord { table: t, batch: b })
            .collect();
        let range = self.wal.append(key, &records).await.unwrap();
        for (i, (table, batch)) in parsed.iter().enumerate() {
            self.batcher
                .add(table, batch, Some(range.first + i as u64))
                .await
                .unwrap();
        }
        if checkpoint {
            self.wal
                .checkpoint(self.batcher.checkpoint())
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn every_acknowledged_row_lands_in_exactly_one_segment_whatever_the_crash_point() {
    let aek = Aek::generate().unwrap();
    let key_ref = WalKeyRef {
        scheme: WalKeyScheme::Customer,
        account: "acct".into(),
    };
    let key = Arc::new(WalKey::new(key_ref, aek.derive_purpose_key("wal").unwrap()).unwrap());
    for crash_after in 0..=PAYLOADS {
        for skip_last_checkpoint in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let catalog = Arc::new(Catalog::default());
            {
                let (mut node, recovered) = start(dir.path(), &key, &catalog);
                assert!(recovered.is_empty());
                for p in 0..crash_after {
                    let checkpoint = !(skip_last_checkpoint && p + 1 == crash_after);
                    node.ingest(&key, p, checkpoint).await;
                }
                // Crash: the buffers are lost, and a group was being written when it happened.
                drop(node);
                let newest = std::fs::read_dir(dir.path())
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|e| e == "lvw"))
                    .max()
                    .unwrap();
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(newest)
                    .unwrap();
                f.write_all(b"LVWF\x40\x00\x00\x00 torn").unwrap();
            }
            let (mut node, recovered) = start(dir.path(), &key, &catalog);
            for r in &recovered {
                let c = Arc::clone(&catalog);
                let table = r.table.clone();
                node.batcher
                    .replay(&r.table, &r.batch, r.seq, move |part, seq| {
                        c.lists(&table, part, seq)
                    })
                    .await
                    .unwrap();
            }
            for p in crash_after..PAYLOADS {
                node.ingest(&key, p, true).await;
            }
            node.batcher.flush_all().await.unwrap();
            node.wal
                .checkpoint(node.batcher.checkpoint())
                .await
                .unwrap();
            assert_eq!(
                catalog.ids(),
                (0..PAYLOADS * ROWS).collect::<Vec<_>>(),
                "crash after {crash_after} payloads (last checkpoint skipped: {skip_last_checkpoint})"
            );
        }
    }
}
