//! OTLP/JSON (proto3's JSON mapping with OTLP's exceptions) into the protobuf messages, in one
//! pass over the text (no JSON tree in between): lowerCamelCase field names (snake_case accepted
//! too; the camelCase one wins when both are there), 64-bit integers as strings or numbers,
//! trace and span ids as hex (not base64), `bytesValue` as base64, enums as numbers; a `null`
//! is an absent field, unknown fields are skipped. An `AnyValue` with several cases takes the
//! first of string, bool, int, double, array, kvlist, bytes.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::otlp_proto::{
    AnyValue, ArrayValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue, KeyValueList,
    LogRecord, Resource, ResourceLogs, ScopeLogs, any_value,
};

/// An `ExportLogsServiceRequest` from its OTLP/JSON text.
pub(crate) fn request(body: &[u8]) -> Result<ExportLogsServiceRequest, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let request = Object::<RequestFields>::new("the request")
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r))
        .map_err(|e| format!("not JSON: {e}"))?;
    Ok(request)
}

/// The fields of one message: which names it knows, and how each is read.
trait Fields: Default {
    type Out;
    /// The field's index (below 64) for `name`, and whether `name` is its camelCase spelling.
    fn index(name: &str) -> Option<(u32, bool)>;
    /// Reads field `index` from `map`'s next value (`null` sets its default).
    fn read<'de, A: MapAccess<'de>>(&mut self, index: u32, map: &mut A) -> Result<(), A::Error>;
    fn finish<E: de::Error>(self) -> Result<Self::Out, E>;
}

/// A JSON object read into `F`.
struct Object<F> {
    what: &'static str,
    _fields: PhantomData<F>,
}

impl<F> Object<F> {
    fn new(what: &'static str) -> Self {
        Self {
            what,
            _fields: PhantomData,
        }
    }
}

impl<F> Clone for Object<F> {
    fn clone(&self) -> Self {
        Self::new(self.what)
    }
}

impl<'de, F: Fields> DeserializeSeed<'de> for Object<F> {
    type Value = F::Out;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<F::Out, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de, F: Fields> Visitor<'de> for Object<F> {
    type Value = F::Out;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as a JSON object", self.what)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<F::Out, A::Error> {
        let mut fields = F::default();
        // Fields given by their camelCase name: a snake_case spelling then leaves them alone.
        let mut camel_seen = 0u64;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let Some((index, camel)) = F::index(&key) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let bit = 1u64 << index;
            if !camel && camel_seen & bit != 0 {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if camel {
                camel_seen |= bit;
            }
            fields.read(index, &mut map)?;
        }
        fields.finish()
    }
}

/// `null` or the value of `S`.
struct Opt<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Opt<S> {
    type Value = Option<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Opt<S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(de).map(Some)
    }
}

/// The next value of `map` read with `seed`, `null` giving the default.
fn next<'de, A: MapAccess<'de>, S: DeserializeSeed<'de>>(
    map: &mut A,
    seed: S,
) -> Result<S::Value, A::Error>
where
    S::Value: Default,
{
    Ok(map.next_value_seed(Opt(seed))?.unwrap_or_default())
}

/// A JSON array of the values of `S`.
struct Array<S>(S);

impl<'de, S: DeserializeSeed<'de> + Clone> DeserializeSeed<'de> for Array<S> {
    type Value = Vec<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de, S: DeserializeSeed<'de> + Clone> Visitor<'de> for Array<S> {
    type Value = Vec<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(self.0.clone())? {
            out.push(v);
        }
        Ok(out)
    }
}

/// A JSON string.
#[derive(Clone, Copy)]
struct Text(&'static str);

impl<'de> DeserializeSeed<'de> for Text {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<String, D::Error> {
        de.deserialize_string(self)
    }
}

impl Visitor<'_> for Text {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as a string", self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
}

/// A 64-bit integer as a JSON number or a string of one (`signed` or not).
#[derive(Clone, Copy)]
struct Int {
    name: &'static str,
    signed: bool,
}

impl<'de> DeserializeSeed<'de> for Int {
    type Value = i128;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<i128, D::Error> {
        de.deserialize_any(self)
    }
}

impl Int {
    fn check<E: de::Error>(self, v: i128) -> Result<i128, E> {
        let fits = if self.signed {
            i64::try_from(v).is_ok()
        } else {
            u64::try_from(v).is_ok()
        };
        if fits {
            Ok(v)
        } else {
            Err(E::custom(format!("{} is out of range", self.name)))
        }
    }
}

impl Visitor<'_> for Int {
    type Value = i128;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as an integer", self.name)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
        self.check(i128::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
        self.check(i128::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i128, E> {
        let parsed = if self.signed {
            v.parse::<i64>().ok().map(i128::from)
        } else {
            v.parse::<u64>().ok().map(i128::from)
        };
        parsed.ok_or_else(|| E::custom(format!("{} must be an integer, not '{v}'", self.name)))
    }
}

fn unsigned<E: de::Error>(v: i128) -> Result<u64, E> {
    u64::try_from(v).map_err(|_| E::custom("an unsigned integer is out of range"))
}

/// A trace or span id: hex.
#[derive(Clone, Copy)]
struct Hex(&'static str);

impl<'de> DeserializeSeed<'de> for Hex {
    type Value = Vec<u8>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Vec<u8>, D::Error> {
        de.deserialize_str(self)
    }
}

impl Visitor<'_> for Hex {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as a hex string", self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        hex::decode(v).map_err(|_| E::custom(format!("{} must be hex, not '{v}'", self.0)))
    }
}

/// A `doubleValue`: a number, or `NaN`, `Infinity`, `-Infinity` or a number as a string.
#[derive(Clone, Copy)]
struct Double;

impl<'de> DeserializeSeed<'de> for Double {
    type Value = f64;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<f64, D::Error> {
        de.deserialize_any(self)
    }
}

impl Visitor<'_> for Double {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("doubleValue as a number")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        match v {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other
                .parse()
                .map_err(|_| E::custom("doubleValue must be a number")),
        }
    }
}

/// A JSON boolean.
#[derive(Clone, Copy)]
struct Flag;

impl<'de> DeserializeSeed<'de> for Flag {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<bool, D::Error> {
        de.deserialize_bool(self)
    }
}

impl Visitor<'_> for Flag {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("boolValue as a boolean")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }
}

/// `bytesValue`: base64.
#[derive(Clone, Copy)]
struct Base64;

impl<'de> DeserializeSeed<'de> for Base64 {
    type Value = Vec<u8>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Vec<u8>, D::Error> {
        de.deserialize_str(self)
    }
}

impl Visitor<'_> for Base64 {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytesValue as a base64 string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        STANDARD
            .decode(v)
            .map_err(|_| E::custom("bytesValue must be base64"))
    }
}

fn key_values() -> Array<Object<KeyValueFields>> {
    Array(Object::new("an attribute"))
}

#[derive(Default)]
struct RequestFields(Vec<ResourceLogs>);

impl Fields for RequestFields {
    type Out = ExportLogsServiceRequest;

    fn index(name: &str) -> Option<(u32, bool)> {
        match name {
            "resourceLogs" => Some((0, true)),
            "resource_logs" => Some((0, false)),
            _ => None,
        }
    }

    fn read<'de, A: MapAccess<'de>>(&mut self, _: u32, map: &mut A) -> Result<(), A::Error> {
        self.0 = next(
            map,
            Array(Object::<ResourceLogsFields>::new("resourceLogs")),
        )?;
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<ExportLogsServiceRequest, E> {
        Ok(ExportLogsServiceRequest {
            resource_logs: self.0,
        })
    }
}

#[derive(Default)]
struct ResourceLogsFields(ResourceLogs);

impl Fields for ResourceLogsFields {
    type Out = ResourceLogs;

    fn index(name: &str) -> Option<(u32, bool)> {
        Some(match name {
            "resource" => (0, true),
            "scopeLogs" => (1, true),
            "scope_logs" => (1, false),
            "schemaUrl" => (2, true),
            "schema_url" => (2, false),
            _ => return None,
        })
    }

    fn read<'de, A: MapAccess<'de>>(&mut self, index: u32, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => {
                self.0.resource =
                    map.next_value_seed(Opt(Object::<ResourceFields>::new("resource")))?
            }
            1 => self.0.scope_logs = next(map, Array(Object::<ScopeLogsFields>::new("scopeLogs")))?,
            _ => self.0.schema_url = next(map, Text("schemaUrl"))?,
        }
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<ResourceLogs, E> {
        Ok(self.0)
    }
}

#[derive(Default)]
struct ResourceFields(Vec<KeyValue>);

impl Fields for ResourceFields {
    type Out = Resource;

    fn index(name: &str) -> Option<(u32, bool)> {
        (name == "attributes").then_some((0, true))
    }

    fn read<'de, A: MapAccess<'de>>(&mut self, _: u32, map: &mut A) -> Result<(), A::Error> {
        self.0 = next(map, key_values())?;
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<Resource, E> {
        Ok(Resource {
            attributes: self.0,
            dropped_attributes_count: 0,
        })
    }
}

#[derive(Default)]
struct ScopeLogsFields(ScopeLogs);

impl Fields for ScopeLogsFields {
    type Out = ScopeLogs;

    fn index(name: &str) -> Option<(u32, bool)> {
        Some(match name {
            "scope" => (0, true),
            "logRecords" => (1, true),
            "log_records" => (1, false),
            "schemaUrl" => (2, true),
            "schema_url" => (2, false),
            _ => return None,
        })
    }

    fn read<'de, A: MapAccess<'de>>(&mut self, index: u32, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => self.0.scope = map.next_value_seed(Opt(Object::<ScopeFields>::new("scope")))?,
            1 => {
                self.0.log_records =
                    next(map, Array(Object::<LogRecordFields>::new("a log record")))?;
            }
            _ => self.0.schema_url = next(map, Text("schemaUrl"))?,
        }
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<ScopeLogs, E> {
        Ok(self.0)
    }
}

#[derive(Default)]
struct ScopeFields(InstrumentationScope);

impl Fields for ScopeFields {
    type Out = InstrumentationScope;

    fn index(name: &str) -> Option<(u32, bool)> {
        Some(match name {
            "name" => (0, true),
            "version" => (1, true),
            "attributes" => (2, true),
            _ => return None,
        })
    }

    fn read<'de, A: MapAccess<'de>>(&mut self, index: u32, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => self.0.name = next(map, Text("name"))?,
            1 => self.0.version = next(map, Text("version"))?,
            _ => self.0.attributes = next(map, key_values())?,
        }
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<InstrumentationScope, E> {
        Ok(self.0)
    }
}

#[derive(Default)]
struct LogRecordFields(LogRecord);

impl Fields for LogRecordFields {
    type Out = LogRecord;

    fn index(name: &str) -> Option<(u32, bool)> {
        Some(match name {
            "timeUnixNano" => (0, true),
            "time_unix_nano" => (0, false),
            "observedTimeUnixNano" => (1, true),
            "observed_time_unix_nano" => (1, false),
            "severityNumber" => (2, true),
            "severity_number" => (2, false),
            "severityText" => (3, true),
            "severity_text" => (3, false),
            "body" => (4, true),
            "attributes" => (5, true),
            "droppedAttributesCount" => (6, true),
            "dropped_attributes_count" => (6, false),
            "flags" => (7, true),
            "traceId" => (8, true),
            "trace_id" => (8, false),
            "spanId" => (9, true),
            "span_id" => (9, false),
            "eventName" => (10, true),
            "event_name" => (10, false),
            _ => return None,
        })
    }

    fn read<'de, A: MapAccess<'de>>(&mut self, index: u32, map: &mut A) -> Result<(), A::Error> {
        let uint = |name| Int {
            name,
            signed: false,
        };
        let r = &mut self.0;
        match index {
            0 => r.time_unix_nano = unsigned(next(map, uint("timeUnixNano"))?)?,
            1 => r.observed_time_unix_nano = unsigned(next(map, uint("observedTimeUnixNano"))?)?,
            2 => {
                let n = next(
                    map,
                    Int {
                        name: "severityNumber",
                        signed: true,
                    },
                )?;
                r.severity_number = i32::try_from(n)
                    .map_err(|_| de::Error::custom("severityNumber is out of range"))?;
            }
            3 => r.severity_text = next(map, Text("severityText"))?,
            4 => r.body = map.next_value_seed(Opt(Object::<AnyValueFields>::new("an AnyValue")))?,
            5 => r.attributes = next(map, key_values())?,
            6 => {
                let n = unsigned(next(map, uint("droppedAttributesCount"))?)?;
                r.dropped_attributes_count = u32::try_from(n).unwrap_or(u32::MAX);
            }
            7 => {
                let n = unsigned(next(map, uint("flags"))?)?;
                r.flags = u32::try_from(n).unwrap_or(0);
            }
            8 => r.trace_id = next(map, Hex("traceId"))?,
            9 => r.span_id = next(map, Hex("spanId"))?,
            _ => r.event_name = next(map, Text("eventName"))?,
        }
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<LogRecord, E> {
        Ok(self.0)
    }
}

#[derive(Default)]
struct KeyValueFields(KeyValue);

impl Fields for KeyValueFields {
    type Out = KeyValue;

    fn index(name: &str) -> Option<(u32, bool)> {
        Some(match name {
            "key" => (0, true),
            "value" => (1, true),
            _ => return None,
        })
    }

    fn read<'de, A: MapAccess<'de>>(&mut self, index: u32, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => self.0.key = next(map, Text("key"))?,
            _ => {
                self.0.value =
                    map.next_value_seed(Opt(Object::<AnyValueFields>::new("an AnyValue")))?;
            }
        }
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<KeyValue, E> {
        Ok(self.0)
    }
}

/// The cases of an `AnyValue` given, by priority (string first).
#[derive(Default)]
struct AnyValueFields([Option<any_value::Value>; 7]);

impl Fields for AnyValueFields {
    type Out = AnyValue;

    fn index(name: &str) -> Option<(u32, bool)> {
        Some(match name {
            "stringValue" => (0, true),
            "string_value" => (0, false),
            "boolValue" => (1, true),
            "bool_value" => (1, false),
            "intValue" => (2, true),
            "int_value" => (2, false),
            "doubleValue" => (3, true),
            "double_value" => (3, false),
            "arrayValue" => (4, true),
            "array_value" => (4, false),
            "kvlistValue" => (5, true),
            "kvlist_value" => (5, false),
            "bytesValue" => (6, true),
            "bytes_value" => (6, false),
            _ => return None,
        })
    }

    fn read<'de, A: MapAccess<'de>>(&mut self, index: u32, map: &mut A) -> Result<(), A::Error> {
        use any_value::Value as V;
        let slot = index as usize;
        let value = match index {
            0 => map
                .next_value_seed(Opt(Text("stringValue")))?
                .map(V::StringValue),
            1 => map.next_value_seed(Opt(Flag))?.map(V::BoolValue),
            2 => map
                .next_value_seed(Opt(Int {
                    name: "intValue",
                    signed: true,
                }))?
                .map(|n| V::IntValue(i64::try_from(n).unwrap_or_default())),
            3 => map.next_value_seed(Opt(Double))?.map(V::DoubleValue),
            4 => map
                .next_value_seed(Opt(Object::<ValuesFields>::new("arrayValue")))?
                .map(|values| V::ArrayValue(ArrayValue { values })),
            5 => map
                .next_value_seed(Opt(Object::<KvListFields>::new("kvlistValue")))?
                .map(|values| V::KvlistValue(KeyValueList { values })),
            _ => map.next_value_seed(Opt(Base64))?.map(V::BytesValue),
        };
        if let Some(s) = self.0.get_mut(slot) {
            *s = value;
        }
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<AnyValue, E> {
        Ok(AnyValue {
            value: self.0.into_iter().flatten().next(),
        })
    }
}

/// `arrayValue`: `{"values": [AnyValue...]}`.
#[derive(Default)]
struct ValuesFields(Vec<AnyValue>);

impl Fields for ValuesFields {
    type Out = Vec<AnyValue>;

    fn index(name: &str) -> Option<(u32, bool)> {
        (name == "values").then_some((0, true))
    }

    fn read<'de, A: MapAccess<'de>>(&mut self, _: u32, map: &mut A) -> Result<(), A::Error> {
        self.0 = next(map, Array(Object::<AnyValueFields>::new("an AnyValue")))?;
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<Vec<AnyValue>, E> {
        Ok(self.0)
    }
}

/// `kvlistValue`: `{"values": [KeyValue...]}`.
#[derive(Default)]
struct KvListFields(Vec<KeyValue>);

impl Fields for KvListFields {
    type Out = Vec<KeyValue>;

    fn index(name: &str) -> Option<(u32, bool)> {
        (name == "values").then_some((0, true))
    }

    fn read<'de, A: MapAccess<'de>>(&mut self, _: u32, map: &mut A) -> Result<(), A::Error> {
        self.0 = next(map, key_values())?;
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<Vec<KeyValue>, E> {
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::otlp_reference;

    /// Each body gives what the reference decoder (through `serde_json::Value`) gives: the same
    /// messages, or a refusal from both.
    #[test]
    fn one_pass_decoding_equals_the_reference_decoder() {
        let bodies = [
            r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]},
              "scopeLogs":[{"scope":{"name":"s","version":"1","attributes":[]},"logRecords":[
                {"timeUnixNano":"1767225600123456789","observedTimeUnixNano":1767225600000000000,
                 "severityNumber":9,"severityText":"INFO","body":{"stringValue":"hello"},
                 "attributes":[{"key":"i","value":{"intValue":"42"}},{"key":"n","value":{"intValue":-3}},
                   {"key":"d","value":{"doubleValue":1.5}},{"key":"nan","value":{"doubleValue":"NaN"}},
                   {"key":"b","value":{"boolValue":true}},{"key":"x","value":{"bytesValue":"aGk="}},
                   {"key":"a","value":{"arrayValue":{"values":[{"stringValue":"p"},{"intValue":1}]}}},
                   {"key":"k","value":{"kvlistValue":{"values":[{"key":"z","value":{"boolValue":false}}]}}},
                   {"key":"empty","value":{}},{"key":"none"}],
                 "droppedAttributesCount":2,"flags":1,"traceId":"abababababababababababababababab",
                 "spanId":"0102030405060708","eventName":"e","unknown":{"deep":[1,2,{"x":null}]}}],
              "schemaUrl":"u"}],"schemaUrl":"v"}]}"#,
            r#"{"resource_logs":[{"scope_logs":[{"log_records":[{"time_unix_nano":"5","severity_text":"W",
              "body":{"kvlist_value":{"values":[{"key":"q","value":{"string_value":"r"}}]}}}]}]}]}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"7","time_unix_nano":"8",
              "severity_text":"snake","severityText":"camel","body":null,"attributes":null,"traceId":null}]}]}]}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"s","intValue":"3"}},
              {"body":{"stringValue":null,"intValue":"3"}},{"body":{"doubleValue":"-Infinity"}},
              {"body":{"doubleValue":2}},{"body":{"doubleValue":"2.5"}},{"flags":"4294967296"}]}]}]}"#,
            r#"{"resourceLogs":null}"#,
            r#"{}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"x"}]}]}]}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":-1}]}]}]}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":1.5}]}]}]}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":4294967296}]}]}]}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz"}]}]}]}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityText":5}]}]}]}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"boolValue":"yes"}}]}]}]}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"bytesValue":"!!"}}]}]}]}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":"text"}]}]}]}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[5]}]}]}"#,
            r#"{"resourceLogs":{"not":"an array"}}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":1}]}]}]}]}"#,
            r#"[]"#,
            r#"{"resourceLogs":[]} trailing"#,
            r#"{"resourceLogs":["#,
        ];
        for body in bodies {
            let ours = request(body.as_bytes());
            let reference = otlp_reference::request(body.as_bytes());
            match (&ours, &reference) {
                // Debug, not PartialEq: a NaN double equals itself there.
                (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "{body}"),
                (Err(_), Err(_)) => {}
                _ => panic!("{body}: ours {ours:?}, reference {reference:?}"),
            }
        }
        // The first body is read whole.
        let first = request(bodies[0].as_bytes()).unwrap();
        let record = &first.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(record.attributes.len(), 10);
        assert_eq!(record.time_unix_nano, 1_767_225_600_123_456_789);
    }
}
