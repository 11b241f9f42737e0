//! `logvault saved-search ...`: saved queries and functions of a workspace (R-H1).

use clap::{Args, Subcommand};
use logvault::control::{SavedSearch, parse_function_parameters};

use crate::args::GlobalArgs;
use crate::output::{at, fields, print, table};

/// Arguments of `logvault saved-search`.
#[derive(Debug, Args)]
pub(crate) struct SavedSearchArgs {
    #[command(subcommand)]
    command: SavedSearchCommand,
}

#[derive(Debug, Subcommand)]
enum SavedSearchCommand {
    /// Save a query (a function when it has an alias); replaces one with the same id.
    Create {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// Its id.
        #[arg(long)]
        id: String,
        /// Its display name.
        #[arg(long)]
        display_name: String,
        /// Its category.
        #[arg(long)]
        category: String,
        /// The KQL text.
        #[arg(long)]
        query: String,
        /// The alias it is callable by from any query of the workspace.
        #[arg(long)]
        function_alias: Option<String>,
        /// Its parameters: `name:type=default, ...`.
        #[arg(long, default_value = "")]
        function_parameters: String,
    },
    /// Show a saved search.
    Show {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// Its id.
        #[arg(long)]
        id: String,
    },
    /// List the saved searches of a workspace.
    List {
        /// The workspace.
        #[arg(long)]
        workspace: String,
    },
    /// Delete a saved search.
    Delete {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// Its id.
        #[arg(long)]
        id: String,
    },
    /// Write every saved search of a workspace to a JSON file (or stdout with `-`).
    Export {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// The file.
        #[arg(long, default_value = "-")]
        file: String,
    },
}

fn show(v: &serde_json::Value) -> String {
    let s = |p: &str| at(v, p);
    fields(&[
        ("id", s("/id")),
        ("displayName", s("/displayName")),
        ("category", s("/category")),
        ("functionAlias", s("/functionAlias")),
        ("query", s("/query")),
    ])
}

/// Writes saved searches as a JSON array to `file` (`-`: stdout).
pub(crate) fn export(searches: &[SavedSearch], file: &str) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(searches)?;
    if file == "-" {
        use std::io::Write;
        writeln!(std::io::stdout().lock(), "{json}")?;
    } else {
        std::fs::write(file, json + "\n")
            .map_err(|e| anyhow::anyhow!("writing saved searches to {file}: {e}"))?;
    }
    Ok(())
}

/// Runs `logvault saved-search ...`.
pub(crate) async fn run(global: &GlobalArgs, args: SavedSearchArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    match args.command {
        SavedSearchCommand::Create {
            workspace,
            id,
            display_name,
            category,
            query,
            function_alias,
            function_parameters,
        } => {
            let search = SavedSearch {
                id,
                category,
                display_name,
                query,
                function_alias,
                function_parameters: parse_function_parameters(&function_parameters)?,
                updated: chrono::Utc::now(),
            };
            let saved = engine.save_search(&workspace, search).await?;
            print(global.output, &saved, |s| show(&serde_json::json!(s)))
        }
        SavedSearchCommand::Show { workspace, id } => {
            let saved = engine.saved_search(&workspace, &id).await?;
            print(global.output, &saved, |s| show(&serde_json::json!(s)))
        }
        SavedSearchCommand::List { workspace } => {
            let all = engine.saved_searches(&workspace).await?;
            print(global.output, &all, |all| {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|s| {
                        vec![
                            s.id.clone(),
                            s.category.clone(),
                            s.display_name.clone(),
                            s.function_alias.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                table(&["ID", "CATEGORY", "DISPLAY NAME", "FUNCTION ALIAS"], &rows)
            })
        }
        SavedSearchCommand::Delete { workspace, id } => {
            engine.delete_saved_search(&workspace, &id).await?;
            print(
                global.output,
                &serde_json::json!({ "id": id, "deleted": true }),
                |_| format!("saved search {id} deleted"),
            )
        }
        SavedSearchCommand::Export { workspace, file } => {
            let all = engine.saved_searches(&workspace).await?;
            export(&all, &file)?;
            if file != "-" {
                crate::output::note(&format!("exported {} saved searches to {file}", all.len()));
            }
            Ok(())
        }
    }
}
