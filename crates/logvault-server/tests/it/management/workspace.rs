//! A workspace's resources through the management API: lists and their paging, linked storage,
//! saved searches, tables and their schemas, and PATCH of the workspace itself.

use logvault_server::Role;
use serde_json::{Value, json};

use super::{SUB, arm, oi};
use crate::common::{Options, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_lists_page_with_next_links() {
    let s = serve(Options {
        page_size: Some(1),
        ..Options::default()
    })
    .await;
    let mut names = Vec::new();
    let mut next = Some(format!(
        "{}/subscriptions/{SUB}/providers/Microsoft.OperationalInsights/workspaces?api-version=2025-07-01",
        s.url
    ));
    let mut pages = 0;
    while let Some(url) = next {
        let (status, _, body) = arm(&s, "GET", &url, None).await;
        assert_eq!(status, 200, "{body}");
        for w in body["value"].as_array().unwrap() {
            names.push(w["name"].as_str().unwrap().to_owned());
            assert_eq!(w["properties"]["customerId"], w["customerId"]);
        }
        next = body["nextLink"].as_str().map(str::to_owned);
        pages += 1;
    }
    assert_eq!(names, vec!["ws-app", "ws-other"]);
    assert_eq!(pages, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_storage_saved_searches_and_tables_through_arm() {
    let s = serve(Options::default()).await;
    let ws = oi(&format!("workspaces/{}", crate::common::WS));
    // Saved searches: the CLI's store.
    let (status, _, body) = arm(
        &s,
        "PUT",
        &format!("{ws}/savedSearches/errors"),
        Some(
            json!({"properties": {"category": "ops", "displayName": "Errors",
            "query": "AppEvents | where Level == 'error'", "functionAlias": "Errs",
            "functionParameters": "lvl:string=\"error\""}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["properties"]["functionParameters"],
        "lvl:string=\"error\""
    );
    let saved = s
        .engine
        .saved_search(crate::common::WS, "errors")
        .await
        .unwrap();
    assert_eq!(saved.function_alias.as_deref(), Some("Errs"));
    let (status, _, err) = arm(
        &s,
        "PUT",
        &format!("{ws}/savedSearches/bad"),
        Some(json!({"properties": {"category": "ops", "displayName": "Bad", "query": "x | where ("}})),
    )
    .await;
    assert_eq!(
        status, 200,
        "a saved search that is not a function is stored as text: {err}"
    );
    let (_, _, list) = arm(&s, "GET", &format!("{ws}/savedSearches"), None).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 2);
    let (status, _, _) = arm(&s, "DELETE", &format!("{ws}/savedSearches/bad"), None).await;
    assert_eq!(status, 200);
    let (status, _, _) = arm(&s, "GET", &format!("{ws}/savedSearches/bad"), None).await;
    assert_eq!(status, 404);
    // Tables: retention through PATCH, as `logvault table retention`.
    let rule = s.rule("rule-arm", crate::common::WS, "ArmT", None);
    let response = s
        .upload(
            &rule,
            "Custom-ArmT",
            &s.token(&[Role::Publisher], None),
            &crate::common::records(3, "t"),
        )
        .await;
    assert_eq!(response.status().as_u16(), 204);
    crate::common::eventually("the rows stored", || async {
        s.count(crate::common::WS, "ArmT").await == 3
    })
    .await;
    let (status, _, table) = arm(
        &s,
        "PATCH",
        &format!("{ws}/tables/ArmT"),
        Some(json!({"properties": {"retentionInDays": 45}})),
    )
    .await;
    assert_eq!(status, 200, "{table}");
    assert_eq!(table["properties"]["retentionInDays"], 45);
    let tables = s.engine.tables(crate::common::WS).await.unwrap();
    assert_eq!(
        tables
            .iter()
            .find(|t| t.name == "ArmT")
            .unwrap()
            .retention_days,
        45
    );
    // Linked storage for alerts: the account must exist; then the workspace shows it.
    let (status, _, err) = arm(
        &s,
        "PUT",
        &format!("{ws}/linkedStorageAccounts/Alerts"),
        Some(json!({"properties": {"storageAccountIds": ["/subscriptions/local/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/nosuch"]}})),
    )
    .await;
    assert_eq!(status, 404, "{err}");
    s.engine
        .create_storage_account(logvault::control::StorageAccountSpec {
            name: "armstore".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let (status, _, linked) = arm(
        &s,
        "PUT",
        &format!("{ws}/linkedStorageAccounts/Alerts"),
        Some(json!({"properties": {"storageAccountIds": ["/subscriptions/local/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/armstore"]}})),
    )
    .await;
    assert_eq!(status, 200, "{linked}");
    assert!(
        linked["properties"]["storageAccountIds"][0]
            .as_str()
            .unwrap()
            .ends_with("/armstore")
    );
    let w = s.engine.control().get_workspace(crate::common::WS).unwrap();
    assert_eq!(
        w.linked_for(logvault::control::DataSourceType::Alerts),
        Some("armstore")
    );
    let (status, _, _) = arm(
        &s,
        "DELETE",
        &format!("{ws}/linkedStorageAccounts/Alerts"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = arm(
        &s,
        "GET",
        &format!("{ws}/linkedStorageAccounts/Alerts"),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

/// A workspace's PUT and PATCH keep its tags; PATCH changes `hotCacheWindowDays` as `workspace
/// update --hot-cache-days` does, accepts properties sent back unchanged, and refuses (400,
/// naming it) a property it cannot change rather than dropping the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_patch_changes_tags_and_the_hot_window_and_refuses_the_rest() {
    let s = serve(Options::default()).await;
    let ws = oi("workspaces/ws-patch");
    let (status, _, body) = arm(
        &s,
        "PUT",
        &ws,
        Some(json!({"location": "local", "tags": {"team": "ops"}})),
    )
    .await;
    assert!(matches!(status, 200 | 201), "{body}");
    assert_eq!(body["tags"], json!({"team": "ops"}), "{body}");

    let (status, _, body) = arm(
        &s,
        "PATCH",
        &ws,
        Some(json!({"tags": {"team": "sre", "cost": "42"}, "hotCacheWindowDays": 3})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tags"], json!({"team": "sre", "cost": "42"}), "{body}");
    assert_eq!(body["hotCacheWindowDays"], 3, "{body}");
    // The CLI's library sees the same workspace.
    let seen = s.engine.control().get_workspace("ws-patch").unwrap();
    assert_eq!(seen.hot_window_days, Some(3));
    assert_eq!(seen.tags.get("cost").map(String::as_str), Some("42"));
    let (_, _, got) = arm(&s, "GET", &ws, None).await;
    assert_eq!(got["tags"], body["tags"]);

    // Properties sent back as they are: accepted; a changed one: refused, nothing changed.
    let (status, _, body) = arm(
        &s,
        "PATCH",
        &ws,
        Some(json!({"properties": got["properties"], "hotCacheWindowDays": null})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("hotCacheWindowDays").is_none(), "{body}");
    let (status, _, body) = arm(
        &s,
        "PATCH",
        &ws,
        Some(json!({"properties": {"retentionInDays": 90}, "tags": {}})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retentionInDays"),
        "{body}"
    );
    let seen = s.engine.control().get_workspace("ws-patch").unwrap();
    assert_eq!(seen.tags.len(), 2, "a refused PATCH changed the tags");
    let (status, _, body) = arm(&s, "PATCH", &ws, Some(json!({"tags": ["x"]}))).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_put_with_columns_declares_its_schema_once() {
    let s = serve(Options::default()).await;
    let ws = oi(&format!("workspaces/{}", crate::common::WS));
    let columns = json!([
        {"name": "TimeGenerated", "type": "dateTime", "description": "when"},
        {"name": "Computer", "type": "string"},
        {"name": "EventID", "type": "int"},
        {"name": "Ok", "type": "boolean"}
    ]);
    let put = |columns: Value| {
        let (s, ws) = (&s, &ws);
        async move {
            arm(
                s,
                "PUT",
                &format!("{ws}/tables/Declared_CL"),
                Some(
                    json!({"properties": {"schema": {"name": "Declared_CL", "columns": columns}}}),
                ),
            )
            .await
        }
    };
    let (status, _, table) = put(columns.clone()).await;
    assert_eq!(status, 200, "{table}");
    let listed: Vec<(String, String)> = table["properties"]["schema"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("TimeGenerated".to_owned(), "dateTime".to_owned()),
            ("Computer".to_owned(), "string".to_owned()),
            ("EventID".to_owned(), "int".to_owned()),
            ("Ok".to_owned(), "boolean".to_owned()),
        ]
    );
    // The engine has the declaration: KQL sees the Kusto types before any row.
    let plan = s
        .engine
        .plan_kql(crate::common::WS, "Declared_CL | project EventID, Ok")
        .await
        .unwrap();
    let types: Vec<&str> = plan.schema.iter().map(|c| c.ty.name()).collect();
    assert_eq!(types, ["int", "bool"]);
    // The same PUT again changes nothing; other columns are refused; so is a bad type.
    let (status, _, again) = put(columns).await;
    assert_eq!(status, 200, "{again}");
    let (status, _, other) = put(json!([{"name": "TimeGenerated", "type": "dateTime"}])).await;
    assert_eq!(status, 409, "{other}");
    let (status, _, bad) = arm(
        &s,
        "PUT",
        &format!("{ws}/tables/Bad_CL"),
        Some(json!({"properties": {"schema": {"columns": [{"name": "TimeGenerated", "type": "when"}]}}})),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad.to_string().contains("not a Kusto type"), "{bad}");
}
