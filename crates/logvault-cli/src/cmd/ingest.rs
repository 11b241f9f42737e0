//! `logvault ingest`: logs from files or stdin into a workspace's table (R-E).

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use logvault::ingest::Format;
use logvault::{IngestOptions, IngestReport, LoadOptions};

use crate::args::GlobalArgs;
use crate::output::{fields, print};

/// Arguments of `logvault ingest`.
#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    /// The workspace.
    #[arg(long)]
    workspace: String,
    /// The table (created on first ingest; its schema grows with the data).
    #[arg(long)]
    table: String,
    /// The format: json (lines or an array), jsonl, csv or text; guessed from the file
    /// extension when not given (json for stdin).
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// Refuse the whole payload at the first malformed record, instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// Files to ingest; none reads stdin.
    files: Vec<PathBuf>,
    /// Print a line on stderr for every acknowledgement (for crash tests).
    #[arg(long, hide = true)]
    print_acks: bool,
    /// A file's load stores what it read at least every this many rows (for crash tests; by
    /// default every minute, and at the end).
    #[arg(long, hide = true)]
    checkpoint_rows: Option<u64>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::from_name(s).ok_or_else(|| format!("unknown format {s:?} (json, jsonl, csv, text)"))
}

fn add(total: &mut IngestReport, one: IngestReport) {
    total.accepted += one.accepted;
    total.dropped += one.dropped;
    total.rejected += one.rejected;
    total.segments += one.segments;
    total.recovered += one.recovered;
    total.nulled += one.nulled;
    for name in one.undeclared {
        if !total.undeclared.contains(&name) {
            total.undeclared.push(name);
        }
    }
    if one.reason.is_some() {
        total.reason = one.reason;
    }
    total.errors.extend(one.errors);
    total.account = one.account;
}

/// Runs `logvault ingest`.
pub(crate) async fn run(global: &GlobalArgs, args: IngestArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    let inputs: Vec<Option<PathBuf>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files.iter().cloned().map(Some).collect()
    };
    let mut total = IngestReport::default();
    for input in inputs {
        let (reader, format, size): (Box<dyn BufRead + Send>, Format, Option<u64>) = match &input {
            None => (
                Box::new(BufReader::new(std::io::stdin())),
                args.format.unwrap_or(Format::Json),
                None,
            ),
            Some(path) => {
                let file =
                    File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
                // A regular file's size; none for a pipe or a device (`/dev/stdin`, `<(...)`).
                let size = file
                    .metadata()
                    .ok()
                    .filter(std::fs::Metadata::is_file)
                    .map(|m| m.len());
                let format = match args.format.or_else(|| Format::from_path(path)) {
                    Some(f) => f,
                    None => anyhow::bail!(
                        "cannot tell the format of {} from its extension: pass --format",
                        path.display()
                    ),
                };
                (
                    Box::new(BufReader::with_capacity(1 << 20, file)),
                    format,
                    size,
                )
            }
        };
        // A regular file is loaded (acknowledged at checkpoints, without the write-ahead log);
        // stdin, a pipe or a device may be a stream without end, whose every batch is
        // acknowledged once logged.
        let mut options = IngestOptions::new(format);
        if size.is_some() {
            options.load = Some(LoadOptions {
                interval: None,
                rows: args.checkpoint_rows,
            });
        }
        if args.strict {
            options.parse.on_error = logvault::ingest::ErrorPolicy::Refuse;
        }
        let bar = progress_bar(size);
        let print_acks = args.print_acks;
        let mut acked = 0;
        let report = engine
            .ingest(
                &args.workspace,
                &args.table,
                reader,
                &options,
                Some(&mut |p| {
                    if let Some(bar) = &bar {
                        bar.set_message(format!("{} rows", p.read));
                        bar.tick();
                    }
                    if print_acks && p.accepted > acked {
                        acked = p.accepted;
                        let _ = writeln!(std::io::stderr(), "acked {acked}");
                    }
                }),
            )
            .await?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        add(&mut total, report);
    }
    let mut err = std::io::stderr().lock();
    for e in &total.errors {
        writeln!(err, "warning: skipped a malformed record: {e}")?;
    }
    writeln!(
        err,
        "ingested {} rows into {}/{} ({} segments, {}), {} dropped, {} malformed skipped",
        total.accepted,
        args.workspace,
        args.table,
        total.segments,
        if total.account.is_empty() {
            "nothing written"
        } else {
            total.account.as_str()
        },
        total.dropped,
        total.rejected
    )?;
    if let Some(reason) = &total.reason {
        writeln!(err, "dropped because: {reason}")?;
    }
    if total.nulled > 0 {
        writeln!(
            err,
            "warning: {} values did not convert to their column's declared type and were stored as null",
            total.nulled
        )?;
    }
    if !total.undeclared.is_empty() {
        writeln!(
            err,
            "warning: columns not in table {}'s declared schema were left out: {}",
            args.table,
            total.undeclared.join(", ")
        )?;
    }
    drop(err);
    print(global.output, &total, |t| {
        let mut rows = vec![
            ("accepted", t.accepted.to_string()),
            ("dropped", t.dropped.to_string()),
            ("rejected", t.rejected.to_string()),
            ("segments", t.segments.to_string()),
            ("account", t.account.clone()),
        ];
        if let Some(r) = &t.reason {
            rows.push(("reason", r.clone()));
        }
        if t.nulled > 0 {
            rows.push(("nulled", t.nulled.to_string()));
        }
        if !t.undeclared.is_empty() {
            rows.push(("undeclared columns", t.undeclared.join(", ")));
        }
        fields(&rows)
    })
}

/// A spinner on stderr for inputs over 8 MiB (or stdin), when stderr is a terminal.
fn progress_bar(size: Option<u64>) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() || size.is_some_and(|s| s < 8 << 20) {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} ingesting: {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    Some(bar)
}
