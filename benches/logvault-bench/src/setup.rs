//! logvault homes for the benchmark: one workspace under the service key, a customer key, or a
//! customer key with double encryption, set up as a customer would (vault, key, cluster, access
//! policy for the cluster's identity, key update, link).

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use logvault::control::{ClusterSpec, ClusterUpdate, KeyVaultProperties, WorkspaceSpec};
use logvault::kms::local::{CreateVaultOptions, vault_uri};
use logvault::kms::{KeyType, PrincipalId};
use logvault::{Engine, HomeConfig};
use serde::{Deserialize, Serialize};

/// The workspace every home holds.
pub const WORKSPACE: &str = "bench";
/// The vault holding the customer's key.
pub const VAULT: &str = "benchkv";
/// The customer's key.
pub const KEY: &str = "cmk";
/// The dedicated cluster.
pub const CLUSTER: &str = "benchcluster";

/// How a workspace's data is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Protection {
    /// The service key (MMK): a workspace that is not linked.
    Service,
    /// A customer key (CMK): linked to a cluster without double encryption.
    Customer,
    /// A customer key with double encryption (infrastructure encryption) on the cluster.
    Double,
}

impl Protection {
    /// All three, in report order.
    pub const ALL: [Protection; 3] = [Self::Service, Self::Customer, Self::Double];

    /// The name used in reports and file names.
    pub fn label(self) -> &'static str {
        match self {
            Self::Service => "logvault-mmk",
            Self::Customer => "logvault-cmk",
            Self::Double => "logvault-cmk-double",
        }
    }
}

/// Timings written to a bench home's `config.json` before it is opened.
#[derive(Debug, Clone, Copy)]
pub struct HomeTimings {
    /// Key check interval bounds in seconds (`None`: logvault's defaults, 6-60 s).
    pub key_check_secs: Option<(i64, i64)>,
}

/// Opens (creating) the home at `dir` with asynchronous control-plane operations completing at
/// once, and the given key check interval.
///
/// # Errors
/// If the configuration cannot be written or the engine cannot open.
pub async fn open_home(dir: &Path, timings: HomeTimings) -> anyhow::Result<Engine> {
    open_home_with_store(dir, timings, None).await
}

/// As [`open_home`], with the home's storage in `store` when given (instead of its directory).
///
/// # Errors
/// As [`open_home`].
pub async fn open_home_with_store(
    dir: &Path,
    timings: HomeTimings,
    store: Option<std::sync::Arc<dyn object_store::ObjectStore>>,
) -> anyhow::Result<Engine> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let config_path = dir.join("config.json");
    if !config_path.exists() {
        let mut config = HomeConfig::new_local();
        config.timings.async_operation_secs = 0;
        config.hot_cache.memory_bytes = memory_bytes()?;
        if read_caches_off() {
            config.footer_cache_bytes = Some(0);
            config.outer_cache_bytes = Some(0);
        }
        if needle_index_off() {
            config.needle_index = Some(false);
        }
        if let Some((lo, hi)) = timings.key_check_secs {
            config.timings.key_check_min_secs = lo;
            config.timings.key_check_max_secs = hi;
        }
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)
            .with_context(|| format!("writing {}", config_path.display()))?;
    }
    let mut builder = Engine::builder(dir);
    if let Some(store) = store {
        builder = builder.object_store(store);
    }
    builder
        .open()
        .await
        .with_context(|| format!("opening logvault home {}", dir.display()))
}

/// Whether logvault's hot cache is turned off for the homes the harness creates
/// (`LOGVAULT_BENCH_NO_HOT_CACHE` set). Otherwise they have what a new home has: the memory
/// tier, no disk tier (docs/bench/README.md).
pub fn hot_cache_off() -> bool {
    std::env::var_os("LOGVAULT_BENCH_NO_HOT_CACHE").is_some()
}

/// Whether the homes the harness creates have the store's read caches (decrypted footers,
/// outer-layer plaintext) off (`LOGVAULT_BENCH_NO_READ_CACHES` set), to measure what they save.
pub fn read_caches_off() -> bool {
    std::env::var_os("LOGVAULT_BENCH_NO_READ_CACHES").is_some()
}

/// Whether the homes the harness creates write segments without a needle index
/// (`LOGVAULT_BENCH_NO_NEEDLE_INDEX` set, to measure what it costs; a new home has one:
/// docs/format.md, "Needle index").
pub fn needle_index_off() -> bool {
    std::env::var_os("LOGVAULT_BENCH_NO_NEEDLE_INDEX").is_some()
}

/// The memory tier's bound for the homes the harness creates (their disk tier is off, as in a
/// new home): 0 with `LOGVAULT_BENCH_NO_HOT_CACHE`, else `LOGVAULT_BENCH_MEMORY_BYTES`, else a
/// new home's (an eighth of the memory available: `logvault_cache::default_memory_bytes`).
///
/// # Errors
/// If `LOGVAULT_BENCH_MEMORY_BYTES` is set but not a number of bytes.
pub fn memory_bytes() -> anyhow::Result<u64> {
    if hot_cache_off() {
        return Ok(0);
    }
    match std::env::var("LOGVAULT_BENCH_MEMORY_BYTES") {
        Ok(v) => v
            .parse()
            .with_context(|| format!("LOGVAULT_BENCH_MEMORY_BYTES={v} is not a number of bytes")),
        Err(_) => Ok(HomeConfig::new_local().hot_cache.memory_bytes),
    }
}

/// Creates [`WORKSPACE`] protected as asked. For a customer key: a recoverable vault with an
/// RSA-2048 key, a cluster (with or without double encryption), its system identity granted
/// get, wrapKey and unwrapKey, the cluster updated with the key, the workspace linked.
///
/// # Errors
/// Any control-plane or vault refusal.
pub async fn prepare_workspace(engine: &Engine, protection: Protection) -> anyhow::Result<()> {
    engine
        .control()
        .create_workspace(WorkspaceSpec::new(WORKSPACE))?;
    if protection == Protection::Service {
        return Ok(());
    }
    let vault = engine.vault();
    vault.create_vault(
        VAULT,
        &CreateVaultOptions {
            purge_protection: true,
            ..CreateVaultOptions::default()
        },
    )?;
    let key = vault.create_key(VAULT, KEY, KeyType::Rsa, Some(2048))?;
    let control = engine.control();
    control
        .create_cluster(ClusterSpec {
            double_encryption: protection == Protection::Double,
            ..ClusterSpec::new(CLUSTER)
        })
        .await?;
    let cluster = control
        .wait_cluster(CLUSTER, Duration::from_secs(60))
        .await?;
    let principal: PrincipalId = cluster
        .identity
        .principal_id
        .clone()
        .context("the cluster has no system identity")?;
    vault.set_policy(
        VAULT,
        &principal,
        &["get", "wrapKey", "unwrapKey"].map(str::to_owned),
    )?;
    set_key_version(engine, &key.version).await?;
    control.link_workspace(WORKSPACE, CLUSTER)?;
    Ok(())
}

/// Points the cluster at version `version` of the customer key and waits for the update (the
/// account key is re-wrapped by it; no data is rewritten).
///
/// # Errors
/// Control-plane refusals (key validation, another operation running).
pub async fn set_key_version(engine: &Engine, version: &str) -> anyhow::Result<()> {
    let control = engine.control();
    control
        .update_cluster(
            CLUSTER,
            ClusterUpdate {
                key: Some(KeyVaultProperties {
                    key_vault_uri: vault_uri(VAULT),
                    key_name: KEY.into(),
                    key_version: version.into(),
                }),
                ..ClusterUpdate::default()
            },
        )
        .await?;
    control
        .wait_cluster(CLUSTER, Duration::from_secs(60))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn customer_key_workspace_is_linked_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let timings = HomeTimings {
            key_check_secs: Some((1, 2)),
        };
        let engine = open_home(dir.path(), timings).await.unwrap();
        prepare_workspace(&engine, Protection::Double)
            .await
            .unwrap();
        let ws = engine.control().get_workspace(WORKSPACE).unwrap();
        assert_eq!(ws.cluster.as_deref(), Some(CLUSTER));
        assert!(
            engine
                .control()
                .get_cluster(CLUSTER)
                .unwrap()
                .double_encryption
        );
        let payload = "{\"TimeGenerated\":\"2026-01-01T00:00:00Z\",\"Level\":\"INFO\"}\n";
        let options = logvault::IngestOptions::new(logvault::ingest::Format::JsonLines);
        let report = engine
            .ingest(WORKSPACE, "AppLogs", payload.as_bytes(), &options, None)
            .await
            .unwrap();
        assert_eq!(report.accepted, 1);
        assert_eq!(report.account, format!("cluster-{CLUSTER}"));
        let config: HomeConfig =
            serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config.timings.key_check_min_secs, 1);
        assert_eq!(config.timings.async_operation_secs, 0);
    }
}
