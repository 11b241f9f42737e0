//! A JSON array held whole in memory (a Logs Ingestion API body), parsed in one pass.
//!
//! The streaming [`Parser`](super::Parser) finds each element of an array with a structural
//! scan and copies it into its chunk buffer, then serde_json reads it again: two passes and a
//! copy of every byte (the scan and copy took 12% of a loaded server's CPU). When the whole body
//! is in memory and a bad record refuses the whole payload ([`ErrorPolicy::Refuse`], what the
//! server's APIs ask for), serde_json reads the array itself, each element's fields borrowed from
//! the body, straight into the column builders. Anything this pass does not take as it is (a
//! malformed or refused record, an element over the size limit, a byte-order mark, an element
//! whose extent it cannot tell) ends it, and the streaming parser runs on the same body instead:
//! it words the refusal, so a refused payload is refused as before, and what this pass accepts
//! is what the streaming parser accepts, in the same batches
//! (`one_pass_and_the_streaming_parser_give_the_same_batches`).

use std::borrow::Cow;
use std::fmt;

use arrow::array::RecordBatch;
use serde::de::{Deserializer as _, SeqAccess, Visitor};

use super::json::{Fields, ObjectSeed, push_fields};
use super::{ErrorPolicy, ParseOptions};
use crate::chunk::ChunkBuilder;
use crate::schema::TableSchema;

/// The batches of `payload`, an array of objects, for `schema`'s table (grown as the streaming
/// parser grows it), rows received at `received` (UTC microseconds); `None` when the payload
/// must go to the streaming parser (see the module). `schema` may have grown on `None`: the
/// caller restores it.
pub(super) fn one_pass(
    payload: &[u8],
    schema: &mut TableSchema,
    options: &ParseOptions,
    received: i64,
) -> Option<Vec<RecordBatch>> {
    if options.on_error != ErrorPolicy::Refuse || payload.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return None;
    }
    let mut pass = Pass {
        payload,
        schema,
        options,
        received,
        batches: Vec::new(),
    };
    // UTF-8 checked once, for the whole body: read from a `str`, serde_json checks no string
    // again, nor the raw text of each value it hands over (from bytes it checked both: UTF-8
    // checks were 4.3% of a profile of a server fed 500-row Logs Ingestion API requests). A body
    // that is not UTF-8 goes to the streaming parser, which says where.
    let text = std::str::from_utf8(payload).ok()?;
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_seq(&mut pass).ok()?;
    de.end().ok()?;
    Some(pass.batches)
}

struct Pass<'a, 's> {
    payload: &'a [u8],
    schema: &'s mut TableSchema,
    options: &'s ParseOptions,
    received: i64,
    batches: Vec<RecordBatch>,
}

impl<'a> Pass<'a, '_> {
    fn builder(&self) -> ChunkBuilder<'a> {
        ChunkBuilder::new(self.received, self.options.max_columns)
    }

    /// Finishes a chunk into a batch (growing the schema), as the streaming parser does.
    fn finish(&mut self, builder: ChunkBuilder<'a>) -> Option<()> {
        if let Some(batch) = builder.finish(self.schema).ok()? {
            self.batches.push(batch);
        }
        Some(())
    }
}

/// Why the pass stopped; never shown (the streaming parser says what is wrong).
fn stop<E: serde::de::Error>() -> E {
    E::custom("left to the streaming parser")
}

impl<'a> Visitor<'a> for &mut Pass<'a, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of objects")
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut fields: Fields<'a> = Vec::new();
        let mut builder = self.builder();
        let (mut rows, mut bytes) = (0usize, 0usize);
        loop {
            fields.clear();
            if seq.next_element_seed(ObjectSeed(&mut fields))?.is_none() {
                break;
            }
            let len = element_len(self.payload, &fields).ok_or_else(stop::<A::Error>)?;
            if len > self.options.max_record_bytes {
                return Err(stop());
            }
            // The streaming parser's chunks: up to `batch_rows` records, or until the records
            // framed reach `chunk_bytes`.
            if rows >= self.options.batch_rows || bytes >= self.options.chunk_bytes {
                let full = std::mem::replace(&mut builder, self.builder());
                self.finish(full).ok_or_else(stop::<A::Error>)?;
                (rows, bytes) = (0, 0);
            }
            builder.begin_row();
            push_fields(&mut builder, self.schema, &fields).map_err(|_| stop::<A::Error>())?;
            builder.end_row();
            rows += 1;
            bytes += len;
        }
        self.finish(builder).ok_or_else(stop::<A::Error>)
    }
}

/// The length of the element whose `fields` were just read, as the streaming parser frames it:
/// from its `{` up to the `,` or `]` after it (the whitespace before that included). Found from
/// where its first key and last value lie in `payload`; `None` when they do not tell (no field,
/// a first key with escapes, which serde_json copies).
fn element_len(payload: &[u8], fields: &Fields<'_>) -> Option<usize> {
    let base = payload.as_ptr() as usize;
    let (Cow::Borrowed(first_key), _) = fields.first()? else {
        return None;
    };
    let (_, last_value) = fields.last()?;
    // The key's opening quote, then whitespace back to the object's `{`.
    let quote = (first_key.as_ptr() as usize)
        .checked_sub(base)?
        .checked_sub(1)?;
    if payload.get(quote) != Some(&b'"') {
        return None;
    }
    let mut start = quote;
    loop {
        start = start.checked_sub(1)?;
        match payload.get(start)? {
            b'{' => break,
            b if b.is_ascii_whitespace() => {}
            _ => return None,
        }
    }
    // After the last value: whitespace, the object's `}`, whitespace, then `,` or `]`.
    let value = last_value.get();
    let mut end = (value.as_ptr() as usize).checked_sub(base)? + value.len();
    let skip_space = |mut at: usize| {
        while payload.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        at
    };
    end = skip_space(end);
    if payload.get(end) != Some(&b'}') {
        return None;
    }
    end = skip_space(end + 1);
    match payload.get(end)? {
        b',' | b']' => Some(end - start),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::IngestError;
    use crate::parse::{Format, ParseOutcome, parse_payload};
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    #[derive(Debug)]
    struct At(DateTime<Utc>);
    impl logvault_core::Clock for At {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }

    fn refuse(batch_rows: usize, chunk_bytes: usize, max_record_bytes: usize) -> ParseOptions {
        ParseOptions {
            batch_rows,
            chunk_bytes,
            max_record_bytes,
            on_error: ErrorPolicy::Refuse,
            ..ParseOptions::default()
        }
    }

    fn streaming(
        payload: &[u8],
        options: &ParseOptions,
    ) -> (Result<ParseOutcome, IngestError>, TableSchema) {
        let mut schema = TableSchema::new("T").unwrap();
        let clock = At(DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let out = parse_payload(payload, Format::JsonArray, &mut schema, options, &clock);
        (out, schema)
    }

    fn fast(payload: &[u8], options: &ParseOptions) -> (Option<Vec<RecordBatch>>, TableSchema) {
        let mut schema = TableSchema::new("T").unwrap();
        let received = DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .timestamp_micros();
        let out = one_pass(payload, &mut schema, options, received);
        (out, schema)
    }

    /// Both paths on `payload`: the same batches and schema when the pass takes it.
    fn same(payload: &[u8], options: &ParseOptions) -> bool {
        let (slow, slow_schema) = streaming(payload, options);
        let (quick, quick_schema) = fast(payload, options);
        match (slow, quick) {
            (Ok(slow), Some(quick)) => {
                assert_eq!(slow.batches, quick, "{}", String::from_utf8_lossy(payload));
                assert_eq!(slow_schema, quick_schema);
                true
            }
            (Err(_), Some(_)) => panic!(
                "the pass took what the streaming parser refuses: {}",
                String::from_utf8_lossy(payload)
            ),
            (_, None) => false,
        }
    }

    #[test]
    fn one_pass_and_the_streaming_parser_give_the_same_batches() {
        let payload = br#"[ {"TimeGenerated":"2024-01-02T03:04:05Z","Level":"INFO","n":1},
            {"Level" : "WARN" , "n": 2.5, "tags": {"a": [1, 2]}, "Level": null}  ,
            {"x":"caf\u00e9","n":"three","e":""},{"n":null}
        ]"#;
        for (rows, bytes) in [(8192, 4 << 20), (1, 4 << 20), (2, 4 << 20), (8192, 60)] {
            assert!(
                same(payload, &refuse(rows, bytes, 1 << 20)),
                "{rows} {bytes}"
            );
        }
        // The batches follow the chunk bounds: one row each.
        let (quick, _) = fast(payload, &refuse(1, 4 << 20, 1 << 20));
        assert_eq!(quick.unwrap().len(), 4);
    }

    #[test]
    fn what_the_pass_does_not_take_goes_to_the_streaming_parser() {
        let options = refuse(8192, 4 << 20, 1 << 20);
        for payload in [
            &br#"[{"a":1},]"#[..],
            br#"[{"a":1} {"b":2}]"#,
            br#"[{"a":1}, 7]"#,
            br#"[{"a":1}] trailing"#,
            br#"[{"TimeGenerated":"not a time"}]"#,
            br#"[{}]"#,
            br#"[{"k\"ey":1}]"#,
            b"\xEF\xBB\xBF[{\"a\":1}]",
            br#"{"a":1}"#,
        ] {
            assert!(
                fast(payload, &options).0.is_none(),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
        // Over the size limit: the streaming parser refuses it, naming the size.
        let big = br#"[{"a":"0123456789"}]"#;
        assert!(fast(big, &refuse(8192, 4 << 20, 10)).0.is_none());
        assert!(fast(big, &refuse(8192, 4 << 20, 20)).0.is_some());
        assert!(streaming(big, &refuse(8192, 4 << 20, 10)).0.is_err());
        // Not under `Skip`, where the streaming parser skips bad records and goes on.
        let skip = ParseOptions::default();
        assert!(fast(br#"[{"a":1}]"#, &skip).0.is_none());
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            any::<i32>().prop_map(|n| n.to_string()),
            (-1e6f64..1e6).prop_map(|f| format!("{f}")),
            "[a-zA-Z0-9 :.-]{0,20}".prop_map(|s| format!("{s:?}")),
            Just(r#""2024-05-06T07:08:09.123Z""#.to_owned()),
            Just(r#"{"nested": [1, "two", null]}"#.to_owned()),
            Just("true".to_owned()),
        ]
    }

    fn object() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("TimeGenerated"),
            Just("Level"),
            Just("Host"),
            Just("n"),
            Just("msg"),
            Just(""),
        ];
        let space = prop_oneof![Just(""), Just(" "), Just("\n  ")];
        proptest::collection::vec((key, value(), space), 1..6).prop_map(|fields| {
            let inner: Vec<String> = fields
                .iter()
                .map(|(k, v, s)| {
                    // A `TimeGenerated` that is not a time refuses the payload (a case of the
                    // test above): here it is always one.
                    let v = if *k == "TimeGenerated" {
                        r#""2024-05-06T07:08:09.123Z""#
                    } else {
                        v.as_str()
                    };
                    format!("{s}\"{k}\"{s}:{s}{v}{s}")
                })
                .collect();
            format!("{{{}}}", inner.join(","))
        })
    }

    proptest! {
        /// Arrays of objects of every kind of value, spaced in every way, in chunks of every
        /// size: the pass takes them all and reads them as the streaming parser does.
        #[test]
        fn the_pass_reads_arrays_as_the_streaming_parser(
            objects in proptest::collection::vec(object(), 0..40),
            space in prop_oneof![Just(""), Just(" "), Just("\n")],
            rows in 1usize..10,
            bytes in 1usize..400,
        ) {
            let payload = format!("[{space}{}{space}]", objects.join(&format!("{space},{space}")));
            let took = same(payload.as_bytes(), &refuse(rows, bytes, 1 << 20));
            prop_assert!(took, "the pass left a well-formed array: {}", payload);
        }
    }
}
