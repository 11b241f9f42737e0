//! `logvault token ...`: bearer tokens for `logvault serve`, signed by the home's token key.

use clap::{Args, Subcommand};
use logvault_server::{Role, TokenRecord, TokenService};

use crate::args::GlobalArgs;
use crate::output::{fields, print, table};

/// Arguments of `logvault token`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Issue a bearer token (printed once; the home keeps only its id and claims).
    Create {
        /// Who the token is for.
        #[arg(long)]
        principal: String,
        /// Its roles (Azure's names; repeat for several): `Owner`, `Log Analytics Reader`,
        /// `Log Analytics Contributor`, `Monitoring Metrics Publisher`, `Monitoring Reader`,
        /// `Key Vault Crypto Officer`, `Key Vault Crypto Service Encryption User`.
        #[arg(long = "role", default_value = "Owner")]
        roles: Vec<Role>,
        /// The only workspace it may touch (default: every workspace).
        #[arg(long)]
        workspace: Option<String>,
        /// How many hours it is valid.
        #[arg(long, default_value_t = 24)]
        hours: i64,
    },
    /// List the tokens issued (never their text).
    List,
    /// Revoke a token: a running server refuses it from its next request.
    Revoke {
        /// The token's id (`token list`).
        #[arg(long)]
        id: String,
    },
}

fn record_json(r: &TokenRecord) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "principal": r.principal,
        "roles": r.roles,
        "workspace": r.workspace,
        "issuedOn": r.issued_on,
        "expiresOn": r.expires_on,
        "revokedOn": r.revoked_on,
    })
}

/// Runs `logvault token ...`.
pub(crate) async fn run(global: &GlobalArgs, args: TokenArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    let tokens = TokenService::open(&engine).await?;
    let now = engine.clock().now();
    match args.command {
        TokenCommand::Create {
            principal,
            roles,
            workspace,
            hours,
        } => {
            if let Some(ws) = &workspace {
                engine.control().get_workspace(ws)?;
            }
            let issued = tokens.issue(
                &principal,
                &roles,
                workspace.as_deref(),
                now,
                chrono::Duration::hours(hours),
            )?;
            let mut json = record_json(&issued.record);
            json["token"] = serde_json::Value::String(issued.token.clone());
            print(global.output, &json, |_| issued.token.clone())
        }
        TokenCommand::List => {
            let all = tokens.list()?;
            let json: Vec<serde_json::Value> = all.iter().map(record_json).collect();
            print(global.output, &json, |_| {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.clone(),
                            r.principal.clone(),
                            r.roles
                                .iter()
                                .map(|r| r.name())
                                .collect::<Vec<_>>()
                                .join(", "),
                            r.workspace.clone().unwrap_or_else(|| "*".into()),
                            r.expires_on.to_rfc3339(),
                            r.revoked_on.map(|t| t.to_rfc3339()).unwrap_or_default(),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "ID",
                        "PRINCIPAL",
                        "ROLES",
                        "WORKSPACE",
                        "EXPIRES",
                        "REVOKED",
                    ],
                    &rows,
                )
            })
        }
        TokenCommand::Revoke { id } => {
            let record = tokens.revoke(&id, now)?;
            print(global.output, &record_json(&record), |_| {
                fields(&[
                    ("id", record.id.clone()),
                    ("principal", record.principal.clone()),
                    (
                        "revokedOn",
                        record
                            .revoked_on
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_default(),
                    ),
                ])
            })
        }
    }
}
