//! logvault's codecs without a cluster: a query's logical plan as the query node sends it, the
//! physical plan as the scheduler sends it, both searched for key material; the physical plan
//! decoded and run as an executor would, with its own store; and what DataFusion's protobuf
//! alone does to an encrypted scan.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow::util::pretty::pretty_format_batches;
use chrono::{TimeZone, Utc};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::SessionContext;
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};
use datafusion_proto::physical_plan::DefaultPhysicalExtensionCodec;
use logvault::control::{ClusterSpec, ClusterUpdate, KeyVaultProperties, WorkspaceSpec};
use logvault::ingest::Format;
use logvault::kms::KeyType;
use logvault::kms::local::CreateVaultOptions;
use logvault::store::{AccountId, Store, StoreConfig};
use logvault::{Engine, HomeConfig, IngestOptions};
use logvault_core::{TestClock, Timings};
use logvault_distributed::{
    LogvaultLogicalCodec, LogvaultPhysicalCodec, LogvaultScanExec, executor_runtime,
    scheduler_session,
};

const WS: &str = "ws-codec";
const CLUSTER: &str = "codec-c1";
const VAULT: &str = "kv-codec";

async fn home() -> Result<(tempfile::TempDir, Engine)> {
    let dir = tempfile::tempdir()?;
    let config = HomeConfig {
        version: 1,
        timings: Timings {
            async_operation_secs: 0,
            ..Timings::default()
        },
        ..HomeConfig::default()
    };
    std::fs::write(dir.path().join("config.json"), serde_json::to_vec(&config)?)?;
    let clock = TestClock::new(
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .context("time")?,
    );
    let engine = Engine::builder(dir.path())
        .clock(Arc::new(clock))
        .open()
        .await?;
    engine.control().create_workspace(WorkspaceSpec::new(WS))?;
    let lines = |tag: &str| {
        (0..40)
            .map(|i| {
                format!(
                    r#"{{"TimeGenerated":"2026-02-2{}T0{}:00:00Z","Tag":"{tag}","Seq":{i}}}"#,
                    i % 5,
                    i % 10
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let ingest = |table: &'static str, payload: String| {
        let engine = engine.clone();
        async move {
            let r = engine
                .ingest(
                    WS,
                    table,
                    std::io::Cursor::new(payload),
                    &IngestOptions::new(Format::JsonLines),
                    None,
                )
                .await?;
            if r.accepted != 40 {
                bail!("{table}: {r:?}");
            }
            anyhow::Ok(())
        }
    };
    ingest("Service", lines("svc")).await?;
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
    vault.create_key(VAULT, "cmk", KeyType::Oct, None)?;
    let cluster = engine
        .control()
        .create_cluster(ClusterSpec::new(CLUSTER))
        .await?;
    let principal = cluster.identity.principal_id.context("identity")?;
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
                    key_name: "cmk".into(),
                    key_version: String::new(),
                }),
                ..ClusterUpdate::default()
            },
        )
        .await?;
    engine.control().link_workspace(WS, CLUSTER)?;
    ingest("Customer", lines("cmk")).await?;
    Ok((dir, engine))
}

const QUERY: &str = "SELECT Tag, count(*) AS n, max(Seq) AS top FROM \
    (SELECT Tag, Seq FROM Service UNION ALL SELECT Tag, Seq FROM Customer) \
    WHERE Seq >= 3 GROUP BY Tag ORDER BY Tag";

/// The scheduler's side: the logical plan decoded in a session without tables or keys, planned.
async fn scheduled(logical: &[u8]) -> Result<Arc<dyn ExecutionPlan>> {
    let state = scheduler_session(datafusion::prelude::SessionConfig::new())?;
    let ctx = SessionContext::new_with_state(state);
    let plan = logical_plan_from_bytes_with_extension_codec(
        logical,
        &ctx.task_ctx(),
        &LogvaultLogicalCodec::default(),
    )?;
    Ok(ctx.state().create_physical_plan(&plan).await?)
}

#[tokio::test]
async fn plans_carry_segments_and_key_names_but_no_key_and_run_on_an_executor() -> Result<()> {
    let (_dir, engine) = home().await?;
    let session = engine.query_session(WS).await?;
    let expected =
        pretty_format_batches(&session.context().sql(QUERY).await?.collect().await?)?.to_string();
    assert!(
        expected.contains("svc") && expected.contains("cmk"),
        "{expected}"
    );

    let logical = session.context().sql(QUERY).await?.into_optimized_plan()?;
    let logical =
        logical_plan_to_bytes_with_extension_codec(&logical, &LogvaultLogicalCodec::default())?;
    let physical = scheduled(&logical).await?;
    let scans = count_scans(&physical);
    assert_eq!(scans, 2, "one logvault scan per table");
    let physical_bytes = physical_plan_to_bytes_with_extension_codec(
        physical.clone(),
        &LogvaultPhysicalCodec::default(),
    )?;

    // Every account key and every segment's data key, looked for raw, in hex and in base64.
    let store = engine.store();
    let mut keys = 0;
    let mut segments = 0;
    for table in ["Service", "Customer"] {
        let manifest = store.catalog().manifest(WS, table).await?;
        for segment in &manifest.segments {
            let aek = store
                .keyring()
                .cached_aek(&segment.account)
                .context("account key not cached")?;
            let dek = aek.derive_dek(&segment.id.to_string())?;
            for (what, bytes) in [("logical", &logical[..]), ("physical", &physical_bytes[..])] {
                assert!(
                    !aek.to_secret().occurs_in(bytes),
                    "account key in the {what} plan"
                );
                assert!(!dek.occurs_in(bytes), "data key in the {what} plan");
                // The bytes searched are the plan's: they name the segment.
                let id = segment.id.to_string();
                assert!(
                    bytes.windows(id.len()).any(|w| w == id.as_bytes()),
                    "segment {id} not in the {what} plan"
                );
            }
            keys += 1;
            segments += 1;
        }
    }
    assert!(keys >= 2 && segments >= 2);
    assert!(
        physical_bytes
            .windows(br#""factoryId":"logvault""#.len())
            .any(|w| w == br#""factoryId":"logvault""#),
        "the scan's encryption settings are not in the plan"
    );

    // An executor: its own store (no key cached), its runtime; the plan decoded and run there.
    let exec_store = Arc::new(
        Store::open(
            store.root().clone(),
            engine.key_vault(),
            store.service_binding(),
            StoreConfig::default(),
            engine.clock().clone(),
        )
        .await?,
    );
    let cluster_account = AccountId::cluster(CLUSTER)?;
    assert!(exec_store.keyring().cached_aek(&cluster_account).is_none());
    let runtime = executor_runtime("test-executor", exec_store.clone(), None)?;
    let task = Arc::new(TaskContext::default().with_runtime(runtime));
    let decoded = physical_plan_from_bytes_with_extension_codec(
        &physical_bytes,
        &task,
        &LogvaultPhysicalCodec::default(),
    )?;
    assert_eq!(count_scans(&decoded), 2);
    let got = pretty_format_batches(&collect(decoded, task.clone()).await?)?.to_string();
    assert_eq!(got, expected);
    assert!(exec_store.keyring().cached_aek(&cluster_account).is_some());

    // DataFusion's protobuf alone: the scans arrive without their encryption settings.
    let inner = first_scan(&physical).context("no scan")?;
    let plain =
        physical_plan_to_bytes_with_extension_codec(inner, &DefaultPhysicalExtensionCodec {})?;
    let back = physical_plan_from_bytes_with_extension_codec(
        &plain,
        &task,
        &DefaultPhysicalExtensionCodec {},
    )?;
    let options = back
        .downcast_ref::<datafusion::datasource::source::DataSourceExec>()
        .and_then(|e| {
            e.data_source()
                .downcast_ref::<datafusion::datasource::physical_plan::FileScanConfig>()
        })
        .and_then(|c| {
            c.file_source()
                .downcast_ref::<datafusion::datasource::physical_plan::ParquetSource>()
        })
        .map(|s| s.table_parquet_options().clone())
        .context("not a parquet scan")?;
    assert_eq!(
        options.crypto.factory_id, None,
        "DataFusion now keeps the factory id"
    );
    assert!(
        collect(back, task).await.is_err(),
        "an encrypted scan read without keys"
    );
    Ok(())
}

fn count_scans(plan: &Arc<dyn ExecutionPlan>) -> usize {
    usize::from(plan.downcast_ref::<LogvaultScanExec>().is_some())
        + plan.children().into_iter().map(count_scans).sum::<usize>()
}

fn first_scan(plan: &Arc<dyn ExecutionPlan>) -> Option<Arc<dyn ExecutionPlan>> {
    if let Some(scan) = plan.downcast_ref::<LogvaultScanExec>() {
        return Some(scan.inner().clone());
    }
    plan.children().into_iter().find_map(first_scan)
}
