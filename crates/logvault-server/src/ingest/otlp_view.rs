//! An OTLP logs request as the rows are built from it ([`super::otlp_rows`]): texts borrowed
//! from where they were decoded (the OTLP/JSON body itself when a string has no escape, or the
//! protobuf messages), so that a log record costs no copy of its strings between the request
//! and the Arrow builders. The OTLP/JSON decoder ([`super::otlp_json`]) gives this directly;
//! a protobuf request is viewed through [`Logs::of_proto`].

use std::borrow::Cow;

use super::otlp_proto::{AnyValue, ExportLogsServiceRequest, KeyValue, any_value};

/// A request: its resources, each with its scopes and their log records.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Logs<'a> {
    pub(crate) resources: Vec<ResourceLogs<'a>>,
}

/// One resource's logs.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ResourceLogs<'a> {
    /// The resource's attributes.
    pub(crate) attributes: Vec<Attr<'a>>,
    pub(crate) scopes: Vec<ScopeLogs<'a>>,
}

/// One instrumentation scope's log records.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ScopeLogs<'a> {
    /// The scope's name and version, when the request names a scope.
    pub(crate) scope: Option<(Cow<'a, str>, Cow<'a, str>)>,
    pub(crate) records: Vec<Record<'a>>,
}

/// A log record; `0` and empty texts stand for absent fields, as in protobuf.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Record<'a> {
    pub(crate) time_unix_nano: u64,
    pub(crate) observed_time_unix_nano: u64,
    pub(crate) severity_number: i32,
    pub(crate) severity_text: Cow<'a, str>,
    /// `None` for no body and for a body with no value.
    pub(crate) body: Option<Value<'a>>,
    pub(crate) attributes: Vec<Attr<'a>>,
    pub(crate) flags: u32,
    /// Lowercase hex.
    pub(crate) trace_id: Cow<'a, str>,
    /// Lowercase hex.
    pub(crate) span_id: Cow<'a, str>,
    pub(crate) event_name: Cow<'a, str>,
}

/// An attribute: a key and its value (`None`: no value, JSON `null`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Attr<'a> {
    pub(crate) key: Cow<'a, str>,
    pub(crate) value: Option<Value<'a>>,
}

/// An `AnyValue` that has a value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    Int(i64),
    Double(f64),
    /// Its elements; `None` for an element with no value.
    Array(Vec<Option<Value<'a>>>),
    KvList(Vec<Attr<'a>>),
    Bytes(Cow<'a, [u8]>),
}

impl<'a> Logs<'a> {
    /// The view of a decoded protobuf request (its texts borrowed; ids written as hex).
    pub(crate) fn of_proto(request: &'a ExportLogsServiceRequest) -> Self {
        let resources = request
            .resource_logs
            .iter()
            .map(|rl| ResourceLogs {
                attributes: rl
                    .resource
                    .as_ref()
                    .map_or_else(Vec::new, |r| attrs(&r.attributes)),
                scopes: rl
                    .scope_logs
                    .iter()
                    .map(|sl| ScopeLogs {
                        scope: sl.scope.as_ref().map(|s| {
                            (
                                Cow::Borrowed(s.name.as_str()),
                                Cow::Borrowed(s.version.as_str()),
                            )
                        }),
                        records: sl.log_records.iter().map(record).collect(),
                    })
                    .collect(),
            })
            .collect();
        Self { resources }
    }

    /// How many log records the request holds.
    pub(crate) fn records(&self) -> usize {
        self.resources
            .iter()
            .flat_map(|r| &r.scopes)
            .map(|s| s.records.len())
            .sum()
    }
}

fn record(r: &super::otlp_proto::LogRecord) -> Record<'_> {
    let hex = |id: &[u8]| {
        if id.is_empty() {
            Cow::Borrowed("")
        } else {
            Cow::Owned(hex::encode(id))
        }
    };
    Record {
        time_unix_nano: r.time_unix_nano,
        observed_time_unix_nano: r.observed_time_unix_nano,
        severity_number: r.severity_number,
        severity_text: Cow::Borrowed(&r.severity_text),
        body: r.body.as_ref().and_then(value),
        attributes: attrs(&r.attributes),
        flags: r.flags,
        trace_id: hex(&r.trace_id),
        span_id: hex(&r.span_id),
        event_name: Cow::Borrowed(&r.event_name),
    }
}

fn attrs(kvs: &[KeyValue]) -> Vec<Attr<'_>> {
    kvs.iter()
        .map(|kv| Attr {
            key: Cow::Borrowed(&kv.key),
            value: kv.value.as_ref().and_then(value),
        })
        .collect()
}

fn value(v: &AnyValue) -> Option<Value<'_>> {
    use any_value::Value as V;
    Some(match v.value.as_ref()? {
        V::StringValue(s) => Value::Str(Cow::Borrowed(s)),
        V::BoolValue(b) => Value::Bool(*b),
        V::IntValue(i) => Value::Int(*i),
        V::DoubleValue(d) => Value::Double(*d),
        V::ArrayValue(a) => Value::Array(a.values.iter().map(value).collect()),
        V::KvlistValue(kv) => Value::KvList(attrs(&kv.values)),
        V::BytesValue(b) => Value::Bytes(Cow::Borrowed(b)),
    })
}
