//! `logvault role assignment ...`: role assignments on a local vault (R-A3).

use chrono::SecondsFormat;
use clap::{Args, Subcommand};
use logvault::kms::local::RoleAssignment;

use crate::args::GlobalArgs;
use crate::cmd::vault::{resolve_principal, vault_err};
use crate::output::{fields, print, table};

/// Arguments of `logvault role`.
#[derive(Debug, Args)]
pub(crate) struct RoleArgs {
    #[command(subcommand)]
    command: RoleCommand,
}

#[derive(Debug, Subcommand)]
enum RoleCommand {
    /// Role assignments on a vault.
    #[command(subcommand)]
    Assignment(AssignmentCommand),
}

/// Who gets which role on which vault.
#[derive(Debug, Args)]
struct Assignment {
    /// The principal (object) id, or a user-assigned identity's name or resource id.
    #[arg(long)]
    assignee: String,
    /// The role: "Key Vault Crypto Service Encryption User" (get, wrapKey, unwrapKey), by name
    /// or definition id.
    #[arg(long)]
    role: String,
    /// The vault (the assignment's scope).
    #[arg(long)]
    vault: String,
}

#[derive(Debug, Subcommand)]
enum AssignmentCommand {
    /// Assign a role on a vault to a principal.
    Create(Assignment),
    /// Remove a role assignment.
    Delete(Assignment),
    /// List the role assignments on a vault.
    List {
        /// The vault.
        #[arg(long)]
        vault: String,
    },
}

/// Runs `logvault role ...`.
pub(crate) async fn run(global: &GlobalArgs, args: RoleArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    let vault = engine.vault();
    let RoleCommand::Assignment(command) = args.command;
    match command {
        AssignmentCommand::Create(a) => {
            let principal = resolve_principal(vault, &a.assignee)?;
            let done = vault
                .assign_role(&a.vault, &principal, &a.role)
                .map_err(vault_err)?;
            print(global.output, &done, show_table)
        }
        AssignmentCommand::Delete(a) => {
            let principal = resolve_principal(vault, &a.assignee)?;
            let done = vault
                .delete_role_assignment(&a.vault, &principal, &a.role)
                .map_err(vault_err)?;
            print(global.output, &done, show_table)
        }
        AssignmentCommand::List { vault: name } => {
            let all = vault.role_assignments(&name).map_err(vault_err)?;
            print(global.output, &all, |all| list_table(all))
        }
    }
}

fn show_table(r: &RoleAssignment) -> String {
    fields(&[
        ("principalId", r.principal_id.clone()),
        ("roleDefinitionName", r.role_definition_name.clone()),
        ("scope", r.scope.clone()),
        ("id", r.id.clone()),
    ])
}

fn list_table(all: &[RoleAssignment]) -> String {
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|r| {
            vec![
                r.principal_id.clone(),
                r.role_definition_name.clone(),
                r.created_on.to_rfc3339_opts(SecondsFormat::Secs, true),
            ]
        })
        .collect();
    table(&["PRINCIPAL ID", "ROLE", "CREATED"], &rows)
}
