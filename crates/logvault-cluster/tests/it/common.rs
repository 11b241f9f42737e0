//! A home on a test clock with `Syslog` under the service key and `SecurityEvent` under a
//! customer key, the queries the tests run (the benchmark suite's shapes on the bundled sample
//! data), and an HTTP client of the query API.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{TimeZone, Utc};
use logvault::control::{ClusterSpec, ClusterUpdate, KeyVaultProperties, WorkspaceSpec};
use logvault::ingest::Format;
use logvault::kms::KeyType;
use logvault::kms::local::CreateVaultOptions;
use logvault::{Engine, HomeConfig, IngestOptions};
use logvault_core::{TestClock, Timings};
use serde_json::{Value, json};

pub const VAULT: &str = "kv-dist";
pub const KEY: &str = "cmk";
pub const CLUSTER: &str = "cluster-01";
pub const WS: &str = "ws-dist";

/// The suite's shapes in SQL (`count_by_level`, `errors_per_hour`, `message_search`,
/// `top_hosts`, `distinct_users`, a join): `Syslog` is under the service key,
/// `SecurityEvent` under the customer key.
pub const SQL: &[&str] = &[
    r#"SELECT "SeverityLevel" AS level, COUNT(*) AS n FROM "Syslog" GROUP BY "SeverityLevel" ORDER BY level"#,
    r#"SELECT date_part('epoch', date_trunc('hour', "TimeGenerated")) AS hour, COUNT(*) AS n FROM "Syslog" WHERE "SeverityLevel" IN ('notice') GROUP BY date_trunc('hour', "TimeGenerated") ORDER BY hour"#,
    r#"SELECT "Computer" AS host, COUNT(*) AS n FROM "Syslog" WHERE "SyslogMessage" LIKE '%session opened%' GROUP BY "Computer" ORDER BY host"#,
    r#"SELECT "Account" AS account, COUNT(*) AS n FROM "SecurityEvent" GROUP BY "Account" ORDER BY n DESC, account LIMIT 3"#,
    r#"SELECT COUNT(DISTINCT "Account") AS users FROM "SecurityEvent""#,
    r#"SELECT e."Account" AS account, COUNT(*) AS n FROM "SecurityEvent" e JOIN (SELECT DISTINCT "Computer" FROM "SecurityEvent" WHERE "EventID" = 4624) c ON e."Computer" = c."Computer" GROUP BY e."Account" ORDER BY account"#,
];

/// The same shapes in KQL, with a union of both keys' tables.
pub const KQL: &[&str] = &[
    "Syslog | summarize n = count() by level = SeverityLevel | order by level asc",
    "SecurityEvent | summarize n = count() by account = Account | order by n desc, account asc | take 3",
    "SecurityEvent | where EventID == 4624 | project TimeGenerated, Account | order by TimeGenerated desc, Account asc | take 5",
    "union Syslog, SecurityEvent | summarize n = count() by Computer | order by Computer asc",
];

pub struct Home {
    pub dir: tempfile::TempDir,
    pub clock: TestClock,
    pub engine: Engine,
}

impl Home {
    /// A token with the Owner role for the query API, valid for an hour.
    pub async fn owner_token(&self) -> Result<String> {
        Ok(logvault_server::TokenService::open(&self.engine)
            .await?
            .issue(
                "tester",
                &[logvault_server::Role::Owner],
                None,
                self.engine.clock().now(),
                chrono::Duration::hours(1),
            )?
            .token)
    }
}

fn data(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(file)
}

async fn ingest(engine: &Engine, file: &str, table: &str, format: Format) -> Result<()> {
    let input = std::io::BufReader::new(std::fs::File::open(data(file))?);
    let r = engine
        .ingest(WS, table, input, &IngestOptions::new(format), None)
        .await?;
    if r.accepted == 0 || r.dropped != 0 {
        bail!("{table}: {r:?}");
    }
    // The sample data is from 2019: kept from the server's retention purge.
    engine
        .set_retention(WS, table, logvault::store::MAX_RETENTION_DAYS)
        .await?;
    Ok(())
}

/// A home on the test clock, or on the system's clock with `clock: false` (for processes,
/// which cannot share a test clock).
pub async fn home(test_clock: bool) -> Result<Home> {
    home_on(test_clock, None, Timings::default()).await
}

/// Remote storage for a home: its URL (kept in `config.json`, what other processes open) and
/// the options this process opens it with.
pub struct RemoteStorage {
    pub url: String,
    pub options: Vec<(String, String)>,
}

/// As [`home`], with the data at `storage` (local files when `None`) and the given timings
/// (asynchronous operations completing at once whatever they say).
pub async fn home_on(
    test_clock: bool,
    storage: Option<RemoteStorage>,
    timings: Timings,
) -> Result<Home> {
    let dir = tempfile::tempdir()?;
    let config = HomeConfig {
        version: 1,
        timings: Timings {
            async_operation_secs: 0,
            ..timings
        },
        storage_url: storage.as_ref().map(|s| s.url.clone()),
        ..HomeConfig::default()
    };
    std::fs::write(dir.path().join("config.json"), serde_json::to_vec(&config)?)?;
    let clock = TestClock::new(
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .context("time")?,
    );
    let mut builder = Engine::builder(dir.path());
    if test_clock {
        builder = builder.clock(Arc::new(clock.clone()));
    }
    if let Some(storage) = storage {
        builder = builder.object_store(logvault::store::url_root(&storage.url, storage.options)?);
    }
    let engine = builder.open().await?;
    engine.control().create_workspace(WorkspaceSpec::new(WS))?;
    ingest(&engine, "Syslog.csv", "Syslog", Format::Csv).await?;

    let vault = engine.vault();
    vault.create_vault(
        VAULT,
        &CreateVaultOptions {
            region: "local".into(),
            tenant: "local".into(),
            soft_delete: true,
            purge_protection: true,
            retention_days: None,
        },
    )?;
    vault.create_key(VAULT, KEY, KeyType::Oct, None)?;
    let cluster = engine
        .control()
        .create_cluster(ClusterSpec::new(CLUSTER))
        .await?;
    let principal = cluster.identity.principal_id.context("cluster identity")?;
    vault.set_policy(
        VAULT,
        &principal,
        &["get".into(), "wrapKey".into(), "unwrapKey".into()],
    )?;
    engine
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
        .await?;
    engine.control().link_workspace(WS, CLUSTER)?;
    ingest(
        &engine,
        "SecurityEvent.jsonl",
        "SecurityEvent",
        Format::JsonLines,
    )
    .await?;
    Ok(Home { dir, clock, engine })
}

/// A client of a server's query API.
pub struct Api {
    pub client: reqwest::Client,
    pub url: String,
    pub token: String,
}

impl Api {
    /// Posts `query` in `language` (`distributed` as given) and returns the status and body.
    pub async fn query(
        &self,
        language: &str,
        query: &str,
        distributed: bool,
    ) -> Result<(u16, Value)> {
        self.post(json!({"query": query, "language": language, "distributed": distributed}))
            .await
    }

    pub async fn post(&self, body: Value) -> Result<(u16, Value)> {
        let r = self
            .client
            .post(format!("{}/v1/workspaces/{WS}/query", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = r.status().as_u16();
        let text = r.text().await?;
        let value = serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?;
        Ok((status, value))
    }

    /// Runs `query` here and on the cluster and checks that both answer the same tables,
    /// with rows.
    pub async fn same_answer(&self, language: &str, query: &str) -> Result<()> {
        let (status, local) = self.query(language, query, false).await?;
        if status != 200 {
            bail!("{query} (local): {status} {local}");
        }
        let rows = local["tables"][0]["rows"].as_array().map_or(0, Vec::len);
        if rows == 0 || local.get("error").is_some() {
            bail!("{query} answered nothing here: {local}");
        }
        let (status, distributed) = self.query(language, query, true).await?;
        if status != 200 || distributed.get("error").is_some() {
            bail!("{query} (distributed): {status} {distributed}");
        }
        if distributed["tables"] != local["tables"] {
            bail!("{query}: the cluster answered\n{distributed}\nnot\n{local}");
        }
        Ok(())
    }
}
