//! `logvault key ...`: keys of a local vault (R-A1, R-A4): create, rotate, show, list,
//! enable/disable (a key or one version), delete, recover, purge.

use chrono::SecondsFormat;
use clap::{Args, Subcommand};
use logvault::kms::{KeyProperties, KeyType};

use crate::args::GlobalArgs;
use crate::cmd::vault::vault_err;
use crate::output::{fields, print, table};

/// Arguments of `logvault key`.
#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
}

/// Names a key in a vault.
#[derive(Debug, Args)]
struct KeyName {
    /// The vault's name.
    #[arg(long)]
    vault: String,
    /// The key's name.
    #[arg(long)]
    name: String,
}

/// Names a key, and optionally one of its versions.
#[derive(Debug, Args)]
struct KeyVersionName {
    #[command(flatten)]
    key: KeyName,
    /// One version only (default: the key as a whole).
    #[arg(long)]
    version: Option<String>,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create a key with one version.
    Create {
        #[command(flatten)]
        key: KeyName,
        /// The key type: oct (AES-256, wraps with A256GCM) or RSA (wraps with RSA-OAEP-256).
        #[arg(long, default_value = "oct", value_parser = parse_kty)]
        kty: KeyType,
        /// The size in bits: 256 for oct; 2048 (default), 3072 or 4096 for RSA.
        #[arg(long)]
        size: Option<u32>,
    },
    /// Add a new version; it becomes the latest (older versions stay usable).
    Rotate(KeyName),
    /// Show a key and its versions (oldest first).
    Show(KeyName),
    /// List the keys of a vault (soft-deleted ones included).
    List {
        /// The vault's name.
        #[arg(long)]
        vault: String,
    },
    /// Disable a key, or one version of it.
    Disable(KeyVersionName),
    /// Enable a key, or one version of it.
    Enable(KeyVersionName),
    /// Delete a key (soft: recoverable until purged, when the vault has soft delete).
    Delete(KeyName),
    /// Recover a soft-deleted key.
    Recover(KeyName),
    /// Purge a soft-deleted key for good (refused under purge protection).
    Purge(KeyName),
}

fn parse_kty(s: &str) -> Result<KeyType, String> {
    match s.to_ascii_lowercase().as_str() {
        "oct" => Ok(KeyType::Oct),
        "rsa" => Ok(KeyType::Rsa),
        _ => Err(format!("unknown key type {s:?}; expected oct or RSA")),
    }
}

/// Runs `logvault key ...`.
pub(crate) async fn run(global: &GlobalArgs, args: KeyArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    let vault = engine.vault();
    let result = match args.command {
        KeyCommand::Create { key, kty, size } => vault.create_key(&key.vault, &key.name, kty, size),
        // The clusters on this key see the new version (or the key's state) now, not at their
        // next check: the same library calls as the Key Vault API's.
        KeyCommand::Rotate(k) => {
            return key_change(global, engine.rotate_key(&k.vault, &k.name).await);
        }
        KeyCommand::Show(k) => vault.key_properties(&k.vault, &k.name),
        KeyCommand::List { vault: name } => {
            let keys = vault.list_keys(&name).map_err(vault_err)?;
            return print(global.output, &keys, |k| list_table(k));
        }
        KeyCommand::Disable(k) => {
            let changed = engine
                .set_key_enabled(&k.key.vault, &k.key.name, k.version.as_deref(), false)
                .await;
            return key_change(global, changed);
        }
        KeyCommand::Enable(k) => {
            let changed = engine
                .set_key_enabled(&k.key.vault, &k.key.name, k.version.as_deref(), true)
                .await;
            return key_change(global, changed);
        }
        KeyCommand::Delete(k) => vault.delete_key(&k.vault, &k.name),
        KeyCommand::Recover(k) => vault.recover_key(&k.vault, &k.name),
        KeyCommand::Purge(k) => vault.purge_key(&k.vault, &k.name),
    };
    print(global.output, &result.map_err(vault_err)?, show_table)
}

/// Prints a key change the engine made; a vault refusal as `404 ...` like the other commands.
fn key_change(
    global: &GlobalArgs,
    result: Result<KeyProperties, logvault::EngineError>,
) -> anyhow::Result<()> {
    let key = match result {
        Ok(key) => key,
        Err(logvault::EngineError::Vault(e)) => return Err(vault_err(e)),
        Err(e) => return Err(e.into()),
    };
    print(global.output, &key, show_table)
}

fn state(k: &KeyProperties) -> String {
    match (k.deleted, k.scheduled_purge_date) {
        (Some(_), Some(purge)) => format!(
            "deleted (purge scheduled {})",
            purge.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        (Some(d), None) => format!(
            "deleted on {}",
            d.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        _ if k.enabled => "enabled".to_owned(),
        _ => "disabled".to_owned(),
    }
}

fn show_table(k: &KeyProperties) -> String {
    let mut out = fields(&[
        ("name", k.name.clone()),
        ("vault", k.vault.clone()),
        ("kid", k.kid.clone()),
        ("kty", k.kty.to_string()),
        ("size", k.size.to_string()),
        ("state", state(k)),
        ("version", k.version.clone()),
    ]);
    let rows: Vec<Vec<String>> = k
        .versions
        .iter()
        .map(|v| {
            vec![
                v.version.clone(),
                v.enabled.to_string(),
                v.created.to_rfc3339_opts(SecondsFormat::Secs, true),
            ]
        })
        .collect();
    out.push_str("\n\n");
    out.push_str(&table(&["VERSION", "ENABLED", "CREATED"], &rows));
    out
}

fn list_table(keys: &[KeyProperties]) -> String {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.name.clone(),
                k.kty.to_string(),
                k.size.to_string(),
                state(k),
                k.versions.len().to_string(),
                k.version.clone(),
            ]
        })
        .collect();
    table(
        &["NAME", "KTY", "SIZE", "STATE", "VERSIONS", "LATEST"],
        &rows,
    )
}
