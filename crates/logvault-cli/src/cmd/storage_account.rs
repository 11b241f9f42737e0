//! `logvault storage-account ...` and `logvault workspace linked-storage ...`: the customer's
//! storage accounts and their links to workspaces for saved queries and alerts (R-H2, R-H3).

use clap::{Args, Subcommand};
use logvault::Engine;
use logvault::control::{
    DataSourceType, KeyVaultProperties, StorageAccountResource, StorageAccountSpec,
};

use crate::args::GlobalArgs;
use crate::output::{at, fields, print, table};

/// Arguments of `logvault storage-account`.
#[derive(Debug, Args)]
pub(crate) struct StorageAccountArgs {
    #[command(subcommand)]
    command: StorageAccountCommand,
}

/// A customer key, as `--key-vault-uri`, `--key-name`, `--key-version`.
#[derive(Debug, Args)]
struct KeyArgs {
    /// The vault's URI (`https://NAME.vault.local`).
    #[arg(long, requires = "key_name")]
    key_vault_uri: Option<String>,
    /// The key's name.
    #[arg(long, requires = "key_vault_uri")]
    key_name: Option<String>,
    /// The key version; omitted: the latest (autorotation).
    #[arg(long, requires = "key_name")]
    key_version: Option<String>,
}

impl KeyArgs {
    fn key(self) -> Option<KeyVaultProperties> {
        Some(KeyVaultProperties {
            key_vault_uri: self.key_vault_uri?,
            key_name: self.key_name?,
            key_version: self.key_version.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Subcommand)]
enum StorageAccountCommand {
    /// Create a storage account (under the service key, or a customer key).
    Create {
        /// Its name: 3-24 lowercase letters and digits.
        #[arg(long)]
        name: String,
        /// Region (default `local`).
        #[arg(long)]
        region: Option<String>,
        /// A user-assigned identity to use the key with (default: a system-assigned one,
        /// which must be granted the key before `update` sets it).
        #[arg(long)]
        identity: Option<String>,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Set or change the customer key of a storage account.
    Update {
        /// Its name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Show a storage account.
    Show {
        /// Its name.
        #[arg(long)]
        name: String,
    },
    /// List storage accounts.
    List,
    /// Delete a storage account and what it holds (not while linked).
    Delete {
        /// Its name.
        #[arg(long)]
        name: String,
    },
}

fn json(s: &StorageAccountResource) -> serde_json::Value {
    serde_json::json!({
        "name": s.name,
        "id": s.resource_id(),
        "location": s.region,
        "identity": {
            "type": s.identity.kind,
            "principalId": s.identity.principal_id,
            "userAssignedIdentity": s.identity.user_assigned,
        },
        "encryption": {
            "keySource": if s.key.is_some() { "Microsoft.Keyvault" } else { "Microsoft.Storage" },
            "keyVaultProperties": s.key,
        },
        "created": s.created,
        "lastModified": s.last_modified,
    })
}

fn show(v: &serde_json::Value) -> String {
    let s = |p: &str| at(v, p);
    fields(&[
        ("name", s("/name")),
        ("id", s("/id")),
        ("location", s("/location")),
        ("principalId", s("/identity/principalId")),
        ("keySource", s("/encryption/keySource")),
        ("keyName", s("/encryption/keyVaultProperties/keyName")),
    ])
}

/// Runs `logvault storage-account ...`.
pub(crate) async fn run(global: &GlobalArgs, args: StorageAccountArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    let account = match args.command {
        StorageAccountCommand::Create {
            name,
            region,
            identity,
            key,
        } => {
            engine
                .create_storage_account(StorageAccountSpec {
                    name,
                    region,
                    user_identity: identity,
                    key: key.key(),
                })
                .await?
        }
        StorageAccountCommand::Update { name, key } => {
            let key = key
                .key()
                .ok_or_else(|| anyhow::anyhow!("--key-vault-uri and --key-name are required"))?;
            engine.set_storage_account_key(&name, key).await?
        }
        StorageAccountCommand::Show { name } => engine.control().get_storage_account(&name)?,
        StorageAccountCommand::List => {
            let all: Vec<_> = engine
                .control()
                .list_storage_accounts()?
                .iter()
                .map(json)
                .collect();
            return print(global.output, &all, |all| {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|v| {
                        vec![
                            at(v, "/name"),
                            at(v, "/location"),
                            at(v, "/encryption/keySource"),
                        ]
                    })
                    .collect();
                table(&["NAME", "LOCATION", "KEY SOURCE"], &rows)
            });
        }
        StorageAccountCommand::Delete { name } => engine.delete_storage_account(&name).await?,
    };
    print(global.output, &json(&account), show)
}

/// Arguments of `logvault workspace linked-storage`.
#[derive(Debug, Args)]
pub(crate) struct LinkedStorageArgs {
    #[command(subcommand)]
    command: LinkedStorageCommand,
}

#[derive(Debug, Subcommand)]
enum LinkedStorageCommand {
    /// Link a storage account for saved queries (`Query`) or log alerts (`Alerts`).
    Create {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// `Query` or `Alerts`.
        #[arg(long = "type")]
        kind: DataSourceType,
        /// The storage account (name or resource id).
        #[arg(long)]
        storage_accounts: String,
        /// Write the workspace's saved searches to this file first (linking for `Query`
        /// removes them).
        #[arg(long)]
        export_saved_searches: Option<String>,
        /// Go ahead although linking for `Query` removes the saved searches.
        #[arg(long)]
        yes: bool,
    },
    /// List a workspace's links.
    List {
        /// The workspace.
        #[arg(long)]
        workspace: String,
    },
    /// Remove a link.
    Delete {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// `Query` or `Alerts`.
        #[arg(long = "type")]
        kind: DataSourceType,
    },
}

fn links_json(engine: &Engine, workspace: &str) -> anyhow::Result<serde_json::Value> {
    let ws = engine.control().get_workspace(workspace)?;
    Ok(serde_json::Value::Array(
        ws.linked_storage
            .iter()
            .map(|l| {
                let id = engine
                    .control()
                    .get_storage_account(&l.storage_account)
                    .map(|s| s.resource_id())
                    .unwrap_or_else(|_| l.storage_account.clone());
                serde_json::json!({
                    "dataSourceType": l.data_source_type,
                    "storageAccountIds": [id],
                    "storageAccount": l.storage_account,
                    "created": l.created,
                })
            })
            .collect(),
    ))
}

fn links_table(v: &serde_json::Value) -> String {
    let rows: Vec<Vec<String>> = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| vec![at(l, "/dataSourceType"), at(l, "/storageAccount")])
                .collect()
        })
        .unwrap_or_default();
    table(&["TYPE", "STORAGE ACCOUNT"], &rows)
}

/// Runs `logvault workspace linked-storage ...`.
pub(crate) async fn run_linked(
    global: &GlobalArgs,
    engine: &Engine,
    args: LinkedStorageArgs,
) -> anyhow::Result<()> {
    match args.command {
        LinkedStorageCommand::Create {
            workspace,
            kind,
            storage_accounts,
            export_saved_searches,
            yes,
        } => {
            // A resource id names the account by its last segment.
            let account = storage_accounts
                .rsplit('/')
                .next()
                .unwrap_or(&storage_accounts)
                .to_owned();
            engine
                .control()
                .check_link_storage(&workspace, kind, &account)?;
            if kind == DataSourceType::Query {
                let existing = engine.saved_searches(&workspace).await?;
                if let Some(file) = &export_saved_searches {
                    super::saved_search::export(&existing, file)?;
                    crate::output::note(&format!(
                        "exported {} saved searches to {file}",
                        existing.len()
                    ));
                }
                if !existing.is_empty() {
                    crate::output::note(&format!(
                        "warning: linking workspace {workspace} for Query removes its {} saved \
                         searches (and its query history); export them first with \
                         --export-saved-searches FILE",
                        existing.len()
                    ));
                    if !yes {
                        anyhow::bail!(
                            "linking for Query would remove {} saved searches of workspace \
                             {workspace}: rerun with --yes (and --export-saved-searches FILE to \
                             keep a copy)",
                            existing.len()
                        );
                    }
                }
            }
            let outcome = engine.link_storage(&workspace, kind, &account).await?;
            if !outcome.removed_saved_searches.is_empty() {
                crate::output::note(&format!(
                    "removed {} saved searches from workspace {workspace}",
                    outcome.removed_saved_searches.len()
                ));
            }
            print(global.output, &links_json(engine, &workspace)?, links_table)
        }
        LinkedStorageCommand::List { workspace } => {
            print(global.output, &links_json(engine, &workspace)?, links_table)
        }
        LinkedStorageCommand::Delete { workspace, kind } => {
            engine.unlink_storage(&workspace, kind).await?;
            print(global.output, &links_json(engine, &workspace)?, links_table)
        }
    }
}
