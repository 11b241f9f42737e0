//! `logvault vault ...`: the local key vaults (R-A): create, show, list, update, access
//! policies, outage injection and the audit log.

use chrono::SecondsFormat;
use clap::{Args, Subcommand};
use logvault::kms::local::{
    AuditEntry, CreateVaultOptions, LocalVault, OutageMode, UpdateVaultOptions, VaultInfo,
};
use logvault::kms::{PrincipalId, VaultError};

use crate::args::GlobalArgs;
use crate::output::{fields, print, table};

/// Arguments of `logvault vault`.
#[derive(Debug, Args)]
pub(crate) struct VaultArgs {
    #[command(subcommand)]
    command: VaultCommand,
}

#[derive(Debug, Subcommand)]
enum VaultCommand {
    /// Create a vault (URI https://NAME.vault.local).
    Create {
        /// The vault's name (3-24 letters, digits and hyphens, starting with a letter).
        #[arg(long)]
        name: String,
        /// Its region.
        #[arg(long, default_value = "local")]
        region: String,
        /// Its tenant.
        #[arg(long, default_value = "local")]
        tenant: String,
        /// Keep deleted keys recoverable for the retention period.
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set, default_value_t = true)]
        soft_delete: bool,
        /// Refuse purges of deleted keys until the retention period ends.
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set, default_value_t = false)]
        purge_protection: bool,
        /// How long deleted keys stay recoverable, in days (7-90).
        #[arg(long, default_value_t = 14)]
        retention_days: u32,
    },
    /// Show a vault: properties, access policies, role assignments, outage.
    Show {
        /// The vault's name.
        #[arg(long)]
        name: String,
    },
    /// List the vaults.
    List,
    /// Turn on soft delete or purge protection (they cannot be turned off again).
    Update {
        /// The vault's name.
        #[arg(long)]
        name: String,
        /// Soft delete.
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
        soft_delete: Option<bool>,
        /// Purge protection.
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
        purge_protection: Option<bool>,
    },
    /// Grant key permissions to a principal (replacing those it had).
    SetPolicy {
        /// The vault's name.
        #[arg(long)]
        name: String,
        /// The principal (object) id, or a user-assigned identity's name or resource id.
        #[arg(long)]
        object_id: String,
        /// Key permissions: get, wrapKey, unwrapKey (others of Azure are accepted).
        #[arg(long, num_args = 1.., required = true)]
        key_permissions: Vec<String>,
    },
    /// Remove a principal's access policy.
    DeletePolicy {
        /// The vault's name.
        #[arg(long)]
        name: String,
        /// The principal (object) id, or a user-assigned identity's name or resource id.
        #[arg(long)]
        object_id: String,
    },
    /// Make the vault unreachable (timeout, refused, dns) or reachable again (none).
    Outage {
        /// The vault's name.
        #[arg(long)]
        name: String,
        /// The outage mode.
        #[arg(long, value_parser = parse_outage)]
        mode: OutageMode,
    },
    /// The audit log of get, wrap and unwrap calls (JSON: an array of entries).
    Audit {
        /// The vault's name.
        #[arg(long)]
        name: String,
    },
}

fn parse_outage(s: &str) -> Result<OutageMode, String> {
    s.parse().map_err(|e: VaultError| e.to_string())
}

/// A vault as `vault show` prints it: the vault's own fields (its `uri` is its name,
/// `https://NAME.vault.local`, what key ids and clusters' `keyVaultUri` use), plus `vaultUri`,
/// where `logvault serve` serves its keys (`https://HOST:PORT/vaults/NAME/`: what Azure's
/// `KeyClient` is given; the address `serve` last listened on, else its default).
#[derive(Debug, serde::Serialize)]
struct Shown {
    #[serde(flatten)]
    info: VaultInfo,
    #[serde(rename = "vaultUri")]
    vault_uri: String,
}

fn shown(engine: &logvault::Engine, info: VaultInfo) -> Shown {
    let vault_uri = logvault_server::served_vault_uri(engine.home().root(), &info.properties.name);
    Shown { info, vault_uri }
}

/// A vault error as one line with its HTTP-like status, e.g. `404 vault x not found`.
pub(crate) fn vault_err(e: VaultError) -> anyhow::Error {
    anyhow::anyhow!("{} {e}", e.kind().http_status())
}

/// The principal named by `who`: a principal id, or a user-assigned identity's name or id.
pub(crate) fn resolve_principal(vault: &LocalVault, who: &str) -> anyhow::Result<PrincipalId> {
    let as_id = PrincipalId(who.to_owned());
    let directory = vault.identities();
    if directory.by_principal(&as_id).map_err(vault_err)?.is_some() {
        return Ok(as_id);
    }
    match directory.user_assigned(who) {
        Ok(identity) => Ok(identity.principal_id),
        // Not an identity's name either: let the vault say what is wrong with the id.
        Err(_) => Ok(as_id),
    }
}

/// Runs `logvault vault ...`.
pub(crate) async fn run(global: &GlobalArgs, args: VaultArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    let vault = engine.vault();
    let format = global.output;
    match args.command {
        VaultCommand::Create {
            name,
            region,
            tenant,
            soft_delete,
            purge_protection,
            retention_days,
        } => {
            let options = CreateVaultOptions {
                region,
                tenant,
                soft_delete,
                purge_protection,
                retention_days: Some(retention_days),
            };
            let info = vault.create_vault(&name, &options).map_err(vault_err)?;
            print(format, &shown(&engine, info), show_table)
        }
        VaultCommand::Show { name } => print(
            format,
            &shown(&engine, vault.vault_info(&name).map_err(vault_err)?),
            show_table,
        ),
        VaultCommand::List => {
            let all: Vec<Shown> = vault
                .list_vaults()
                .map_err(vault_err)?
                .into_iter()
                .map(|v| shown(&engine, v))
                .collect();
            print(format, &all, |v| list_table(v))
        }
        VaultCommand::Update {
            name,
            soft_delete,
            purge_protection,
        } => {
            let options = UpdateVaultOptions {
                soft_delete,
                purge_protection,
            };
            let info = vault.update_vault(&name, &options).map_err(vault_err)?;
            print(format, &shown(&engine, info), show_table)
        }
        VaultCommand::SetPolicy {
            name,
            object_id,
            key_permissions,
        } => {
            let principal = resolve_principal(vault, &object_id)?;
            vault
                .set_policy(&name, &principal, &key_permissions)
                .map_err(vault_err)?;
            print(
                format,
                &shown(&engine, vault.vault_info(&name).map_err(vault_err)?),
                show_table,
            )
        }
        VaultCommand::DeletePolicy { name, object_id } => {
            let principal = resolve_principal(vault, &object_id)?;
            vault.delete_policy(&name, &principal).map_err(vault_err)?;
            print(
                format,
                &shown(&engine, vault.vault_info(&name).map_err(vault_err)?),
                show_table,
            )
        }
        VaultCommand::Outage { name, mode } => {
            let info = vault.set_outage(&name, mode).map_err(vault_err)?;
            print(format, &info, |i| {
                format!("vault {}: outage {}", i.properties.name, i.outage)
            })
        }
        VaultCommand::Audit { name } => {
            print(format, &vault.audit_log(&name).map_err(vault_err)?, |e| {
                audit_table(e)
            })
        }
    }
}

fn show_table(shown: &Shown) -> String {
    let v = &shown.info;
    let mut out = fields(&[
        ("name", v.properties.name.clone()),
        ("uri", v.properties.uri.clone()),
        ("vaultUri", shown.vault_uri.clone()),
        ("region", v.properties.region.clone()),
        ("tenant", v.properties.tenant.clone()),
        ("softDelete", v.properties.soft_delete.to_string()),
        ("purgeProtection", v.properties.purge_protection.to_string()),
        ("retentionDays", v.soft_delete_retention_days.to_string()),
        ("recoverable", v.recoverable.to_string()),
        ("outage", v.outage.to_string()),
        ("keys", v.key_count.to_string()),
    ]);
    if !v.access_policies.is_empty() {
        let rows: Vec<Vec<String>> = v
            .access_policies
            .iter()
            .map(|p| vec![p.object_id.clone(), p.key_permissions.join(" ")])
            .collect();
        out.push_str("\n\naccess policies\n");
        out.push_str(&table(&["OBJECT ID", "KEY PERMISSIONS"], &rows));
    }
    if !v.role_assignments.is_empty() {
        let rows: Vec<Vec<String>> = v
            .role_assignments
            .iter()
            .map(|r| vec![r.principal_id.clone(), r.role_definition_name.clone()])
            .collect();
        out.push_str("\n\nrole assignments\n");
        out.push_str(&table(&["PRINCIPAL ID", "ROLE"], &rows));
    }
    out
}

fn list_table(vaults: &[Shown]) -> String {
    let rows: Vec<Vec<String>> = vaults
        .iter()
        .map(|s| &s.info)
        .map(|v| {
            vec![
                v.properties.name.clone(),
                v.properties.region.clone(),
                v.properties.soft_delete.to_string(),
                v.properties.purge_protection.to_string(),
                v.key_count.to_string(),
                v.outage.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "REGION",
            "SOFT DELETE",
            "PURGE PROTECTION",
            "KEYS",
            "OUTAGE",
        ],
        &rows,
    )
}

fn audit_table(entries: &[AuditEntry]) -> String {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let outcome = match e.error_kind {
                Some(kind) => format!("failure ({kind})"),
                None => "success".to_owned(),
            };
            let op = serde_json::to_value(e.operation)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            vec![
                e.time.to_rfc3339_opts(SecondsFormat::Secs, true),
                e.principal.clone(),
                op,
                e.key.clone(),
                e.version.clone(),
                outcome,
            ]
        })
        .collect();
    table(
        &[
            "TIME",
            "PRINCIPAL",
            "OPERATION",
            "KEY",
            "VERSION",
            "OUTCOME",
        ],
        &rows,
    )
}
