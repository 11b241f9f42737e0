//! Saved queries and functions (R-H1), query history, storage accounts and linked storage
//! (R-H2, R-H3), revocation of a storage account's key.

use arrow::array::AsArray;
use futures::TryStreamExt;
use logvault::Engine;
use logvault::control::{
    DataSourceType, KeyVaultProperties, SavedSearch, StorageAccountSpec, WorkspaceSpec,
    parse_function_parameters,
};
use logvault::kms::KeyType;
use logvault::kms::local::CreateVaultOptions;

use crate::common::{Home, KEY, VAULT, WS, home};

fn search(id: &str, query: &str, alias: Option<&str>, params: &str) -> SavedSearch {
    SavedSearch {
        id: id.into(),
        category: "Ops".into(),
        display_name: format!("search {id}"),
        query: query.into(),
        function_alias: alias.map(Into::into),
        function_parameters: parse_function_parameters(params).unwrap(),
        updated: chrono::Utc::now(),
    }
}

async fn kql_count(engine: &Engine, ws: &str, kql: &str) -> Result<i64, logvault::EngineError> {
    let result = engine.query_kql(ws, kql).await?;
    let batches: Vec<_> = result.stream.try_collect().await.unwrap();
    let col = batches[0].column(0);
    let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Int64).unwrap();
    Ok(col.as_primitive::<arrow::datatypes::Int64Type>().value(0))
}

async fn home_with_rows() -> Home {
    let h = home().await;
    h.workspace(WS);
    h.ingest(WS, "AppLogs", &Home::lines("a", 0, 10)).await;
    h
}

/// The seed's vault and key, and a storage account whose system identity may use the key.
async fn keyed_storage_account(h: &Home, name: &str) {
    let vault = h.engine.vault();
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
    let account = h
        .engine
        .create_storage_account(StorageAccountSpec {
            name: name.into(),
            ..StorageAccountSpec::default()
        })
        .await
        .unwrap();
    let principal = account.identity.principal_id.clone().unwrap();
    vault
        .set_policy(
            VAULT,
            &principal,
            &["get".into(), "wrapKey".into(), "unwrapKey".into()],
        )
        .unwrap();
    h.engine
        .set_storage_account_key(
            name,
            KeyVaultProperties {
                key_vault_uri: format!("https://{VAULT}.vault.local"),
                key_name: KEY.into(),
                key_version: String::new(),
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_saved_function_is_callable_by_alias_with_typed_parameters_and_defaults() {
    let h = home_with_rows().await;
    let e = &h.engine;
    // Before it is saved, the alias is unknown.
    assert!(kql_count(e, WS, "FirstRows() | count").await.is_err());
    e.save_search(
        WS,
        search(
            "first-rows",
            "AppLogs | where Seq < n",
            Some("FirstRows"),
            "n:long=3",
        ),
    )
    .await
    .unwrap();
    assert_eq!(kql_count(e, WS, "FirstRows() | count").await.unwrap(), 3);
    assert_eq!(kql_count(e, WS, "FirstRows(7) | count").await.unwrap(), 7);
    // Another process sees it; the listing has it.
    let again = h.reopen().await;
    assert_eq!(
        kql_count(&again, WS, "FirstRows(5) | count").await.unwrap(),
        5
    );
    let listed = again.saved_searches(WS).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].function_alias.as_deref(), Some("FirstRows"));
    // The alias is taken; a broken definition is refused.
    let dup = e
        .save_search(WS, search("other", "AppLogs", Some("FirstRows"), ""))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Some(409), "{dup}");
    let broken = e
        .save_search(
            WS,
            search("broken", "AppLogs | where (", Some("Broken"), ""),
        )
        .await
        .unwrap_err();
    assert_eq!(broken.code(), Some(400), "{broken}");
    // Deleted, it is gone.
    e.delete_saved_search(WS, "first-rows").await.unwrap();
    assert!(kql_count(e, WS, "FirstRows() | count").await.is_err());
    assert_eq!(
        e.saved_search(WS, "first-rows").await.unwrap_err().code(),
        Some(404)
    );
}

#[tokio::test]
async fn saved_searches_and_history_are_stored_encrypted_under_the_service_key() {
    let h = home_with_rows().await;
    let secret = "AppLogs | where Message has 'TOPSECRET-7731'";
    h.engine
        .save_search(WS, search("q1", secret, None, ""))
        .await
        .unwrap();
    assert!(h.engine.record_query(WS, "kql", secret).await.unwrap());
    let history = h.engine.query_history(WS).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].query, secret);
    let mut found = 0;
    for entry in walk(&h.dir.path().join("storage/service/documents")) {
        found += 1;
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(14).any(|w| w == b"TOPSECRET-7731"),
            "{} holds the query in clear",
            entry.display()
        );
    }
    assert_eq!(found, 2, "one saved search and one history entry");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn linking_for_query_removes_saved_searches_stops_history_and_is_same_region_only() {
    let h = home_with_rows().await;
    let e = &h.engine;
    e.save_search(WS, search("q1", "AppLogs | take 1", None, ""))
        .await
        .unwrap();
    e.record_query(WS, "kql", "AppLogs | count").await.unwrap();
    // Another region: refused.
    e.create_storage_account(StorageAccountSpec {
        name: "farstore".into(),
        region: Some("westeurope".into()),
        ..StorageAccountSpec::default()
    })
    .await
    .unwrap();
    let err = e
        .link_storage(WS, DataSourceType::Query, "farstore")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(400), "{err}");
    assert!(err.to_string().contains("region"), "{err}");
    assert_eq!(
        e.saved_searches(WS).await.unwrap().len(),
        1,
        "nothing removed"
    );

    keyed_storage_account(&h, "byos1").await;
    let outcome = e
        .link_storage(WS, DataSourceType::Query, "byos1")
        .await
        .unwrap();
    assert_eq!(outcome.removed_saved_searches.len(), 1);
    assert_eq!(outcome.removed_saved_searches[0].id, "q1");
    assert_eq!(outcome.removed_history, 1);
    assert!(e.saved_searches(WS).await.unwrap().is_empty());
    // History is not kept while linked.
    assert!(!e.record_query(WS, "kql", "AppLogs | count").await.unwrap());
    assert_eq!(e.query_history(WS).await.unwrap_err().code(), Some(409));
    // New saved searches live in the storage account.
    e.save_search(WS, search("q2", "AppLogs | take 2", None, ""))
        .await
        .unwrap();
    assert!(
        h.dir
            .path()
            .join("storage/storage-byos1/documents/ws")
            .join(WS)
            .join("savedSearches/q2")
            .exists()
    );
    assert!(
        !h.dir
            .path()
            .join("storage/service/documents/ws")
            .join(WS)
            .join("savedSearches/q2")
            .exists()
    );
    // Another link of another account: refused (one account per workspace).
    e.create_storage_account(StorageAccountSpec {
        name: "nearstore".into(),
        ..StorageAccountSpec::default()
    })
    .await
    .unwrap();
    let err = e
        .link_storage(WS, DataSourceType::Alerts, "nearstore")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(409), "{err}");
    // A linked account cannot be deleted.
    assert_eq!(
        e.delete_storage_account("byos1").await.unwrap_err().code(),
        Some(409)
    );
}

#[tokio::test]
async fn revoking_the_storage_accounts_key_hides_its_saved_searches_and_restoring_brings_them_back()
{
    let h = home_with_rows().await;
    let e = &h.engine;
    keyed_storage_account(&h, "byos1").await;
    e.link_storage(WS, DataSourceType::Query, "byos1")
        .await
        .unwrap();
    e.save_search(
        WS,
        search("f1", "AppLogs | where Seq < n", Some("Few"), "n:long=2"),
    )
    .await
    .unwrap();
    assert_eq!(kql_count(e, WS, "Few() | count").await.unwrap(), 2);

    e.vault().set_key_enabled(VAULT, KEY, None, false).unwrap();
    let err = e.saved_searches(WS).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, logvault::EngineError::StorageKey { .. }),
        "{text}"
    );
    assert!(text.contains("storage account byos1"), "{text}");
    assert!(text.contains(KEY), "{text}");
    // A query calling the function fails with that error, not "unknown function"; a query
    // that needs no function still runs.
    let err = kql_count(e, WS, "Few() | count").await.unwrap_err();
    assert!(err.to_string().contains("storage account byos1"), "{err}");
    assert_eq!(kql_count(e, WS, "AppLogs | count").await.unwrap(), 10);
    // A new process sees the same.
    assert!(h.reopen().await.saved_searches(WS).await.is_err());

    e.vault().set_key_enabled(VAULT, KEY, None, true).unwrap();
    assert_eq!(e.saved_searches(WS).await.unwrap().len(), 1);
    assert_eq!(kql_count(e, WS, "Few() | count").await.unwrap(), 2);
}

#[tokio::test]
async fn a_storage_account_key_is_validated_like_a_clusters() {
    let h = home().await;
    h.engine
        .control()
        .create_workspace(WorkspaceSpec::new(WS))
        .unwrap();
    // No such vault: refused with the seed's message, and nothing is left behind.
    let err = h
        .engine
        .create_storage_account(StorageAccountSpec {
            name: "byos2".into(),
            key: Some(KeyVaultProperties {
                key_vault_uri: "https://nosuchvault.vault.local".into(),
                key_name: KEY.into(),
                key_version: String::new(),
            }),
            ..StorageAccountSpec::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(400), "{err}");
    assert!(err.to_string().contains("Failed to validate key"), "{err}");
    assert!(
        h.engine
            .control()
            .list_storage_accounts()
            .unwrap()
            .is_empty()
    );
    // Bad names are refused.
    let err = h
        .engine
        .create_storage_account(StorageAccountSpec {
            name: "Bad_Name".into(),
            ..StorageAccountSpec::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(400), "{err}");
}
