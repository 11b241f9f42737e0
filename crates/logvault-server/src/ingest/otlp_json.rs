//! OTLP/JSON (proto3's JSON mapping with OTLP's exceptions) into the protobuf messages, in one
//! pass over the text (no JSON tree in between): lowerCamelCase field names (snake_case accepted
//! too; the camelCase one wins when both are there), 64-bit integers as strings or numbers,
//! trace and span ids as hex (not base64), `bytesValue` as base64, enums as numbers; a `null`
//! is an absent field, unknown fields are skipped. An `AnyValue` with several cases takes the
//! first of string, bool, int, double, array, kvlist, bytes.

use serde::de::{self, DeserializeSeed, MapAccess};

use super::json_seeds::{
    Array, Base64, Double, Fields, Flag, Hex, Int, Object, Opt, Text, next, unsigned,
};

use super::otlp_proto::{
    AnyValue, ArrayValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue, KeyValueList,
    LogRecord, Resource, ResourceLogs, ScopeLogs, any_value,
};

/// An `ExportLogsServiceRequest` from its OTLP/JSON text.
pub(crate) fn request(body: &[u8]) -> Result<ExportLogsServiceRequest, String> {
    // UTF-8 checked once for the whole body, not string by string.
    let text = std::str::from_utf8(body).map_err(|e| format!("not JSON: {e}"))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let request = Object::<RequestFields>::new("the request")
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r))
        .map_err(|e| format!("not JSON: {e}"))?;
    Ok(request)
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

/// The cases of an `AnyValue` given, each with its priority (its field index: string first):
/// the first one read, and any others (rare: a value has one case).
#[derive(Default)]
struct AnyValueFields {
    first: Option<(u32, Option<any_value::Value>)>,
    more: Vec<(u32, Option<any_value::Value>)>,
}

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
        if self.first.is_none() {
            self.first = Some((index, value));
        } else {
            self.more.push((index, value));
        }
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<AnyValue, E> {
        let Some(first) = self.first else {
            return Ok(AnyValue::default());
        };
        if self.more.is_empty() {
            return Ok(AnyValue { value: first.1 });
        }
        // A case read twice (snake_case, then camelCase) keeps its last value; then the case
        // of highest priority that has a value wins.
        let mut slots: [Option<any_value::Value>; 7] = Default::default();
        for (index, value) in std::iter::once(first).chain(self.more) {
            if let Some(slot) = slots.get_mut(index as usize) {
                *slot = value;
            }
        }
        Ok(AnyValue {
            value: slots.into_iter().flatten().next(),
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
            // Several cases of one AnyValue: priority, a null case, snake then camelCase.
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"intValue":"1","stringValue":"x"}},
              {"body":{"string_value":"a","stringValue":null,"int_value":"5"}},
              {"body":{"boolValue":true,"bool_value":false,"doubleValue":1}},
              {"body":{"stringValue":"b","string_value":"c"}},{"body":{"bytesValue":"aGk=","kvlistValue":null}}]}]}]}"#,
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
