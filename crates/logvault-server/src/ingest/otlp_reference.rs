//! The reference the OTLP decoders and row building are tested against (test only): OTLP/JSON
//! read through `serde_json::Value`, field by field, as the server did before
//! [`super::otlp_json`] read it in one pass; and the rows of a request written as JSON lines for
//! the JSON parser, as the server did before [`super::otlp_rows`] built them value by value.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::otlp_proto::{
    AnyValue, ArrayValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue, KeyValueList,
    LogRecord, Resource, ResourceLogs, ScopeLogs, any_value,
};

fn field<'a>(obj: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    obj.get(camel)
        .or_else(|| obj.get(snake))
        .filter(|v| !v.is_null())
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} must be a JSON object"))
}

fn array<'a>(obj: &'a Map<String, Value>, camel: &str, snake: &str) -> Result<&'a [Value], String> {
    match field(obj, camel, snake) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("{camel} must be an array")),
    }
}

fn string(obj: &Map<String, Value>, camel: &str, snake: &str) -> Result<String, String> {
    match field(obj, camel, snake) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{camel} must be a string")),
    }
}

fn u64_of(v: &Value, name: &str) -> Result<u64, String> {
    match v {
        Value::String(s) => s
            .parse()
            .map_err(|_| format!("{name} must be an unsigned integer, not '{s}'")),
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("{name} must be an unsigned integer")),
        _ => Err(format!("{name} must be an integer")),
    }
}

fn i64_of(v: &Value, name: &str) -> Result<i64, String> {
    match v {
        Value::String(s) => s
            .parse()
            .map_err(|_| format!("{name} must be an integer, not '{s}'")),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("{name} must be an integer")),
        _ => Err(format!("{name} must be an integer")),
    }
}

fn hex_id(obj: &Map<String, Value>, camel: &str, snake: &str) -> Result<Vec<u8>, String> {
    let text = string(obj, camel, snake)?;
    hex::decode(&text).map_err(|_| format!("{camel} must be hex, not '{text}'"))
}

fn any_value(v: &Value) -> Result<AnyValue, String> {
    let obj = object(v, "an AnyValue")?;
    let value = if let Some(s) = field(obj, "stringValue", "string_value") {
        Some(any_value::Value::StringValue(
            s.as_str().ok_or("stringValue must be a string")?.to_owned(),
        ))
    } else if let Some(b) = field(obj, "boolValue", "bool_value") {
        Some(any_value::Value::BoolValue(
            b.as_bool().ok_or("boolValue must be a boolean")?,
        ))
    } else if let Some(i) = field(obj, "intValue", "int_value") {
        Some(any_value::Value::IntValue(i64_of(i, "intValue")?))
    } else if let Some(d) = field(obj, "doubleValue", "double_value") {
        let x = match d {
            Value::Number(n) => n.as_f64(),
            // proto3 JSON writes the special values as strings.
            Value::String(s) => match s.as_str() {
                "NaN" => Some(f64::NAN),
                "Infinity" => Some(f64::INFINITY),
                "-Infinity" => Some(f64::NEG_INFINITY),
                other => other.parse().ok(),
            },
            _ => None,
        };
        Some(any_value::Value::DoubleValue(
            x.ok_or("doubleValue must be a number")?,
        ))
    } else if let Some(a) = field(obj, "arrayValue", "array_value") {
        let values = array(object(a, "arrayValue")?, "values", "values")?
            .iter()
            .map(any_value)
            .collect::<Result<_, _>>()?;
        Some(any_value::Value::ArrayValue(ArrayValue { values }))
    } else if let Some(kv) = field(obj, "kvlistValue", "kvlist_value") {
        Some(any_value::Value::KvlistValue(KeyValueList {
            values: key_values(object(kv, "kvlistValue")?, "values", "values")?,
        }))
    } else if let Some(b) = field(obj, "bytesValue", "bytes_value") {
        let text = b.as_str().ok_or("bytesValue must be a base64 string")?;
        Some(any_value::Value::BytesValue(
            STANDARD
                .decode(text)
                .map_err(|_| "bytesValue must be base64".to_owned())?,
        ))
    } else {
        None
    };
    Ok(AnyValue { value })
}

fn key_values(obj: &Map<String, Value>, camel: &str, snake: &str) -> Result<Vec<KeyValue>, String> {
    array(obj, camel, snake)?
        .iter()
        .map(|kv| {
            let kv = object(kv, "an attribute")?;
            Ok(KeyValue {
                key: string(kv, "key", "key")?,
                value: field(kv, "value", "value").map(any_value).transpose()?,
            })
        })
        .collect()
}

fn log_record(v: &Value) -> Result<LogRecord, String> {
    let o = object(v, "a log record")?;
    let u64_field = |camel: &str, snake: &str| {
        field(o, camel, snake)
            .map(|v| u64_of(v, camel))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    Ok(LogRecord {
        time_unix_nano: u64_field("timeUnixNano", "time_unix_nano")?,
        observed_time_unix_nano: u64_field("observedTimeUnixNano", "observed_time_unix_nano")?,
        severity_number: match field(o, "severityNumber", "severity_number") {
            None => 0,
            Some(v) => i32::try_from(i64_of(v, "severityNumber")?)
                .map_err(|_| "severityNumber is out of range".to_owned())?,
        },
        severity_text: string(o, "severityText", "severity_text")?,
        body: field(o, "body", "body").map(any_value).transpose()?,
        attributes: key_values(o, "attributes", "attributes")?,
        dropped_attributes_count: u32::try_from(u64_field(
            "droppedAttributesCount",
            "dropped_attributes_count",
        )?)
        .unwrap_or(u32::MAX),
        flags: u32::try_from(u64_field("flags", "flags")?).unwrap_or(0),
        trace_id: hex_id(o, "traceId", "trace_id")?,
        span_id: hex_id(o, "spanId", "span_id")?,
        event_name: string(o, "eventName", "event_name")?,
    })
}

/// An `ExportLogsServiceRequest` from its OTLP/JSON text.
pub(crate) fn request(body: &[u8]) -> Result<ExportLogsServiceRequest, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let root = object(&v, "the request")?;
    let mut resource_logs = Vec::new();
    for rl in array(root, "resourceLogs", "resource_logs")? {
        let rl = object(rl, "resourceLogs")?;
        let resource = field(rl, "resource", "resource")
            .map(|r| {
                Ok::<_, String>(Resource {
                    attributes: key_values(object(r, "resource")?, "attributes", "attributes")?,
                    dropped_attributes_count: 0,
                })
            })
            .transpose()?;
        let mut scope_logs = Vec::new();
        for sl in array(rl, "scopeLogs", "scope_logs")? {
            let sl = object(sl, "scopeLogs")?;
            let scope = field(sl, "scope", "scope")
                .map(|s| {
                    let s = object(s, "scope")?;
                    Ok::<_, String>(InstrumentationScope {
                        name: string(s, "name", "name")?,
                        version: string(s, "version", "version")?,
                        attributes: key_values(s, "attributes", "attributes")?,
                        dropped_attributes_count: 0,
                    })
                })
                .transpose()?;
            let log_records = array(sl, "logRecords", "log_records")?
                .iter()
                .map(log_record)
                .collect::<Result<_, _>>()?;
            scope_logs.push(ScopeLogs {
                scope,
                log_records,
                schema_url: string(sl, "schemaUrl", "schema_url")?,
            });
        }
        resource_logs.push(ResourceLogs {
            resource,
            scope_logs,
            schema_url: string(rl, "schemaUrl", "schema_url")?,
        });
    }
    Ok(ExportLogsServiceRequest { resource_logs })
}

/// An AnyValue as JSON (a map for kvlists, an array for arrays, base64 for bytes).
fn json_of(v: &AnyValue) -> Value {
    use base64::Engine as _;
    match &v.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => json!(i),
        Some(any_value::Value::DoubleValue(d)) => json!(d),
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(json_of).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => Value::Object(map_of(&kv.values)),
        Some(any_value::Value::BytesValue(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
    }
}

fn map_of(kvs: &[KeyValue]) -> Map<String, Value> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map_or(Value::Null, json_of),
            )
        })
        .collect()
}

/// The rows of a request as JSON lines, for the parser.
pub(crate) fn rows(request: &ExportLogsServiceRequest) -> Vec<u8> {
    let mut out = Vec::new();
    for rl in &request.resource_logs {
        let resource = rl
            .resource
            .as_ref()
            .map(|r| map_of(&r.attributes))
            .unwrap_or_default();
        let service = resource
            .get("service.name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        for sl in &rl.scope_logs {
            for rec in &sl.log_records {
                let mut row = Map::new();
                let time = if rec.time_unix_nano != 0 {
                    rec.time_unix_nano
                } else {
                    rec.observed_time_unix_nano
                };
                if time != 0
                    && let Some(t) = rfc3339_nanos(time)
                {
                    row.insert("TimeGenerated".into(), Value::String(t));
                }
                if rec.observed_time_unix_nano != 0
                    && let Some(t) = rfc3339_nanos(rec.observed_time_unix_nano)
                {
                    row.insert("ObservedTimestamp".into(), Value::String(t));
                }
                row.insert(
                    "SeverityText".into(),
                    Value::String(rec.severity_text.clone()),
                );
                row.insert("SeverityNumber".into(), json!(rec.severity_number));
                if let Some(body) = &rec.body {
                    row.insert("Body".into(), json_of(body));
                }
                if !rec.event_name.is_empty() {
                    row.insert("EventName".into(), Value::String(rec.event_name.clone()));
                }
                if !rec.trace_id.is_empty() {
                    row.insert("TraceId".into(), Value::String(hex::encode(&rec.trace_id)));
                }
                if !rec.span_id.is_empty() {
                    row.insert("SpanId".into(), Value::String(hex::encode(&rec.span_id)));
                }
                row.insert("Flags".into(), json!(rec.flags));
                if let Some(service) = &service {
                    row.insert("ServiceName".into(), Value::String(service.clone()));
                }
                if let Some(scope) = &sl.scope {
                    row.insert("ScopeName".into(), Value::String(scope.name.clone()));
                    if !scope.version.is_empty() {
                        row.insert("ScopeVersion".into(), Value::String(scope.version.clone()));
                    }
                }
                row.insert("Attributes".into(), Value::Object(map_of(&rec.attributes)));
                row.insert("ResourceAttributes".into(), Value::Object(resource.clone()));
                out.extend_from_slice(Value::Object(row).to_string().as_bytes());
                out.push(b'\n');
            }
        }
    }
    out
}

/// A time as a string the parser reads as a timestamp (RFC 3339, microseconds, UTC), as the
/// server wrote it before `otlp_rows` wrote it without allocating.
pub(crate) fn rfc3339_nanos(nanos: u64) -> Option<String> {
    let t = chrono::DateTime::from_timestamp_nanos(i64::try_from(nanos).ok()?);
    Some(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}
