//! `logvault search-job ...`: asynchronous searches whose results land in `<name>_SRCH` (R-J1).

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use logvault::SearchJobSpec;
use logvault::control::SearchJob;

use crate::args::GlobalArgs;
use crate::output::{fields, print, table};

/// Arguments of `logvault search-job`.
#[derive(Debug, Args)]
pub(crate) struct SearchJobArgs {
    #[command(subcommand)]
    command: SearchJobCommand,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("expected an RFC 3339 time: {e}"))
}

#[derive(Debug, Subcommand)]
enum SearchJobCommand {
    /// Create a search job and run it (in the foreground unless --no-wait).
    Create {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// The job's name; results go to the table `<name>_SRCH`.
        #[arg(long)]
        name: String,
        /// The table searched.
        #[arg(long)]
        table: String,
        /// The KQL query over the table; its result must keep `TimeGenerated`.
        #[arg(long)]
        query: String,
        /// Start of the range (RFC 3339; default 30 days before the end).
        #[arg(long, value_parser = parse_time)]
        start: Option<DateTime<Utc>>,
        /// End of the range (RFC 3339; default now).
        #[arg(long, value_parser = parse_time)]
        end: Option<DateTime<Utc>>,
        /// Only create it (Queued); `search-job run` runs it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Run a queued job.
    Run {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// The job's name.
        #[arg(long)]
        name: String,
    },
    /// Show a job: status, progress, rows written.
    Show {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// The job's name.
        #[arg(long)]
        name: String,
    },
    /// List a workspace's jobs.
    List {
        /// The workspace.
        #[arg(long)]
        workspace: String,
    },
    /// Cancel a job (a running one stops after its current slice).
    Cancel {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// The job's name.
        #[arg(long)]
        name: String,
    },
}

fn show(j: &SearchJob) -> String {
    fields(&[
        ("name", j.name.clone()),
        ("status", format!("{:?}", j.status)),
        ("table", j.table.clone()),
        ("resultTable", j.result_table.clone()),
        ("percentComplete", j.percent_complete.to_string()),
        ("rowsWritten", j.rows_written.to_string()),
        ("error", j.error.clone().unwrap_or_default()),
    ])
}

/// Runs `logvault search-job ...`.
pub(crate) async fn run(global: &GlobalArgs, args: SearchJobArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    let job = match args.command {
        SearchJobCommand::Create {
            workspace,
            name,
            table,
            query,
            start,
            end,
            no_wait,
        } => {
            let job = engine
                .create_search_job(
                    &workspace,
                    SearchJobSpec {
                        name: name.clone(),
                        table,
                        query,
                        start,
                        end,
                    },
                )
                .await?;
            if no_wait {
                job
            } else {
                engine.run_search_job(&workspace, &name).await?
            }
        }
        SearchJobCommand::Run { workspace, name } => {
            engine.run_search_job(&workspace, &name).await?
        }
        SearchJobCommand::Show { workspace, name } => engine.search_job(&workspace, &name).await?,
        SearchJobCommand::Cancel { workspace, name } => {
            engine.cancel_search_job(&workspace, &name).await?
        }
        SearchJobCommand::List { workspace } => {
            let all = engine.search_jobs(&workspace).await?;
            return print(global.output, &all, |all| {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|j| {
                        vec![
                            j.name.clone(),
                            format!("{:?}", j.status),
                            j.percent_complete.to_string(),
                            j.result_table.clone(),
                        ]
                    })
                    .collect();
                table(&["NAME", "STATUS", "PERCENT", "RESULT TABLE"], &rows)
            });
        }
    };
    print(global.output, &job, show)
}
