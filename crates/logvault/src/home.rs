//! The logvault home: one directory holding everything the embedded default keeps.
//!
//! ```text
//! HOME/
//!   config.json     timings and limits (HomeConfig), created by `init`
//!   vault/          the local key vault (master key, vaults, identities, audit logs)
//!   control/        control-plane state (clusters, workspaces, links, operations)
//!   storage/        the object store root of the local filesystem backend (encrypted segments)
//!   cache/          the hot cache's disk tier (encrypted under the service key)
//!   wal/            the write-ahead log of each workspace (encrypted), and its counters
//!   keys/           the key lifecycle's state per cluster, and account keys sealed under the
//!                   service key (never in plaintext)
//! ```

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use logvault_core::Timings;
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// The configuration kept in `HOME/config.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HomeConfig {
    /// Format version of the home layout.
    pub version: u32,
    /// The durations of the time rules.
    pub timings: Timings,
    /// The hot cache's bounds and policy.
    pub hot_cache: logvault_cache::HotCacheConfig,
    /// Where data rests, as an object_store URL; `None` for `HOME/storage` on local disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_url: Option<String>,
    /// The memory all queries of one process may hold together, in bytes (`None`: a quarter of
    /// the machine's memory). A query that needs more fails with a clear error: it is not
    /// spilled to disk, where it would rest in clear.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_memory_bytes: Option<u64>,
    /// Seconds a segment replaced by a compaction stays readable before it is deleted, and the
    /// age an unreferenced segment file must reach before it is deleted as an orphan (`None`:
    /// [`logvault_store::DEFAULT_SEGMENT_GRACE_SECS`], 5 minutes). Longer than the longest
    /// query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_grace_secs: Option<i64>,
    /// Bytes of decrypted segment footers (Parquet metadata with plaintext statistics) kept in
    /// memory for queries, wiped with the account key (`None`:
    /// [`logvault_store::DEFAULT_FOOTER_CACHE_BYTES`], 64 MiB; 0 turns the cache off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub footer_cache_bytes: Option<u64>,
    /// Bytes of double encryption's outer-layer plaintext (still ciphertext under the segments'
    /// keys) kept in memory so warm reads skip the second cipher, wiped with the account key
    /// (`None`: [`logvault_store::DEFAULT_OUTER_CACHE_BYTES`], 256 MiB; 0 turns it off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outer_cache_bytes: Option<u64>,
    /// Whether segments written from now on carry a needle index, so that lookups of given
    /// values of id-like columns (`RequestId == "..."`) read only the row groups that may hold
    /// them (docs/format.md, "Needle index"; `None`: on). It costs about 10 bits per value of
    /// each indexed column (4-5% more storage), in a sealed block of the segment's file that
    /// only such lookups read; `false` writes segments without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needle_index: Option<bool>,
    /// A remote vault for customer keys (Key Vault's REST API: `logvault serve` or Azure Key
    /// Vault); `None` for the home's local vault. The service key stays local.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vault: Option<logvault_keyvault_client::RemoteVaultConfig>,
    /// This home's part among several nodes on one storage and one vault (docs/deploy.md);
    /// `None` for a home alone on its storage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<crate::NodeConfig>,
}

impl HomeConfig {
    /// What a new home gets: its data on this machine's disk (`storageUrl` unset), the hot
    /// cache's memory tier on and its disk tier off. Over local storage a disk tier is a second
    /// local copy that costs a decryption on every read (docs/cache.md); a home moved to remote
    /// storage turns it on with `hotCache.diskBytes` in `config.json`.
    pub fn new_local() -> Self {
        let mut config = Self {
            version: HOME_VERSION,
            ..Self::default()
        };
        config.hot_cache.disk_bytes = 0;
        config
    }

    /// What a new home whose data rests at `storage_url` gets: the URL itself (every later
    /// open uses it), and [`HomeConfig::new_local`]'s cache for local files (`None` or a
    /// `file://` URL), otherwise both tiers of the hot cache on (the disk tier keeps a sealed
    /// local copy of what was fetched from remote storage).
    pub fn new_for(storage_url: Option<&str>) -> Self {
        let mut config = match storage_url {
            Some(url) if !url.trim_start().starts_with("file:") => Self {
                version: HOME_VERSION,
                ..Self::default()
            },
            _ => Self::new_local(),
        };
        config.storage_url = storage_url.map(str::to_owned);
        config
    }
}

/// Current version of the home layout.
pub(crate) const HOME_VERSION: u32 = 1;

/// An opened home directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
    config: HomeConfig,
}

impl Home {
    /// Opens the home at `root`, creating its layout and a default configuration on first use.
    ///
    /// # Errors
    /// [`EngineError::Home`] if the directory cannot be created, or `config.json` is unreadable,
    /// malformed or of a newer version; [`EngineError::Config`] if its values are out of range.
    pub fn open_or_init(root: &Path) -> Result<Self, EngineError> {
        Self::open_or_init_for(root, None)
    }

    /// As [`Home::open_or_init`], for a home whose data rests at `storage_url` (an object_store
    /// URL; `None` for `HOME/storage`): a new home's configuration is
    /// [`HomeConfig::new_for`] that storage.
    ///
    /// # Errors
    /// As [`Home::open_or_init`].
    pub fn open_or_init_for(root: &Path, storage_url: Option<&str>) -> Result<Self, EngineError> {
        let fail = |path: &Path, reason: String| EngineError::Home {
            path: path.to_owned(),
            reason,
        };
        for sub in ["", "vault", "control", "storage", "cache", "wal", "keys"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(|e| fail(&dir, e.to_string()))?;
        }
        let config_path = root.join("config.json");
        let config = match fs::read(&config_path) {
            Ok(bytes) => serde_json::from_slice::<HomeConfig>(&bytes)
                .map_err(|e| fail(&config_path, format!("malformed: {e}")))?,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let config = HomeConfig::new_for(storage_url);
                let text = serde_json::to_vec_pretty(&config)
                    .map_err(|e| fail(&config_path, e.to_string()))?;
                write_new(&config_path, &text).map_err(|e| fail(&config_path, e.to_string()))?;
                config
            }
            Err(e) => return Err(fail(&config_path, e.to_string())),
        };
        if config.version > HOME_VERSION {
            return Err(fail(
                &config_path,
                format!(
                    "home layout version {} is newer than this logvault ({HOME_VERSION})",
                    config.version
                ),
            ));
        }
        config.timings.validate()?;
        if let Some(secs) = config.segment_grace_secs
            && !(0..=logvault_core::config::MAX_DURATION_SECS).contains(&secs)
        {
            return Err(fail(
                &config_path,
                format!(
                    "segmentGraceSecs {secs} is out of range (0 to {})",
                    logvault_core::config::MAX_DURATION_SECS
                ),
            ));
        }
        if let Some(node) = &config.node {
            node.validate()
                .map_err(|reason| fail(&config_path, reason))?;
        }
        Ok(Self {
            root: root.to_owned(),
            config,
        })
    }

    /// The home directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The configuration.
    pub fn config(&self) -> &HomeConfig {
        &self.config
    }

    /// A subdirectory of the home (`vault`, `control`, `storage`, `cache`, `wal`).
    pub fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

/// Writes a file that must not exist yet; a concurrent creator wins and its file is kept.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut f) => {
            f.write_all(bytes)?;
            f.sync_all()
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_layout_and_keeps_config() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open_or_init(dir.path()).unwrap();
        for sub in ["vault", "control", "storage", "cache", "wal"] {
            assert!(home.dir(sub).is_dir(), "{sub}");
        }
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join("config.json")).unwrap()).unwrap();
        cfg["timings"]["keyCheckMaxSecs"] = 30.into();
        fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
        let home = Home::open_or_init(dir.path()).unwrap();
        assert_eq!(home.config().timings.key_check_max_secs, 30);
    }

    /// Regression: a new local home had the hot cache on, which made its queries 3-4x slower.
    #[test]
    fn a_new_local_home_has_the_memory_tier_but_no_disk_tier_and_keeps_a_choice() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open_or_init(dir.path()).unwrap();
        let cache = &home.config().hot_cache;
        assert_eq!(
            (cache.memory_bytes, cache.disk_bytes),
            (logvault_cache::default_memory_bytes(), 0)
        );
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join("config.json")).unwrap()).unwrap();
        assert_eq!(cfg["hotCache"]["diskBytes"], 0);
        cfg["hotCache"]["memoryBytes"] = (64u64 << 20).into();
        fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
        let home = Home::open_or_init(dir.path()).unwrap();
        assert_eq!(home.config().hot_cache.memory_bytes, 64 << 20);
    }

    #[test]
    fn a_new_home_on_remote_storage_has_both_tiers_and_on_local_files_no_disk_tier() {
        for (url, disk) in [
            (Some("memory://"), logvault_cache::DEFAULT_DISK_BYTES),
            (Some("s3://bucket/logs"), logvault_cache::DEFAULT_DISK_BYTES),
            (Some("file:///var/lib/logvault"), 0),
            (None, 0),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let home = Home::open_or_init_for(dir.path(), url).unwrap();
            let cache = &home.config().hot_cache;
            assert_eq!(cache.disk_bytes, disk, "{url:?}");
            assert_eq!(cache.memory_bytes, logvault_cache::default_memory_bytes());
            // An existing home keeps its configuration whatever the storage.
            let again = Home::open_or_init_for(dir.path(), Some("memory://")).unwrap();
            assert_eq!(again.config().hot_cache.disk_bytes, disk, "{url:?}");
            // ... and keeps where its data rests: the URL it was created with.
            assert_eq!(again.config().storage_url.as_deref(), url);
            let text = fs::read_to_string(dir.path().join("config.json")).unwrap();
            assert_eq!(text.contains("storageUrl"), url.is_some(), "{text}");
        }
    }

    #[test]
    fn malformed_or_invalid_config_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        Home::open_or_init(dir.path()).unwrap();
        fs::write(dir.path().join("config.json"), "{not json").unwrap();
        let err = Home::open_or_init(dir.path()).unwrap_err().to_string();
        assert!(err.contains("malformed"), "{err}");
        assert_eq!(
            fs::read_to_string(dir.path().join("config.json")).unwrap(),
            "{not json"
        );

        fs::write(
            dir.path().join("config.json"),
            r#"{"version":1,"timings":{"keyCheckMinSecs":0}}"#,
        )
        .unwrap();
        let err = Home::open_or_init(dir.path()).unwrap_err().to_string();
        assert!(err.contains("keyCheckMinSecs"), "{err}");

        fs::write(
            dir.path().join("config.json"),
            r#"{"version":1,"segmentGraceSecs":-1}"#,
        )
        .unwrap();
        let err = Home::open_or_init(dir.path()).unwrap_err().to_string();
        assert!(err.contains("segmentGraceSecs"), "{err}");
        fs::write(
            dir.path().join("config.json"),
            r#"{"version":1,"segmentGraceSecs":60}"#,
        )
        .unwrap();
        assert_eq!(
            Home::open_or_init(dir.path())
                .unwrap()
                .config()
                .segment_grace_secs,
            Some(60)
        );

        fs::write(dir.path().join("config.json"), r#"{"version":99}"#).unwrap();
        assert!(
            Home::open_or_init(dir.path())
                .unwrap_err()
                .to_string()
                .contains("newer")
        );
    }
}
