//! Plain text lines, with syslog prefixes parsed into fields.
//!
//! Every non-blank line is a row whose `Message` column holds the whole line, unchanged. When
//! the line starts with a syslog header, its parts are added as the columns of Log Analytics'
//! `Syslog` table:
//! - RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`;
//! - RFC 3164: `<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`, with or without `<PRI>` (the form
//!   of files under `/var/log`), or with an RFC 3339 timestamp instead of `Mmm dd hh:mm:ss`;
//! - `<PRI>` alone before any text.
//!
//! Columns: `Facility` and `SeverityLevel` (names, as in Log Analytics: `authpriv`, `info`),
//! `EventTime` (also the row's `TimeGenerated`), `HostName`, `ProcessName`, `ProcessID` (when
//! numeric), `MsgId` and `StructuredData` (RFC 5424, when not `-`) and `SyslogMessage`. An RFC
//! 3164 timestamp has no year or zone: it is taken as UTC, in the year of reception, or the
//! year before if that would put it more than a day after reception.

use std::borrow::Cow;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::chunk::ChunkBuilder;
use crate::kind::TIME_GENERATED;
use crate::schema::TableSchema;
use crate::time::parse_timestamp;
use crate::value::{Cell, Scalar};

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// What RFC 3164 timestamps are resolved against.
pub(crate) struct SyslogYear {
    year: i32,
    received: i64,
}

impl SyslogYear {
    pub(crate) fn new(received: DateTime<Utc>) -> Self {
        Self {
            year: received.year(),
            received: received.timestamp_micros(),
        }
    }
}

#[derive(Debug, Default, PartialEq)]
struct Syslog<'a> {
    pri: Option<u8>,
    time: Option<(i64, &'a str)>,
    host: Option<&'a str>,
    app: Option<&'a str>,
    pid: Option<&'a str>,
    msgid: Option<&'a str>,
    sd: Option<&'a str>,
    msg: &'a str,
}

/// Adds one line as a row.
pub(super) fn push_line<'a>(
    builder: &mut ChunkBuilder<'a>,
    schema: &TableSchema,
    line: &'a str,
    year: &SyslogYear,
) -> Result<(), String> {
    let text = |s: &'a str| {
        Some(Cell {
            text: Cow::Borrowed(s),
            scalar: Scalar::Str,
        })
    };
    builder.push_field(schema, "Message", None, text(line))?;
    let Some(s) = parse_syslog(line, year) else {
        return Ok(());
    };
    if let Some(pri) = s.pri {
        let facility = FACILITIES[usize::from(pri >> 3)];
        let severity = SEVERITIES[usize::from(pri & 7)];
        builder.push_field(schema, "Facility", None, text(facility))?;
        builder.push_field(schema, "SeverityLevel", None, text(severity))?;
    }
    if let Some((t, t_text)) = s.time {
        let cell = || {
            Some(Cell {
                text: Cow::Borrowed(t_text),
                scalar: Scalar::Time(t),
            })
        };
        builder.push_field(schema, "EventTime", None, cell())?;
        builder.push_field(schema, TIME_GENERATED, None, cell())?;
    }
    for (name, value) in [
        ("HostName", s.host),
        ("ProcessName", s.app),
        ("MsgId", s.msgid),
        ("StructuredData", s.sd),
    ] {
        if let Some(v) = value {
            builder.push_field(schema, name, None, text(v))?;
        }
    }
    if let Some(pid) = s.pid
        && let Ok(n) = pid.parse::<i64>()
    {
        let cell = Cell {
            text: Cow::Borrowed(pid),
            scalar: Scalar::Int(n),
        };
        builder.push_field(schema, "ProcessID", None, Some(cell))?;
    }
    builder.push_field(schema, "SyslogMessage", None, text(s.msg))
}

fn parse_syslog<'a>(line: &'a str, year: &SyslogYear) -> Option<Syslog<'a>> {
    let (pri, rest) = match parse_pri(line) {
        Some((pri, rest)) => (Some(pri), rest),
        None => (None, line),
    };
    if pri.is_some()
        && let Some(rest) = rest.strip_prefix("1 ")
    {
        return rfc5424(pri, rest);
    }
    rfc3164(pri, rest, year)
}

fn parse_pri(line: &str) -> Option<(u8, &str)> {
    let rest = line.strip_prefix('<')?;
    let close = rest.find('>')?;
    let digits = &rest[..close];
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pri: u8 = digits.parse().ok().filter(|&p| p <= 191)?;
    Some((pri, &rest[close + 1..]))
}

fn nil(token: &str) -> Option<&str> {
    (token != "-").then_some(token)
}

fn rfc5424(pri: Option<u8>, rest: &str) -> Option<Syslog<'_>> {
    let mut parts = rest.splitn(6, ' ');
    let time = parts.next()?;
    let time = match nil(time) {
        Some(t) => Some((parse_timestamp(t)?, t)),
        None => None,
    };
    let host = nil(parts.next()?);
    let app = nil(parts.next()?);
    let pid = nil(parts.next()?);
    let msgid = nil(parts.next()?);
    let rest = parts.next()?;
    let (sd, msg) = if let Some(msg) = rest.strip_prefix('-') {
        (None, msg)
    } else {
        let end = structured_data_end(rest)?;
        (Some(&rest[..end]), &rest[end..])
    };
    let msg = match msg.strip_prefix(' ') {
        Some(m) => m.strip_prefix('\u{feff}').unwrap_or(m),
        None if msg.is_empty() => msg,
        None => return None,
    };
    Some(Syslog {
        pri,
        time,
        host,
        app,
        pid,
        msgid,
        sd,
        msg,
    })
}

/// The end of one or more `[id k="v" ...]` elements (`\"`, `\]` and `\\` escape in values).
fn structured_data_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        let (mut in_quotes, mut escaped) = (false, false);
        i += 1;
        loop {
            let c = *b.get(i)?;
            i += 1;
            match c {
                _ if escaped => escaped = false,
                b'\\' if in_quotes => escaped = true,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes => break,
                _ => {}
            }
        }
    }
    (i > 0).then_some(i)
}

fn rfc3164<'a>(pri: Option<u8>, rest: &'a str, year: &SyslogYear) -> Option<Syslog<'a>> {
    let (time, after) = match bsd_timestamp(rest, year) {
        Some(found) => found,
        None => {
            let (first, after) = rest.split_once(' ')?;
            match parse_timestamp(first) {
                Some(t) => ((t, first), after),
                // `<PRI>` then free text.
                None if pri.is_some() => {
                    return Some(Syslog {
                        pri,
                        msg: rest,
                        ..Syslog::default()
                    });
                }
                None => return None,
            }
        }
    };
    let (host, after) = after.split_once(' ').unwrap_or((after, ""));
    let mut out = Syslog {
        pri,
        time: Some(time),
        host: Some(host).filter(|h| !h.is_empty()),
        msg: after,
        ..Syslog::default()
    };
    // TAG[PID]: or TAG: ; a tag is at most 48 characters without spaces.
    let tagged = || {
        let tag_end = after.find([':', '[', ' ']).filter(|&i| i > 0 && i <= 48)?;
        let (tag, rest) = after.split_at(tag_end);
        let (pid, rest) = match rest.strip_prefix('[') {
            Some(r) => {
                let close = r.find(']')?;
                (Some(&r[..close]), &r[close + 1..])
            }
            None => (None, rest),
        };
        let msg = rest.strip_prefix(':')?;
        Some((tag, pid, msg.strip_prefix(' ').unwrap_or(msg)))
    };
    if let Some((tag, pid, msg)) = tagged() {
        out.app = Some(tag);
        out.pid = pid;
        out.msg = msg;
    }
    Some(out)
}

/// `Mmm dd hh:mm:ss ` (day padded with a space or a zero).
fn bsd_timestamp<'a>(s: &'a str, year: &SyslogYear) -> Option<((i64, &'a str), &'a str)> {
    let head = s.get(..16)?;
    let b = head.as_bytes();
    if b[3] != b' ' || b[6] != b' ' || b[15] != b' ' {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == &head[..3])? + 1;
    let day: u32 = head[4..6].trim_start().parse().ok()?;
    let time = chrono::NaiveTime::parse_from_str(&head[7..15], "%H:%M:%S").ok()?;
    let month = u32::try_from(month).ok()?;
    let at = |y: i32| {
        NaiveDate::from_ymd_opt(y, month, day)
            .map(|d| d.and_time(time).and_utc().timestamp_micros())
    };
    let mut t = at(year.year)?;
    if t > year.received + 86_400_000_000 {
        t = at(year.year - 1)?;
    }
    Some(((t, &s[..15]), &s[16..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn year() -> SyslogYear {
        SyslogYear::new(Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap())
    }

    #[test]
    fn rfc5424_lines() {
        let s = parse_syslog(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\\]\"][b x=\"y\"] \u{feff}An application event",
            &year(),
        )
        .unwrap();
        assert_eq!(s.pri, Some(165));
        assert_eq!(s.host, Some("mymachine.example.com"));
        assert_eq!(s.app, Some("evntslog"));
        assert_eq!(s.pid, Some("1234"));
        assert_eq!(s.msgid, Some("ID47"));
        assert_eq!(
            s.sd,
            Some("[exampleSDID@32473 iut=\"3\" eventSource=\"App\\]\"][b x=\"y\"]")
        );
        assert_eq!(s.msg, "An application event");
        assert_eq!(
            s.time,
            Some((
                Utc.with_ymd_and_hms(2003, 10, 11, 22, 14, 15)
                    .unwrap()
                    .timestamp_micros()
                    + 3000,
                "2003-10-11T22:14:15.003Z"
            ))
        );
        let s = parse_syslog("<34>1 - - - - - -", &year()).unwrap();
        assert_eq!((s.time, s.host, s.msg), (None, None, ""));
        let s = parse_syslog("Jan  4 01:02:03 host no tag here", &year()).unwrap();
        assert_eq!((s.host, s.app, s.msg), (Some("host"), None, "no tag here"));
    }

    #[test]
    fn rfc3164_lines() {
        let s = parse_syslog(
            "<34>Oct 11 22:14:15 mymachine su[42]: 'su root' failed",
            &year(),
        )
        .unwrap();
        assert_eq!(s.pri, Some(34));
        assert_eq!(
            (s.host, s.app, s.pid),
            (Some("mymachine"), Some("su"), Some("42"))
        );
        assert_eq!(s.msg, "'su root' failed");
        // October is after January 5th: last year.
        assert_eq!(
            s.time,
            Some((
                Utc.with_ymd_and_hms(2025, 10, 11, 22, 14, 15)
                    .unwrap()
                    .timestamp_micros(),
                "Oct 11 22:14:15"
            ))
        );
        let s = parse_syslog("Jan  4 01:02:03 host sshd: hello", &year()).unwrap();
        assert_eq!(
            (s.pri, s.app, s.pid, s.msg),
            (None, Some("sshd"), None, "hello")
        );
        assert_eq!(
            s.time.map(|t| t.0),
            Some(
                Utc.with_ymd_and_hms(2026, 1, 4, 1, 2, 3)
                    .unwrap()
                    .timestamp_micros()
            )
        );
        let s = parse_syslog("2019-07-10T15:13:07Z host sudo[7]: x", &year()).unwrap();
        assert_eq!((s.app, s.pid, s.msg), (Some("sudo"), Some("7"), "x"));
        let s = parse_syslog("<13>just text", &year()).unwrap();
        assert_eq!((s.pri, s.time, s.msg), (Some(13), None, "just text"));
    }

    #[test]
    fn not_syslog() {
        for line in [
            "type=DAEMON_START msg=audit(1551485405.594:7507): op=start",
            "<999>too big",
            "<34>1 not-a-time host app - - - msg",
            "Foo 11 22:14:15 host x: y",
        ] {
            assert_eq!(parse_syslog(line, &year()), None, "{line}");
        }
    }
}
