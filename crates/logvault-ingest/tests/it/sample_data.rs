//! Every real export under `data/azure_la` parses, with the row count its MANIFEST.csv
//! gives and no rejected record.

// Test helpers outside `#[test]` functions unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::TimestampMicrosecondType;
use chrono::{TimeZone, Utc};
use logvault_core::TestClock;
use logvault_ingest::{
    ColumnKind, Format, ParseOptions, TIME_GENERATED, TableSchema, is_dynamic, parse_payload,
};

/// The repository's `data/` directory: the real exports are in `data/azure_la`, with their
/// manifest and licences.
fn repo_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

struct Entry {
    file: String,
    format: String,
    rows: u64,
}

/// The columns this test needs (`file`, `format`, `rows`) come before any quoted field.
fn manifest(data: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(data.join("azure_la/MANIFEST.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (file, format, rows) = (col("file"), col("format"), col("rows"));
    assert!(file < 4 && format < 4 && rows < 4);
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(5, ',').collect();
            Entry {
                file: f[file].to_owned(),
                format: f[format].to_owned(),
                rows: f[rows].parse().unwrap(),
            }
        })
        .collect()
}

#[test]
fn every_sample_file_parses_with_its_manifest_row_count() {
    let data = repo_data();
    let entries = manifest(&data);
    assert!(
        entries.len() >= 30,
        "manifest lists {} files",
        entries.len()
    );
    let received = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    let clock = TestClock::new(received);
    let mut with_time = 0;
    for entry in &entries {
        let format = match entry.format.as_str() {
            "csv" => Format::Csv,
            "jsonl" => Format::JsonLines,
            "text" => Format::Text,
            other => panic!("{}: unknown format {other}", entry.file),
        };
        let path = data.join(&entry.file);
        let input = BufReader::new(File::open(&path).unwrap());
        let mut schema = TableSchema::new("Sample").unwrap();
        // Small batches, so that schemas grow and widen across batches too.
        let options = ParseOptions {
            batch_rows: 500,
            ..ParseOptions::default()
        };
        let out = parse_payload(input, format, &mut schema, &options, &clock)
            .unwrap_or_else(|e| panic!("{}: {e}", entry.file));
        assert_eq!(
            out.report.errors,
            vec![],
            "{}: unexpected rejections",
            entry.file
        );
        assert_eq!(out.report.rejected, 0, "{}", entry.file);
        assert_eq!(out.report.accepted, entry.rows, "{}", entry.file);
        let rows: usize = out.batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows as u64, entry.rows, "{}", entry.file);

        for def in schema.columns() {
            assert!(
                !def.name.contains(" [")
                    && !def.name.is_empty()
                    && !def.name.starts_with('\u{feff}'),
                "{}: column {:?}",
                entry.file,
                def.name
            );
        }
        // Files whose records carry `TimeGenerated` or `timestamp` take their time from it.
        let first_line = std::fs::read_to_string(&path).unwrap();
        let first_line = first_line.lines().next().unwrap().to_ascii_lowercase();
        let data_has_time = first_line.split([',', '"']).any(|token| {
            let name = token.trim().trim_end_matches(" [utc]");
            name == "timegenerated" || name == "timestamp"
        });
        for batch in &out.batches {
            let tg = batch
                .column_by_name(TIME_GENERATED)
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>();
            assert_eq!(tg.null_count(), 0);
            if data_has_time {
                assert!(
                    tg.values().iter().all(|&t| t < received.timestamp_micros()),
                    "{}: TimeGenerated not taken from the data",
                    entry.file
                );
            }
        }
        if data_has_time {
            with_time += 1;
        }
    }
    assert!(with_time >= 20, "only {with_time} files had their own time");
}

#[test]
fn export_quirks_are_handled() {
    let data = repo_data();
    let clock = TestClock::new(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap());
    let parse = |file: &str, format: Format| {
        let input = BufReader::new(File::open(data.join(file)).unwrap());
        let mut schema = TableSchema::new("Sample").unwrap();
        let out =
            parse_payload(input, format, &mut schema, &ParseOptions::default(), &clock).unwrap();
        (schema, out)
    };

    // Log Analytics export: BOM, ` [UTC]` suffix, `4/28/2021, 2:08:45.221 PM`.
    let (schema, out) = parse(
        "azure_la/sentinel_training_lab/azure_activity.csv",
        Format::Csv,
    );
    assert_eq!(schema.columns()[2].name, "OperationName");
    assert_eq!(
        schema.get("EventSubmissionTimestamp").unwrap().kind,
        ColumnKind::Timestamp
    );
    let first = out.batches[0]
        .column_by_name(TIME_GENERATED)
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>()
        .value(0);
    // "4/26/2021, 7:17:58.447 PM"
    let expected = Utc
        .with_ymd_and_hms(2021, 4, 26, 19, 17, 58)
        .unwrap()
        .timestamp_micros();
    assert_eq!(first, expected + 447_000);

    // A non-UTC zone suffix: the name is stripped, the zone kept, the values kept as text.
    let (schema, _) = parse(
        "azure_la/sentinel_training_lab/ABAPAppLog_CL.csv",
        Format::Csv,
    );
    let col = schema.get("AppLogDateTime").unwrap();
    assert_eq!(col.kind, ColumnKind::String);
    assert_eq!(col.source_time_zone.as_deref(), Some("Jerusalem"));

    // msticpy's unnamed index column is dropped.
    let (schema, _) = parse("azure_la/msticpy/az_net_flows.csv", Format::Csv);
    assert_eq!(schema.columns()[2].name, "TenantId");
    assert!(schema.get("Column1").is_none());

    // Nested JSON values are dynamic columns holding the JSON text.
    let (schema, out) = parse("azure_la/msticpy/aad_logons.jsonl", Format::JsonLines);
    assert_eq!(
        schema.get("ConditionalAccessPolicies").unwrap().kind,
        ColumnKind::Dynamic
    );
    let batch = &out.batches[0];
    let field = batch
        .schema()
        .field_with_name("ConditionalAccessPolicies")
        .unwrap()
        .clone();
    assert!(is_dynamic(&field));
    let text = batch
        .column_by_name("ConditionalAccessPolicies")
        .unwrap()
        .as_string::<i32>()
        .value(0)
        .to_owned();
    assert!(text.starts_with("[{\"enforcedSessionControls\""), "{text}");
    serde_json::from_str::<serde_json::Value>(&text).unwrap();

    // Text lines: one row per line, the line kept whole.
    let (schema, out) = parse("azure_la/msticpy/auditd_log.txt", Format::Text);
    assert!(schema.get("Message").is_some());
    let msg = out.batches[0]
        .column_by_name("Message")
        .unwrap()
        .as_string::<i32>()
        .value(0);
    assert!(msg.starts_with("type=DAEMON_START msg=audit("), "{msg}");
}
