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

/// Reports an error on stderr as one `error: ...` line and returns a failing exit code. An
/// error that shows where it is in a query (KQL's line with a caret under the fault) has those
/// lines after the `error:` line.
pub(crate) fn fail(err: &anyhow::Error) -> ExitCode {
    let mut msg = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !msg.contains(&cause) {
            msg.push_str(": ");
            msg.push_str(&cause);
        }
    }
    let (first, snippet) = match msg.split_once(":\n") {
        Some((first, rest)) if rest.contains('^') => (first.to_owned(), Some(rest.to_owned())),
        _ => (msg, None),
    };
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {}", first.replace('\n', " "));
    if let Some(snippet) = snippet {
        let _ = writeln!(stderr, "{snippet}");
    }
    ExitCode::FAILURE
}

/// Renders rows under headers as aligned columns.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.trim_end().to_owned()
    };
    let mut lines = vec![line(headers.to_vec())];
    lines.push(line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for row in rows {
        lines.push(line(row.iter().map(String::as_str).collect()));
    }
    lines.join("\n")
}

/// The value at JSON `pointer` in `v` for a table cell: strings as they are, other values as
/// JSON, nothing when absent.
pub(crate) fn at(v: &serde_json::Value, pointer: &str) -> String {
    v.pointer(pointer)
        .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
        .unwrap_or_default()
}

/// Renders one object as `name  value` lines.
pub(crate) fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{k:<width$}  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A note for people on stderr (warnings, what a command did besides its result).
pub(crate) fn note(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["NAME", "ENABLED"],
            &[
                vec!["a-long-name".into(), "true".into()],
                vec!["b".into(), "false".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "NAME         ENABLED");
        assert_eq!(lines[1], "-----------  -------");
        assert_eq!(lines[3], "b            false");
        assert_eq!(
            fields(&[("a", "1".into()), ("bcd", "2".into())]),
            "a    1\nbcd  2"
        );
    }
}
