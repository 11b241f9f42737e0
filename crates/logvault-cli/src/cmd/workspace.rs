//! `logvault workspace ...`: workspaces and their links to clusters (R-D).

use clap::{Args, Subcommand};
use logvault::Engine;
use logvault::control::{Workspace, WorkspaceSpec};

use crate::args::{GlobalArgs, Placement};
use crate::output::{at, fields, print, table};

/// Arguments of `logvault workspace`.
#[derive(Debug, Args)]
pub(crate) struct WorkspaceArgs {
    #[command(subcommand)]
    command: WorkspaceCommand,
}

#[derive(Debug, Subcommand)]
enum WorkspaceCommand {
    /// Create a workspace.
    Create {
        /// The workspace's name (4-63 letters, digits and hyphens).
        #[arg(long)]
        name: String,
        #[command(flatten)]
        placement: Placement,
    },
    /// Show a workspace (`features.clusterResourceId` while linked).
    Show {
        /// The workspace's name.
        #[arg(long)]
        name: String,
    },
    /// List workspaces.
    List,
    /// Delete a workspace (soft: recoverable for 14 days, still linked).
    Delete {
        /// The workspace's name.
        #[arg(long)]
        name: String,
    },
    /// Recover a deleted workspace as it was.
    Recover {
        /// The workspace's name.
        #[arg(long)]
        name: String,
    },
    /// Link a workspace to a cluster: new data goes under the cluster's key.
    Link {
        /// The workspace's name.
        #[arg(long)]
        name: String,
        /// The cluster's name.
        #[arg(long)]
        cluster: String,
    },
    /// Unlink a workspace: new data goes under the service key again.
    Unlink {
        /// The workspace's name.
        #[arg(long)]
        name: String,
    },
    /// Storage accounts linked for saved queries (`Query`) and log alerts (`Alerts`).
    LinkedStorage(super::storage_account::LinkedStorageArgs),
    /// The workspace's query history (not kept while linked for `Query`), newest first.
    QueryHistory {
        /// The workspace's name.
        #[arg(long)]
        name: String,
    },
    /// Change a workspace's settings.
    Update {
        /// The workspace's name.
        #[arg(long)]
        name: String,
        /// Days of its newest data the hot cache keeps (1-730), or `default` for the home's
        /// (`hotWindowSecs` in config.json, 14 days unless changed).
        #[arg(long, value_parser = parse_hot_cache_days)]
        hot_cache_days: Option<HotCacheDays>,
        /// Its resource tags, `NAME=VALUE`, replacing the ones it has (repeat for several;
        /// `--tag ''` alone removes them all).
        #[arg(long = "tag", value_name = "NAME=VALUE")]
        tags: Vec<String>,
    },
}

/// `--hot-cache-days`: a number of days, or the home's default.
#[derive(Debug, Clone, Copy)]
struct HotCacheDays(Option<u32>);

fn parse_hot_cache_days(s: &str) -> Result<HotCacheDays, String> {
    if s.eq_ignore_ascii_case("default") {
        return Ok(HotCacheDays(None));
    }
    s.parse::<u32>()
        .map(|d| HotCacheDays(Some(d)))
        .map_err(|_| format!("expected a number of days or `default`, got {s:?}"))
}

fn view(engine: &Engine, ws: &Workspace) -> serde_json::Value {
    engine.workspace_view(ws)
}

fn show_table(v: &serde_json::Value) -> String {
    let s = |p: &str| at(v, p);
    fields(&[
        ("name", s("/name")),
        ("id", s("/id")),
        ("location", s("/location")),
        ("customerId", s("/customerId")),
        ("clusterResourceId", s("/features/clusterResourceId")),
        (
            "hotCacheWindowDays",
            v.pointer("/hotCacheWindowDays")
                .map_or_else(|| "default".to_owned(), ToString::to_string),
        ),
    ])
}

/// Runs `logvault workspace ...`.
pub(crate) async fn run(global: &GlobalArgs, args: WorkspaceArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    let control = engine.control();
    let ws = match args.command {
        WorkspaceCommand::Create { name, placement } => {
            control.create_workspace(WorkspaceSpec {
                name,
                region: placement.region,
                subscription: placement.subscription,
                resource_group: placement.resource_group,
            })?
        }
        WorkspaceCommand::Show { name } => control.get_workspace(&name)?,
        WorkspaceCommand::List => {
            let all: Vec<serde_json::Value> = control
                .list_workspaces()?
                .iter()
                .map(|w| view(&engine, w))
                .collect();
            return print(global.output, &all, |all| {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|v| {
                        let s = |p: &str| at(v, p);
                        vec![s("/name"), s("/location"), s("/features/clusterResourceId")]
                    })
                    .collect();
                table(&["NAME", "LOCATION", "CLUSTER"], &rows)
            });
        }
        WorkspaceCommand::Delete { name } => control.delete_workspace(&name)?,
        WorkspaceCommand::Recover { name } => control.recover_workspace(&name)?,
        WorkspaceCommand::Link { name, cluster } => control.link_workspace(&name, &cluster)?,
        WorkspaceCommand::Unlink { name } => control.unlink_workspace(&name)?,
        WorkspaceCommand::Update {
            name,
            hot_cache_days,
            tags,
        } => {
            if hot_cache_days.is_none() && tags.is_empty() {
                anyhow::bail!("nothing to change: give --hot-cache-days and/or --tag NAME=VALUE");
            }
            let mut ws = control.get_workspace(&name)?;
            if let Some(days) = hot_cache_days {
                ws = engine.set_hot_window(&name, days.0)?;
            }
            if !tags.is_empty() {
                let mut map = std::collections::BTreeMap::new();
                for tag in tags.iter().filter(|t| !t.is_empty()) {
                    let Some((k, v)) = tag.split_once('=') else {
                        anyhow::bail!("--tag {tag:?}: expected NAME=VALUE");
                    };
                    map.insert(k.to_owned(), v.to_owned());
                }
                ws = control.set_workspace_tags(&name, map)?;
            }
            ws
        }
        WorkspaceCommand::QueryHistory { name } => {
            let history = engine.query_history(&name).await?;
            return print(global.output, &history, |h| {
                let rows: Vec<Vec<String>> = h
                    .iter()
                    .map(|e| vec![e.time.to_rfc3339(), e.language.clone(), e.query.clone()])
                    .collect();
                table(&["TIME", "LANGUAGE", "QUERY"], &rows)
            });
        }
        WorkspaceCommand::LinkedStorage(linked) => {
            return super::storage_account::run_linked(global, &engine, linked).await;
        }
    };
    print(global.output, &view(&engine, &ws), show_table)
}
