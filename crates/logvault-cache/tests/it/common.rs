//! Test support: a real store over a temporary directory with the real local vault, and
//! log-like segments (the query engine's tests run queries through the cache).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use logvault_cache::{HotCache, HotCacheConfig};
use logvault_core::TestClock;
use logvault_kms::local::CreateVaultOptions;
use logvault_kms::{IdentityOptions, KeyRef, KeyType, KeyVault, LocalVault};
use logvault_store::{AccountId, KekBinding, SegmentLocation, Store, StoreConfig, local_root};

pub(crate) use logvault_testkit::{contains, files, log_batch};

pub(crate) const WS_A: &str = "ws-alpha";
pub(crate) const WS_B: &str = "ws-beta";
pub(crate) const TABLE: &str = "Syslog";

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// A store, its vault and clock, in a temporary directory.
pub(crate) struct Harness {
    pub(crate) dir: tempfile::TempDir,
    /// The clock the store and vault read (kept alive with them).
    #[allow(dead_code)]
    pub(crate) clock: TestClock,
    pub(crate) vault: Arc<LocalVault>,
    pub(crate) store: Arc<Store>,
}

impl Harness {
    pub(crate) async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::new(t0());
        let vault =
            Arc::new(LocalVault::open(&dir.path().join("vault"), Arc::new(clock.clone())).unwrap());
        let service = vault.ensure_service_key().unwrap();
        let binding = KekBinding {
            key: service.key,
            principal: service.principal,
        };
        let root = local_root(&dir.path().join("storage")).unwrap();
        let store = Store::open(
            root,
            Arc::clone(&vault) as Arc<dyn KeyVault>,
            binding,
            StoreConfig::default(),
            Arc::new(clock.clone()),
        )
        .await
        .unwrap();
        Self {
            dir,
            clock,
            vault,
            store: Arc::new(store),
        }
    }

    pub(crate) fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub(crate) async fn cache(&self, config: HotCacheConfig) -> HotCache {
        HotCache::open(Arc::clone(&self.store), &self.cache_dir(), config)
            .await
            .unwrap()
    }

    /// A cluster account `cluster-prod1` under a customer key in vault `contoso`.
    pub(crate) async fn cluster_account(&self) -> AccountId {
        let options = CreateVaultOptions {
            purge_protection: true,
            ..CreateVaultOptions::default()
        };
        self.vault.create_vault("contoso", &options).unwrap();
        self.vault
            .create_key("contoso", "cmk", KeyType::Oct, None)
            .unwrap();
        let identity = self
            .vault
            .identities()
            .create_user_assigned("prod1-identity", &IdentityOptions::default())
            .unwrap();
        let permissions: Vec<String> = ["get", "wrapKey", "unwrapKey"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        self.vault
            .set_policy("contoso", &identity.principal_id, &permissions)
            .unwrap();
        let id = AccountId::cluster("prod1").unwrap();
        let binding = KekBinding {
            key: KeyRef::latest("contoso", "cmk"),
            principal: identity.principal_id,
        };
        self.store
            .create_account(&id, &binding, false)
            .await
            .unwrap();
        id
    }

    /// Appends a segment of `rows` rows starting `days_ago` days before `t0` to `ws`.
    pub(crate) async fn append(
        &self,
        account: &AccountId,
        ws: &str,
        days_ago: i64,
        rows: usize,
        marker: &str,
    ) -> SegmentLocation {
        let start = t0() - Duration::days(days_ago);
        let (entry, manifest) = self
            .store
            .append(account, ws, TABLE, vec![log_batch(start, rows, marker)])
            .await
            .unwrap();
        manifest.location(&entry)
    }
}

/// The cache files of workspace `ws`.
pub(crate) fn files_of(cache_dir: &Path, ws: &str) -> Vec<PathBuf> {
    files(cache_dir)
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == ws))
        .collect()
}
