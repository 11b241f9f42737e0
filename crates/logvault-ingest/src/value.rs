//! One parsed value of a record, and how text values are typed.
//!
//! Every value keeps its text (borrowed from the payload where possible), so that a column that
//! widens to `String` within a batch keeps exactly what the sender wrote.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::kind::ColumnKind;
use crate::time::parse_timestamp;

/// A typed value; its text is held beside it in [`Cell`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    /// UTC microseconds.
    Time(i64),
    Str,
    /// JSON text of an object or array.
    Json,
}

impl Scalar {
    pub(crate) fn kind(self) -> ColumnKind {
        match self {
            Self::Bool(_) => ColumnKind::Bool,
            Self::Int(_) => ColumnKind::Int,
            Self::Float(_) => ColumnKind::Float,
            Self::Time(_) => ColumnKind::Timestamp,
            Self::Str => ColumnKind::String,
            Self::Json => ColumnKind::Dynamic,
        }
    }
}

/// A non-null value with its text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cell<'a> {
    pub(crate) text: Cow<'a, str>,
    pub(crate) scalar: Scalar,
}

/// How a text value (a CSV field) is typed, in this order: `true`/`false` (any case) is a
/// bool; a canonical integer (`0`, `-12`, no leading zeros, fits in 64 bits) is an int; a decimal
/// number (`1.5`, `-2e3`, `1.00E+18`) is a float; one of the timestamp forms of [`crate::time`]
/// is a timestamp (unless `timestamps` is false); a JSON object or array is dynamic; anything
/// else is a string. Leading zeros (`007`) and surrounding spaces keep a value a string.
pub(crate) fn classify_text(text: &str, timestamps: bool) -> Scalar {
    let b = text.as_bytes();
    let Some(&first) = b.first() else {
        return Scalar::Str;
    };
    if text.eq_ignore_ascii_case("true") {
        return Scalar::Bool(true);
    }
    if text.eq_ignore_ascii_case("false") {
        return Scalar::Bool(false);
    }
    if first.is_ascii_digit() || first == b'-' || first == b'.' {
        if let Some(n) = canonical_int(text) {
            return Scalar::Int(n);
        }
        if let Some(x) = decimal(text) {
            return Scalar::Float(x);
        }
        if timestamps && let Some(t) = parse_timestamp(text) {
            return Scalar::Time(t);
        }
        return Scalar::Str;
    }
    let bracketed = (first == b'{' && b.ends_with(b"}")) || (first == b'[' && b.ends_with(b"]"));
    if bracketed && serde_json::from_str::<&RawValue>(text).is_ok() {
        return Scalar::Json;
    }
    Scalar::Str
}

fn canonical_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let b = digits.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    s.parse().ok()
}

fn decimal(s: &str) -> Option<f64> {
    // Only the plain decimal grammar: Rust would also accept "inf", "NaN" and "infinity".
    let body = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |p: &str| p.bytes().all(|c| c.is_ascii_digit());
    let leading_zero = int.len() > 1 && int.starts_with('0');
    if (int.is_empty() && frac.is_empty()) || leading_zero || !digits(int) || !digits(frac) {
        return None;
    }
    if let Some(e) = exponent {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if e.is_empty() || !digits(e) {
            return None;
        }
    }
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// A JSON value of a record, typed by its JSON type; strings in a timestamp form are timestamps.
/// `None` for JSON `null`.
pub(crate) fn json_cell(raw: &RawValue) -> Result<Option<Cell<'_>>, String> {
    let text = raw.get();
    let Some(&first) = text.as_bytes().first() else {
        return Err("empty JSON value".into());
    };
    let cell = match first {
        b'n' => return Ok(None),
        b't' => Cell {
            text: Cow::Borrowed(text),
            scalar: Scalar::Bool(true),
        },
        b'f' => Cell {
            text: Cow::Borrowed(text),
            scalar: Scalar::Bool(false),
        },
        b'{' | b'[' => Cell {
            text: Cow::Borrowed(text),
            scalar: Scalar::Json,
        },
        b'"' => {
            let inner = &text[1..text.len() - 1];
            let s: Cow<'_, str> = if inner.contains('\\') {
                Cow::Owned(serde_json::from_str::<String>(text).map_err(|e| e.to_string())?)
            } else {
                Cow::Borrowed(inner)
            };
            let scalar = parse_timestamp(&s).map_or(Scalar::Str, Scalar::Time);
            Cell { text: s, scalar }
        }
        _ => {
            let scalar = match text.parse::<i64>() {
                Ok(n) => Scalar::Int(n),
                Err(_) => {
                    let x = text
                        .parse::<f64>()
                        .map_err(|_| format!("invalid number {text}"))?;
                    // Beyond f64 (1e400): kept as its text rather than as infinity.
                    if x.is_finite() {
                        Scalar::Float(x)
                    } else {
                        Scalar::Str
                    }
                }
            };
            Cell {
                text: Cow::Borrowed(text),
                scalar,
            }
        }
    };
    Ok(Some(cell))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_classification() {
        assert_eq!(classify_text("True", true), Scalar::Bool(true));
        assert_eq!(classify_text("false", true), Scalar::Bool(false));
        assert_eq!(classify_text("42", true), Scalar::Int(42));
        assert_eq!(classify_text("-7", true), Scalar::Int(-7));
        assert_eq!(classify_text("0", true), Scalar::Int(0));
        assert_eq!(classify_text("007", true), Scalar::Str);
        assert_eq!(classify_text("-0", true), Scalar::Int(0));
        assert_eq!(classify_text("1.5", true), Scalar::Float(1.5));
        assert_eq!(classify_text("1.00E+18", true), Scalar::Float(1e18));
        assert_eq!(classify_text(".5", true), Scalar::Float(0.5));
        assert_eq!(
            classify_text("99999999999999999999", true),
            Scalar::Float(1e20)
        );
        for s in [
            "inf", "NaN", "infinity", "1e", "1.2.3", "-", ".", " 42", "e5", "01.5",
        ] {
            assert_eq!(classify_text(s, true), Scalar::Str, "{s}");
        }
        assert!(matches!(
            classify_text("4/28/2021, 2:08:45.221 PM", true),
            Scalar::Time(_)
        ));
        assert_eq!(
            classify_text("4/28/2021, 2:08:45.221 PM", false),
            Scalar::Str
        );
        assert_eq!(classify_text(r#"{"a": [1, 2]}"#, true), Scalar::Json);
        assert_eq!(classify_text(r#"["x"]"#, true), Scalar::Json);
        assert_eq!(classify_text("[not json]", true), Scalar::Str);
        assert_eq!(classify_text("{'python': 'dict'}", true), Scalar::Str);
    }

    #[test]
    fn json_values() {
        let raw = |s: &str| serde_json::from_str::<Box<RawValue>>(s).unwrap();
        let v = raw("null");
        assert_eq!(json_cell(&v).unwrap(), None);
        let v = raw("12");
        assert_eq!(json_cell(&v).unwrap().unwrap().scalar, Scalar::Int(12));
        let v = raw("1.25e2");
        let c = json_cell(&v).unwrap().unwrap();
        assert_eq!(
            (c.scalar, c.text.as_ref()),
            (Scalar::Float(125.0), "1.25e2")
        );
        let v = raw("1e400");
        let c = json_cell(&v).unwrap().unwrap();
        assert_eq!((c.scalar, c.text.as_ref()), (Scalar::Str, "1e400"));
        let v = raw(r#""a\"b""#);
        let c = json_cell(&v).unwrap().unwrap();
        assert_eq!((c.scalar, c.text.as_ref()), (Scalar::Str, "a\"b"));
        let v = raw(r#""2020-05-20T18:19:04.423""#);
        assert!(matches!(
            json_cell(&v).unwrap().unwrap().scalar,
            Scalar::Time(_)
        ));
        let v = raw(r#"{"k": [1, {"z": null}]}"#);
        let c = json_cell(&v).unwrap().unwrap();
        assert_eq!(
            (c.scalar, c.text.as_ref()),
            (Scalar::Json, r#"{"k": [1, {"z": null}]}"#)
        );
    }
}
