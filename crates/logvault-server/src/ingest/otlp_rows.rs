//! The rows of an OTLP logs request, built value by value into Arrow batches
//! ([`logvault::ingest::RowBuilder`]): the batches the JSON parser gives for each record written
//! as a JSON object (`docs/server.md`, OTLP), without writing and parsing that text. The
//! attributes, dynamic columns, are JSON text with their keys sorted (the last of equal keys
//! wins); the resource's is written once per resource.

use std::borrow::Cow;

use arrow::array::RecordBatch;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use logvault::ingest::{ParseOptions, RowBuilder, TableSchema};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::otlp_proto::{AnyValue, ExportLogsServiceRequest, KeyValue, any_value};

/// An AnyValue as JSON: a map for kvlists, an array for arrays, base64 for bytes, `null` for no
/// value (and for a double that is not finite).
struct Json<'a>(&'a AnyValue);

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use any_value::Value as V;
        match &self.0.value {
            None => s.serialize_unit(),
            Some(V::StringValue(v)) => s.serialize_str(v),
            Some(V::BoolValue(b)) => s.serialize_bool(*b),
            Some(V::IntValue(i)) => s.serialize_i64(*i),
            Some(V::DoubleValue(d)) => s.serialize_f64(*d),
            Some(V::ArrayValue(a)) => {
                let mut seq = s.serialize_seq(Some(a.values.len()))?;
                for v in &a.values {
                    seq.serialize_element(&Json(v))?;
                }
                seq.end()
            }
            Some(V::KvlistValue(kv)) => Map(&kv.values).serialize(s),
            Some(V::BytesValue(b)) => {
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
            }
        }
    }
}

/// Attributes as a JSON object: keys sorted, the last of equal keys kept.
struct Map<'a>(&'a [KeyValue]);

impl<'a> Map<'a> {
    /// The entries in the object's order.
    fn entries(&self) -> impl ExactSizeIterator<Item = &'a KeyValue> {
        // Positions only order equal keys: the last given comes first, and is the one kept.
        let mut entries: Vec<(usize, &KeyValue)> = self.0.iter().enumerate().collect();
        entries.sort_unstable_by(|(i, a), (j, b)| a.key.cmp(&b.key).then(j.cmp(i)));
        entries.dedup_by(|later, first| later.1.key == first.1.key);
        entries.into_iter().map(|(_, kv)| kv)
    }

    fn text(&self) -> String {
        if self.0.is_empty() {
            return "{}".to_owned();
        }
        // Room for the keys, short values and the punctuation, so the text is rarely regrown.
        let guess: usize = self.0.iter().map(|kv| kv.key.len() + 24).sum();
        let mut out = Vec::with_capacity(guess + 2);
        // Serializing these values cannot fail (strings, numbers, nested values).
        match serde_json::to_writer(&mut out, self) {
            Ok(()) => String::from_utf8(out).unwrap_or_else(|_| "{}".to_owned()),
            Err(_) => "{}".to_owned(),
        }
    }

    fn get(&self, key: &str) -> Option<&'a AnyValue> {
        self.0.iter().rev().find(|kv| kv.key == key)?.value.as_ref()
    }
}

impl Serialize for Map<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let entries = self.entries();
        let mut map = s.serialize_map(Some(entries.len()))?;
        for kv in entries {
            match &kv.value {
                Some(v) => map.serialize_entry(&kv.key, &Json(v))?,
                None => map.serialize_entry(&kv.key, &())?,
            }
        }
        map.end()
    }
}

/// `nanos` as a timestamp string (RFC 3339, microseconds, UTC) and its UTC microseconds.
fn time(nanos: u64) -> Option<(String, i64)> {
    let text = super::rfc3339_nanos(nanos)?;
    let micros = i64::try_from(nanos / 1000).ok()?;
    Some((text, micros))
}

/// The request's rows for `table` (see the module documentation), received at `received`.
/// Column names and the order they are first seen in are those of the JSON object the
/// reference wrote (sorted keys), so that the table's schema grows the same way.
///
/// # Errors
/// A row the builder refuses (a column past the table's limit), or an Arrow error.
pub(crate) fn batches(
    request: &ExportLogsServiceRequest,
    schema: &mut TableSchema,
    received: DateTime<Utc>,
    options: &ParseOptions,
) -> Result<Vec<RecordBatch>, String> {
    use any_value::Value as V;
    // The resources' attributes, written once each.
    let resources: Vec<(String, Option<&str>)> = request
        .resource_logs
        .iter()
        .map(|rl| {
            let attributes = rl.resource.as_ref().map_or(&[][..], |r| &r.attributes);
            let map = Map(attributes);
            let service = match map.get("service.name") {
                Some(AnyValue {
                    value: Some(V::StringValue(s)),
                }) => Some(s.as_str()),
                _ => None,
            };
            (map.text(), service)
        })
        .collect();
    let mut b = RowBuilder::new(received, options);
    let mut row = 0u64;
    for (rl, (resource, service)) in request.resource_logs.iter().zip(&resources) {
        for sl in &rl.scope_logs {
            for rec in &sl.log_records {
                row += 1;
                b.begin_row();
                // In the order of the keys of the JSON object: sorted.
                b.push_json(
                    schema,
                    "Attributes",
                    Cow::Owned(Map(&rec.attributes).text()),
                );
                if let Some(body) = &rec.body {
                    match &body.value {
                        None => {}
                        Some(V::StringValue(s)) => b.push_str(schema, "Body", Cow::Borrowed(s)),
                        Some(V::BoolValue(v)) => b.push_bool(schema, "Body", *v),
                        Some(V::IntValue(i)) => b.push_int(schema, "Body", *i),
                        Some(V::DoubleValue(d)) => b.push_float(schema, "Body", *d),
                        Some(V::BytesValue(bytes)) => {
                            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
                            b.push_str(schema, "Body", Cow::Owned(text));
                        }
                        Some(V::ArrayValue(_) | V::KvlistValue(_)) => {
                            let text = serde_json::to_string(&Json(body)).unwrap_or_default();
                            b.push_json(schema, "Body", Cow::Owned(text));
                        }
                    }
                }
                if !rec.event_name.is_empty() {
                    b.push_str(schema, "EventName", Cow::Borrowed(&rec.event_name));
                }
                b.push_int(schema, "Flags", i64::from(rec.flags));
                if rec.observed_time_unix_nano != 0
                    && let Some((text, micros)) = time(rec.observed_time_unix_nano)
                {
                    b.push_time(schema, "ObservedTimestamp", Cow::Owned(text), micros);
                }
                b.push_json(schema, "ResourceAttributes", Cow::Borrowed(resource));
                if let Some(scope) = &sl.scope {
                    b.push_str(schema, "ScopeName", Cow::Borrowed(&scope.name));
                    if !scope.version.is_empty() {
                        b.push_str(schema, "ScopeVersion", Cow::Borrowed(&scope.version));
                    }
                }
                if let Some(service) = service {
                    b.push_str(schema, "ServiceName", Cow::Borrowed(service));
                }
                b.push_int(schema, "SeverityNumber", i64::from(rec.severity_number));
                b.push_str(schema, "SeverityText", Cow::Borrowed(&rec.severity_text));
                if !rec.span_id.is_empty() {
                    b.push_str(schema, "SpanId", Cow::Owned(hex::encode(&rec.span_id)));
                }
                let t = if rec.time_unix_nano != 0 {
                    rec.time_unix_nano
                } else {
                    rec.observed_time_unix_nano
                };
                if t != 0
                    && let Some((text, micros)) = time(t)
                {
                    b.push_time(schema, "TimeGenerated", Cow::Owned(text), micros);
                }
                if !rec.trace_id.is_empty() {
                    b.push_str(schema, "TraceId", Cow::Owned(hex::encode(&rec.trace_id)));
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
        ArrayValue, InstrumentationScope, KeyValueList, LogRecord, Resource, ResourceLogs,
        ScopeLogs,
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
        let built = batches(&request, &mut schema, at, &options).unwrap();

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

    #[test]
    fn times_read_back_as_their_microseconds() {
        for nanos in [1, 999, 1_000, 1_767_225_600_123_456_789, i64::MAX as u64] {
            let (text, micros) = time(nanos).unwrap();
            assert_eq!(
                logvault::ingest::time::parse_timestamp(&text),
                Some(micros),
                "{text}"
            );
        }
        assert!(time(u64::MAX).is_none());
    }
}
