//! `logvault status`: key states and workspace figures.

use clap::Args;

use crate::args::GlobalArgs;
use crate::output::{print, table};

/// Arguments of `logvault status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Only this workspace (and its cluster).
    #[arg(long)]
    workspace: Option<String>,
}

/// Runs `logvault status`.
pub(crate) async fn run(global: &GlobalArgs, args: StatusArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    let status = engine.status(args.workspace.as_deref()).await?;
    print(global.output, &status, |s| {
        let t = |v: Option<chrono::DateTime<chrono::Utc>>| {
            v.map(|t| t.to_rfc3339()).unwrap_or_default()
        };
        let clusters: Vec<Vec<String>> = s
            .clusters
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    serde_json::to_value(c.key_state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    c.key.clone().unwrap_or_default(),
                    c.key_version_in_use.clone().unwrap_or_default(),
                    t(c.last_unwrap),
                    t(c.next_check),
                    c.reason.clone().unwrap_or_default(),
                ]
            })
            .collect();
        let workspaces: Vec<Vec<String>> = s
            .workspaces
            .iter()
            .map(|w| {
                vec![
                    w.name.clone(),
                    w.cluster.clone().unwrap_or_default(),
                    w.rows.to_string(),
                    w.segments.to_string(),
                    w.dropped_rows.to_string(),
                    w.hot_cache.hits.to_string(),
                    w.hot_cache.misses.to_string(),
                ]
            })
            .collect();
        format!(
            "{}\n\n{}",
            table(
                &[
                    "CLUSTER",
                    "KEY STATE",
                    "KEY",
                    "VERSION",
                    "LAST UNWRAP",
                    "NEXT CHECK",
                    "REASON"
                ],
                &clusters
            ),
            table(
                &[
                    "WORKSPACE",
                    "CLUSTER",
                    "ROWS",
                    "SEGMENTS",
                    "DROPPED",
                    "CACHE HITS",
                    "MISSES"
                ],
                &workspaces
            )
        )
    })
}
