//! Printing results (table or JSON) and errors.

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use crate::args::OutputFormat;

/// Prints `value` as one JSON document, or as `table` renders it, on stdout.
pub(crate) fn print<T: Serialize>(
    format: OutputFormat,
    value: &T,
    table: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    let text = match format {
        OutputFormat::Json => serde_json::to_string_pretty(value)?,
        OutputFormat::Table => table(value),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}

/// Reports an error on stderr as one `error: ...` line and returns a failing exit code.
pub(crate) fn fail(err: &anyhow::Error) -> ExitCode {
    let mut msg = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !msg.contains(&cause) {
            msg.push_str(": ");
            msg.push_str(&cause);
        }
    }
    let _ = writeln!(std::io::stderr(), "error: {}", msg.replace('\n', " "));
    ExitCode::FAILURE
}
