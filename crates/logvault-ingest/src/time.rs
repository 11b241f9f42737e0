//! Timestamps as they appear in real logs and exports, to UTC microseconds.
//!
//! Accepted text forms (a form without a zone is UTC):
//! - RFC 3339 / ISO 8601: `2019-09-12T20:00:00.625Z`, `2020-05-20T18:19:04.423`,
//!   `2021-04-28T14:08:45+02:00`, up to nine fractional digits; a space may replace the `T`
//!   (`2019-02-12 14:22:40.697`, `2019-07-10 15:13:07`), seconds may be absent
//!   (`2019-07-08 16:08`), and a bare date (`2019-07-08`) is midnight;
//! - the Log Analytics export forms `4/28/2021, 2:08:45.221 PM` (month/day/year, 12-hour clock,
//!   with or without the comma and the fraction) and `7/8/2019 16:08` (24-hour clock, seconds
//!   and fraction optional).
//!
//! Numbers (only for the `TimeGenerated` / `timestamp` source field) are Unix epoch times whose
//! unit is decided by magnitude: below 10^11 seconds (up to the year 5138), below 10^14
//! milliseconds, below 10^17 microseconds, otherwise nanoseconds. Fractions are kept down to the
//! microsecond. Only years 1 to 9999 are accepted (the range of Log Analytics' `datetime`).

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Parses a timestamp written as text; `None` if it is in none of the accepted forms.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    // Most text is not a timestamp and says so at its first byte (after spaces).
    let first = *text.as_bytes().first()?;
    if !first.is_ascii_digit() && !first.is_ascii_whitespace() && first.is_ascii() {
        return None;
    }
    match rfc3339_fast(text.as_bytes()) {
        Some(micros) => in_range(micros),
        None => parse_general(text),
    }
}

/// Every accepted form, through chrono's parsers.
fn parse_general(text: &str) -> Option<i64> {
    let s = text.trim();
    if !looks_like_timestamp(s) {
        return None;
    }
    let b = s.as_bytes();
    let micros = if b.get(4) == Some(&b'-') {
        parse_iso(s)?
    } else {
        parse_us(s)?
    };
    in_range(micros)
}

/// The form nearly every log writes, `2026-01-01T00:00:00.001020Z` (a space for the `T`, no
/// fraction or up to nine digits of it, `Z`, `+hh:mm`, `-hh:mm` or no zone), read digit by digit;
/// `None` for anything else, which the general parsers then read. It gives exactly their answer
/// for what it accepts (tested against them); the calendar is chrono's.
fn rfc3339_fast(b: &[u8]) -> Option<i64> {
    fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
        b.get(at..at + n)?.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    }
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    let (hour, minute, second) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
    // A leap second (60) is left to chrono.
    if second > 59 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0u32;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return None;
        }
        let kept = n.min(6);
        micros = digits(b, start, kept)? * 10u32.pow((6 - kept) as u32);
    }
    let offset_secs = match &b[i..] {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(b, i + 1, 2)?, digits(b, i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let secs = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?
        .and_hms_opt(hour, minute, second)?
        .and_utc()
        .timestamp()
        - offset_secs;
    secs.checked_mul(1_000_000)?.checked_add(i64::from(micros))
}

/// A cheap test that rules out most text before trying the parsers.
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if !(8..=40).contains(&b.len()) || !b[0].is_ascii_digit() {
        return false;
    }
    let date_only = b.len() == 10 && b[4] == b'-' && b[7] == b'-';
    date_only || (b.contains(&b':') && (b.contains(&b'-') || b.contains(&b'/')))
}

fn parse_iso(s: &str) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_micros());
    }
    // RFC 3339 with a space and an offset without colon, or a trailing " UTC".
    let s = s.strip_suffix(" UTC").unwrap_or(s);
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(dt.timestamp_micros());
        }
    }
    let s = s.strip_suffix('Z').unwrap_or(s);
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(dt.and_utc().timestamp_micros());
        }
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
}

/// `M/D/YYYY[,] h:mm[:ss[.fff]] AM|PM` and `M/D/YYYY H:mm[:ss[.fff]]`.
fn parse_us(s: &str) -> Option<i64> {
    if !s.contains('/') {
        return None;
    }
    let twelve_hour = {
        let tail = s.get(s.len().saturating_sub(2)..)?;
        tail.eq_ignore_ascii_case("AM") || tail.eq_ignore_ascii_case("PM")
    };
    let formats: &[&str] = if twelve_hour {
        &[
            "%m/%d/%Y, %I:%M:%S%.f %p",
            "%m/%d/%Y %I:%M:%S%.f %p",
            "%m/%d/%Y, %I:%M %p",
            "%m/%d/%Y %I:%M %p",
        ]
    } else {
        &[
            "%m/%d/%Y %H:%M:%S%.f",
            "%m/%d/%Y, %H:%M:%S%.f",
            "%m/%d/%Y %H:%M",
            "%m/%d/%Y, %H:%M",
        ]
    };
    formats.iter().find_map(|fmt| {
        NaiveDateTime::parse_from_str(s, fmt)
            .ok()
            .map(|dt| dt.and_utc().timestamp_micros())
    })
}

const MIN_MICROS: i64 = -62_135_596_800_000_000; // 0001-01-01T00:00:00Z
const MAX_MICROS: i64 = 253_402_300_799_999_999; // 9999-12-31T23:59:59.999999Z

fn in_range(micros: i64) -> Option<i64> {
    (MIN_MICROS..=MAX_MICROS)
        .contains(&micros)
        .then_some(micros)
}

/// An integer Unix epoch time, its unit decided by magnitude (see the module documentation).
pub fn epoch_int_to_micros(n: i64) -> Option<i64> {
    let abs = n.unsigned_abs();
    let micros = if abs < 100_000_000_000 {
        n.checked_mul(1_000_000)?
    } else if abs < 100_000_000_000_000 {
        n.checked_mul(1_000)?
    } else if abs < 100_000_000_000_000_000 {
        n
    } else {
        n / 1_000
    };
    in_range(micros)
}

/// A fractional Unix epoch time (`1550505627.301`), its unit decided by magnitude.
pub fn epoch_float_to_micros(x: f64) -> Option<i64> {
    if !x.is_finite() {
        return None;
    }
    let abs = x.abs();
    let scale = if abs < 1e11 {
        1e6
    } else if abs < 1e14 {
        1e3
    } else if abs < 1e17 {
        1.0
    } else {
        1e-3
    };
    let micros = (x * scale).round();
    if micros.abs() > 9.0e18 {
        return None;
    }
    // The bound above keeps the value inside i64, so the cast does not saturate.
    in_range(micros as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn micros(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: i64) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .unwrap()
            .timestamp_micros()
            + us
    }

    #[test]
    fn iso_forms() {
        let t = micros(2019, 9, 12, 20, 0, 0, 625_000);
        assert_eq!(parse_timestamp("2019-09-12T20:00:00.625Z"), Some(t));
        assert_eq!(parse_timestamp("2019-09-12T20:00:00.625"), Some(t));
        assert_eq!(parse_timestamp("2019-09-12 20:00:00.625"), Some(t));
        assert_eq!(parse_timestamp("2019-09-12T22:00:00.625+02:00"), Some(t));
        assert_eq!(parse_timestamp("2019-09-12 22:00:00.625+0200"), Some(t));
        assert_eq!(parse_timestamp("2019-09-12 20:00:00.625 UTC"), Some(t));
        assert_eq!(
            parse_timestamp("2019-09-12T20:00:00.6250001Z"),
            Some(t),
            ".NET's seven digits truncate to the microsecond"
        );
        assert_eq!(
            parse_timestamp("2019-02-12 14:22:40.697"),
            Some(micros(2019, 2, 12, 14, 22, 40, 697_000))
        );
        assert_eq!(
            parse_timestamp("2019-07-10 15:13:07"),
            Some(micros(2019, 7, 10, 15, 13, 7, 0))
        );
        assert_eq!(
            parse_timestamp("2019-07-08 16:08"),
            Some(micros(2019, 7, 8, 16, 8, 0, 0))
        );
        assert_eq!(
            parse_timestamp("2019-07-08"),
            Some(micros(2019, 7, 8, 0, 0, 0, 0))
        );
    }

    proptest::proptest! {
        /// The fast path gives the general parsers' answer wherever it answers, and it answers
        /// for the canonical form.
        #[test]
        fn the_fast_path_agrees_with_chrono(
            year in 0u32..10_001, month in 0u32..14, day in 0u32..33,
            hour in 0u32..25, minute in 0u32..61, second in 0u32..62,
            frac in proptest::option::of("[0-9]{0,11}"),
            sep in proptest::sample::select(vec!["T", " ", "t"]),
            zone in proptest::sample::select(vec![
                "", "Z", "z", "+02:00", "-05:30", "+23:59", "-00:00", "+24:00", "+0200", " UTC", "Zx",
            ]),
        ) {
            let text = format!(
                "{year:04}-{month:02}-{day:02}{sep}{hour:02}:{minute:02}:{second:02}{}{zone}",
                frac.as_ref().map(|f| format!(".{f}")).unwrap_or_default()
            );
            let general = parse_general(&text);
            if let Some(fast) = rfc3339_fast(text.as_bytes()) {
                proptest::prop_assert_eq!(in_range(fast), general, "{}", text);
            }
            proptest::prop_assert_eq!(parse_timestamp(&text), general, "{}", text);
            let canonical = sep == "T"
                && matches!(zone, "" | "Z" | "+02:00" | "-05:30")
                && frac.as_ref().is_none_or(|f| (1..=9).contains(&f.len()))
                && general.is_some()
                && second < 60;
            if canonical {
                proptest::prop_assert!(rfc3339_fast(text.as_bytes()).is_some(), "{}", text);
            }
        }
    }

    #[test]
    fn log_analytics_export_forms() {
        assert_eq!(
            parse_timestamp("4/28/2021, 2:08:45.221 PM"),
            Some(micros(2021, 4, 28, 14, 8, 45, 221_000))
        );
        assert_eq!(
            parse_timestamp("4/28/2021, 12:08:45.221 AM"),
            Some(micros(2021, 4, 28, 0, 8, 45, 221_000))
        );
        assert_eq!(
            parse_timestamp("12/1/2021 11:59:59 pm"),
            Some(micros(2021, 12, 1, 23, 59, 59, 0))
        );
        assert_eq!(
            parse_timestamp("7/8/2019 16:08"),
            Some(micros(2019, 7, 8, 16, 8, 0, 0))
        );
        assert_eq!(
            parse_timestamp("07/08/2019 16:08:09.5"),
            Some(micros(2019, 7, 8, 16, 8, 9, 500_000))
        );
    }

    #[test]
    fn rejects_non_timestamps() {
        for s in [
            "",
            "hello",
            "12:13:19",
            "2019-13-45T00:00:00Z",
            "13/28/2021, 2:08:45.221 PM",
            "4/28/2021, 14:08:45.221 PM",
            "1.00E+18",
            "17.81.146.1",
            "10000-01-01T00:00:00Z",
            "2019-07-08T16:08:00Zjunk",
        ] {
            assert_eq!(parse_timestamp(s), None, "{s}");
        }
    }

    #[test]
    fn epoch_by_magnitude() {
        let t = micros(2019, 3, 2, 0, 10, 5, 0);
        let secs = t / 1_000_000;
        assert_eq!(epoch_int_to_micros(secs), Some(t));
        assert_eq!(epoch_int_to_micros(secs * 1_000), Some(t));
        assert_eq!(epoch_int_to_micros(t), Some(t));
        assert_eq!(epoch_int_to_micros(t * 1_000), Some(t));
        assert_eq!(epoch_int_to_micros(0), Some(0));
        assert_eq!(
            epoch_float_to_micros(1_551_485_405.594),
            Some(1_551_485_405_594_000)
        );
        assert_eq!(
            epoch_float_to_micros(1_551_485_405_594.0),
            Some(1_551_485_405_594_000)
        );
        assert_eq!(epoch_float_to_micros(f64::NAN), None);
        assert_eq!(epoch_float_to_micros(1e300), None);
        assert_eq!(epoch_int_to_micros(i64::MAX), Some(i64::MAX / 1_000));
    }
}
