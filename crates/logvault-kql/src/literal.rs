//! Kusto's text forms of datetimes, timespans and dynamic values, both ways: the literal
//! parsers (`datetime(...)`, `timespan(...)`, `dynamic(...)`), the conversions from strings
//! (`todatetime`, `totimespan`, `parse_json`) and the canonical output forms.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde_json::{Map, Number, Value};

use crate::lexer::unit_ticks;

/// Ticks (100 ns) per second.
pub const TICKS_PER_SECOND: i64 = 10_000_000;
/// Ticks per day.
pub const TICKS_PER_DAY: i64 = 86_400 * TICKS_PER_SECOND;

/// Parses a datetime as Kusto accepts it (ISO 8601 with a space or `T`, optional seconds,
/// fraction of up to 7 digits and zone; RFC 822/1123; `M/d/yyyy[ h:mm[:ss] AM]`), in ticks
/// since the Unix epoch, UTC.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let t = text.trim().trim_matches('"').trim_matches('\'').trim();
    if t.is_empty() {
        return None;
    }
    if let Some(v) = parse_iso(t) {
        return Some(v);
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(t) {
        return ticks_of(&d.with_timezone(&Utc));
    }
    for f in [
        "%m/%d/%Y %I:%M:%S%.f %p",
        "%m/%d/%Y, %I:%M:%S%.f %p",
        "%m/%d/%Y %I:%M %p",
        "%m/%d/%Y %H:%M:%S%.f",
        "%m/%d/%Y %H:%M",
        "%a, %d %b %Y %H:%M:%S GMT",
        "%d %b %Y %H:%M:%S",
        "%Y%m%dT%H%M%S",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return ticks_of(&d.and_utc());
        }
    }
    for f in ["%m/%d/%Y", "%m-%d-%Y", "%Y/%m/%d", "%d %b %Y", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return ticks_of(&d.and_time(NaiveTime::MIN).and_utc());
        }
    }
    None
}

/// `d` in ticks since the Unix epoch; `None` past the about 29,000 years either side of 1970
/// that 64 bits of ticks hold (chrono's dates reach year 262,143: `datetime(202101-01-01)`).
fn ticks_of(d: &DateTime<Utc>) -> Option<i64> {
    d.timestamp()
        .checked_mul(TICKS_PER_SECOND)?
        .checked_add(i64::from(d.timestamp_subsec_nanos() / 100))
}

/// `yyyy-MM-dd[( |T)HH:mm[:ss[.fffffff]]][Z|±hh[:mm]]`, also `yyyy-MM` and `yyyy`.
fn parse_iso(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    let num = |s: &str| -> Option<i64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    let (date, rest) = match t.find(['T', 't', ' ']) {
        Some(i) => (&t[..i], t[i + 1..].trim()),
        None => (t, ""),
    };
    let mut parts = date.split('-');
    let year = num(parts.next()?)?;
    let month = parts.next().map_or(Some(1), num)?;
    let day = parts.next().map_or(Some(1), num)?;
    if parts.next().is_some() || !(b.first()?.is_ascii_digit()) {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month as u32, day as u32)?;
    let ticks = ticks_of(&date.and_time(NaiveTime::MIN).and_utc())?;
    if rest.is_empty() {
        return Some(ticks);
    }
    // Zone suffix.
    let (time, offset_ticks) = split_zone(rest)?;
    let mut hms = time.split(':');
    let h = num(hms.next()?)?;
    let m = hms.next().map_or(Some(0), num)?;
    let (s, frac) = match hms.next() {
        Some(sec) => match sec.split_once('.') {
            Some((s, f)) => (num(s)?, f),
            None => (num(sec)?, ""),
        },
        None => (0, ""),
    };
    if hms.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let mut frac_ticks = 0i64;
    if !frac.is_empty() {
        if !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(7).collect();
        frac_ticks = digits.parse().ok()?;
    }
    // The fields are bounded above; the day and the zone's offset are not.
    ticks
        .checked_add((h * 3600 + m * 60 + s) * TICKS_PER_SECOND + frac_ticks)?
        .checked_sub(offset_ticks)
}

fn split_zone(rest: &str) -> Option<(&str, i64)> {
    if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        return Some((t.trim(), 0));
    }
    if let Some(t) = rest
        .strip_suffix(" UTC")
        .or_else(|| rest.strip_suffix(" GMT"))
    {
        return Some((t.trim(), 0));
    }
    // +hh:mm / -hh:mm after the time.
    if let Some(i) = rest.rfind(['+', '-'])
        && i > 0
    {
        let (time, zone) = rest.split_at(i);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let z = &zone[1..];
        let (h, m) = z
            .split_once(':')
            .unwrap_or((z.get(..2)?, z.get(2..).unwrap_or("0")));
        let h: i64 = h.parse().ok()?;
        let m: i64 = if m.is_empty() { 0 } else { m.parse().ok()? };
        let offset = h
            .checked_mul(3600)?
            .checked_add(m.checked_mul(60)?)?
            .checked_mul(TICKS_PER_SECOND)?
            .checked_mul(sign)?;
        return Some((time.trim(), offset));
    }
    Some((rest, 0))
}

/// Parses a timespan as Kusto accepts it: a literal with a unit (`1d`, `1.5h`, `10ms`), or
/// `[-][d.]hh:mm[:ss[.fffffff]]`, or a bare number of days. In ticks.
pub fn parse_timespan(text: &str) -> Option<i64> {
    let t = text.trim().trim_matches('"').trim_matches('\'').trim();
    if t.is_empty() {
        return None;
    }
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b.trim()),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = if body.contains(':') {
        parse_clock(body)?
    } else {
        let split = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (number, unit) = body.split_at(split);
        let value: f64 = number.parse().ok()?;
        let per = if unit.trim().is_empty() {
            TICKS_PER_DAY
        } else {
            unit_ticks(unit.trim())?
        };
        (value * per as f64).round() as i64
    };
    Some(if neg { -v } else { v })
}

fn parse_clock(body: &str) -> Option<i64> {
    let (days, clock) = match body.split_once('.') {
        Some((d, rest)) if !d.contains(':') => (d.parse::<i64>().ok()?, rest),
        _ => (0, body),
    };
    let mut parts = clock.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let (s, frac) = match parts.next() {
        Some(sec) => match sec.split_once('.') {
            Some((s, f)) => (s.parse::<i64>().ok()?, f),
            None => (sec.parse::<i64>().ok()?, ""),
        },
        None => (0, ""),
    };
    if parts.next().is_some() {
        return None;
    }
    let frac_ticks: i64 = if frac.is_empty() {
        0
    } else {
        frac.chars()
            .chain(std::iter::repeat('0'))
            .take(7)
            .collect::<String>()
            .parse()
            .ok()?
    };
    Some(days * TICKS_PER_DAY + (h * 3600 + m * 60 + s) * TICKS_PER_SECOND + frac_ticks)
}

/// Kusto's output form of a datetime: ISO 8601 UTC with 7 fractional digits dropped when zero
/// (`2017-01-02T00:00:00Z`, `2017-01-02T03:04:05.1234567Z`).
pub fn format_datetime(ticks: i64) -> String {
    let secs = ticks.div_euclid(TICKS_PER_SECOND);
    let frac = ticks.rem_euclid(TICKS_PER_SECOND);
    let Some(d) = Utc.timestamp_opt(secs, 0).single() else {
        return ticks.to_string();
    };
    let base = d.format("%Y-%m-%dT%H:%M:%S").to_string();
    if frac == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{frac:07}Z")
    }
}

/// Kusto's output form of a timespan: `[-][d.]hh:mm:ss[.fffffff]`.
pub fn format_timespan(ticks: i64) -> String {
    let neg = ticks < 0;
    let t = ticks.unsigned_abs();
    let tps = TICKS_PER_SECOND as u64;
    let days = t / TICKS_PER_DAY as u64;
    let rem = t % TICKS_PER_DAY as u64;
    let h = rem / (3600 * tps);
    let m = rem / (60 * tps) % 60;
    let s = rem / tps % 60;
    let frac = rem % tps;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if days > 0 {
        out.push_str(&format!("{days}."));
    }
    out.push_str(&format!("{h:02}:{m:02}:{s:02}"));
    if frac > 0 {
        out.push_str(&format!(".{frac:07}"));
    }
    out
}

/// Parses the content of a `dynamic(...)` literal: JSON, also with single-quoted strings,
/// trailing commas, typed literals (`datetime(...)`, `timespan(...)`, `guid(...)`) and bare
/// timespans. `null` gives JSON null.
///
/// # Errors
/// A message saying what is wrong and at which byte offset.
pub fn parse_dynamic(text: &str) -> Result<Value, String> {
    let mut p = DynParser {
        s: text.as_bytes(),
        text,
        pos: 0,
    };
    p.ws();
    if p.pos == p.s.len() {
        return Ok(Value::Null);
    }
    let v = p.value()?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(format!("unexpected text at offset {}", p.pos));
    }
    Ok(v)
}

struct DynParser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl DynParser<'_> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        let Some(&c) = self.s.get(self.pos) else {
            return Err("unexpected end of dynamic literal".into());
        };
        match c {
            b'{' => {
                self.pos += 1;
                let mut map = Map::new();
                loop {
                    self.ws();
                    if self.s.get(self.pos) == Some(&b'}') {
                        self.pos += 1;
                        return Ok(Value::Object(map));
                    }
                    let key = match self.s.get(self.pos) {
                        Some(b'"' | b'\'') => {
                            let q = self.s[self.pos];
                            self.string(q)?
                        }
                        _ => {
                            let start = self.pos;
                            while self.pos < self.s.len()
                                && self.s[self.pos] != b':'
                                && !self.s[self.pos].is_ascii_whitespace()
                            {
                                self.pos += 1;
                            }
                            self.text[start..self.pos].to_owned()
                        }
                    };
                    self.ws();
                    if self.s.get(self.pos) != Some(&b':') {
                        return Err(format!("expected ':' at offset {}", self.pos));
                    }
                    self.pos += 1;
                    let v = self.value()?;
                    map.insert(key, v);
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {}
                        _ => return Err(format!("expected ',' or '}}' at offset {}", self.pos)),
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.ws();
                    if self.s.get(self.pos) == Some(&b']') {
                        self.pos += 1;
                        return Ok(Value::Array(items));
                    }
                    items.push(self.value()?);
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {}
                        _ => return Err(format!("expected ',' or ']' at offset {}", self.pos)),
                    }
                }
            }
            b'"' | b'\'' => self.string(c).map(Value::String),
            _ => self.bare(),
        }
    }

    fn string(&mut self, q: u8) -> Result<String, String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        while let Some(ch) = self.text[self.pos..].chars().next() {
            self.pos += ch.len_utf8();
            if ch as u32 == u32::from(q) {
                return Ok(out);
            }
            if ch == '\\' {
                let Some(e) = self.text[self.pos..].chars().next() else {
                    break;
                };
                self.pos += e.len_utf8();
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'u' => {
                        let hex = self.text.get(self.pos..self.pos + 4).unwrap_or("");
                        let c = u32::from_str_radix(hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| format!("invalid \\u escape at offset {}", self.pos))?;
                        self.pos += 4;
                        out.push(c);
                    }
                    other => out.push(other),
                }
            } else {
                out.push(ch);
            }
        }
        Err(format!("unterminated string at offset {start}"))
    }

    fn bare(&mut self) -> Result<Value, String> {
        let start = self.pos;
        // A word, a number, or a typed literal `name(...)`.
        while self.pos < self.s.len() {
            let c = self.s[self.pos];
            if c == b'(' {
                let open = self.pos;
                let mut depth = 0;
                while self.pos < self.s.len() {
                    match self.s[self.pos] {
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    self.pos += 1;
                }
                let name = self.text[start..open].trim().to_ascii_lowercase();
                let inner = self.text.get(open + 1..self.pos).unwrap_or("");
                self.pos += 1;
                return typed_in_dynamic(&name, inner);
            }
            if c == b',' || c == b']' || c == b'}' || c == b':' || c.is_ascii_whitespace() {
                break;
            }
            self.pos += 1;
        }
        let word = &self.text[start..self.pos];
        match word {
            "" => Err(format!("unexpected character at offset {start}")),
            "null" => Ok(Value::Null),
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => {
                if let Ok(i) = word.parse::<i64>() {
                    return Ok(Value::Number(i.into()));
                }
                if let Ok(f) = word.parse::<f64>()
                    && let Some(n) = Number::from_f64(f)
                {
                    return Ok(Value::Number(n));
                }
                if let Some(t) = parse_timespan(word) {
                    return Ok(Value::String(format_timespan(t)));
                }
                Err(format!("unexpected '{word}' at offset {start}"))
            }
        }
    }
}

fn typed_in_dynamic(name: &str, inner: &str) -> Result<Value, String> {
    match name {
        "datetime" | "date" => parse_datetime(inner)
            .map(|t| Value::String(format_datetime(t)))
            .ok_or_else(|| format!("invalid datetime '{inner}'")),
        "timespan" | "time" => parse_timespan(inner)
            .map(|t| Value::String(format_timespan(t)))
            .ok_or_else(|| format!("invalid timespan '{inner}'")),
        "guid" => Ok(Value::String(inner.trim().to_ascii_lowercase())),
        "long" | "int" => inner
            .trim()
            .parse::<i64>()
            .map(|v| Value::Number(v.into()))
            .map_err(|_| format!("invalid number '{inner}'")),
        "real" | "double" => inner
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("invalid number '{inner}'")),
        "dynamic" => parse_dynamic(inner),
        _ => Err(format!("unexpected '{name}(' in a dynamic literal")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Finding 25 of docs/reliability.md (AFL++, `kql`): a year past the ticks' range
    /// overflowed the multiplication (a panic with overflow checks, a wrong date without).
    #[test]
    fn a_datetime_past_the_range_of_ticks_is_refused_not_an_overflow() {
        assert_eq!(parse_datetime("202101-01-01 01:00"), None);
        assert_eq!(parse_datetime("262143-12-31"), None);
        assert_eq!(parse_datetime("2021-01-01 01:00+99999999999999999"), None);
        assert_eq!(
            parse_datetime("2021-01-01 01:00-9223372036854775807:00"),
            None
        );
        // The last tick of year 9999 still reads.
        assert_eq!(
            parse_datetime("9999-12-31 23:59:59.9999999"),
            Some(2_534_023_007_999_999_999)
        );
        assert_eq!(
            parse_datetime("2021-01-01 01:00+01:00"),
            parse_datetime("2021-01-01 00:00Z")
        );
    }

    #[test]
    fn datetimes() {
        let day = parse_datetime("2017-01-02").unwrap();
        assert_eq!(format_datetime(day), "2017-01-02T00:00:00Z");
        let t = parse_datetime("2017-01-02 03:04:05.1234567").unwrap();
        assert_eq!(format_datetime(t), "2017-01-02T03:04:05.1234567Z");
        assert_eq!(parse_datetime("2017-01-02T03:04:05.1234567Z"), Some(t));
        assert_eq!(
            parse_datetime("2017-01-02T05:04:05.1234567+02:00"),
            Some(t),
            "offsets are converted to UTC"
        );
        assert_eq!(
            parse_datetime("2017-01-02 03:04"),
            parse_datetime("2017-01-02T03:04:00Z")
        );
        assert_eq!(
            format_datetime(parse_datetime("1969-12-31 23:59:59.5").unwrap()),
            "1969-12-31T23:59:59.5000000Z"
        );
        assert!(parse_datetime("yesterday").is_none());
        assert!(parse_datetime("2017-13-02").is_none());
    }

    #[test]
    fn timespans() {
        assert_eq!(parse_timespan("1d"), Some(TICKS_PER_DAY));
        assert_eq!(
            parse_timespan("1.02:03:04.5"),
            Some(TICKS_PER_DAY + (2 * 3600 + 3 * 60 + 4) * TICKS_PER_SECOND + 5_000_000)
        );
        assert_eq!(parse_timespan("-00:00:01"), Some(-TICKS_PER_SECOND));
        assert_eq!(parse_timespan("2"), Some(2 * TICKS_PER_DAY));
        assert_eq!(format_timespan(TICKS_PER_DAY + 5), "1.00:00:00.0000005");
        assert_eq!(format_timespan(-90 * TICKS_PER_SECOND), "-00:01:30");
        assert!(parse_timespan("soon").is_none());
    }

    #[test]
    fn dynamic_literals() {
        assert_eq!(
            parse_dynamic("{'a': [1, 2.5, \"x\",], \"b\": null, c: datetime(2020-01-01)}").unwrap(),
            serde_json::json!({"a": [1, 2.5, "x"], "b": null, "c": "2020-01-01T00:00:00Z"})
        );
        assert_eq!(parse_dynamic("null").unwrap(), Value::Null);
        assert_eq!(parse_dynamic("").unwrap(), Value::Null);
        assert!(parse_dynamic("[1, 2").is_err());
    }
}
