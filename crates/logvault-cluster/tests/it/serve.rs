//! The query API's distributed path (`"distributed": true`) with an in-process Ballista
//! cluster behind the server's hook ([`BallistaQueries`]): a scheduler and two executors, each
//! executor with its own store and keyring over the home's storage and vault. Every query is
//! asked of the same server twice, locally and distributed, and the answers compared.

use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::Duration;
use logvault::store::{AccountId, KeyringConfig, Store, StoreConfig};
use logvault_cluster::BallistaQueries;
use logvault_distributed::{ExecutorSpec, InProcessCluster};
use logvault_server::{DistributeAbove, RunningServer, ServeConfig};
use serde_json::json;

use crate::common::{Api, CLUSTER, Home, KEY, KQL, SQL, VAULT, home};

/// An executor's own store over the home's storage root and vault, its keys kept for
/// `key_ttl` (the query node keeps them for the home's revocation bound).
async fn executor_store(h: &Home, key_ttl: Duration) -> Result<Arc<Store>> {
    let store = h.engine.store();
    Ok(Arc::new(
        Store::open(
            store.root().clone(),
            h.engine.key_vault(),
            store.service_binding(),
            StoreConfig {
                keyring: KeyringConfig {
                    aek_ttl: key_ttl,
                    ..KeyringConfig::default()
                },
                ..StoreConfig::default()
            },
            h.engine.clock().clone(),
        )
        .await?,
    ))
}

struct Served {
    home: Home,
    _cluster: InProcessCluster,
    stores: Vec<Arc<Store>>,
    server: RunningServer,
    api: Api,
}

async fn served(key_ttl: Duration) -> Result<Served> {
    served_with(key_ttl, None).await
}

/// As [`served`], with the server's size threshold for distributed queries.
async fn served_with(
    key_ttl: Duration,
    distribute_above: Option<DistributeAbove>,
) -> Result<Served> {
    let home = home(true).await?;
    let mut stores = Vec::new();
    let mut specs = Vec::new();
    for name in ["executor-1", "executor-2"] {
        let store = executor_store(&home, key_ttl).await?;
        stores.push(store.clone());
        specs.push(ExecutorSpec {
            name: name.into(),
            store,
            vcores: 2,
        });
    }
    let cluster = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        InProcessCluster::start(specs),
    )
    .await
    .context("the cluster did not start in 30 s")??;
    let server = logvault_server::start(
        home.engine.clone(),
        ServeConfig {
            listen: "127.0.0.1:0".parse()?,
            plain_http: true,
            alert_interval: None,
            distributed: Some(Arc::new(BallistaQueries::new(cluster.scheduler()))),
            distribute_above,
            ..ServeConfig::default()
        },
    )
    .await?;
    let token = home.owner_token().await?;
    let api = Api {
        client: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()?,
        url: server.url().to_owned(),
        token,
    };
    Ok(Served {
        home,
        _cluster: cluster,
        stores,
        server,
        api,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_query_api_answers_distributed_queries_as_it_answers_local_ones() -> Result<()> {
    let s = served(Duration::seconds(60)).await?;
    // Without a threshold (the default) a query that does not ask runs here: no executor
    // touched a key.
    let (status, body) = s
        .api
        .post(json!({ "query": SQL[0], "language": "sql" }))
        .await?;
    assert_eq!(status, 200, "{body}");
    assert!(
        s.stores
            .iter()
            .all(|st| st.keyring().cached_aek(&AccountId::service()).is_none()),
        "a query that did not ask ran on the cluster"
    );
    for q in SQL {
        s.api.same_answer("sql", q).await?;
    }
    for q in KQL {
        s.api.same_answer("kql", q).await?;
    }
    // The executors read both accounts with keys they unwrapped at the vault themselves.
    for account in [AccountId::service(), AccountId::cluster(CLUSTER)?] {
        assert!(
            s.stores
                .iter()
                .any(|st| st.keyring().cached_aek(&account).is_some()),
            "no executor unwrapped the key of {account}"
        );
    }
    // A timespan applies to a distributed KQL query as to a local one: the sample data is
    // from 2019, the test clock in 2026.
    for (timespan, expect_rows) in [("P1D", false), ("P3000D", true)] {
        let body = json!({"query": KQL[0], "timespan": timespan, "distributed": true});
        let (status, distributed) = s.api.post(body.clone()).await?;
        let mut local_body = body;
        local_body["distributed"] = json!(false);
        let (_, local) = s.api.post(local_body).await?;
        assert_eq!(status, 200, "{distributed}");
        assert_eq!(distributed["tables"], local["tables"], "{timespan}");
        let rows = distributed["tables"][0]["rows"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(rows > 0, expect_rows, "{timespan}: {distributed}");
    }
    // Errors have the local query's shape: planning happens on the query node.
    for (language, bad) in [
        ("kql", "Syslog | where Nope > 1"),
        ("kql", "Syslog | | take"),
        ("sql", "SELECT * FROM Nope"),
    ] {
        let local = s.api.query(language, bad, false).await?;
        let distributed = s.api.query(language, bad, true).await?;
        assert_eq!(local.0, 400, "{bad}: {}", local.1);
        assert_eq!(distributed, local, "{bad}");
    }
    // A function the cluster cannot rebuild fails with logvault's message (the query runs
    // locally).
    let q = "Syslog | extend h = hash_sha256(Computer) | summarize n = count() by h";
    let (status, body) = s.api.query("kql", q, false).await?;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.api.query("kql", q, true).await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["innererror"]["code"], "QueryExecutionError");
    let message = body["error"]["innererror"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("function hash_sha256 cannot run on a Ballista cluster yet"),
        "{body}"
    );
    s.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_fails_a_distributed_query_on_the_executors_then_at_the_key_gate() -> Result<()>
{
    // Executors keep an unwrapped key 1 s; the query node for the home's revocation bound.
    let s = served(Duration::seconds(1)).await?;
    let q = r#"SELECT "Account" AS account, COUNT(*) AS n FROM "SecurityEvent" GROUP BY "Account" ORDER BY account"#;
    s.api.same_answer("sql", q).await?;

    s.home
        .engine
        .vault()
        .set_key_enabled(VAULT, KEY, None, false)?;
    // The executors' keys expire; the query node still holds its own (its key monitor has
    // not checked yet): only the executors can stop the query now.
    s.home.clock.advance(Duration::seconds(2));
    let account = AccountId::cluster(CLUSTER)?.to_string();
    for language_query in [("sql", q), ("kql", "SecurityEvent | count")] {
        let (status, body) = s
            .api
            .query(language_query.0, language_query.1, true)
            .await?;
        assert_eq!(status, 503, "{body}");
        assert_eq!(
            body["error"]["code"], "CustomerManagedKeyUnavailable",
            "{body}"
        );
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("cannot read storage account {account}"))
                && message.contains("executor-")
                && message.contains("disabled"),
            "{body}"
        );
    }
    // Data under the service key still answers.
    s.api
        .same_answer("sql", r#"SELECT COUNT(*) AS n FROM "Syslog""#)
        .await?;

    // The server's key monitor notices (after its check interval): the key gate refuses the
    // distributed query before it leaves the query node, as it refuses a local one.
    s.home.clock.advance(Duration::seconds(61));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = s.api.query("sql", q, true).await?;
        if status == 403 {
            assert_eq!(body["error"]["code"], "CustomerManagedKeyRevoked", "{body}");
            let local = s.api.query("sql", q, false).await?;
            assert_eq!(local, (status, body));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the key gate did not refuse in 30 s: {status} {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    s.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_size_threshold_sends_queries_over_it_to_the_cluster_and_keeps_the_others_here()
-> Result<()> {
    // `Syslog` holds 100 rows (service key), `SecurityEvent` 24 (customer key): a threshold of
    // 50 rows puts the first over it and the second under. Which executor keyring holds which
    // key tells where a query ran.
    let above = DistributeAbove {
        rows: Some(50),
        bytes: None,
    };
    let s = served_with(Duration::seconds(60), Some(above)).await?;
    let on_cluster = |account: &AccountId| {
        s.stores
            .iter()
            .any(|st| st.keyring().cached_aek(account).is_some())
    };
    let service = AccountId::service();
    let customer = AccountId::cluster(CLUSTER)?;
    let ask = |query: &str, language: &str| json!({ "query": query, "language": language });
    let local = |query: &str, language: &str| json!({ "query": query, "language": language, "distributed": false });

    // Under the threshold: here.
    let small = r#"SELECT "Account" AS account, COUNT(*) AS n FROM "SecurityEvent" GROUP BY "Account" ORDER BY account"#;
    let (status, body) = s.api.post(ask(small, "sql")).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, s.api.post(local(small, "sql")).await?.1);
    assert!(
        !on_cluster(&customer),
        "a query under the threshold ran on the cluster"
    );
    // Over it but `"distributed": false`: here.
    let big = SQL[0];
    let (status, body) = s.api.post(local(big, "sql")).await?;
    assert_eq!(status, 200, "{body}");
    assert!(
        !on_cluster(&service),
        "\"distributed\": false ran on the cluster"
    );
    // Over it, not said: on the cluster, with the local answer.
    let (status, distributed) = s.api.post(ask(big, "sql")).await?;
    assert_eq!(status, 200, "{distributed}");
    assert_eq!(distributed["tables"], body["tables"]);
    assert!(on_cluster(&service), "a query over the threshold ran here");
    assert!(!on_cluster(&customer));
    // KQL as well: a union of both tables holds 124 rows.
    let union = KQL[3];
    let (status, distributed) = s.api.post(ask(union, "kql")).await?;
    assert_eq!(status, 200, "{distributed}");
    assert_eq!(
        distributed["tables"],
        s.api.post(local(union, "kql")).await?.1["tables"]
    );
    assert!(
        on_cluster(&customer),
        "a KQL query over the threshold ran here"
    );
    s.server.shutdown().await;
    Ok(())
}
