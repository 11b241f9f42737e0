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
    #[arg(required_unless_present_any = ["kql", "sql_flag"], conflicts_with_all = ["kql", "sql_flag"])]
    sql: Option<String>,
    /// The SQL, said explicitly (the default language).
    #[arg(long = "sql", value_name = "SQL", conflicts_with = "kql")]
    sql_flag: Option<String>,
    /// A KQL query instead of SQL (Kusto Query Language, as in Log Analytics).
    #[arg(long, value_name = "KQL")]
    kql: Option<String>,
    /// Print the result's columns and their Kusto types without reading data (with --kql).
    #[arg(long, requires = "kql")]
    schema_only: bool,
    /// Print CSV instead of a table (or JSON with -o json).
    #[arg(long)]
    csv: bool,
    /// Print at most this many rows (tables default to 1000; JSON and CSV are unlimited).
    #[arg(long)]
    limit: Option<usize>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Run the query as support operator P: allowed only under an approved, unexpired
    /// Customer Lockbox request, and audited (R-I1).
    #[arg(long, value_name = "P")]
    as_operator: Option<String>,
    /// Keep the query in the workspace's history (`workspace query-history`; not kept while
    /// the workspace is linked for Query). Off by default: a query writes nothing.
    #[arg(long, conflicts_with = "as_operator")]
    record_history: bool,
}

/// Runs `logvault query`.
pub(crate) async fn run(global: &GlobalArgs, args: QueryArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    let format = match (global.output, args.csv) {
        (OutputFormat::Json, _) => ResultFormat::Json,
        (_, true) => ResultFormat::Csv,
        _ => ResultFormat::Table,
    };
    let text = args
        .kql
        .clone()
        .or_else(|| args.sql.clone())
        .or_else(|| args.sql_flag.clone())
        .unwrap_or_default();
    if let Some(operator) = &args.as_operator {
        engine
            .control()
            .authorize_operator_query(&args.workspace, operator, &text)?;
    } else if args.record_history {
        // The workspace's query history (not kept while it is linked for Query).
        let language = if args.kql.is_some() { "kql" } else { "sql" };
        engine
            .record_query(&args.workspace, language, &text)
            .await?;
    }
    let max_rows = args
        .limit
        .or((format == ResultFormat::Table).then_some(1000));
    if let Some(kql) = &args.kql {
        if args.schema_only {
            return super::query_kql::schema_only(global, &engine, &args.workspace, kql).await;
        }
        let limits = OutputLimits {
            max_rows,
            timeout: Some(Duration::from_secs(args.timeout)),
        };
        let (rows, truncated) =
            super::query_kql::run(&engine, &args.workspace, kql, format, limits).await?;
        note_truncated(rows, truncated);
        return Ok(());
    }
    let sql = args.sql.or(args.sql_flag).unwrap_or_default();
    let stream = engine.query(&args.workspace, &sql).await?;
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
    note_truncated(summary.rows, summary.truncated);
    Ok(())
}

fn note_truncated(rows: usize, truncated: bool) {
    if truncated {
        tracing::warn!(
            rows,
            "output cut at the row limit; pass --limit to see more"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "note: output cut at {rows} rows (--limit to change)"
        );
    }
}
