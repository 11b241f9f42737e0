//! The `logvault-cluster` binary as processes over Azure Blob storage (Azurite, which `.ci/run`
//! starts: `.ci/emulators`): a scheduler, two executors and a query API server on one home
//! whose data rests on the emulator. The executors open the home's `storageUrl` with the
//! backend's standard environment, as on a machine of their own. Every query answers the same
//! distributed as locally under the service key and a customer key; then the customer key is
//! disabled at the vault and the executors' own key checks stop distributed queries with the
//! named error, until the key is enabled again.
//!
//! Without `LOGVAULT_TEST_AZURITE` the test says on stderr that it did not run (and passes);
//! under `.ci/run` (`LOGVAULT_REQUIRE_EMULATORS=1`) it fails instead.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use logvault::store::AccountId;
use logvault_core::Timings;

use crate::common::{Api, CLUSTER, KEY, RemoteStorage, VAULT, home_on};
use crate::processes::{Processes, same_answers, start_cluster};

/// Azurite's well-known development account (public, the same in every installation).
const ACCOUNT: &str = "devstoreaccount1";
const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The emulator `.ci/emulators` started (`ENDPOINT|CONTAINER`), or why there is none. `Ok(None)`:
/// not required here, and said on stderr.
fn azurite() -> Result<Option<(String, String)>> {
    let required = std::env::var("LOGVAULT_REQUIRE_EMULATORS").is_ok_and(|v| v == "1");
    match std::env::var("LOGVAULT_TEST_AZURITE") {
        Ok(value) => {
            let (endpoint, container) = value.split_once('|').with_context(|| {
                format!("LOGVAULT_TEST_AZURITE={value}: not ENDPOINT|CONTAINER")
            })?;
            Ok(Some((endpoint.to_owned(), container.to_owned())))
        }
        Err(_) if required => {
            bail!("LOGVAULT_TEST_AZURITE is not set, but .ci/run requires the emulators")
        }
        Err(_) => {
            // Straight to stderr: libtest captures only the print macros.
            let _ = writeln!(
                std::io::stderr(),
                "cluster processes over Azurite: NOT RUN, LOGVAULT_TEST_AZURITE is not set (the \
                 emulators are started by .ci/run; see docs/development.md)"
            );
            Ok(None)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_azurite_cluster_processes_answer_as_one_node_and_stop_when_the_key_is_disabled()
-> Result<()> {
    let Some((endpoint, container)) = azurite()? else {
        return Ok(());
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let url = format!(
        "az://{container}/cluster-processes-{}-{nanos}",
        std::process::id()
    );
    // This process opens the emulator by its endpoint (object_store reads the emulator's
    // address from the environment, which a test cannot set); the processes it starts use the
    // standard environment of docs/deploy.md.
    let storage = RemoteStorage {
        url,
        options: vec![
            ("azure_storage_account_name".into(), ACCOUNT.into()),
            ("azure_storage_account_key".into(), ACCOUNT_KEY.into()),
            (
                "azure_storage_endpoint".into(),
                format!("{}/{ACCOUNT}", endpoint.trim_end_matches('/')),
            ),
            ("azure_allow_http".into(), "true".into()),
        ],
    };
    let env = vec![
        ("AZURE_STORAGE_USE_EMULATOR".to_owned(), "true".to_owned()),
        ("AZURITE_BLOB_STORAGE_URL".to_owned(), endpoint.clone()),
    ];
    // The query node checks keys once an hour here, so that only the executors' own checks
    // (every second: `--key-check-secs 1`) can see the revocation below.
    let timings = Timings {
        key_check_min_secs: 3600,
        key_check_max_secs: 3600,
        ..Timings::default()
    };
    let h = home_on(false, Some(storage), timings).await?;
    let token = h.owner_token().await?;
    let logs = tempfile::tempdir()?;
    let mut p = Processes::new(logs.path(), env);
    let outcome = async {
        let api = start_cluster(&mut p, h.dir.path(), token, &["--key-check-secs", "1"]).await?;
        same_answers(&p, &api).await?;
        revocation(&h.engine, &api).await
    }
    .await;
    if let Err(e) = outcome {
        bail!("{e:#}\n{}", p.logs());
    }
    Ok(())
}

/// The customer key disabled at the vault: distributed queries of its data fail on the
/// executors with 503 `CustomerManagedKeyUnavailable` naming the executor and the account (the
/// query node has not checked the key, its gate still admits), service-key data still answers;
/// the key enabled again, the same query answers as locally.
async fn revocation(engine: &logvault::Engine, api: &Api) -> Result<()> {
    let q = r#"SELECT "Account" AS account, COUNT(*) AS n FROM "SecurityEvent" GROUP BY "Account" ORDER BY account"#;
    let account = AccountId::cluster(CLUSTER)?.to_string();
    engine.vault().set_key_enabled(VAULT, KEY, None, false)?;
    // The executors' keys are older than their check interval (1 s) by now or soon: each
    // query asks the vault again, which refuses.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for (language, query) in [("sql", q), ("kql", "SecurityEvent | count")] {
        loop {
            let (status, body) = api.query(language, query, true).await?;
            if status == 503 {
                let message = body["error"]["message"].as_str().unwrap_or_default();
                if body["error"]["code"] != "CustomerManagedKeyUnavailable"
                    || !message.contains(&format!("cannot read storage account {account}"))
                    || !message.contains("executor executor-")
                    || !message.contains("disabled")
                {
                    bail!("{language} after the key was disabled: {body}");
                }
                break;
            }
            if status != 200 || tokio::time::Instant::now() >= deadline {
                bail!("{language}: the executors did not refuse within 30 s: {status} {body}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    // Locally the query node's cached key still answers: the refusal came from the executors.
    let (status, local) = api.query("sql", q, false).await?;
    if status != 200 {
        bail!("the local query failed too, so the executors were not what refused: {local}");
    }
    api.same_answer("sql", r#"SELECT COUNT(*) AS n FROM "Syslog""#)
        .await
        .context("service-key data during the revocation")?;

    engine.vault().set_key_enabled(VAULT, KEY, None, true)?;
    api.same_answer("sql", q)
        .await
        .context("after the key was enabled again")?;
    api.same_answer(
        "kql",
        "SecurityEvent | summarize n = count() by Account | order by Account asc",
    )
    .await
    .context("after the key was enabled again")?;
    Ok(())
}
