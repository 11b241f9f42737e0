//! OTLP/JSON (proto3's JSON mapping with OTLP's exceptions) into the request's view
//! ([`super::otlp_view`]), in one pass over the text (no JSON tree in between), strings borrowed
//! from the body when they have no escape: lowerCamelCase field names (snake_case accepted too;
//! the camelCase one wins when both are there), 64-bit integers as strings or numbers, trace
//! and span ids as hex (not base64), `bytesValue` as base64, enums as numbers; a `null` is an
//! absent field, unknown fields are skipped (the known ones the rows do not use are still
//! checked). An `AnyValue` with several cases takes the first of string, bool, int, double,
//! array, kvlist, bytes.

use std::borrow::Cow;

use serde::de::{self, DeserializeSeed, MapAccess};

use super::json_seeds::{
    Array, Base64, Double, Fields, Flag, Hex, Int, Object, Opt, Text, next, unsigned,
};
use super::otlp_view::{Attr, Logs, Record, ResourceLogs, ScopeLogs, Value};

/// A request's view from its OTLP/JSON text, borrowing from `body`.
pub(crate) fn request(body: &[u8]) -> Result<Logs<'_>, String> {
    // UTF-8 checked once for the whole body, not string by string.
    let text = std::str::from_utf8(body).map_err(|e| format!("not JSON: {e}"))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let request = Object::<RequestFields<'_>>::new("the request")
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r))
        .map_err(|e| format!("not JSON: {e}"))?;
    Ok(request)
}

fn key_values<'de>() -> Array<Object<KeyValueFields<'de>>> {
    Array(Object::new("an attribute"))
}

#[derive(Default)]
struct RequestFields<'de>(Vec<ResourceLogs<'de>>);

impl<'de> Fields<'de> for RequestFields<'de> {
    type Out = Logs<'de>;

    fn index(name: &str) -> Option<(u32, bool)> {
        match name {
            "resourceLogs" => Some((0, true)),
            "resource_logs" => Some((0, false)),
            _ => None,
        }
    }

    fn read<A: MapAccess<'de>>(&mut self, _: u32, map: &mut A) -> Result<(), A::Error> {
        self.0 = next(
            map,
            Array(Object::<ResourceLogsFields<'_>>::new("resourceLogs")),
        )?;
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<Logs<'de>, E> {
        Ok(Logs { resources: self.0 })
    }
}

#[derive(Default)]
struct ResourceLogsFields<'de>(ResourceLogs<'de>);

impl<'de> Fields<'de> for ResourceLogsFields<'de> {
    type Out = ResourceLogs<'de>;

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

    fn read<A: MapAccess<'de>>(&mut self, index: u32, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => {
                self.0.attributes = next(map, Object::<ResourceFields<'_>>::new("resource"))?;
            }
            1 => self.0.scopes = next(map, Array(Object::<ScopeLogsFields<'_>>::new("scopeLogs")))?,
            _ => {
                next(map, Text("schemaUrl"))?;
            }
        }
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<ResourceLogs<'de>, E> {
        Ok(self.0)
    }
}

/// A resource: its attributes.
#[derive(Default)]
struct ResourceFields<'de>(Vec<Attr<'de>>);

impl<'de> Fields<'de> for ResourceFields<'de> {
    type Out = Vec<Attr<'de>>;

    fn index(name: &str) -> Option<(u32, bool)> {
        (name == "attributes").then_some((0, true))
    }

    fn read<A: MapAccess<'de>>(&mut self, _: u32, map: &mut A) -> Result<(), A::Error> {
        self.0 = next(map, key_values())?;
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<Vec<Attr<'de>>, E> {
        Ok(self.0)
    }
}

#[derive(Default)]
struct ScopeLogsFields<'de>(ScopeLogs<'de>);

impl<'de> Fields<'de> for ScopeLogsFields<'de> {
    type Out = ScopeLogs<'de>;

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

    fn read<A: MapAccess<'de>>(&mut self, index: u32, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => {
                self.0.scope = map.next_value_seed(Opt(Object::<ScopeFields<'_>>::new("scope")))?
            }
            1 => {
                self.0.records = next(
                    map,
                    Array(Object::<LogRecordFields<'_>>::new("a log record")),
                )?;
            }
            _ => {
                next(map, Text("schemaUrl"))?;
            }
        }
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<ScopeLogs<'de>, E> {
        Ok(self.0)
    }
}

/// A scope: its name and version (its attributes are checked, not kept).
#[derive(Default)]
struct ScopeFields<'de>(Cow<'de, str>, Cow<'de, str>);

impl<'de> Fields<'de> for ScopeFields<'de> {
    type Out = (Cow<'de, str>, Cow<'de, str>);

    fn index(name: &str) -> Option<(u32, bool)> {
        Some(match name {
            "name" => (0, true),
            "version" => (1, true),
            "attributes" => (2, true),
            _ => return None,
        })
    }

    fn read<A: MapAccess<'de>>(&mut self, index: u32, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => self.0 = next(map, Text("name"))?,
            1 => self.1 = next(map, Text("version"))?,
            _ => {
                next(map, key_values())?;
            }
        }
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<Self::Out, E> {
        Ok((self.0, self.1))
    }
}

#[derive(Default)]
struct LogRecordFields<'de>(Record<'de>);

impl<'de> Fields<'de> for LogRecordFields<'de> {
    type Out = Record<'de>;

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

    fn read<A: MapAccess<'de>>(&mut self, index: u32, map: &mut A) -> Result<(), A::Error> {
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
            4 => {
                r.body = map
                    .next_value_seed(Opt(Object::<AnyValueFields<'_>>::new("an AnyValue")))?
                    .flatten();
            }
            5 => r.attributes = next(map, key_values())?,
            6 => {
                unsigned(next(map, uint("droppedAttributesCount"))?)?;
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

    fn finish<E: de::Error>(self) -> Result<Record<'de>, E> {
        Ok(self.0)
    }
}

#[derive(Default)]
struct KeyValueFields<'de> {
    key: Cow<'de, str>,
    value: Option<Value<'de>>,
}

impl<'de> Fields<'de> for KeyValueFields<'de> {
    type Out = Attr<'de>;

    fn index(name: &str) -> Option<(u32, bool)> {
        Some(match name {
            "key" => (0, true),
            "value" => (1, true),
            _ => return None,
        })
    }

    fn read<A: MapAccess<'de>>(&mut self, index: u32, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => self.key = next(map, Text("key"))?,
            _ => {
                self.value = map
                    .next_value_seed(Opt(Object::<AnyValueFields<'_>>::new("an AnyValue")))?
                    .flatten();
            }
        }
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<Attr<'de>, E> {
        Ok(Attr {
            key: self.key,
            value: self.value,
        })
    }
}

/// The cases of an `AnyValue` given, each with its priority (its field index: string first):
/// the first one read, and any others (rare: a value has one case).
#[derive(Default)]
struct AnyValueFields<'de> {
    first: Option<(u32, Option<Value<'de>>)>,
    more: Vec<(u32, Option<Value<'de>>)>,
}

impl<'de> Fields<'de> for AnyValueFields<'de> {
    /// The value, `None` for an `AnyValue` with none.
    type Out = Option<Value<'de>>;

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

    fn read<A: MapAccess<'de>>(&mut self, index: u32, map: &mut A) -> Result<(), A::Error> {
        let value = match index {
            0 => map
                .next_value_seed(Opt(Text("stringValue")))?
                .map(Value::Str),
            1 => map.next_value_seed(Opt(Flag))?.map(Value::Bool),
            2 => map
                .next_value_seed(Opt(Int {
                    name: "intValue",
                    signed: true,
                }))?
                .map(|n| Value::Int(i64::try_from(n).unwrap_or_default())),
            3 => map.next_value_seed(Opt(Double))?.map(Value::Double),
            4 => map
                .next_value_seed(Opt(Object::<ValuesFields<'_>>::new("arrayValue")))?
                .map(Value::Array),
            5 => map
                .next_value_seed(Opt(Object::<KvListFields<'_>>::new("kvlistValue")))?
                .map(Value::KvList),
            _ => map
                .next_value_seed(Opt(Base64))?
                .map(|b| Value::Bytes(Cow::Owned(b))),
        };
        if self.first.is_none() {
            self.first = Some((index, value));
        } else {
            self.more.push((index, value));
        }
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<Option<Value<'de>>, E> {
        let Some(first) = self.first else {
            return Ok(None);
        };
        if self.more.is_empty() {
            return Ok(first.1);
        }
        // A case read twice (snake_case, then camelCase) keeps its last value; then the case
        // of highest priority that has a value wins.
        let mut slots: [Option<Value<'de>>; 7] = Default::default();
        for (index, value) in std::iter::once(first).chain(self.more) {
            if let Some(slot) = slots.get_mut(index as usize) {
                *slot = value;
            }
        }
        Ok(slots.into_iter().flatten().next())
    }
}

/// `arrayValue`: `{"values": [AnyValue...]}`.
#[derive(Default)]
struct ValuesFields<'de>(Vec<Option<Value<'de>>>);

impl<'de> Fields<'de> for ValuesFields<'de> {
    type Out = Vec<Option<Value<'de>>>;

    fn index(name: &str) -> Option<(u32, bool)> {
        (name == "values").then_some((0, true))
    }

    fn read<A: MapAccess<'de>>(&mut self, _: u32, map: &mut A) -> Result<(), A::Error> {
        self.0 = next(map, Array(Object::<AnyValueFields<'_>>::new("an AnyValue")))?;
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<Self::Out, E> {
        Ok(self.0)
    }
}

/// `kvlistValue`: `{"values": [KeyValue...]}`.
#[derive(Default)]
struct KvListFields<'de>(Vec<Attr<'de>>);

impl<'de> Fields<'de> for KvListFields<'de> {
    type Out = Vec<Attr<'de>>;

    fn index(name: &str) -> Option<(u32, bool)> {
        (name == "values").then_some((0, true))
    }

    fn read<A: MapAccess<'de>>(&mut self, _: u32, map: &mut A) -> Result<(), A::Error> {
        self.0 = next(map, key_values())?;
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<Vec<Attr<'de>>, E> {
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
            // Escapes (strings owned, not borrowed) and uppercase ids (written in lowercase).
            r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.n\u0061me","value":{"stringValue":"sh\"op"}}]},
              "scopeLogs":[{"scope":{"name":"n\\s"},"logRecords":[{"severityText":"W\u00e9",
                "traceId":"ABABABABABABABABABABABABABABABAB","spanId":"0102030405060708","body":{"stringValue":"a\nb"},
                "attributes":[{"key":"k\"","value":{"stringValue":"v\\"}},{"key":"k\"","value":{"intValue":1}}]}]}]}]}"#,
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
            let reference = reference.as_ref().map(Logs::of_proto);
            match (&ours, &reference) {
                // Debug, not PartialEq: a NaN double equals itself there.
                (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "{body}"),
                (Err(_), Err(_)) => {}
                _ => panic!("{body}: ours {ours:?}, reference {reference:?}"),
            }
        }
        // The first body is read whole.
        let first = request(bodies[0].as_bytes()).unwrap();
        let record = &first.resources[0].scopes[0].records[0];
        assert_eq!(record.attributes.len(), 10);
        assert_eq!(record.time_unix_nano, 1_767_225_600_123_456_789);
    }
}
