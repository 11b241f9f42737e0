//! A home on a test clock, and the customer-managed-key setup of the seed.

use std::io::Read;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use chrono::{Duration, TimeZone, Utc};
use logvault::control::{ClusterSpec, ClusterUpdate, KeyVaultProperties, WorkspaceSpec};
use logvault::ingest::Format;
use logvault::kms::local::CreateVaultOptions;
use logvault::kms::{KeyType, PrincipalId};
use logvault::{Engine, HomeConfig, IngestOptions, IngestReport};
use logvault_core::{TestClock, Timings};

pub struct Home {
    pub dir: tempfile::TempDir,
    pub clock: TestClock,
    pub engine: Engine,
}

pub const VAULT: &str = "kv-test";
pub const KEY: &str = "cmk";
pub const CLUSTER: &str = "cluster-01";
pub const WS: &str = "ws-prod";

pub fn timings() -> Timings {
    Timings {
        async_operation_secs: 0,
        ..Timings::default()
    }
}

pub async fn home() -> Home {
    let dir = tempfile::tempdir().unwrap();
    let config = HomeConfig {
        version: 1,
        timings: timings(),
        ..HomeConfig::default()
    };
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
    let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
    let engine = Engine::builder(dir.path())
        .clock(Arc::new(clock.clone()))
        .open()
        .await
        .unwrap();
    Home { dir, clock, engine }
}

impl Home {
    /// Another process on the same home.
    pub async fn reopen(&self) -> Engine {
        Engine::builder(self.dir.path())
            .clock(Arc::new(self.clock.clone()))
            .open()
            .await
            .unwrap()
    }

    /// Moves past the longest key check interval, so the next use checks the key.
    pub fn pass_check_interval(&self) {
        self.clock
            .advance(Duration::seconds(timings().key_check_max_secs + 1));
    }

    pub fn workspace(&self, name: &str) {
        self.engine
            .control()
            .create_workspace(WorkspaceSpec::new(name))
            .unwrap();
    }

    /// The seed's steps: a recoverable vault and key, a cluster with a system identity granted
    /// Get/Wrap/Unwrap by access policy, the key set on the cluster (autorotation unless
    /// `version` is given). Returns the cluster's principal.
    pub async fn cluster_with_key(&self, double: bool, version: Option<&str>) -> PrincipalId {
        let vault = self.engine.vault();
        if vault.vault_info(VAULT).is_err() {
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
        }
        let cluster = self
            .engine
            .control()
            .create_cluster(ClusterSpec {
                double_encryption: double,
                ..ClusterSpec::new(CLUSTER)
            })
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
                        key_version: version.unwrap_or_default().into(),
                    }),
                    ..ClusterUpdate::default()
                },
            )
            .await
            .unwrap();
        principal
    }

    pub async fn ingest_with(
        &self,
        engine: &Engine,
        ws: &str,
        table: &str,
        lines: &[String],
    ) -> IngestReport {
        let payload = lines.join("\n");
        engine
            .ingest(
                ws,
                table,
                std::io::Cursor::new(payload),
                &IngestOptions::new(Format::JsonLines),
                None,
            )
            .await
            .unwrap()
    }

    pub async fn ingest(&self, ws: &str, table: &str, lines: &[String]) -> IngestReport {
        self.ingest_with(&self.engine, ws, table, lines).await
    }

    /// `n` log lines tagged `tag`, one minute apart from `start_minute` on 2026-03-01.
    pub fn lines(tag: &str, start_minute: i64, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                let t = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
                    + Duration::minutes(start_minute + i as i64);
                format!(
                    r#"{{"TimeGenerated":"{}","Tag":"{tag}","Seq":{i},"Message":"event {tag}-{i}"}}"#,
                    t.to_rfc3339()
                )
            })
            .collect()
    }

    /// Runs `sql` and returns the first column as strings (nulls as "null").
    pub async fn column(
        &self,
        engine: &Engine,
        ws: &str,
        sql: &str,
    ) -> Result<Vec<String>, logvault::EngineError> {
        let session = engine.query_session(ws).await?;
        let batches = session
            .context()
            .sql(sql)
            .await
            .map_err(|e| logvault::EngineError::Query(e.into()))?
            .collect()
            .await
            .map_err(|e| logvault::EngineError::Query(e.into()))?;
        let mut out = Vec::new();
        for b in batches {
            let col = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
            let col = col.as_string::<i32>();
            for i in 0..col.len() {
                out.push(if col.is_null(i) {
                    "null".into()
                } else {
                    col.value(i).to_owned()
                });
            }
        }
        Ok(out)
    }

    pub async fn count(
        &self,
        engine: &Engine,
        ws: &str,
        table: &str,
    ) -> Result<u64, logvault::EngineError> {
        let v = self
            .column(engine, ws, &format!("SELECT count(*) FROM {table}"))
            .await?;
        Ok(v[0].parse().unwrap())
    }
}

/// A workspace linked to a cluster with a customer key.
pub async fn linked_home() -> Home {
    let h = home().await;
    h.workspace(WS);
    h.cluster_with_key(false, None).await;
    h.engine.control().link_workspace(WS, CLUSTER).unwrap();
    h
}

/// JSON lines parsed ten rows a batch, so that an ingest acknowledges in several steps.
pub fn ten_row_batches() -> IngestOptions {
    let mut options = IngestOptions::new(Format::JsonLines);
    options.parse.batch_rows = 10;
    options
}

/// Gives `data` at most 512 bytes a read. Before each read, `hook` sees how many bytes are left
/// and may answer the read itself (fail like a dropped connection, revoke the key half-way,
/// move the clock...). The engine reads it on a blocking thread of its own.
pub struct Scripted<F: FnMut(usize) -> Option<std::io::Result<usize>>> {
    data: Vec<u8>,
    at: usize,
    hook: F,
}

impl<F: FnMut(usize) -> Option<std::io::Result<usize>>> Scripted<F> {
    pub fn new(data: String, hook: F) -> Self {
        Self {
            data: data.into_bytes(),
            at: 0,
            hook,
        }
    }
}

impl<F: FnMut(usize) -> Option<std::io::Result<usize>>> Read for Scripted<F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.data.len() - self.at;
        if let Some(answer) = (self.hook)(left) {
            return answer;
        }
        let n = buf.len().min(left).min(512);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Waits (on the reading thread, up to ten seconds) until `ready` says so.
pub fn wait_until(mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ready() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `payload` read 512 bytes at a time; once half of it has been read and `acked` is above zero
/// (the engine reads ahead of what it acknowledges: this waits for the first acknowledgement),
/// the customer key is disabled and the clock moved past the key check interval, so that the
/// revocation comes in the middle of the ingest.
pub fn revoked_half_way(
    h: &Home,
    payload: String,
    acked: Arc<std::sync::atomic::AtomicU64>,
) -> std::io::BufReader<impl Read + use<>> {
    let vault = h.engine.vault().clone();
    let clock = h.clock.clone();
    let half = payload.len() / 2;
    let mut revoke = Some(move || {
        wait_until(|| acked.load(std::sync::atomic::Ordering::SeqCst) > 0);
        vault.set_key_enabled(VAULT, KEY, None, false).unwrap();
        clock.advance(Duration::seconds(timings().key_check_max_secs + 1));
    });
    let reader = Scripted::new(payload, move |left| {
        if left <= half
            && let Some(revoke) = revoke.take()
        {
            revoke();
        }
        None
    });
    std::io::BufReader::with_capacity(512, reader)
}

/// `payload` read 512 bytes at a time, then a read error ("connection reset by the sender")
/// instead of its end: an ingest that stops part-way.
pub fn cut_before_the_end(payload: String) -> std::io::BufReader<impl Read + use<>> {
    std::io::BufReader::with_capacity(
        512,
        Scripted::new(payload, |left| {
            (left == 0).then(|| Err(std::io::Error::other("connection reset by the sender")))
        }),
    )
}
