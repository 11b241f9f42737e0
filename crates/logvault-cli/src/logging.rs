//! The binary's logs on stderr: one line per event, whatever the event's text holds, and no
//! query plans.
//!
//! - A line break inside an event (a path parameter, a KQL string, a syslog message, a query
//!   plan printed over several lines) is written as `\n` (`\r` as `\r`): text a client sent
//!   cannot start a line that looks like another event.
//! - DataFusion logs every query's plans at debug and trace level, and sqlparser a SQL query's
//!   tokens, with the query's literals (data, and whatever secret a query names). These crates
//!   stay at info unless `LOGVAULT_LOG` names them (`LOGVAULT_LOG=debug,datafusion=debug` asks
//!   for the plans).

use std::io::Write;

use tracing::Level;
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The crates that log a query's text or plans (and so its literals) below info.
const QUERY_LOGGERS: &[&str] = &["datafusion", "sqlparser"];

/// Installs the subscriber: `verbose` 0 errors, 1 info, 2 debug; `LOGVAULT_LOG` overrides.
pub(crate) fn init(verbose: u8) {
    let default = match verbose {
        0 => "error",
        1 => "info",
        _ => "debug",
    };
    let env = std::env::var("LOGVAULT_LOG").ok();
    let filter = env
        .as_deref()
        .and_then(|e| EnvFilter::try_new(e).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let quiet = quiet_targets(env.as_deref());
    let plans = tracing_subscriber::filter::filter_fn(move |meta| {
        !hidden(&quiet, meta.target(), *meta.level())
    });
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(OneLine)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(filter.and(plans));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// The plan loggers that `LOGVAULT_LOG` does not name.
fn quiet_targets(env: Option<&str>) -> Vec<&'static str> {
    QUERY_LOGGERS
        .iter()
        .copied()
        .filter(|t| !env.is_some_and(|e| e.contains(t)))
        .collect()
}

/// Whether an event of `target` at `level` is below info from a quiet crate.
fn hidden(quiet: &[&str], target: &str, level: Level) -> bool {
    level > Level::INFO && quiet.iter().any(|t| target.starts_with(t))
}

/// Writes each event to stderr as one line.
struct OneLine;

impl<'a> MakeWriter<'a> for OneLine {
    type Writer = Event;

    fn make_writer(&'a self) -> Event {
        Event(Vec::new())
    }
}

/// One event's text, written as one line when it is dropped.
struct Event(Vec<u8>);

impl Write for Event {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        let line = one_line(&self.0);
        let _ = std::io::stderr().lock().write_all(&line);
    }
}

/// `event` with every CR and LF but a final LF written as `\r` and `\n`.
fn one_line(event: &[u8]) -> Vec<u8> {
    let (body, end) = match event.strip_suffix(b"\n") {
        Some(body) => (body, true),
        None => (event, false),
    };
    let mut out = Vec::with_capacity(event.len() + 8);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
    if end {
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: text a client sent (a percent-encoded path parameter, a KQL string, a
    /// syslog message) reached the log with its line breaks, through DataFusion's plans at
    /// debug level: the text after a break started a line of its own, which could pass for
    /// another event.
    #[test]
    fn a_line_break_inside_an_event_does_not_start_a_new_line() {
        let event = b"2026-03-01T00:00:00Z DEBUG plan: Filter: x = Utf8(\"a\r\nFORGED INFO b\")\n";
        let line = one_line(event);
        assert_eq!(
            line,
            b"2026-03-01T00:00:00Z DEBUG plan: Filter: x = Utf8(\"a\\r\\nFORGED INFO b\")\n"
        );
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        assert!(!line.contains(&b'\r'));
        assert_eq!(one_line(b"no end"), b"no end");
    }

    /// Regression: at `-vv` or `LOGVAULT_LOG=trace`, DataFusion logged every query's plans and
    /// sqlparser a SQL query's tokens, with the query's literals (a secret a query looked for
    /// was in the log).
    #[test]
    fn query_plans_stay_out_of_the_log_unless_their_crate_is_named() {
        let quiet = quiet_targets(Some("trace"));
        assert!(hidden(&quiet, "datafusion_optimizer::utils", Level::DEBUG));
        assert!(hidden(&quiet, "datafusion::physical_planner", Level::TRACE));
        assert!(!hidden(&quiet, "datafusion::physical_planner", Level::INFO));
        assert!(!hidden(&quiet, "datafusion_optimizer::utils", Level::WARN));
        assert!(!hidden(&quiet, "logvault_server::http", Level::TRACE));
        assert!(!hidden(&quiet, "hyper::proto", Level::TRACE));
        assert!(hidden(&quiet, "sqlparser::parser", Level::DEBUG));
        let named = quiet_targets(Some("debug,datafusion_optimizer=debug"));
        assert!(!hidden(&named, "datafusion_optimizer::utils", Level::DEBUG));
        assert_eq!(quiet_targets(None), QUERY_LOGGERS);
    }
}
