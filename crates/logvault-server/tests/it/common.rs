//! A home on a test clock served over HTTPS on a free loopback port, and a client that trusts
//! the home's certificate.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use logvault::control::{ClusterSpec, ClusterUpdate, KeyVaultProperties, WorkspaceSpec};
use logvault::kms::KeyType;
use logvault::kms::local::CreateVaultOptions;
use logvault::{Engine, HomeConfig};
use logvault_core::{TestClock, Timings};
use logvault_server::{
    DataFlow, Limits, Role, RuleSpec, RuleStore, RunningServer, ServeConfig, SyslogConfig,
    TokenService,
};
use serde_json::Value;

pub const WS: &str = "ws-app";
pub const OTHER_WS: &str = "ws-other";
pub const VAULT: &str = "kv-serve";
pub const KEY: &str = "cmk";
pub const CLUSTER: &str = "cluster-serve";

pub fn timings() -> Timings {
    Timings {
        async_operation_secs: 0,
        ..Timings::default()
    }
}

pub struct Served {
    pub dir: tempfile::TempDir,
    pub clock: TestClock,
    pub engine: Engine,
    pub server: Option<RunningServer>,
    pub client: reqwest::Client,
    pub url: String,
    pub tokens: TokenService,
}

/// Options of a test server.
#[derive(Default)]
pub struct Options {
    pub limits: Option<Limits>,
    pub syslog: bool,
    pub plain_http: bool,
    /// The alert scheduler's period (off unless set).
    pub alert_interval: Option<std::time::Duration>,
    /// The engine on the system clock with cluster operations taking this many seconds
    /// (instead of the test clock, on which they complete at once).
    pub slow_operations: Option<i64>,
    /// Items per page of the management and Key Vault lists.
    pub page_size: Option<usize>,
    /// The engine's object store (the hot cache then off, so that every read reaches it).
    pub object_store: Option<Arc<dyn object_store::ObjectStore>>,
    /// `segmentGraceSecs` of the home (the default grace period when `None`).
    pub segment_grace_secs: Option<i64>,
    /// The allocator's figures for `/metrics` (none unless set).
    pub allocator_stats: Option<logvault_server::AllocatorStatsFn>,
    /// The background compaction's period (off unless set, so that tests counting segments
    /// see the ones they made).
    pub compact_interval: Option<std::time::Duration>,
}

pub async fn serve(options: Options) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let mut timings = timings();
    if let Some(secs) = options.slow_operations {
        timings.async_operation_secs = secs;
    }
    let config = HomeConfig {
        version: 1,
        timings,
        segment_grace_secs: options.segment_grace_secs,
        ..HomeConfig::default()
    };
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
    let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
    let mut builder = Engine::builder(dir.path());
    if options.slow_operations.is_none() {
        builder = builder.clock(Arc::new(clock.clone()));
    }
    if let Some(store) = options.object_store {
        builder = builder
            .object_store(store)
            .hot_cache(logvault::cache::HotCacheConfig {
                memory_bytes: 0,
                disk_bytes: 0,
                ..Default::default()
            });
    }
    let engine = builder.open().await.unwrap();
    for ws in [WS, OTHER_WS] {
        engine
            .control()
            .create_workspace(WorkspaceSpec::new(ws))
            .unwrap();
    }
    let mut config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        plain_http: options.plain_http,
        flush_interval: std::time::Duration::from_millis(200),
        alert_interval: options.alert_interval,
        compact_interval: options.compact_interval,
        allocator_stats: options.allocator_stats,
        ..ServeConfig::default()
    };
    if let Some(limits) = options.limits {
        config.limits = limits;
    }
    if let Some(size) = options.page_size {
        config.page_size = size;
    }
    if options.syslog {
        config.syslog = Some(SyslogConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            workspace: WS.into(),
            table: "Syslog".into(),
        });
    }
    let server = logvault_server::start(engine.clone(), config)
        .await
        .unwrap();
    let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60));
    if let Some(cert) = server.cert() {
        let pem = std::fs::read(cert).unwrap();
        builder = builder
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .tls_built_in_root_certs(false)
            .https_only(true);
    }
    let client = builder.build().unwrap();
    let url = server.url().to_owned();
    let tokens = TokenService::open(&engine).await.unwrap();
    Served {
        dir,
        clock,
        engine,
        server: Some(server),
        client,
        url,
        tokens,
    }
}

impl Served {
    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().unwrap()
    }

    /// A token for `roles`, limited to `workspace` if given, valid for an hour.
    pub fn token(&self, roles: &[Role], workspace: Option<&str>) -> String {
        self.tokens
            .issue("tester", roles, workspace, self.now(), Duration::hours(1))
            .unwrap()
            .token
    }

    /// The engine's clock now (the test clock, or the system's with `slow_operations`).
    pub fn now(&self) -> chrono::DateTime<Utc> {
        self.engine.clock().now()
    }

    pub fn owner(&self) -> String {
        self.token(&[Role::Owner], None)
    }

    pub fn customer_id(&self, ws: &str) -> String {
        self.engine.control().get_workspace(ws).unwrap().customer_id
    }

    /// A rule `name` taking stream `Custom-<table>` into `table` of `ws`.
    pub fn rule(&self, name: &str, ws: &str, table: &str, transform: Option<&str>) -> String {
        RuleStore::new(self.dir.path())
            .create(
                RuleSpec {
                    name: name.into(),
                    workspace: ws.into(),
                    data_flows: vec![DataFlow {
                        stream: format!("Custom-{table}"),
                        table: table.into(),
                        transform_kql: transform.map(str::to_owned),
                    }],
                },
                self.now(),
            )
            .unwrap()
            .immutable_id
    }

    /// Posts `records` to a rule's stream with `token`.
    pub async fn upload(
        &self,
        rule: &str,
        stream: &str,
        token: &str,
        records: &Value,
    ) -> reqwest::Response {
        self.client
            .post(format!(
                "{}/dataCollectionRules/{rule}/streams/{stream}?api-version=2023-01-01",
                self.url
            ))
            .bearer_auth(token)
            .json(records)
            .send()
            .await
            .unwrap()
    }

    /// Runs `kql` on `ws` with `token`: the status and the body.
    pub async fn query(&self, ws: &str, token: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/v1/workspaces/{ws}/query", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        (status, value)
    }

    /// The rows of a KQL query's first table, as the owner.
    pub async fn rows(&self, ws: &str, kql: &str) -> Vec<Vec<Value>> {
        let (status, body) = self
            .query(ws, &self.owner(), serde_json::json!({ "query": kql }))
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("error").is_none(), "{body}");
        body["tables"][0]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().clone())
            .collect()
    }

    /// `count()` of `table` in `ws` (0 when the table does not exist yet).
    pub async fn count(&self, ws: &str, table: &str) -> i64 {
        let (status, body) = self
            .query(
                ws,
                &self.owner(),
                serde_json::json!({ "query": format!("{table} | count") }),
            )
            .await;
        if status == 400 && body.to_string().contains(table) {
            return 0;
        }
        assert_eq!(status, 200, "{body}");
        body["tables"][0]["rows"][0][0].as_i64().unwrap()
    }

    /// The text of `GET /metrics`, as the owner.
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.url))
            .bearer_auth(self.owner())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A counter of the server's metrics.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.server().metrics().counter(name, labels)
    }

    /// The seed's customer-managed-key setup: a vault and key, a cluster granted access, the
    /// key set on it, and `ws` linked to it.
    pub async fn link_to_customer_key(&self, ws: &str) -> logvault::kms::PrincipalId {
        let vault = self.engine.vault();
        vault
            .create_vault(
                VAULT,
                &CreateVaultOptions {
                    region: "local".into(),
                    tenant: "local".into(),
                    soft_delete: true,
                    purge_protection: true,
                    retention_days: None,
                },
            )
            .unwrap();
        vault.create_key(VAULT, KEY, KeyType::Oct, None).unwrap();
        let cluster = self
            .engine
            .control()
            .create_cluster(ClusterSpec::new(CLUSTER))
            .await
            .unwrap();
        let principal = cluster.identity.principal_id.clone().unwrap();
        vault
            .set_policy(
                VAULT,
                &principal,
                &["get".into(), "wrapKey".into(), "unwrapKey".into()],
            )
            .unwrap();
        self.engine
            .control()
            .update_cluster(
                CLUSTER,
                ClusterUpdate {
                    key: Some(KeyVaultProperties {
                        key_vault_uri: format!("https://{VAULT}.vault.local"),
                        key_name: KEY.into(),
                        key_version: String::new(),
                    }),
                    ..ClusterUpdate::default()
                },
            )
            .await
            .unwrap();
        self.engine.control().link_workspace(ws, CLUSTER).unwrap();
        principal
    }

    /// Moves the clock past the longest key check interval: the server's key monitor (which
    /// runs every second) then checks the key.
    pub fn pass_check_interval(&self) {
        self.clock
            .advance(Duration::seconds(timings().key_check_max_secs + 1));
    }

    pub async fn shutdown(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// `n` records for the Logs Ingestion API, one second apart from 2026-03-01T10:00:00Z.
pub fn records(n: usize, tag: &str) -> Value {
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
    Value::Array(
        (0..n)
            .map(|i| {
                let level = ["info", "warning", "error", "debug"][i % 4];
                serde_json::json!({
                    "TimeGenerated": (start + Duration::seconds(i as i64)).to_rfc3339(),
                    "Level": level,
                    "Latency": (i * 7) % 100,
                    "Tag": tag,
                    "Seq": i,
                })
            })
            .collect(),
    )
}

pub use logvault_testkit::eventually;
