//! `logvault query`: SQL over a workspace's tables.

use std::time::Duration;

use clap::Args;
use logvault::query::{OutputLimits, ResultFormat, write_results};

use crate::args::{GlobalArgs, OutputFormat};

/// Arguments of `logvault query`.
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// The workspace.
    #[arg(long)]
    workspace: String,
    /// The SQL (DataFusion's dialect; tables by name, e.g. `SELECT count(*) FROM Syslog`).
    sql: String,
    /// Print CSV instead of a table (or JSON with -o json).
    #[arg(long)]
    csv: bool,
    /// Print at most this many rows (tables default to 1000; JSON and CSV are unlimited).
    #[arg(long)]
    limit: Option<usize>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

/// Runs `logvault query`.
pub(crate) async fn run(global: &GlobalArgs, args: QueryArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    let format = match (global.output, args.csv) {
        (OutputFormat::Json, _) => ResultFormat::Json,
        (_, true) => ResultFormat::Csv,
        _ => ResultFormat::Table,
    };
    let max_rows = args
        .limit
        .or((format == ResultFormat::Table).then_some(1000));
    let stream = engine.query(&args.workspace, &args.sql).await?;
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    let summary = write_results(
        stream,
        format,
        out,
        OutputLimits {
            max_rows,
            timeout: Some(Duration::from_secs(args.timeout)),
        },
    )
    .await?;
    if summary.truncated {
        tracing::warn!(
            rows = summary.rows,
            "output cut at the row limit; pass --limit to see more"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "note: output cut at {} rows (--limit to change)",
            summary.rows
        );
    }
    Ok(())
}
