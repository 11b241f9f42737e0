//! Test support of the hot cache's query paths: a real store over a temporary directory with
//! the real local vault, log-like segments, and queries with and without the hot cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use chrono::{DateTime, Duration, TimeZone, Utc};
use datafusion::common::config::EncryptionFactoryOptions;
use datafusion::execution::parquet_encryption::EncryptionFactory;
use futures::TryStreamExt;
use logvault_cache::{HotCache, HotCacheConfig};
use logvault_core::TestClock;
use logvault_kms::local::CreateVaultOptions;
use logvault_kms::{IdentityOptions, KeyRef, KeyType, KeyVault, LocalVault};
use logvault_query::{KeyringGate, SessionOptions, WorkspaceSession};
use logvault_store::{
    AccountId, KekBinding, SegmentEncryptionFactory, SegmentLocation, Store, StoreConfig,
    local_root,
};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

pub(crate) use logvault_testkit::{files, log_batch};

pub(crate) const WS_A: &str = "ws-alpha";
pub(crate) const WS_B: &str = "ws-beta";
pub(crate) const TABLE: &str = "Syslog";

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// A store, its vault and clock, in a temporary directory.
pub(crate) struct Harness {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) clock: TestClock,
    pub(crate) vault: Arc<LocalVault>,
    pub(crate) store: Arc<Store>,
}

impl Harness {
    pub(crate) async fn new() -> Self {
        Self::with_config(StoreConfig::default()).await
    }

    pub(crate) async fn with_config(config: StoreConfig) -> Self {
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
            config,
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
        self.cluster_account_with(false).await
    }

    /// [`Self::cluster_account`], with or without double encryption.
    pub(crate) async fn cluster_account_with(&self, double: bool) -> AccountId {
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
            .create_account(&id, &binding, double)
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

    pub(crate) async fn session(&self, ws: &str, cache: Option<&HotCache>) -> WorkspaceSession {
        let gate = KeyringGate::new(Arc::clone(&self.store));
        let mut options = SessionOptions::at(self.clock_now());
        options.target_partitions = 2;
        WorkspaceSession::open_with_cache(Arc::clone(&self.store), ws, &options, &gate, cache)
            .await
            .unwrap()
    }

    fn clock_now(&self) -> DateTime<Utc> {
        logvault_core::Clock::now(&self.clock)
    }
}

/// The queries the tests run: every row, an aggregate, a filter, a projection with a limit.
pub(crate) const QUERIES: [&str; 4] = [
    "SELECT * FROM Syslog ORDER BY TimeGenerated, Message",
    "SELECT Computer, count(*) AS n, max(EventId) AS m FROM Syslog GROUP BY Computer ORDER BY Computer",
    "SELECT Message FROM Syslog WHERE Severity = 'error' AND EventId > 4620 ORDER BY Message",
    "SELECT count(*) AS n FROM Syslog",
];

/// Runs `sql` and renders the result as text.
pub(crate) async fn run(session: &WorkspaceSession, sql: &str) -> String {
    let stream = session.execute(sql).await.unwrap();
    let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
    arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string()
}

/// Runs `sql`, expecting an error, and returns its text.
pub(crate) async fn run_err(session: &WorkspaceSession, sql: &str) -> String {
    match session.execute(sql).await {
        Err(e) => e.to_string(),
        Ok(stream) => match stream.try_collect::<Vec<RecordBatch>>().await {
            Err(e) => e.to_string(),
            Ok(b) => panic!("expected an error, got {} batches", b.len()),
        },
    }
}

/// The cache files of workspace `ws`.
pub(crate) fn files_of(cache_dir: &Path, ws: &str) -> Vec<PathBuf> {
    files(cache_dir)
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == ws))
        .collect()
}

/// The on-disk file of the segment at `loc` (a cluster account without double encryption
/// stores the Parquet file as it is) and its footer, decrypted with the properties the store's
/// encryption factory gives a query.
pub(crate) async fn segment_file(h: &Harness, loc: &SegmentLocation) -> (PathBuf, ParquetMetaData) {
    let path = h
        .dir
        .path()
        .join("storage")
        .join(loc.account.as_str())
        .join("objects")
        .join(loc.object_path().as_ref());
    let bytes = std::fs::read(&path).unwrap();
    h.store.keyring().aek(&loc.account).await.unwrap();
    let props = SegmentEncryptionFactory::new(Arc::clone(h.store.keyring()))
        .get_file_decryption_properties(&EncryptionFactoryOptions::default(), &loc.routed_path())
        .await
        .unwrap();
    let meta = ParquetMetaDataReader::new()
        .with_decryption_properties(props)
        .parse_and_finish(&bytes::Bytes::from(bytes))
        .unwrap();
    (path, meta)
}

/// The sum of metric `name` over the `StringGroupAggregateExec` lines of an `EXPLAIN ANALYZE`
/// (which writes 19,000 as `19.00 K`).
pub(crate) fn partial_metric(plan: &str, name: &str) -> usize {
    plan.lines()
        .filter(|l| l.contains("StringGroupAggregateExec"))
        .filter_map(|l| l.split(&format!("{name}=")).nth(1))
        .filter_map(|rest| {
            let number: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let scale = match rest[number.len()..].split([',', ']']).next() {
                Some(" K") => 1e3,
                Some(" M") => 1e6,
                _ => 1.0,
            };
            number
                .parse::<f64>()
                .ok()
                .map(|n| (n * scale).round() as usize)
        })
        .sum()
}
