//! `logvault table ...`: a workspace's tables, their retention (R-K1) and compaction.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use logvault::store::CompactionOptions;

use crate::args::GlobalArgs;
use crate::output::{print, table};

/// Arguments of `logvault table`.
#[derive(Debug, Args)]
pub(crate) struct TableArgs {
    #[command(subcommand)]
    command: TableCommand,
}

#[derive(Debug, Subcommand)]
enum TableCommand {
    /// List a workspace's tables: rows, segments, bytes, retention, time range.
    List {
        /// The workspace.
        #[arg(long)]
        workspace: String,
    },
    /// Create a table with a declared schema: its columns and Kusto types, known to queries
    /// before any row arrives; ingestion conforms rows to them.
    Create {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// The table.
        #[arg(long)]
        name: String,
        /// A JSON file `{"columns":[{"name":..,"type":<Kusto type>,"description":..}]}` (the
        /// Tables API's `properties.schema`; the whole Tables API body is read too), or `-`
        /// for stdin.
        #[arg(long)]
        schema: std::path::PathBuf,
    },
    /// Show a table's columns and their Kusto types (declared, or as its rows made them).
    Show {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// The table.
        #[arg(long)]
        table: String,
    },
    /// Set a table's retention in days; older data is purged.
    SetRetention {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// The table.
        #[arg(long)]
        table: String,
        /// Days to keep (1 to 4383).
        #[arg(long)]
        days: u32,
    },
    /// Merge small segments (of one table, or of every table of the workspace).
    Compact {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// Only this table.
        #[arg(long)]
        table: Option<String>,
        /// Segments with fewer rows are merged.
        #[arg(long, default_value_t = 250_000)]
        small_rows: u64,
    },
    /// Purge every segment past its table's retention, in every workspace.
    Purge,
    /// Read and authenticate every segment and catalog version of a workspace (the scrub);
    /// exits non-zero when damage is found.
    Verify(super::verify::VerifyArgs),
}

fn columns_table(t: &logvault::TableColumns) -> String {
    let rows: Vec<Vec<String>> = t
        .columns
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.kusto_type.clone(),
                c.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(&["COLUMN", "TYPE", "DESCRIPTION"], &rows)
}

/// Runs `logvault table ...`.
pub(crate) async fn run(global: &GlobalArgs, args: TableArgs) -> anyhow::Result<()> {
    if let TableCommand::Verify(verify) = args.command {
        return super::verify::run(global, verify).await;
    }
    let engine = super::open(global).await?;
    match args.command {
        TableCommand::List { workspace } => {
            let tables = engine.tables(&workspace).await?;
            print(global.output, &tables, |t| {
                let rows: Vec<Vec<String>> = t
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.rows.to_string(),
                            t.segments.to_string(),
                            t.bytes.to_string(),
                            t.retention_days.to_string(),
                            t.time_range
                                .map(|(a, b)| format!("{} .. {}", a.to_rfc3339(), b.to_rfc3339()))
                                .unwrap_or_default(),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "TABLE",
                        "ROWS",
                        "SEGMENTS",
                        "BYTES",
                        "RETENTION DAYS",
                        "TIME RANGE",
                    ],
                    &rows,
                )
            })
        }
        TableCommand::Create {
            workspace,
            name,
            schema,
        } => {
            let text = if schema.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
                    .context("reading the schema from stdin")?
            } else {
                std::fs::read_to_string(&schema)
                    .with_context(|| format!("reading schema file {}", schema.display()))?
            };
            let columns = logvault::tables::parse_schema_file(&name, &text)?;
            engine.create_table(&workspace, &name, &columns).await?;
            let shown = engine.table_columns(&workspace, &name).await?;
            print(global.output, &shown, |t| {
                format!(
                    "table {workspace}/{name} created with {} declared columns\n{}",
                    t.columns.len(),
                    columns_table(t)
                )
            })
        }
        TableCommand::Show {
            workspace,
            table: name,
        } => {
            let shown = engine.table_columns(&workspace, &name).await?;
            print(global.output, &shown, |t| {
                let how = if t.declared {
                    "declared schema"
                } else {
                    "schema from its rows"
                };
                format!("table {workspace}/{name} ({how})\n{}", columns_table(t))
            })
        }
        TableCommand::SetRetention {
            workspace,
            table: name,
            days,
        } => {
            engine.set_retention(&workspace, &name, days).await?;
            let tables = engine.tables(&workspace).await?;
            let info = tables.into_iter().find(|t| t.name == name);
            print(global.output, &info, |_| {
                format!("table {workspace}/{name}: retention {days} days")
            })
        }
        TableCommand::Compact {
            workspace,
            table: name,
            small_rows,
        } => {
            let options = CompactionOptions {
                small_rows,
                ..CompactionOptions::default()
            };
            let reports = engine.compact(&workspace, name.as_deref(), options).await?;
            print(global.output, &reports, |r| {
                let rows: Vec<Vec<String>> = r
                    .iter()
                    .map(|r| {
                        vec![
                            r.table.clone(),
                            r.segments_before.to_string(),
                            r.segments_after.to_string(),
                            r.skipped_groups.to_string(),
                            (r.collected.replaced_deleted + r.collected.orphans_deleted)
                                .to_string(),
                            r.collected.replaced_waiting.to_string(),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "TABLE",
                        "SEGMENTS BEFORE",
                        "AFTER",
                        "SKIPPED (KEY UNAVAILABLE)",
                        "FILES DELETED",
                        "REPLACED WAITING",
                    ],
                    &rows,
                )
            })
        }
        TableCommand::Verify(_) => Ok(()),
        TableCommand::Purge => {
            let report = engine.purge_expired().await?;
            print(global.output, &report, |r| {
                format!(
                    "purged {} segments ({} rows) of {} tables; deleted {} replaced segments \
                     past their grace period and {} orphan files ({} replaced waiting)",
                    r.purged.len(),
                    r.purged.iter().map(|s| s.rows).sum::<u64>(),
                    r.tables_checked,
                    r.collected.replaced_deleted,
                    r.collected.orphans_deleted,
                    r.collected.replaced_waiting
                )
            })
        }
    }
}
