//! The pieces of a one-pass JSON reader (serde seeds and visitors, no JSON tree): an object
//! read field by field into a message ([`Fields`]), optional values, arrays, and the scalar
//! forms of proto3's JSON mapping (64-bit integers as numbers or strings, hex ids, base64
//! bytes). `otlp_json` puts OTLP's messages together from them.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The fields of one message: which names it knows, and how each is read.
pub(super) trait Fields<'de>: Default {
    type Out;
    /// The field's index (below 64) for `name`, and whether `name` is its camelCase spelling.
    fn index(name: &str) -> Option<(u32, bool)>;
    /// Reads field `index` from `map`'s next value (`null` sets its default).
    fn read<A: MapAccess<'de>>(&mut self, index: u32, map: &mut A) -> Result<(), A::Error>;
    fn finish<E: de::Error>(self) -> Result<Self::Out, E>;
}

/// A JSON object read into `F`.
pub(super) struct Object<F> {
    what: &'static str,
    _fields: PhantomData<F>,
}

impl<F> Object<F> {
    pub(super) fn new(what: &'static str) -> Self {
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

impl<'de, F: Fields<'de>> DeserializeSeed<'de> for Object<F> {
    type Value = F::Out;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<F::Out, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de, F: Fields<'de>> Visitor<'de> for Object<F> {
    type Value = F::Out;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as a JSON object", self.what)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<F::Out, A::Error> {
        let mut fields = F::default();
        // Fields given by their camelCase name: a snake_case spelling then leaves them alone.
        let mut camel_seen = 0u64;
        while let Some(found) = map.next_key_seed(FieldName::<'de, F>(PhantomData))? {
            let Some((index, camel)) = found else {
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

/// An object's key as the field of `F` it names (`None` for one `F` does not know), read
/// without copying the key.
struct FieldName<'de, F>(PhantomData<(&'de (), F)>);

impl<'de, F: Fields<'de>> DeserializeSeed<'de> for FieldName<'de, F> {
    type Value = Option<(u32, bool)>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de, F: Fields<'de>> Visitor<'_> for FieldName<'de, F> {
    type Value = Option<(u32, bool)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(F::index(v))
    }
}

/// `null` or the value of `S`.
pub(super) struct Opt<S>(pub(super) S);

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
pub(super) fn next<'de, A: MapAccess<'de>, S: DeserializeSeed<'de>>(
    map: &mut A,
    seed: S,
) -> Result<S::Value, A::Error>
where
    S::Value: Default,
{
    Ok(map.next_value_seed(Opt(seed))?.unwrap_or_default())
}

/// A JSON array of the values of `S`.
pub(super) struct Array<S>(pub(super) S);

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

/// A JSON string, borrowed from the text when it has no escape.
#[derive(Clone, Copy)]
pub(super) struct Text(pub(super) &'static str);

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Cow<'de, str>, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as a string", self.0)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

/// A 64-bit integer as a JSON number or a string of one (`signed` or not).
#[derive(Clone, Copy)]
pub(super) struct Int {
    pub(super) name: &'static str,
    pub(super) signed: bool,
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

pub(super) fn unsigned<E: de::Error>(v: i128) -> Result<u64, E> {
    u64::try_from(v).map_err(|_| E::custom("an unsigned integer is out of range"))
}

/// A trace or span id: hex, given back in lowercase (borrowed when it is already).
#[derive(Clone, Copy)]
pub(super) struct Hex(pub(super) &'static str);

impl<'de> DeserializeSeed<'de> for Hex {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Cow<'de, str>, D::Error> {
        de.deserialize_str(self)
    }
}

impl Hex {
    fn lower<E: de::Error>(self, v: &str) -> Result<String, E> {
        hex::decode(v)
            .map(hex::encode)
            .map_err(|_| E::custom(format!("{} must be hex, not '{v}'", self.0)))
    }
}

impl<'de> Visitor<'de> for Hex {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as a hex string", self.0)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
        if v.len().is_multiple_of(2) && v.bytes().all(|b| lower_hex(&b)) {
            Ok(Cow::Borrowed(v))
        } else {
            self.lower(v).map(Cow::Owned)
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        self.lower(v).map(Cow::Owned)
    }
}

/// A `doubleValue`: a number, or `NaN`, `Infinity`, `-Infinity` or a number as a string.
#[derive(Clone, Copy)]
pub(super) struct Double;

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
pub(super) struct Flag;

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
pub(super) struct Base64;

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
