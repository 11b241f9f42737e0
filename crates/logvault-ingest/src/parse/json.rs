//! One JSON object (a line of JSON lines, or an element of a JSON array) into a row.
//!
//! The object is split into its keys and the raw text of its values by serde_json, borrowing
//! from the payload: strings without escapes, numbers and nested values are never copied before
//! the batch is built, and nested objects and arrays keep their text exactly as sent.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::chunk::ChunkBuilder;
use crate::schema::TableSchema;
use crate::value::json_cell;

pub(super) type Fields<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

/// Adds the object in `text` as a row; the reason it is rejected otherwise.
pub(super) fn push_record<'a>(
    builder: &mut ChunkBuilder<'a>,
    schema: &TableSchema,
    text: &'a str,
    fields: &mut Fields<'a>,
) -> Result<(), String> {
    fields.clear();
    let mut de = serde_json::Deserializer::from_str(text);
    ObjectSeed(fields)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| format!("invalid JSON: {e}"))?;
    push_fields(builder, schema, fields)
}

/// Adds an object's fields (as [`ObjectSeed`] collects them) as the current row's.
pub(super) fn push_fields<'a>(
    builder: &mut ChunkBuilder<'a>,
    schema: &TableSchema,
    fields: &Fields<'a>,
) -> Result<(), String> {
    for (position, (key, raw)) in fields.iter().enumerate() {
        let cell = json_cell(raw).map_err(|e| format!("field {key:?}: {e}"))?;
        let name = if key.is_empty() {
            Cow::Owned(format!("Column{}", position + 1))
        } else {
            Cow::Borrowed(key.as_ref())
        };
        match cell {
            Some(cell) => builder.push_field(schema, &name, None, Some(cell))?,
            // A key that repeats: the last wins, a null too.
            None => builder.push_null(&name),
        }
    }
    Ok(())
}

/// Collects the fields of one object into a reused vector.
pub(super) struct ObjectSeed<'v, 'a>(pub(super) &'v mut Fields<'a>);

impl<'a> DeserializeSeed<'a> for ObjectSeed<'_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'a>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_map(self)
    }
}

impl<'a> Visitor<'a> for ObjectSeed<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'a>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(Key(key)) = map.next_key()? {
            let value: &'a RawValue = map.next_value()?;
            self.0.push((key, value));
        }
        Ok(())
    }
}

/// A key, borrowed from the input unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'a> serde::Deserialize<'a> for Key<'a> {
    fn deserialize<D: Deserializer<'a>>(de: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'a> Visitor<'a> for KeyVisitor {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'a str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        de.deserialize_str(KeyVisitor)
    }
}
