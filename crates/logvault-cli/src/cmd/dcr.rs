//! `logvault dcr ...`: data collection rules of the Logs Ingestion API (a stream into a table
//! of a workspace, with an optional KQL transformation).

use clap::{Args, Subcommand};
use logvault_server::{DataCollectionRule, DataFlow, RuleSpec, RuleStore};

use crate::args::GlobalArgs;
use crate::output::{fields, print, table};

/// Arguments of `logvault dcr`.
#[derive(Debug, Args)]
pub(crate) struct DcrArgs {
    #[command(subcommand)]
    command: DcrCommand,
}

#[derive(Debug, Subcommand)]
enum DcrCommand {
    /// Create a rule: clients post stream `Custom-S` to `/dataCollectionRules/{immutableId}`.
    Create {
        /// The rule's name.
        #[arg(long)]
        name: String,
        /// The workspace its rows go to.
        #[arg(long)]
        workspace: String,
        /// The stream clients post (`Custom-<Name>`).
        #[arg(long)]
        stream: String,
        /// The table of the workspace the stream's rows go to.
        #[arg(long)]
        table: String,
        /// KQL run on each batch, reading the table `source` (`source | where ...`).
        #[arg(long)]
        transform: Option<String>,
    },
    /// Show a rule by name or immutable id.
    Show {
        /// The rule's name or immutable id.
        #[arg(long)]
        name: String,
    },
    /// List rules.
    List,
    /// Delete a rule.
    Delete {
        /// The rule's name or immutable id.
        #[arg(long)]
        name: String,
    },
}

fn show_table(rule: &DataCollectionRule) -> String {
    let mut pairs = vec![
        ("name", rule.name.clone()),
        ("immutableId", rule.immutable_id.clone()),
        ("workspace", rule.workspace.clone()),
    ];
    for flow in &rule.data_flows {
        pairs.push(("stream", format!("{} -> {}", flow.stream, flow.table)));
        if let Some(kql) = &flow.transform_kql {
            pairs.push(("transformKql", kql.clone()));
        }
    }
    fields(&pairs)
}

/// Runs `logvault dcr ...`.
pub(crate) async fn run(global: &GlobalArgs, args: DcrArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    let rules = RuleStore::new(engine.home().root());
    match args.command {
        DcrCommand::Create {
            name,
            workspace,
            stream,
            table,
            transform,
        } => {
            engine.control().get_workspace(&workspace)?;
            let rule = rules.create(
                RuleSpec {
                    name,
                    workspace,
                    data_flows: vec![DataFlow {
                        stream,
                        table,
                        transform_kql: transform,
                    }],
                },
                engine.clock().now(),
            )?;
            print(global.output, &rule, show_table)
        }
        DcrCommand::Show { name } => print(global.output, &rules.get(&name)?, show_table),
        DcrCommand::List => {
            let all = rules.list()?;
            print(global.output, &all, |all| {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|r| {
                        vec![
                            r.name.clone(),
                            r.immutable_id.clone(),
                            r.workspace.clone(),
                            r.data_flows
                                .iter()
                                .map(|f| format!("{} -> {}", f.stream, f.table))
                                .collect::<Vec<_>>()
                                .join(", "),
                        ]
                    })
                    .collect();
                table(&["NAME", "IMMUTABLE ID", "WORKSPACE", "STREAMS"], &rows)
            })
        }
        DcrCommand::Delete { name } => print(global.output, &rules.delete(&name)?, show_table),
    }
}
