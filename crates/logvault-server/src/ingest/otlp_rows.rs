//! The rows of an OTLP logs request ([`super::otlp_view`]), built value by value into Arrow
//! batches ([`logvault::ingest::RowBuilder`]): the batches the JSON parser gives for each record
//! written as a JSON object (`docs/server.md`, OTLP), without writing and parsing that text. The
//! attributes, dynamic columns, are JSON text with their keys sorted (the last of equal keys
//! wins); the resource's is written once per resource. Texts are borrowed from the view, and
//! the records' attributes written into one buffer, so that a record allocates nothing of its
//! own on the way to the builders.

use std::borrow::Cow;
use std::ops::Range;

use arrow::array::RecordBatch;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use logvault::ingest::{ParseOptions, RowBuilder, TableSchema};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::otlp_view::{Attr, Logs, Value};

/// A value as JSON: a map for kvlists, an array for arrays, base64 for bytes, `null` for no
/// value (and for a double that is not finite).
struct Json<'v, 'a>(Option<&'v Value<'a>>);

impl Serialize for Json<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None => s.serialize_unit(),
            Some(Value::Str(v)) => s.serialize_str(v),
            Some(Value::Bool(b)) => s.serialize_bool(*b),
            Some(Value::Int(i)) => s.serialize_i64(*i),
            Some(Value::Double(d)) => s.serialize_f64(*d),
            Some(Value::Array(a)) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&Json(v.as_ref()))?;
                }
                seq.end()
            }
            Some(Value::KvList(kv)) => {
                let mut entries = Vec::with_capacity(kv.len());
                order(kv, &mut entries);
                Map(&entries).serialize(s)
            }
            Some(Value::Bytes(b)) => {
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
            }
        }
    }
}

/// Attributes as a JSON object, given in its order ([`order`]).
struct Map<'e, 'v, 'a>(&'e [&'v Attr<'a>]);

/// `attrs` in the object's order into `entries` (cleared first): keys sorted, the last of
/// equal keys kept.
fn order<'v, 'a>(attrs: &'v [Attr<'a>], entries: &mut Vec<&'v Attr<'a>>) {
    entries.clear();
    entries.extend(attrs);
    // A stable sort keeps equal keys in the order given; of each run of them the last stays
    // (moved into the place of the first, which `dedup_by` keeps).
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    entries.dedup_by(|later, kept| {
        let same = later.key == kept.key;
        if same {
            std::mem::swap(later, kept);
        }
        same
    });
}

impl Serialize for Map<'_, '_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for kv in self.0 {
            map.serialize_entry(kv.key.as_ref(), &Json(kv.value.as_ref()))?;
        }
        map.end()
    }
}

/// Writes attributes as JSON text to the end of `out` (`{}` when there are none), ordered in
/// `entries` (a buffer reused from call to call).
fn write_attributes<'v, 'a>(
    attrs: &'v [Attr<'a>],
    entries: &mut Vec<&'v Attr<'a>>,
    out: &mut Vec<u8>,
) {
    order(attrs, entries);
    // Serializing these values into memory cannot fail (strings, numbers, nested values).
    if serde_json::to_writer(&mut *out, &Map(entries)).is_err() {
        out.extend_from_slice(b"{}");
    }
}

/// The texts of a request's rows, written into one buffer: the attributes of every resource
/// and record as JSON, and the records' observed times.
struct Texts {
    text: String,
    resources: Vec<Range<usize>>,
    /// Each record's attributes and observed time (empty when it has none).
    records: Vec<(Range<usize>, Range<usize>)>,
}

impl Texts {
    fn of(logs: &Logs<'_>) -> Self {
        let mut out = Vec::new();
        let mut order = Vec::new();
        let mut resources = Vec::with_capacity(logs.resources.len());
        let mut records = Vec::with_capacity(logs.records());
        for rl in &logs.resources {
            let start = out.len();
            write_attributes(&rl.attributes, &mut order, &mut out);
            resources.push(start..out.len());
            for rec in rl.scopes.iter().flat_map(|sl| &sl.records) {
                let start = out.len();
                write_attributes(&rec.attributes, &mut order, &mut out);
                let attributes = start..out.len();
                let start = out.len();
                if rec.observed_time_unix_nano != 0 {
                    write_time(rec.observed_time_unix_nano, &mut out);
                }
                records.push((attributes, start..out.len()));
            }
        }
        // serde_json and `write_time` write UTF-8; a failure would only leave the texts out.
        let text = String::from_utf8(out).unwrap_or_default();
        Self {
            text,
            resources,
            records,
        }
    }

    fn get(&self, range: &Range<usize>) -> &str {
        self.text.get(range.clone()).unwrap_or_default()
    }
}

/// The UTC microseconds of `nanos`, when it is a time the rows can hold (at most `i64::MAX`
/// nanoseconds, as [`write_time`] writes).
fn micros(nanos: u64) -> Option<i64> {
    i64::try_from(nanos).ok().map(|n| n / 1000)
}

/// Writes `nanos` as `rfc3339_nanos` does (RFC 3339, microseconds, `Z`), without allocating:
/// nothing for a time past `i64::MAX` nanoseconds.
fn write_time(nanos: u64, out: &mut Vec<u8>) {
    use chrono::{Datelike, Timelike};
    let Ok(signed) = i64::try_from(nanos) else {
        return;
    };
    let t = DateTime::from_timestamp_nanos(signed);
    let digits = |out: &mut Vec<u8>, value: u32, width: u32| {
        for i in (0..width).rev() {
            out.push(b'0' + (value / 10u32.pow(i) % 10) as u8);
        }
    };
    // From 1970 to 2262: four-digit years.
    digits(out, t.year().unsigned_abs(), 4);
    out.push(b'-');
    digits(out, t.month(), 2);
    out.push(b'-');
    digits(out, t.day(), 2);
    out.push(b'T');
    digits(out, t.hour(), 2);
    out.push(b':');
    digits(out, t.minute(), 2);
    out.push(b':');
    digits(out, t.second(), 2);
    out.push(b'.');
    digits(out, t.nanosecond() / 1000, 6);
    out.push(b'Z');
}

/// The request's rows for `table` (see the module documentation), received at `received`.
/// Column names and the order they are first seen in are those of the JSON object the
/// reference wrote (sorted keys), so that the table's schema grows the same way.
///
/// # Errors
/// A row the builder refuses (a column past the table's limit), or an Arrow error.
pub(crate) fn batches(
    logs: &Logs<'_>,
    schema: &mut TableSchema,
    received: DateTime<Utc>,
    options: &ParseOptions,
) -> Result<Vec<RecordBatch>, String> {
    let texts = Texts::of(logs);
    let mut b = RowBuilder::new(received, options);
    let mut row = 0usize;
    for (rl, resource) in logs.resources.iter().zip(&texts.resources) {
        let resource = texts.get(resource);
        let service = rl
            .attributes
            .iter()
            .rev()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| match &kv.value {
                Some(Value::Str(s)) => Some(s.as_ref()),
                _ => None,
            });
        for sl in &rl.scopes {
            for rec in &sl.records {
                let (attributes, observed) = match texts.records.get(row) {
                    Some((a, o)) => (texts.get(a), texts.get(o)),
                    None => ("{}", ""),
                };
                row += 1;
                b.begin_row();
                // In the order of the keys of the JSON object: sorted.
                b.push_json(schema, "Attributes", Cow::Borrowed(attributes));
                match &rec.body {
                    None => {}
                    Some(Value::Str(s)) => b.push_str(schema, "Body", Cow::Borrowed(s)),
                    Some(Value::Bool(v)) => b.push_bool(schema, "Body", *v),
                    Some(Value::Int(i)) => b.push_int(schema, "Body", *i),
                    Some(Value::Double(d)) => b.push_float(schema, "Body", *d),
                    Some(Value::Bytes(bytes)) => {
                        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
                        b.push_str(schema, "Body", Cow::Owned(text));
                    }
                    Some(body @ (Value::Array(_) | Value::KvList(_))) => {
                        let text = serde_json::to_string(&Json(Some(body))).unwrap_or_default();
                        b.push_json(schema, "Body", Cow::Owned(text));
                    }
                }
                if !rec.event_name.is_empty() {
                    b.push_str(schema, "EventName", Cow::Borrowed(&rec.event_name));
                }
                b.push_int(schema, "Flags", i64::from(rec.flags));
                if !observed.is_empty()
                    && let Some(micros) = micros(rec.observed_time_unix_nano)
                {
                    b.push_time(schema, "ObservedTimestamp", Cow::Borrowed(observed), micros);
                }
                b.push_json(schema, "ResourceAttributes", Cow::Borrowed(resource));
                if let Some((name, version)) = &sl.scope {
                    b.push_str(schema, "ScopeName", Cow::Borrowed(name));
                    if !version.is_empty() {
                        b.push_str(schema, "ScopeVersion", Cow::Borrowed(version));
                    }
                }
                if let Some(service) = service {
                    b.push_str(schema, "ServiceName", Cow::Borrowed(service));
                }
                b.push_int(schema, "SeverityNumber", i64::from(rec.severity_number));
                b.push_str(schema, "SeverityText", Cow::Borrowed(&rec.severity_text));
                if !rec.span_id.is_empty() {
                    b.push_str(schema, "SpanId", Cow::Borrowed(&rec.span_id));
                }
                let t = if rec.time_unix_nano != 0 {
                    rec.time_unix_nano
                } else {
                    rec.observed_time_unix_nano
                };
                if t != 0
                    && let Some(micros) = micros(t)
                {
                    b.push_time_generated(micros);
                }
                if !rec.trace_id.is_empty() {
                    b.push_str(schema, "TraceId", Cow::Borrowed(&rec.trace_id));
                }
                b.end_row(schema)
                    .map_err(|e| e.to_string())?
                    .map_err(|reason| format!("log record {row}: {reason}"))?;
            }
        }
    }
    b.finish(schema).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::otlp_proto::{
        AnyValue, ArrayValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue,
        KeyValueList, LogRecord, Resource, ResourceLogs, ScopeLogs, any_value,
    };
    use crate::ingest::otlp_reference;
    use chrono::TimeZone;
    use logvault::ingest::{Format, parse_payload};
    use logvault_core::TestClock;

    fn v(value: any_value::Value) -> Option<AnyValue> {
        Some(AnyValue { value: Some(value) })
    }

    fn kv(key: &str, value: Option<AnyValue>) -> KeyValue {
        KeyValue {
            key: key.into(),
            value,
        }
    }

    fn request() -> ExportLogsServiceRequest {
        use any_value::Value as V;
        let record = |i: u64| LogRecord {
            time_unix_nano: if i.is_multiple_of(3) {
                0
            } else {
                1_767_225_600_123_456_789 + i * 1_000_000_007
            },
            observed_time_unix_nano: if i.is_multiple_of(2) {
                1_767_225_601_000_000_999 + i
            } else {
                0
            },
            severity_number: (i % 24) as i32,
            severity_text: ["INFO", "", "2026-01-01T00:00:00Z", "WARN"][(i % 4) as usize].into(),
            body: match i % 7 {
                0 => v(V::StringValue(format!("message \"{i}\"\n\u{e9}"))),
                1 => v(V::IntValue(-(i as i64))),
                2 => v(V::DoubleValue(if i == 2 {
                    f64::NAN
                } else {
                    i as f64 / 4.0
                })),
                3 => v(V::BoolValue(i.is_multiple_of(2))),
                4 => v(V::KvlistValue(KeyValueList {
                    values: vec![kv("b", v(V::IntValue(1))), kv("a", None)],
                })),
                5 => v(V::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue { value: None },
                        AnyValue {
                            value: Some(V::BytesValue(vec![0, 255])),
                        },
                    ],
                })),
                _ => Some(AnyValue { value: None }),
            },
            attributes: vec![
                kv("z", v(V::StringValue("last".into()))),
                kv("order.id", v(V::IntValue(i as i64))),
                kv("z", v(V::DoubleValue(1e300))),
                kv("ok", v(V::BoolValue(true))),
                kv("blob", v(V::BytesValue(vec![1, 2, 3]))),
                kv("inf", v(V::DoubleValue(f64::INFINITY))),
            ][..(i % 7) as usize]
                .to_vec(),
            flags: (i % 2) as u32,
            trace_id: if i.is_multiple_of(2) {
                vec![0xab; 16]
            } else {
                vec![]
            },
            span_id: if i.is_multiple_of(3) {
                vec![1; 8]
            } else {
                vec![]
            },
            event_name: if i.is_multiple_of(5) {
                "evt".into()
            } else {
                String::new()
            },
            ..LogRecord::default()
        };
        let scope = |i: u64, scope: Option<InstrumentationScope>| ScopeLogs {
            scope,
            log_records: (i..i + 9).map(record).collect(),
            schema_url: String::new(),
        };
        ExportLogsServiceRequest {
            resource_logs: vec![
                ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![
                            kv("service.name", v(V::StringValue("shop".into()))),
                            kv("host", v(V::StringValue("h1".into()))),
                        ],
                        dropped_attributes_count: 0,
                    }),
                    scope_logs: vec![
                        scope(0, None),
                        scope(
                            9,
                            Some(InstrumentationScope {
                                name: "lib".into(),
                                version: "1.2".into(),
                                ..InstrumentationScope::default()
                            }),
                        ),
                    ],
                    schema_url: String::new(),
                },
                ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![kv("service.name", v(V::IntValue(3)))],
                        dropped_attributes_count: 0,
                    }),
                    scope_logs: vec![scope(
                        30,
                        Some(InstrumentationScope {
                            name: String::new(),
                            ..InstrumentationScope::default()
                        }),
                    )],
                    schema_url: String::new(),
                },
                ResourceLogs {
                    resource: None,
                    scope_logs: vec![scope(40, None)],
                    schema_url: String::new(),
                },
            ],
        }
    }

    /// The batches built value by value equal those the JSON parser gives for the reference's
    /// JSON lines of the same request, schema included.
    #[test]
    fn built_rows_equal_the_parsed_json_lines_of_the_reference() {
        let at = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).single().unwrap();
        let options = ParseOptions {
            batch_rows: 16,
            ..ParseOptions::default()
        };
        let request = request();
        let mut schema = TableSchema::new("OTelLogs").unwrap();
        let built = batches(&Logs::of_proto(&request), &mut schema, at, &options).unwrap();

        let lines = otlp_reference::rows(&request);
        let mut parsed_schema = TableSchema::new("OTelLogs").unwrap();
        let parsed = parse_payload(
            std::io::Cursor::new(lines),
            Format::JsonLines,
            &mut parsed_schema,
            &options,
            &TestClock::new(at),
        )
        .unwrap();
        assert_eq!(built.iter().map(RecordBatch::num_rows).sum::<usize>(), 36);
        assert_eq!(built.len(), 3);
        assert_eq!(built, parsed.batches);
        assert_eq!(schema, parsed_schema);
    }

    /// Times written without allocating are `rfc3339_nanos`' texts and read back as their
    /// microseconds.
    #[test]
    fn times_are_written_as_rfc3339_nanos_writes_them_and_read_back() {
        let mut nanos: Vec<u64> = vec![1, 999, 1_000, 1_767_225_600_123_456_789, i64::MAX as u64];
        // Every month and leap day of a few years, at odd times of day.
        let mut t = 951_782_400_000_000_000u64; // 2000-02-29
        while t < 4_102_444_800_000_000_000 {
            nanos.push(t);
            t += 2_629_746_123_456_789;
        }
        for n in nanos {
            let mut out = Vec::new();
            write_time(n, &mut out);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(
                Some(text.as_str()),
                otlp_reference::rfc3339_nanos(n).as_deref()
            );
            assert_eq!(
                logvault::ingest::time::parse_timestamp(&text),
                micros(n),
                "{text}"
            );
        }
        let mut out = Vec::new();
        write_time(u64::MAX, &mut out);
        assert!(out.is_empty());
        assert!(micros(u64::MAX).is_none());
    }
}
