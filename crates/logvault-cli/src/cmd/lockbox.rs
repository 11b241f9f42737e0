//! `logvault lockbox ...`: Customer Lockbox requests and their audit log (R-I1).

use clap::{Args, Subcommand};
use logvault::control::LockboxRequest;

use crate::args::GlobalArgs;
use crate::output::{fields, print, table};

/// Arguments of `logvault lockbox`.
#[derive(Debug, Args)]
pub(crate) struct LockboxArgs {
    #[command(subcommand)]
    command: LockboxCommand,
}

#[derive(Debug, Subcommand)]
enum LockboxCommand {
    /// Requests: create (an operator asks), approve, reject (the customer), show, list.
    Request(RequestArgs),
    /// The audit log: every step of every request and every operator query, oldest first.
    Audit {
        /// Only this workspace's.
        #[arg(long)]
        workspace: Option<String>,
    },
}

#[derive(Debug, Args)]
struct RequestArgs {
    #[command(subcommand)]
    command: RequestCommand,
}

#[derive(Debug, Subcommand)]
enum RequestCommand {
    /// An operator asks for access to a workspace's data.
    Create {
        /// The workspace (on a dedicated cluster).
        #[arg(long)]
        workspace: String,
        /// The operator (support principal).
        #[arg(long)]
        operator: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// How long access lasts once approved (1-96, default 8).
        #[arg(long)]
        hours: Option<u32>,
    },
    /// Approve a pending request.
    Approve {
        /// The request's id.
        #[arg(long)]
        id: String,
    },
    /// Reject a pending request.
    Reject {
        /// The request's id.
        #[arg(long)]
        id: String,
    },
    /// Show a request.
    Show {
        /// The request's id.
        #[arg(long)]
        id: String,
    },
    /// List requests.
    List,
}

fn show(r: &LockboxRequest) -> String {
    fields(&[
        ("id", r.id.clone()),
        ("status", format!("{:?}", r.status)),
        ("workspace", r.workspace.clone()),
        ("operator", r.operator.clone()),
        ("reason", r.reason.clone()),
        ("durationHours", r.duration_hours.to_string()),
        ("expiresAt", r.expires_at.to_rfc3339()),
        (
            "accessEndsAt",
            r.access_ends_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        ),
    ])
}

/// Runs `logvault lockbox ...`.
pub(crate) async fn run(global: &GlobalArgs, args: LockboxArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    let control = engine.control();
    let request = match args.command {
        LockboxCommand::Audit { workspace } => {
            let log = control.lockbox_audit(workspace.as_deref())?;
            return print(global.output, &log, |log| {
                let rows: Vec<Vec<String>> = log
                    .iter()
                    .map(|e| {
                        vec![
                            e.time.to_rfc3339(),
                            e.workspace.clone(),
                            e.operator.clone(),
                            e.action.clone(),
                            e.detail.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                table(
                    &["TIME", "WORKSPACE", "OPERATOR", "ACTION", "DETAIL"],
                    &rows,
                )
            });
        }
        LockboxCommand::Request(RequestArgs { command }) => match command {
            RequestCommand::Create {
                workspace,
                operator,
                reason,
                hours,
            } => control.create_lockbox_request(&workspace, &operator, &reason, hours)?,
            RequestCommand::Approve { id } => control.decide_lockbox_request(&id, true)?,
            RequestCommand::Reject { id } => control.decide_lockbox_request(&id, false)?,
            RequestCommand::Show { id } => control.get_lockbox_request(&id)?,
            RequestCommand::List => {
                let all = control.list_lockbox_requests()?;
                return print(global.output, &all, |all| {
                    let rows: Vec<Vec<String>> = all
                        .iter()
                        .map(|r| {
                            vec![
                                r.id.clone(),
                                format!("{:?}", r.status),
                                r.workspace.clone(),
                                r.operator.clone(),
                            ]
                        })
                        .collect();
                    table(&["ID", "STATUS", "WORKSPACE", "OPERATOR"], &rows)
                });
            }
        },
    };
    print(global.output, &request, show)
}
