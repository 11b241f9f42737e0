//! The query API's `timespan`: an ISO 8601 duration (`PT1H`, `P7D`, `PT3600.0S` as the Python
//! SDK writes it) meaning "the last ...", or an interval `start/end`, `start/duration` or
//! `duration/end`.

use chrono::{DateTime, Duration, Utc};

/// Parses an ISO 8601 duration: `P[nY][nM][nW][nD][T[nH][nM][n[.f]S]]` (years as 365 days and
/// months as 30, as Log Analytics reads them).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not an ISO 8601 duration such as PT1H or P1D");
    let upper = text.trim().to_ascii_uppercase();
    let (negative, rest) = match upper.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, upper.as_str()),
    };
    let rest = rest.strip_prefix('P').ok_or_else(bad)?;
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut in_time = false;
    let mut number = String::new();
    let mut any = false;
    for c in rest.chars() {
        match c {
            '0'..='9' | '.' | ',' => number.push(if c == ',' { '.' } else { c }),
            'T' if !in_time && number.is_empty() => in_time = true,
            unit => {
                let n: f64 = number.parse().map_err(|_| bad())?;
                number.clear();
                any = true;
                let seconds = match (in_time, unit) {
                    (false, 'Y') => 365.0 * 86400.0,
                    (false, 'M') => 30.0 * 86400.0,
                    (false, 'W') => 7.0 * 86400.0,
                    (false, 'D') => 86400.0,
                    (true, 'H') => 3600.0,
                    (true, 'M') => 60.0,
                    (true, 'S') => 1.0,
                    _ => return Err(bad()),
                };
                total += n * seconds;
            }
        }
    }
    if !number.is_empty() || !any || !total.is_finite() || total > 1e11 {
        return Err(bad());
    }
    let nanos = (total * 1e9).round() as i64;
    let d = Duration::nanoseconds(nanos);
    Ok(if negative { -d } else { d })
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            // Without a zone (as some clients write): UTC.
            chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S%.f")
                .map(|t| t.and_utc())
        })
        .map_err(|_| format!("'{text}' is not an ISO 8601 time"))
}

/// The time range `[start, end)` a `timespan` names, read at `now`.
pub(crate) fn parse_timespan(
    text: &str,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let range = match text.split_once('/') {
        None => {
            let d = parse_duration(text)?;
            (now - d, now)
        }
        Some((a, b)) => {
            let a_is_duration = a.trim().to_ascii_uppercase().starts_with('P');
            let b_is_duration = b.trim().to_ascii_uppercase().starts_with('P');
            match (a_is_duration, b_is_duration) {
                (false, false) => (parse_time(a)?, parse_time(b)?),
                (false, true) => {
                    let start = parse_time(a)?;
                    (start, start + parse_duration(b)?)
                }
                (true, false) => {
                    let end = parse_time(b)?;
                    (end - parse_duration(a)?, end)
                }
                (true, true) => {
                    return Err(format!("'{text}' has two durations and no time"));
                }
            }
        }
    };
    if range.0 > range.1 {
        return Err(format!("the timespan '{text}' ends before it starts"));
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_and_intervals_as_clients_write_them() {
        assert_eq!(parse_duration("PT1H").unwrap(), Duration::hours(1));
        assert_eq!(parse_duration("PT3600.0S").unwrap(), Duration::hours(1));
        assert_eq!(parse_duration("P1D").unwrap(), Duration::days(1));
        assert_eq!(
            parse_duration("P1DT2H3M4.5S").unwrap(),
            Duration::milliseconds(93_784_500)
        );
        assert_eq!(
            parse_duration("pt0.25s").unwrap(),
            Duration::milliseconds(250)
        );
        for bad in ["", "P", "PT", "1H", "PT1X", "P1H", "PT1H2", "PTT1H"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let now: DateTime<Utc> = "2026-03-01T12:00:00Z".parse().unwrap();
        assert_eq!(
            parse_timespan("PT1H", now).unwrap(),
            ("2026-03-01T11:00:00Z".parse().unwrap(), now)
        );
        assert_eq!(
            parse_timespan("2026-03-01T00:00:00.000Z/2026-03-02T00:00:00.000Z", now).unwrap(),
            (
                "2026-03-01T00:00:00Z".parse().unwrap(),
                "2026-03-02T00:00:00Z".parse().unwrap()
            )
        );
        assert_eq!(
            parse_timespan("2026-03-01T00:00:00Z/PT7200.0S", now)
                .unwrap()
                .1,
            "2026-03-01T02:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            parse_timespan("PT1H/2026-03-01T05:00:00Z", now).unwrap().0,
            "2026-03-01T04:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert!(parse_timespan("2026-03-02T00:00:00Z/2026-03-01T00:00:00Z", now).is_err());
        assert!(parse_timespan("PT1H/PT2H", now).is_err());
    }
}
