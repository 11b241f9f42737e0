//! `logvault cluster ...`: dedicated clusters (R-C), with the names and flags of
//! `az monitor log-analytics cluster`.

use std::time::Duration;

use clap::{Args, Subcommand};
use logvault::Engine;
use logvault::control::{
    BillingType, Cluster, ClusterSpec, ClusterUpdate, IdentityType, KeyVaultProperties,
    cluster_json,
};

use crate::args::{GlobalArgs, Placement};
use crate::output::{at, fields, print, table};

/// Arguments of `logvault cluster`.
#[derive(Debug, Args)]
pub(crate) struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

/// Key properties as flags.
#[derive(Debug, Args, Default)]
struct KeyFlags {
    /// The key vault's URI, e.g. https://contoso-kv.vault.local.
    #[arg(long)]
    key_vault_uri: Option<String>,
    /// The key's name.
    #[arg(long)]
    key_name: Option<String>,
    /// The key version; omit or leave empty for autorotation (the latest version).
    #[arg(long)]
    key_version: Option<String>,
}

impl KeyFlags {
    fn properties(self) -> Option<KeyVaultProperties> {
        if self.key_vault_uri.is_none() && self.key_name.is_none() && self.key_version.is_none() {
            return None;
        }
        // Partial properties go to the control plane as they are: it answers with the
        // service's "bad format" error.
        Some(KeyVaultProperties {
            key_vault_uri: self.key_vault_uri.unwrap_or_default(),
            key_name: self.key_name.unwrap_or_default(),
            key_version: self.key_version.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Create a cluster (asynchronous: waits for it unless --no-wait).
    Create {
        /// The cluster's name (4-63 letters, digits and hyphens).
        #[arg(long)]
        name: String,
        #[command(flatten)]
        placement: Placement,
        /// Identity type: SystemAssigned, UserAssigned or None.
        #[arg(long, default_value = "SystemAssigned", value_parser = parse_identity)]
        identity_type: IdentityType,
        /// The user-assigned identity (name or resource id), with UserAssigned.
        #[arg(long)]
        user_assigned: Option<String>,
        /// Commitment tier in GB/day: 500, 1000, 2000 or 5000.
        #[arg(long, default_value_t = 500)]
        sku_capacity: u32,
        /// Billing type: Cluster or Workspaces.
        #[arg(long, default_value = "Cluster", value_parser = parse_billing)]
        billing_type: BillingType,
        /// Double encryption (fixed for the cluster's life).
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set, default_value_t = true)]
        double_encryption: bool,
        /// Availability zones.
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set, default_value_t = false)]
        availability_zones: bool,
        #[command(flatten)]
        key: KeyFlags,
        /// Return at once, while the cluster is still Creating.
        #[arg(long)]
        no_wait: bool,
    },
    /// Update a cluster's key, identity, capacity or billing type.
    Update {
        /// The cluster's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        key: KeyFlags,
        /// New identity type.
        #[arg(long, value_parser = parse_identity)]
        identity_type: Option<IdentityType>,
        /// The user-assigned identity, with UserAssigned.
        #[arg(long)]
        user_assigned: Option<String>,
        /// New capacity.
        #[arg(long)]
        sku_capacity: Option<u32>,
        /// New billing type.
        #[arg(long, value_parser = parse_billing)]
        billing_type: Option<BillingType>,
        /// Another resource group (refused: clusters cannot move).
        #[arg(long)]
        resource_group: Option<String>,
        /// Another subscription (refused: clusters cannot move).
        #[arg(long)]
        subscription: Option<String>,
        /// Return at once, while the cluster is still Updating.
        #[arg(long)]
        no_wait: bool,
    },
    /// Show a cluster (the shape of Azure's GET, plus its key state).
    Show {
        /// The cluster's name.
        #[arg(long)]
        name: String,
    },
    /// List clusters, by resource group and/or subscription.
    List {
        /// Only this resource group.
        #[arg(long)]
        resource_group: Option<String>,
        /// Only this subscription.
        #[arg(long)]
        subscription: Option<String>,
    },
    /// Delete a cluster (soft: its name stays reserved for 14 days).
    Delete {
        /// The cluster's name.
        #[arg(long)]
        name: String,
        /// Return at once, while the cluster is still Deleting.
        #[arg(long)]
        no_wait: bool,
    },
    /// Wait until the cluster's running operation completes.
    Wait {
        /// The cluster's name.
        #[arg(long)]
        name: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
}

fn parse_identity(s: &str) -> Result<IdentityType, String> {
    s.parse()
}

fn parse_billing(s: &str) -> Result<BillingType, String> {
    s.parse()
}

/// The cluster as `show` prints it: the library's one shape, shared with the management API.
async fn view(engine: &Engine, cluster: &Cluster) -> anyhow::Result<serde_json::Value> {
    Ok(engine.cluster_view(cluster).await?)
}

fn show_table(v: &serde_json::Value) -> String {
    let s = |p: &str| at(v, p);
    fields(&[
        ("name", s("/name")),
        ("id", s("/id")),
        ("location", s("/location")),
        ("provisioningState", s("/properties/provisioningState")),
        ("identity", s("/identity/type")),
        ("principalId", s("/identity/principalId")),
        (
            "keyVaultUri",
            s("/properties/keyVaultProperties/keyVaultUri"),
        ),
        ("keyName", s("/properties/keyVaultProperties/keyName")),
        ("keyVersion", s("/properties/keyVaultProperties/keyVersion")),
        ("keyState", s("/properties/keyStatus/keyState")),
        (
            "keyVersionInUse",
            s("/properties/keyStatus/keyVersionInUse"),
        ),
        ("lastUnwrap", s("/properties/keyStatus/lastUnwrap")),
        ("nextCheck", s("/properties/keyStatus/nextCheck")),
        ("reason", s("/properties/keyStatus/reason")),
        (
            "doubleEncryption",
            s("/properties/isDoubleEncryptionEnabled"),
        ),
        ("capacity", s("/sku/capacity")),
        ("billingType", s("/properties/billingType")),
    ])
}

async fn finish(
    engine: &Engine,
    global: &GlobalArgs,
    name: &str,
    no_wait: bool,
) -> anyhow::Result<()> {
    let cluster = if no_wait {
        engine.control().get_cluster(name)?
    } else {
        let waited = engine
            .control()
            .wait_cluster(name, Duration::from_secs(600))
            .await?;
        if !waited.is_active() {
            // Deleted: there is nothing to show any more but what it was.
            return print(global.output, &cluster_json(&waited, &[]), |_| {
                format!("cluster {name} deleted; its name stays reserved for 14 days")
            });
        }
        waited
    };
    let json = view(engine, &cluster).await?;
    print(global.output, &json, show_table)
}

/// Runs `logvault cluster ...`.
pub(crate) async fn run(global: &GlobalArgs, args: ClusterArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    let control = engine.control();
    match args.command {
        ClusterCommand::Create {
            name,
            placement,
            identity_type,
            user_assigned,
            sku_capacity,
            billing_type,
            double_encryption,
            availability_zones,
            key,
            no_wait,
        } => {
            let spec = ClusterSpec {
                region: placement.region,
                subscription: placement.subscription,
                resource_group: placement.resource_group,
                identity_type,
                user_assigned,
                sku_capacity,
                billing_type,
                double_encryption,
                availability_zones,
                key: key.properties(),
                ..ClusterSpec::new(&name)
            };
            control.create_cluster(spec).await?;
            finish(&engine, global, &name, no_wait).await
        }
        ClusterCommand::Update {
            name,
            key,
            identity_type,
            user_assigned,
            sku_capacity,
            billing_type,
            resource_group,
            subscription,
            no_wait,
        } => {
            let update = ClusterUpdate {
                key: key.properties(),
                identity_type,
                user_assigned,
                sku_capacity,
                billing_type,
                resource_group,
                subscription,
            };
            control.update_cluster(&name, update).await?;
            finish(&engine, global, &name, no_wait).await
        }
        ClusterCommand::Show { name } => {
            let cluster = control.get_cluster(&name)?;
            let json = view(&engine, &cluster).await?;
            print(global.output, &json, show_table)
        }
        ClusterCommand::List {
            resource_group,
            subscription,
        } => {
            let clusters =
                control.list_clusters(resource_group.as_deref(), subscription.as_deref())?;
            let mut views = Vec::new();
            for c in &clusters {
                views.push(view(&engine, c).await?);
            }
            print(global.output, &views, |views| {
                let rows: Vec<Vec<String>> = views
                    .iter()
                    .map(|v| {
                        let s = |p: &str| at(v, p);
                        vec![
                            s("/name"),
                            s("/resourceGroup"),
                            s("/location"),
                            s("/properties/provisioningState"),
                            s("/properties/keyVaultProperties/keyName"),
                            s("/properties/keyStatus/keyState"),
                        ]
                    })
                    .collect();
                table(
                    &["NAME", "GROUP", "LOCATION", "STATE", "KEY", "KEY STATE"],
                    &rows,
                )
            })
        }
        ClusterCommand::Delete { name, no_wait } => {
            control.delete_cluster(&name)?;
            finish(&engine, global, &name, no_wait).await
        }
        ClusterCommand::Wait { name, timeout } => {
            let cluster = control
                .wait_cluster(&name, Duration::from_secs(timeout))
                .await?;
            if cluster.is_active() {
                let json = view(&engine, &cluster).await?;
                print(global.output, &json, show_table)
            } else {
                print(global.output, &cluster_json(&cluster, &[]), |_| {
                    format!("cluster {name} deleted")
                })
            }
        }
    }
}
