//! The query API: KQL by default, SQL as an extension, Kusto types, `$batch`, `GET`, the
//! timespan, `Prefer` options, partial results and Azure's error shape. Answers are checked
//! against counts computed here from the records sent.

use logvault_server::Role;
use serde_json::{Value, json};

use crate::common::{Options, WS, records, serve};

/// A server whose workspace has `n` records of `AppEvents`.
pub(crate) async fn loaded(n: usize, options: Options) -> crate::common::Served {
    let s = serve(options).await;
    let rule = s.rule("rule-app", WS, "AppEvents", None);
    let publisher = s.token(&[Role::Publisher], Some(WS));
    let r = s
        .upload(&rule, "Custom-AppEvents", &publisher, &records(n, "q"))
        .await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kql_and_sql_answer_with_kusto_types_and_the_right_counts() {
    let s = loaded(400, Options::default()).await;
    // Independent answer: records() cycles four levels.
    let (status, body) = s
        .query(
            WS,
            &s.owner(),
            json!({"query": "AppEvents | summarize n = count(), lat = sum(Latency) by Level | order by Level asc", "timespan": null}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let table = &body["tables"][0];
    assert_eq!(table["name"], "PrimaryResult");
    assert_eq!(
        table["columns"],
        json!([{"name": "Level", "type": "string"}, {"name": "n", "type": "long"}, {"name": "lat", "type": "long"}])
    );
    let levels = ["debug", "error", "info", "warning"];
    let expected: Vec<Value> = levels
        .iter()
        .map(|level| {
            let idx = ["info", "warning", "error", "debug"]
                .iter()
                .position(|l| l == level)
                .unwrap();
            let seqs: Vec<usize> = (0..400).filter(|i| i % 4 == idx).collect();
            let lat: usize = seqs.iter().map(|i| (i * 7) % 100).sum();
            json!([level, seqs.len(), lat])
        })
        .collect();
    assert_eq!(table["rows"], Value::Array(expected));

    // Types of a row: datetime as ISO 8601 with Z, long, string, real, bool, timespan.
    let rows = s
        .rows(WS, "AppEvents | where Seq == 3 | project TimeGenerated, Seq, Tag, r = todouble(Latency) / 2, b = Seq > 1, d = 1h")
        .await;
    assert_eq!(
        rows,
        vec![vec![
            json!("2026-03-01T10:00:03Z"),
            json!(3),
            json!("q"),
            json!(10.5),
            json!(true),
            json!("01:00:00")
        ]]
    );

    // SQL as an extension: the same endpoint with "language": "sql".
    let (status, body) = s
        .query(WS, &s.owner(), json!({"query": "SELECT count(*) AS n FROM AppEvents WHERE Level = 'error'", "language": "sql"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tables"][0]["rows"], json!([[100]]));

    // GET with the query in the URL; the timespan restricts every table to its range on
    // TimeGenerated (records are a second apart from 10:00:00: 60 in the first minute).
    let minute = "2026-03-01T10:00:00Z/2026-03-01T10:01:00Z";
    let r = s
        .client
        .get(format!("{}/v1/workspaces/{WS}/query", s.url))
        .query(&[("query", "AppEvents | count"), ("timespan", minute)])
        .bearer_auth(s.owner())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["tables"][0]["rows"], json!([[60]]));
    // POST, KQL and SQL alike; a start and a duration; a union reads both tables restricted.
    for (query, language, timespan, expected) in [
        ("AppEvents | count", None::<&str>, minute, 60),
        (
            "AppEvents | where Level == 'error' | count",
            None,
            minute,
            15,
        ),
        (
            "union AppEvents, AppEvents | count",
            None,
            "2026-03-01T10:00:00Z/PT30S",
            60,
        ),
    ] {
        let mut body = json!({"query": query, "timespan": timespan});
        if let Some(language) = language {
            body["language"] = json!(language);
        }
        let (status, body) = s.query(WS, &s.owner(), body).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(
            body["tables"][0]["rows"],
            json!([[expected]]),
            "{query} over {timespan}"
        );
    }
    // SQL: a timespan is refused, not silently ignored.
    let (status, body) = s
        .query(
            WS,
            &s.owner(),
            json!({"query": "SELECT count(*) AS n FROM AppEvents", "language": "sql", "timespan": minute}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("timespan"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_azure_s_shape_and_limits_give_partial_results() {
    let limits = logvault_server::Limits {
        max_result_rows: 50,
        ..Default::default()
    };
    let s = loaded(
        120,
        Options {
            limits: Some(limits),
            ..Default::default()
        },
    )
    .await;
    // A bad query: 400 BadArgumentError with the KQL error and its position inside.
    let (status, body) = s
        .query(
            WS,
            &s.owner(),
            json!({"query": "AppEvents | where Nope > 1"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "BadArgumentError");
    let inner = &body["error"]["innererror"];
    assert_eq!(inner["code"], "SemanticError", "{body}");
    assert!(
        inner["message"].as_str().unwrap().contains("Nope"),
        "{body}"
    );
    let (status, body) = s
        .query(WS, &s.owner(), json!({"query": "AppEvents | | take"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["innererror"]["code"], "SyntaxError", "{body}");
    assert!(body["error"]["innererror"]["line"].is_number(), "{body}");
    // An unknown workspace.
    let (status, body) = s
        .query("ws-nope", &s.owner(), json!({"query": "AppEvents"}))
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "WorkspaceNotFoundError");
    // Over the row limit: the first 50 rows and the partial error.
    let (status, body) = s
        .query(
            WS,
            &s.owner(),
            json!({"query": "AppEvents | order by Seq asc"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let rows = body["tables"][0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 50);
    assert_eq!(body["error"]["code"], "PartialError", "{body}");
    assert_eq!(
        body["error"]["details"][0]["innererror"]["code"],
        "E_QUERY_RESULT_SET_TOO_LARGE"
    );
    // Statistics on request.
    let r = s
        .client
        .post(format!("{}/v1/workspaces/{WS}/query", s.url))
        .bearer_auth(s.owner())
        .header("prefer", "include-statistics=true")
        .json(&json!({"query": "AppEvents | count"}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["tables"][0]["rows"], json!([[120]]));
    assert!(
        body["statistics"]["query"]["executionTime"].is_number(),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_answers_each_request_with_its_own_status() {
    let s = loaded(40, Options::default()).await;
    let reader = s.token(&[Role::Reader], Some(WS));
    let batch = json!({"requests": [
        {"id": "a", "workspace": s.customer_id(WS), "path": "/query", "method": "POST", "headers": {"Content-Type": "application/json"},
         "body": {"query": "AppEvents | where Level == 'info' | count", "timespan": null}},
        {"id": "b", "workspace": WS, "path": "/query", "method": "POST", "body": {"query": "AppEvents | where", "timespan": null}},
        {"id": "c", "workspace": crate::common::OTHER_WS, "path": "/query", "method": "POST", "body": {"query": "print 1"}},
    ]});
    let r = s
        .client
        .post(format!("{}/v1/$batch", s.url))
        .bearer_auth(&reader)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let responses = body["responses"].as_array().unwrap();
    let by_id = |id: &str| responses.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(by_id("a")["status"], 200);
    assert_eq!(by_id("a")["body"]["tables"][0]["rows"], json!([[10]]));
    assert_eq!(by_id("b")["status"], 400);
    assert_eq!(by_id("b")["body"]["error"]["code"], "BadArgumentError");
    // The reader's token is for WS only.
    assert_eq!(by_id("c")["status"], 403);
    // Without a token the whole batch is refused.
    let r = s
        .client
        .post(format!("{}/v1/$batch", s.url))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transform_runs_on_each_batch_of_the_logs_ingestion_api() {
    let s = serve(Options::default()).await;
    let rule = s.rule(
        "rule-t",
        WS,
        "AppEvents",
        Some("source | where Level != 'debug' | extend Slow = Latency >= 50"),
    );
    let publisher = s.token(&[Role::Publisher], Some(WS));
    let r = s
        .upload(&rule, "Custom-AppEvents", &publisher, &records(200, "t"))
        .await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let expected_slow = (0..200)
        .filter(|i| i % 4 != 3 && (i * 7) % 100 >= 50)
        .count();
    let rows = s.rows(WS, "AppEvents | summarize n = count(), slow = countif(Slow), debug = countif(Level == 'debug')").await;
    assert_eq!(rows, vec![vec![json!(150), json!(expected_slow), json!(0)]]);
    // An unknown stream of the rule, an unknown rule.
    let r = s
        .upload(&rule, "Custom-Nope", &publisher, &records(2, "x"))
        .await;
    assert_eq!(r.status(), 400);
    let r = s
        .upload(
            "dcr-00000000000000000000000000000000",
            "Custom-AppEvents",
            &publisher,
            &records(2, "x"),
        )
        .await;
    assert_eq!(r.status(), 404);
}

/// The workspace's saved functions are callable from the query API, with their parameters,
/// and a timespan still applies to the rows they read (R-H1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_functions_are_callable_from_the_query_api() {
    let s = loaded(40, Options::default()).await;
    s.engine
        .save_search(
            WS,
            logvault::control::SavedSearch {
                id: "errors-fn".into(),
                category: "Ops".into(),
                display_name: "errors".into(),
                query: "AppEvents | where Level == lvl".into(),
                function_alias: Some("LevelRows".into()),
                function_parameters: logvault::control::parse_function_parameters(
                    "lvl:string='error'",
                )
                .unwrap(),
                updated: chrono::Utc::now(),
            },
        )
        .await
        .unwrap();
    let count = |body: &Value| body["tables"][0]["rows"][0][0].as_i64();
    let (status, body) = s
        .query(WS, &s.owner(), json!({"query": "LevelRows() | count"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(count(&body), Some(10), "{body}");
    let (status, body) = s
        .query(
            WS,
            &s.owner(),
            json!({"query": "LevelRows('debug') | count"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(count(&body), Some(10), "{body}");
    // records() starts at 10:00:00, one a second; the clock stands at 12:00.
    let (status, body) = s
        .query(
            WS,
            &s.owner(),
            json!({"query": "LevelRows() | count", "timespan": "2026-03-01T10:00:00Z/2026-03-01T10:00:20Z"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(count(&body), Some(5), "{body}");
    let (status, body) = s
        .query(WS, &s.owner(), json!({"query": "NoSuchFunction() | count"}))
        .await;
    assert_eq!(status, 400, "{body}");
}

/// A cross-workspace query (`workspaces`): each table is the union of that table in every
/// workspace named (by name, customer id or resource id), with `TenantId` telling them apart;
/// a token for one workspace cannot reach another through it, and an unknown one is a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_workspace_query_unions_the_tables_of_every_workspace_named() {
    use crate::common::OTHER_WS;
    let s = loaded(40, Options::default()).await;
    let rule = s.rule("rule-other", OTHER_WS, "AppEvents", None);
    let publisher = s.token(&[Role::Publisher], Some(OTHER_WS));
    let r = s
        .upload(&rule, "Custom-AppEvents", &publisher, &records(12, "o"))
        .await;
    assert_eq!(r.status(), 204);
    let other_id = s.customer_id(OTHER_WS);
    let resource = format!(
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/\
         Microsoft.OperationalInsights/workspaces/{OTHER_WS}"
    );
    for named in [OTHER_WS.to_owned(), other_id.clone(), resource] {
        let (status, body) = s
            .query(
                WS,
                &s.owner(),
                json!({
                    "query": "AppEvents | summarize n = count() by TenantId, Tag | order by n desc",
                    "workspaces": [named],
                }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["tables"][0]["rows"],
            json!([[s.customer_id(WS), "q", 40], [other_id, "o", 12]]),
            "{body}"
        );
    }
    // A timespan applies on both sides: records start at 10:00:00, one a second.
    let (status, body) = s
        .query(
            WS,
            &s.owner(),
            json!({
                "query": "AppEvents | count",
                "workspaces": [OTHER_WS],
                "timespan": "2026-03-01T10:00:00Z/2026-03-01T10:00:10Z",
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tables"][0]["rows"][0][0], 20, "{body}");
    // A token for WS alone cannot read OTHER_WS this way.
    let reader = s.token(&[Role::Reader], Some(WS));
    let (status, body) = s
        .query(
            WS,
            &reader,
            json!({"query": "AppEvents | count", "workspaces": [OTHER_WS]}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = s
        .query(
            WS,
            &s.owner(),
            json!({"query": "AppEvents | count", "workspaces": ["no-such-ws"]}),
        )
        .await;
    assert_eq!(status, 404, "{body}");

    // One workspace's customer key revoked: the whole cross-workspace query is refused, naming
    // it; the other workspace alone still answers.
    let principal = s.link_to_customer_key(OTHER_WS).await;
    s.engine
        .vault()
        .delete_policy(crate::common::VAULT, &principal)
        .unwrap();
    s.pass_check_interval();
    let owner = s.owner();
    crate::common::eventually("the cross-workspace query refused", || async {
        let (status, body) = s
            .query(
                WS,
                &owner,
                json!({"query": "AppEvents | count", "workspaces": [OTHER_WS]}),
            )
            .await;
        status == 403
            && body["error"]["code"] == "CustomerManagedKeyRevoked"
            && body.to_string().contains(OTHER_WS)
    })
    .await;
    let (status, body) = s
        .query(WS, &owner, json!({"query": "AppEvents | count"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tables"][0]["rows"][0][0], 40, "{body}");
}

/// KQL's `workspace("x").Table` reads table `Table` of workspace `x` (named by name, customer
/// id or resource id), with `TenantId`; a token for one workspace cannot reach another through
/// it, an unknown workspace is a 404, and a revoked key of the workspace named refuses the query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kql_workspace_function_reads_another_workspace_s_table() {
    use crate::common::OTHER_WS;
    let s = loaded(40, Options::default()).await;
    let rule = s.rule("rule-other", OTHER_WS, "AppEvents", None);
    let publisher = s.token(&[Role::Publisher], Some(OTHER_WS));
    let r = s
        .upload(&rule, "Custom-AppEvents", &publisher, &records(12, "o"))
        .await;
    assert_eq!(r.status(), 204);
    let other_id = s.customer_id(OTHER_WS);
    let resource = format!(
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/\
         Microsoft.OperationalInsights/workspaces/{OTHER_WS}"
    );
    for named in [OTHER_WS.to_owned(), other_id.to_uppercase(), resource] {
        let kql = format!(
            "union AppEvents, workspace('{named}').AppEvents \
             | summarize n = count() by Tag | order by n desc"
        );
        let (status, body) = s.query(WS, &s.owner(), json!({ "query": kql })).await;
        assert_eq!(status, 200, "{named}: {body}");
        assert_eq!(
            body["tables"][0]["rows"],
            json!([["q", 40], ["o", 12]]),
            "{body}"
        );
    }
    // Alone, with its TenantId and the query's timespan (one record a second from 10:00:00).
    let (status, body) = s
        .query(
            WS,
            &s.owner(),
            json!({
                "query": format!("workspace(\"{OTHER_WS}\").AppEvents | summarize count() by TenantId"),
                "timespan": "2026-03-01T10:00:00Z/2026-03-01T10:00:05Z",
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tables"][0]["rows"], json!([[other_id, 5]]), "{body}");
    let (status, body) = s
        .query(
            WS,
            &s.owner(),
            json!({"query": format!("workspace('{OTHER_WS}').NoSuchTable | count")}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("NoSuchTable"), "{body}");
    // A token for WS alone cannot read OTHER_WS this way; an unknown workspace is a 404.
    let reader = s.token(&[Role::Reader], Some(WS));
    let kql = format!("workspace('{OTHER_WS}').AppEvents | count");
    let (status, body) = s.query(WS, &reader, json!({ "query": kql })).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = s
        .query(
            WS,
            &s.owner(),
            json!({"query": "workspace('no-such-ws').AppEvents | count"}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    // The named workspace's customer key revoked: refused, naming it.
    let principal = s.link_to_customer_key(OTHER_WS).await;
    s.engine
        .vault()
        .delete_policy(crate::common::VAULT, &principal)
        .unwrap();
    s.pass_check_interval();
    let owner = s.owner();
    crate::common::eventually("the workspace() query refused", || async {
        let (status, body) = s.query(WS, &owner, json!({ "query": kql })).await;
        status == 403
            && body["error"]["code"] == "CustomerManagedKeyRevoked"
            && body.to_string().contains(OTHER_WS)
    })
    .await;
}

/// The query API keeps each query in its workspace's history (sealed, listable with
/// `workspace query-history`), beside the query, in either language.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_over_the_api_are_kept_in_the_workspace_history() {
    let s = loaded(10, Options::default()).await;
    let text = "AppEvents | where Level == 'error' | count";
    let (status, body) = s.query(WS, &s.owner(), json!({"query": text})).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = s
        .query(
            WS,
            &s.owner(),
            json!({"query": "select count(*) from \"AppEvents\"", "language": "sql"}),
        )
        .await;
    assert_eq!(status, 200);
    let engine = s.engine.clone();
    crate::common::eventually("both queries in the history", || {
        let engine = engine.clone();
        async move {
            let history = engine.query_history(WS).await.unwrap();
            history
                .iter()
                .any(|h| h.query == text && h.language == "kql")
                && history.iter().any(|h| h.language == "sql")
        }
    })
    .await;
}
