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
    match first {
        b'0'..=b'9' | b'-' | b'.' => {
            if let Some(number) = number(text) {
                return number;
            }
            if timestamps && let Some(t) = parse_timestamp(text) {
                return Scalar::Time(t);
            }
            Scalar::Str
        }
        b't' | b'T' if text.eq_ignore_ascii_case("true") => Scalar::Bool(true),
        b'f' | b'F' if text.eq_ignore_ascii_case("false") => Scalar::Bool(false),
        b'{' | b'[' => {
            let closed = if first == b'{' { b'}' } else { b']' };
            if b.ends_with(&[closed]) && serde_json::from_str::<&RawValue>(text).is_ok() {
                Scalar::Json
            } else {
                Scalar::Str
            }
        }
        _ => Scalar::Str,
    }
}

/// A canonical integer (`0`, `-12`: no leading zero, fits in 64 bits) or a finite decimal number
/// (`-1.5`, `.5`, `1.`, `2e3`, `1.00E+18`; a leading zero only alone before the point), read in
/// one pass over the bytes: most texts that start with a digit and are not numbers (hex ids,
/// timestamps) are told apart at their first other byte. An integer too large for 64 bits is a
/// float, as JSON readers take it.
fn number(text: &str) -> Option<Scalar> {
    let b = text.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let int_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let int_digits = i - int_start;
    if int_digits > 1 && b.get(int_start) == Some(&b'0') {
        return None;
    }
    if i == b.len() {
        if int_digits == 0 {
            return None;
        }
        if let Ok(n) = text.parse::<i64>() {
            return Some(Scalar::Int(n));
        }
    } else {
        let mut frac_digits = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
                frac_digits += 1;
            }
        }
        if int_digits == 0 && frac_digits == 0 {
            return None;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let exp_start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == exp_start {
                return None;
            }
        }
        if i != b.len() {
            return None;
        }
    }
    text.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .map(Scalar::Float)
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

    /// How texts were typed before the one-pass reading of numbers ([`number`]): the grammar
    /// written out step by step, kept as the reference the property below compares with.
    fn reference_classify(text: &str, timestamps: bool) -> Scalar {
        fn canonical_int(s: &str) -> Option<i64> {
            let digits = s.strip_prefix('-').unwrap_or(s);
            let b = digits.as_bytes();
            if b.is_empty() || !b.iter().all(u8::is_ascii_digit) || (b.len() > 1 && b[0] == b'0') {
                return None;
            }
            s.parse().ok()
        }
        fn decimal(s: &str) -> Option<f64> {
            let body = s.strip_prefix('-').unwrap_or(s);
            let (mantissa, exponent) = match body.find(['e', 'E']) {
                Some(i) => (&body[..i], Some(&body[i + 1..])),
                None => (body, None),
            };
            let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
            let digits = |p: &str| p.bytes().all(|c| c.is_ascii_digit());
            let leading_zero = int.len() > 1 && int.starts_with('0');
            if (int.is_empty() && frac.is_empty()) || leading_zero || !digits(int) || !digits(frac)
            {
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
        let bracketed =
            (first == b'{' && b.ends_with(b"}")) || (first == b'[' && b.ends_with(b"]"));
        if bracketed && serde_json::from_str::<&RawValue>(text).is_ok() {
            return Scalar::Json;
        }
        Scalar::Str
    }

    fn same(a: Scalar, b: Scalar) -> bool {
        match (a, b) {
            // -0.0 and 0.0 are equal as f64: compare the bits.
            (Scalar::Float(x), Scalar::Float(y)) => x.to_bits() == y.to_bits(),
            _ => a == b,
        }
    }

    #[test]
    fn numbers_read_in_one_pass_type_as_the_reference_does() {
        for s in [
            "",
            "0",
            "-0",
            "00",
            "-00",
            "0.",
            "-.",
            ".e1",
            "1e",
            "1e+",
            "1e+5",
            "1E-05",
            "1.2.3",
            "0x1f",
            "07898b93e1ab70c6",
            "2e0c",
            "123456789012345678901234567890",
            "-9223372036854775808",
            "9223372036854775808",
            "1e400",
            "-1e400",
            "2026-01-01T00:00:00.001020Z",
            "451.81",
            "4/28/2021, 2:08:45.221 PM",
            "2019-07-08",
            "TRUE",
            "tru",
            "falsE",
            "{}",
            "[1",
        ] {
            for timestamps in [true, false] {
                let (got, want) = (
                    classify_text(s, timestamps),
                    reference_classify(s, timestamps),
                );
                assert!(same(got, want), "{s:?}: {got:?} against {want:?}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_types_as_the_reference_does(
            text in proptest::prop_oneof![
                "[-+.0-9eE]{0,8}",
                "[-+.0-9eEaftrTF:/ Z{}\\[\\]]{0,14}",
            ],
        ) {
            let (got, want) = (classify_text(&text, true), reference_classify(&text, true));
            proptest::prop_assert!(same(got, want), "{:?}: {:?} against {:?}", text, got, want);
        }
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
