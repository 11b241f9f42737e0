//! `logvault identity ...`: user-assigned managed identities (R-C2), the principals a cluster
//! can use before it exists.

use clap::{Args, Subcommand};
use logvault::kms::{Identity, IdentityOptions};

use crate::args::GlobalArgs;
use crate::cmd::vault::vault_err;
use crate::output::{fields, print, table};

/// Arguments of `logvault identity`.
#[derive(Debug, Args)]
pub(crate) struct IdentityArgs {
    #[command(subcommand)]
    command: IdentityCommand,
}

#[derive(Debug, Subcommand)]
enum IdentityCommand {
    /// Create a user-assigned identity.
    Create {
        /// Its name (3-128 letters, digits, `-` and `_`).
        #[arg(long)]
        name: String,
        /// Its resource group.
        #[arg(long, default_value = "local")]
        resource_group: String,
        /// Its subscription.
        #[arg(long, default_value = "local")]
        subscription: String,
        /// Its region.
        #[arg(long, default_value = "local")]
        location: String,
    },
    /// Show an identity by name, resource id or principal id.
    Show {
        /// The identity's name, resource id or principal id.
        #[arg(long)]
        name: String,
    },
    /// List identities (user-assigned, then system-assigned).
    List,
}

/// Runs `logvault identity ...`.
pub(crate) async fn run(global: &GlobalArgs, args: IdentityArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    let directory = engine.vault().identities();
    match args.command {
        IdentityCommand::Create {
            name,
            resource_group,
            subscription,
            location,
        } => {
            let options = IdentityOptions {
                subscription,
                resource_group,
                location,
                ..IdentityOptions::default()
            };
            let identity = directory
                .create_user_assigned(&name, &options)
                .map_err(vault_err)?;
            print(global.output, &identity, show_table)
        }
        IdentityCommand::Show { name } => {
            let principal = logvault::kms::PrincipalId(name.clone());
            let found = match directory.by_principal(&principal).map_err(vault_err)? {
                Some(identity) => identity,
                None => match directory.by_id(&name).map_err(vault_err)? {
                    Some(identity) => identity,
                    None => directory.user_assigned(&name).map_err(vault_err)?,
                },
            };
            print(global.output, &found, show_table)
        }
        IdentityCommand::List => {
            let all = directory.list().map_err(vault_err)?;
            print(global.output, &all, |all| list_table(all))
        }
    }
}

fn show_table(i: &Identity) -> String {
    fields(&[
        ("name", i.name.clone()),
        ("type", i.resource_type.clone()),
        ("principalId", i.principal_id.to_string()),
        ("clientId", i.client_id.clone()),
        ("tenantId", i.tenant_id.clone()),
        ("location", i.location.clone()),
        ("id", i.id.clone()),
    ])
}

fn list_table(all: &[Identity]) -> String {
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|i| {
            vec![
                i.name.clone(),
                i.resource_type.clone(),
                i.principal_id.to_string(),
                i.resource_group.clone(),
            ]
        })
        .collect();
    table(&["NAME", "TYPE", "PRINCIPAL ID", "RESOURCE GROUP"], &rows)
}
