//! Parsing: bad input reported by line, bounded records, CSV export quirks, timestamps,
//! schema growth and widening.

// Test helpers outside `#[test]` functions unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufReader, Cursor, Read};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampMicrosecondType};
use chrono::{DateTime, TimeZone, Utc};
use logvault_core::TestClock;
use logvault_ingest::{
    ColumnKind, ErrorPolicy, Format, IngestError, ParseOptions, ParseOutcome, TIME_GENERATED,
    TIME_RECEIVED, TableSchema, parse_payload,
};
use proptest::prelude::*;

fn received() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 3, 4, 5, 6).unwrap()
}

fn parse_with(
    input: impl Read,
    format: Format,
    schema: &mut TableSchema,
    options: &ParseOptions,
) -> Result<ParseOutcome, IngestError> {
    let clock = TestClock::new(received());
    parse_payload(BufReader::new(input), format, schema, options, &clock)
}

fn parse(input: &[u8], format: Format) -> (TableSchema, ParseOutcome) {
    let mut schema = TableSchema::new("SigninLogs").unwrap();
    let out = parse_with(
        Cursor::new(input.to_vec()),
        format,
        &mut schema,
        &ParseOptions::default(),
    )
    .unwrap();
    (schema, out)
}

fn times(batch: &RecordBatch, column: &str) -> Vec<Option<i64>> {
    let c = batch
        .column_by_name(column)
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    (0..c.len())
        .map(|i| c.is_valid(i).then(|| c.value(i)))
        .collect()
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let c = batch.column_by_name(column).unwrap().as_string::<i32>();
    (0..c.len())
        .map(|i| c.is_valid(i).then(|| c.value(i).to_owned()))
        .collect()
}

fn micros(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, ms: i64) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .unwrap()
        .timestamp_micros()
        + ms * 1000
}

const BAD_JSON_LINES: &[u8] = b"{\"a\": 1}\n{\"a\": 2\n\n[1, 2]\n{\"a\": 3, \"TimeGenerated\": \"not a time\"}\n\xff\xfe junk\n{\"a\": 4}\n";

#[test]
fn malformed_lines_are_skipped_counted_and_reported_by_line() {
    let (_, out) = parse(BAD_JSON_LINES, Format::JsonLines);
    assert_eq!((out.report.accepted, out.report.rejected), (2, 4));
    let lines: Vec<u64> = out.report.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 4, 5, 6]);
    let reasons: Vec<&str> = out
        .report
        .errors
        .iter()
        .map(|e| e.reason.as_str())
        .collect();
    assert!(reasons[0].starts_with("invalid JSON"), "{reasons:?}");
    assert!(reasons[1].contains("a JSON object"), "{reasons:?}");
    assert!(
        reasons[2].contains("TimeGenerated \"not a time\""),
        "{reasons:?}"
    );
    assert!(reasons[3].contains("UTF-8"), "{reasons:?}");
    assert_eq!(
        out.report.errors[0].to_string(),
        format!("line 2: {}", reasons[0])
    );
    let a = out.batches[0]
        .column_by_name("a")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(a.values().to_vec(), vec![1, 4]);

    // Only the first samples are kept; all are counted.
    let mut schema = TableSchema::new("T").unwrap();
    let options = ParseOptions {
        max_error_samples: 2,
        ..ParseOptions::default()
    };
    let out = parse_with(BAD_JSON_LINES, Format::JsonLines, &mut schema, &options).unwrap();
    assert_eq!((out.report.rejected, out.report.errors.len()), (4, 2));
}

#[test]
fn the_refuse_policy_refuses_the_whole_payload_and_leaves_the_schema() {
    let mut schema = TableSchema::new("T").unwrap();
    let options = ParseOptions {
        on_error: ErrorPolicy::Refuse,
        ..ParseOptions::default()
    };
    let err = parse_with(BAD_JSON_LINES, Format::JsonLines, &mut schema, &options).unwrap_err();
    assert!(
        matches!(&err, IngestError::Refused { table, line: 2, .. } if table == "T"),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("table T: line 2: invalid JSON"),
        "{err}"
    );
    assert_eq!(schema, TableSchema::new("T").unwrap());
    // The same payload without its bad lines is accepted.
    let good = b"{\"a\": 1}\n{\"a\": 4}\n";
    let out = parse_with(&good[..], Format::JsonLines, &mut schema, &options).unwrap();
    assert_eq!(out.report.accepted, 2);
}

/// An endless source of one huge line, then a good one: never held in memory whole.
struct HugeLine {
    left: u64,
    tail: Cursor<&'static [u8]>,
}

impl Read for HugeLine {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return self.tail.read(buf);
        }
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        buf[..n].fill(b'x');
        self.left -= n as u64;
        Ok(n)
    }
}

#[test]
fn huge_records_are_skipped_within_the_limit() {
    let options = ParseOptions {
        max_record_bytes: 64 * 1024,
        ..ParseOptions::default()
    };
    for format in [
        Format::JsonLines,
        Format::Text,
        Format::JsonArray,
        Format::Csv,
    ] {
        let (head, tail): (&[u8], &'static [u8]) = match format {
            Format::JsonArray => (b"[{\"a\": \"", b"\"},\n{\"a\": \"ok\"}]"),
            Format::Csv => (b"a\n\"", b"\"\nok\n"),
            _ => (b"", b"\n{\"a\": \"ok\"}\n"),
        };
        let input = Cursor::new(head).chain(HugeLine {
            left: 200 << 20,
            tail: Cursor::new(tail),
        });
        let mut schema = TableSchema::new("T").unwrap();
        let out = parse_with(input, format, &mut schema, &options).unwrap();
        assert_eq!(
            (out.report.accepted, out.report.rejected),
            (1, 1),
            "{format:?}"
        );
        let e = &out.report.errors[0];
        assert!(
            e.reason.contains("exceeds the limit of 65536 bytes"),
            "{format:?}: {e}"
        );
        assert!(e.line <= 2, "{format:?}: {e}");
    }
}

#[test]
fn binary_junk_is_rejected_not_fatal() {
    let mut junk: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    junk.extend_from_slice(b"\nlast line\n");
    for format in [Format::JsonLines, Format::Text, Format::Csv, Format::Json] {
        let mut schema = TableSchema::new("T").unwrap();
        let options = ParseOptions {
            max_record_bytes: 4096,
            ..ParseOptions::default()
        };
        // Never a panic; every line is accepted or reported.
        let out = parse_with(Cursor::new(junk.clone()), format, &mut schema, &options);
        if let Ok(out) = out {
            assert!(out.report.rejected > 0, "{format:?}");
        }
    }
}

#[test]
fn json_arrays_parse_element_by_element() {
    let (_, out) = parse(
        b"[\n {\"a\": 1},\n {\"a\": {\"nested\": [1, 2]}},\n 5,\n {\"a\": 3}\n]",
        Format::Json,
    );
    assert_eq!((out.report.accepted, out.report.rejected), (3, 1));
    assert_eq!(out.report.errors[0].line, 4);
    // Int and dynamic widen to string, each value kept as its text.
    let a = strings(&out.batches[0], "a");
    assert_eq!(
        a,
        vec![
            Some("1".into()),
            Some("{\"nested\": [1, 2]}".into()),
            Some("3".into())
        ]
    );
    // A broken array: what came before is kept, the break is reported.
    let (_, out) = parse(b"[{\"a\": 1}, {\"a\": 2}", Format::JsonArray);
    assert_eq!((out.report.accepted, out.report.rejected), (2, 1));
}

#[test]
fn csv_exports_with_quotes_multiline_fields_bom_suffixes_and_index() {
    let csv = "\u{feff},TimeGenerated [UTC],Msg,Count,Msg,Local [Jerusalem]\r\n\
               0,\"4/28/2021, 2:08:45.221 PM\",\"multi\r\nline \"\"quoted\"\"\",5,dup,\"6/8/2021, 8:14:00.000 PM\"\r\n\
               1,7/8/2019 16:08,plain,6.5,x,\r\n\
               2,bad,only-three\r\n\
               3,2019-02-12 14:22:40.697,,7,y,\r\n";
    let (schema, out) = parse(csv.as_bytes(), Format::Csv);
    assert_eq!((out.report.accepted, out.report.rejected), (3, 1));
    assert_eq!(out.report.errors[0].line, 5);
    assert!(
        out.report.errors[0].reason.contains("expected 6 fields"),
        "{:?}",
        out.report.errors
    );
    let names: Vec<&str> = schema.columns().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            TIME_GENERATED,
            TIME_RECEIVED,
            "Msg",
            "Count",
            "Msg_",
            "Local"
        ]
    );
    let b = &out.batches[0];
    assert_eq!(
        times(b, TIME_GENERATED),
        vec![
            Some(micros(2021, 4, 28, 14, 8, 45, 221)),
            Some(micros(2019, 7, 8, 16, 8, 0, 0)),
            Some(micros(2019, 2, 12, 14, 22, 40, 697)),
        ]
    );
    assert_eq!(
        times(b, TIME_RECEIVED),
        vec![Some(received().timestamp_micros()); 3]
    );
    assert_eq!(
        strings(b, "Msg"),
        vec![
            Some("multi\r\nline \"quoted\"".into()),
            Some("plain".into()),
            None
        ]
    );
    let count = b
        .column_by_name("Count")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(count.values().to_vec(), vec![5.0, 6.5, 7.0]);
    assert_eq!(schema.get("Local").unwrap().kind, ColumnKind::String);
    assert_eq!(
        strings(b, "Local")[0].as_deref(),
        Some("6/8/2021, 8:14:00.000 PM")
    );

    // With the option, the unnamed index is kept as Column1.
    let mut schema = TableSchema::new("T").unwrap();
    let options = ParseOptions {
        keep_unnamed_index: true,
        ..ParseOptions::default()
    };
    let out = parse_with(csv.as_bytes(), Format::Csv, &mut schema, &options).unwrap();
    assert_eq!(schema.get("Column1").unwrap().kind, ColumnKind::Int);
    assert_eq!(out.report.accepted, 3);

    // TimeGenerated exported in local time is refused rather than misread.
    let mut schema = TableSchema::new("T").unwrap();
    let err = parse_with(
        &b"TimeGenerated [Jerusalem],a\n1/1/2021 10:00,1\n"[..],
        Format::Csv,
        &mut schema,
        &ParseOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("time zone \"Jerusalem\""), "{err}");
}

/// Found by AFL++ (docs/reliability.md, "Fuzzing"): a CSV header row that is valid UTF-8 as a
/// whole but whose delimiters split a character between two names (`EF BB , BF`, a byte-order
/// mark cut by a comma) made the header's reader slice inside the character and panic. It is
/// refused at line 1 naming the column.
#[test]
fn a_csv_header_whose_comma_splits_a_character_is_refused_not_a_panic() {
    // The names' bytes without the delimiters, `Msg EF BB BF TimeGenerated`, are valid UTF-8.
    let input = b"Msg\xef\xbb,\xbf,TimeGenerated\na,b,2026-01-01T00:00:00Z\n";
    let mut schema = TableSchema::new("T").unwrap();
    let err = parse_with(
        Cursor::new(input.to_vec()),
        Format::Csv,
        &mut schema,
        &ParseOptions::default(),
    )
    .unwrap_err();
    match err {
        IngestError::Refused {
            table,
            line,
            reason,
        } => {
            assert_eq!((table.as_str(), line), ("T", 1));
            assert!(reason.contains("header column 1"), "{reason}");
        }
        other => panic!("expected a refusal of the header, got {other}"),
    }
}

#[test]
fn time_generated_from_every_accepted_form_or_the_clock() {
    let payload = r#"{"TimeGenerated": "2019-09-12T20:00:00.625Z"}
{"TimeGenerated": "2019-09-12T22:00:00.625+02:00"}
{"TimeGenerated": "2019-09-12T20:00:00.625"}
{"TimeGenerated": "2019-09-12 20:00:00.625"}
{"TimeGenerated": "9/12/2019, 8:00:00.625 PM"}
{"TimeGenerated": 1568318400}
{"TimeGenerated": 1568318400625}
{"TimeGenerated": 1568318400.625}
{"timestamp": "9/12/2019 20:00"}
{"TimeGenerated": null, "other": 1}
{"other": 2}
{"TimeGenerated": "2019-09-12T20:00:00.625Z", "TimeGenerated": null}
{"timestamp": "9/12/2019 20:00", "timestamp": null}
"#;
    let (schema, out) = parse(payload.as_bytes(), Format::JsonLines);
    assert_eq!(out.report.rejected, 0, "{:?}", out.report.errors);
    let t = micros(2019, 9, 12, 20, 0, 0, 625);
    let whole = micros(2019, 9, 12, 20, 0, 0, 0);
    let now = received().timestamp_micros();
    assert_eq!(
        times(&out.batches[0], TIME_GENERATED),
        // The last two: a repeated key's null wins, for the row's time too.
        [t, t, t, t, t, whole, t, t, whole, now, now, now, now]
            .map(Some)
            .to_vec()
    );
    assert_eq!(
        times(&out.batches[0], "timestamp")[8..],
        [Some(whole), None, None, None, None]
    );
    // `timestamp` is kept as a column of its own; TimeGenerated is not duplicated.
    assert_eq!(schema.get("timestamp").unwrap().kind, ColumnKind::Timestamp);
    assert_eq!(
        schema
            .columns()
            .iter()
            .filter(|c| c.name.eq_ignore_ascii_case(TIME_GENERATED))
            .count(),
        1
    );
    let field = out.batches[0].schema().field(0).clone();
    assert_eq!(
        field.data_type(),
        &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert!(!field.is_nullable());
}

/// A row without `TimeGenerated` takes its time from its `timestamp` field as the row stores
/// it: the row's time came from whichever `timestamp`-named field (any case) last held a time,
/// so a null of another case wiped it, and a time that a later value of the same key replaced
/// still gave it.
#[test]
fn the_row_time_from_timestamp_is_what_the_row_stores() {
    let payload = r#"{"timestamp": "2019-09-12T20:00:00Z", "Timestamp": null}
{"Timestamp": "2019-09-12T20:00:00Z", "timestamp": "2020-01-01T00:00:00Z", "timestamp": null}
{"timestamp": "2019-09-12T20:00:00Z", "timestamp": "soon"}
{"timestamp": "soon", "timestamp": "2019-09-12T20:00:00Z"}
{"other": 1}
"#;
    let (_, out) = parse(payload.as_bytes(), Format::JsonLines);
    assert_eq!(out.report.rejected, 0, "{:?}", out.report.errors);
    let t = micros(2019, 9, 12, 20, 0, 0, 0);
    let now = received().timestamp_micros();
    assert_eq!(
        times(&out.batches[0], TIME_GENERATED),
        [t, t, now, t, now].map(Some).to_vec()
    );
}

/// A field sent as `_TimeReceived` is stored as `_TimeReceived_` (the system column is
/// logvault's own), and a repeated one's null wins there as for every other key: the null was
/// looked up under the name as sent and left the earlier value in place.
#[test]
fn a_sent_time_received_repeated_with_null_leaves_no_value() {
    let payload = r#"{"_TimeReceived": "a"}
{"_TimeReceived": "b", "_TimeReceived": null}
{"_TimeReceived": "c", "_TimeReceived": "d"}
"#;
    let (_, out) = parse(payload.as_bytes(), Format::JsonLines);
    assert_eq!(out.report.rejected, 0, "{:?}", out.report.errors);
    let batch = &out.batches[0];
    assert_eq!(
        strings(batch, "_TimeReceived_"),
        [Some("a".to_owned()), None, Some("d".to_owned())]
    );
    assert_eq!(
        times(batch, "_TimeReceived"),
        vec![Some(received().timestamp_micros()); 3]
    );
}

#[test]
fn syslog_lines_become_syslog_columns() {
    let text = b"<86>1 2024-05-01T10:00:00Z web01 sshd 4242 - - Accepted publickey\n\
                 <38>May  1 10:00:01 web01 sudo[77]: pam_unix(sudo:session): session opened\n\
                 plain line without syslog\n";
    let (schema, out) = parse(text, Format::Text);
    assert_eq!(out.report.accepted, 3);
    let b = &out.batches[0];
    assert_eq!(
        strings(b, "Facility"),
        vec![Some("authpriv".into()), Some("auth".into()), None]
    );
    assert_eq!(
        strings(b, "SeverityLevel"),
        vec![Some("info".into()), Some("info".into()), None]
    );
    assert_eq!(
        strings(b, "ProcessName"),
        vec![Some("sshd".into()), Some("sudo".into()), None]
    );
    let pid = b
        .column_by_name("ProcessID")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(
        (pid.value(0), pid.value(1), pid.is_null(2)),
        (4242, 77, true)
    );
    assert_eq!(
        strings(b, "SyslogMessage")[1].as_deref(),
        Some("pam_unix(sudo:session): session opened")
    );
    assert_eq!(
        strings(b, "Message")[2].as_deref(),
        Some("plain line without syslog")
    );
    let tg = times(b, TIME_GENERATED);
    assert_eq!(tg[0], Some(micros(2024, 5, 1, 10, 0, 0, 0)));
    assert_eq!(
        tg[1],
        Some(micros(2025, 5, 1, 10, 0, 1, 0)),
        "May is after February: last year"
    );
    assert_eq!(tg[2], Some(received().timestamp_micros()));
    assert_eq!(schema.get("EventTime").unwrap().kind, ColumnKind::Timestamp);
}

#[test]
fn schemas_grow_and_widen_across_payloads() {
    let mut schema = TableSchema::new("AppEvents_CL").unwrap();
    let opts = ParseOptions::default();
    let mut kinds = Vec::new();
    for payload in [
        r#"{"x": 1, "y": true, "Nested": {"k": 1}}"#,
        r#"{"x": 1.5, "z": "new"}"#,
        r#"{"x": "text", "y": 3, "Nested": [1]}"#,
    ] {
        let out = parse_with(payload.as_bytes(), Format::JsonLines, &mut schema, &opts).unwrap();
        let b = &out.batches[0];
        kinds.push(b.schema().field_with_name("x").unwrap().data_type().clone());
    }
    assert_eq!(
        kinds,
        vec![DataType::Int64, DataType::Float64, DataType::Utf8]
    );
    let kind = |n: &str| schema.get(n).unwrap().kind;
    assert_eq!(
        (kind("x"), kind("y"), kind("z"), kind("Nested")),
        (
            ColumnKind::String,
            ColumnKind::String,
            ColumnKind::String,
            ColumnKind::Dynamic
        )
    );
    assert_eq!(schema.table(), "AppEvents_CL");
}

#[test]
fn the_column_limit_rejects_rows_that_would_pass_it() {
    let mut schema = TableSchema::new("T").unwrap();
    let options = ParseOptions {
        max_columns: 4,
        ..ParseOptions::default()
    };
    let payload = b"{\"a\": 1, \"b\": 2}\n{\"a\": 1, \"c\": 3}\n{\"b\": 5}\n";
    let out = parse_with(&payload[..], Format::JsonLines, &mut schema, &options).unwrap();
    assert_eq!((out.report.accepted, out.report.rejected), (2, 1));
    assert_eq!(out.report.errors[0].line, 2);
    assert!(out.report.errors[0].reason.contains("limit of 4 columns"));
    assert_eq!(schema.len(), 4);
}

fn value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(|b| json!(b)),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|x| json!(x + 0.5)),
        "[a-z]{0,6}".prop_map(|s| json!(s)),
        Just(json!({"k": [1, "two"]})),
        Just(json!("2021-04-28T14:08:45Z")),
    ]
}

fn kind_of(v: &serde_json::Value) -> ColumnKind {
    match v {
        serde_json::Value::Null => ColumnKind::Null,
        serde_json::Value::Bool(_) => ColumnKind::Bool,
        serde_json::Value::Number(n) if n.is_i64() => ColumnKind::Int,
        serde_json::Value::Number(_) => ColumnKind::Float,
        serde_json::Value::String(s) if s.starts_with("2021-") => ColumnKind::Timestamp,
        serde_json::Value::String(_) => ColumnKind::String,
        _ => ColumnKind::Dynamic,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever values arrive in whatever batches, no row is rejected, every value is kept,
    /// and the column's kind is the widening of its values' kinds.
    #[test]
    fn widening_never_rejects_and_ends_at_the_join(
        values in prop::collection::vec(value(), 1..40),
        batch_rows in 1usize..8,
    ) {
        let payload: String = values
            .iter()
            .map(|v| format!("{{\"c\": {v}, \"i\": 1}}\n"))
            .collect();
        let mut schema = TableSchema::new("T").unwrap();
        let options = ParseOptions { batch_rows, ..ParseOptions::default() };
        let out = parse_with(payload.as_bytes(), Format::JsonLines, &mut schema, &options).unwrap();
        prop_assert_eq!(out.report.rejected, 0);
        prop_assert_eq!(out.report.accepted, values.len() as u64);
        let expected = values.iter().fold(ColumnKind::Null, |k, v| k.widen(kind_of(v)));
        prop_assert_eq!(schema.get("c").map_or(ColumnKind::Null, |c| c.kind), expected);
        let non_null: usize = out
            .batches
            .iter()
            .map(|b| b.column_by_name("c").map_or(0, |c| c.len() - c.null_count()))
            .sum();
        prop_assert_eq!(non_null, values.iter().filter(|v| !v.is_null()).count());
        for b in &out.batches {
            if let Ok(field) = b.schema().field_with_name("c") {
                // A batch is never wider than the table.
                let k = ColumnKind::of_field(field).unwrap();
                prop_assert_eq!(k.widen(expected), expected);
            }
        }
    }
}

/// One field of a generated record: a string (with escapes and non-ASCII), an integer, or a
/// JSON null.
fn cell() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    prop_oneof![
        3 => "x[a-z é\"\\\\\n]{0,8}".prop_map(|s| json!(s)),
        1 => (-1000i64..1000).prop_map(|n| json!(n)),
        1 => Just(serde_json::Value::Null),
    ]
}

/// What a column keeps of a value when the column is text: the text as sent.
fn as_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Text columns hold each row's value exactly as sent, whatever the mix of absent and null
    /// fields, repeated fields (the last one wins), rejected rows (their values gone) and batch
    /// sizes: checked against the records read by serde_json.
    #[test]
    fn text_columns_hold_every_kept_rows_last_value(
        records in prop::collection::vec(
            (
                prop::collection::vec((0usize..3, cell()), 0..5),
                prop::bool::weighted(0.15),
            ),
            1..60,
        ),
        batch_rows in 1usize..9,
    ) {
        const NAMES: [&str; 3] = ["a", "b", "c"];
        let mut payload = String::new();
        let mut expected: Vec<[Option<String>; 3]> = Vec::new();
        for (fields, rejected) in &records {
            let mut parts: Vec<String> = fields
                .iter()
                .map(|(i, v)| format!("{:?}: {v}", NAMES[*i]))
                .collect();
            if *rejected {
                parts.push("\"TimeGenerated\": \"not a time\"".into());
            } else {
                let mut row: [Option<String>; 3] = Default::default();
                for (i, v) in fields {
                    row[*i] = as_text(v);
                }
                expected.push(row);
            }
            payload.push_str(&format!("{{{}}}\n", parts.join(", ")));
        }
        // A string in every column makes them all text columns.
        payload.push_str("{\"a\": \"xa\", \"b\": \"xb\", \"c\": \"xc\"}\n");
        expected.push([Some("xa".into()), Some("xb".into()), Some("xc".into())]);

        let mut schema = TableSchema::new("T").unwrap();
        let options = ParseOptions { batch_rows, ..ParseOptions::default() };
        let out = parse_with(payload.as_bytes(), Format::JsonLines, &mut schema, &options).unwrap();
        prop_assert_eq!(out.report.accepted, expected.len() as u64);
        for (c, name) in NAMES.iter().enumerate() {
            let mut got = Vec::new();
            for b in &out.batches {
                match b.column_by_name(name) {
                    Some(col) => {
                        let text = arrow::compute::cast(col, &DataType::Utf8).unwrap();
                        let text = text.as_string::<i32>();
                        got.extend((0..text.len()).map(|i| text.is_valid(i).then(|| text.value(i).to_owned())));
                    }
                    None => got.extend(std::iter::repeat_n(None, b.num_rows())),
                }
            }
            let want: Vec<Option<String>> = expected.iter().map(|r| r[c].clone()).collect();
            prop_assert_eq!(got, want, "column {}", name);
        }
    }
}
