//! Every call needs a valid token with a role that allows it, for the workspace it touches:
//! no token, an expired, revoked, foreign or altered token, a token of the wrong role or
//! workspace are each refused with Azure's status, and nothing is ingested or returned.

use chrono::Duration;
use logvault_server::Role;
use serde_json::json;

use crate::common::{OTHER_WS, WS, records, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_open_and_every_other_call_needs_a_token() {
    let s = serve(Default::default()).await;
    let health = s
        .client
        .get(format!("{}/health", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "ok"})
    );

    // No token: 401 with a Bearer challenge, for queries, ingestion and metrics alike.
    let rule = s.rule("rule-app", WS, "AppEvents", None);
    let calls = [
        s.client
            .post(format!("{}/v1/workspaces/{WS}/query", s.url))
            .json(&json!({"query": "AppEvents"})),
        s.client
            .post(format!(
                "{}/dataCollectionRules/{rule}/streams/Custom-AppEvents?api-version=2023-01-01",
                s.url
            ))
            .json(&records(3, "x")),
        s.client.get(format!("{}/metrics", s.url)),
        s.client
            .post(format!("{}/v1/logs", s.url))
            .header("content-type", "application/json")
            .body("{}"),
        s.client
            .post(format!("{}/_bulk", s.url))
            .body("{\"index\":{\"_index\":\"x\"}}\n{\"a\":1}\n"),
    ];
    for call in calls {
        let r = call.send().await.unwrap();
        assert_eq!(r.status(), 401);
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
    }
    assert_eq!(s.count(WS, "AppEvents").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_revoked_altered_and_foreign_tokens_are_refused_and_nothing_is_stored() {
    let s = serve(Default::default()).await;
    let rule = s.rule("rule-app", WS, "AppEvents", None);
    let publisher = s
        .tokens
        .issue(
            "shipper",
            &[Role::Publisher],
            Some(WS),
            logvault_core::Clock::now(&s.clock),
            Duration::minutes(10),
        )
        .unwrap();
    let ok = s
        .upload(
            &rule,
            "Custom-AppEvents",
            &publisher.token,
            &records(5, "a"),
        )
        .await;
    assert_eq!(ok.status(), 204, "{}", ok.text().await.unwrap());
    assert_eq!(s.count(WS, "AppEvents").await, 5);

    // Expired: the server's clock moves past the token's expiry.
    s.clock.advance(Duration::minutes(11));
    let r = s
        .upload(
            &rule,
            "Custom-AppEvents",
            &publisher.token,
            &records(5, "b"),
        )
        .await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert!(r.text().await.unwrap().contains("expired"));

    // Revoked while the server runs: refused from the next request on.
    let second = s
        .tokens
        .issue(
            "shipper",
            &[Role::Publisher],
            Some(WS),
            logvault_core::Clock::now(&s.clock),
            Duration::hours(1),
        )
        .unwrap();
    let r = s
        .upload(&rule, "Custom-AppEvents", &second.token, &records(2, "c"))
        .await;
    assert_eq!(r.status(), 204);
    s.tokens
        .revoke(&second.record.id, logvault_core::Clock::now(&s.clock))
        .unwrap();
    let r = s
        .upload(&rule, "Custom-AppEvents", &second.token, &records(5, "d"))
        .await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("revoked"));

    // Altered claims (a role added) and a token of another home: the signature fails.
    let owner = s.owner();
    let parts: Vec<&str> = second.token.split('.').collect();
    let altered = format!(
        "{}.{}.{}",
        parts[0],
        owner.split('.').nth(1).unwrap(),
        parts[2]
    );
    let r = s
        .upload(&rule, "Custom-AppEvents", &altered, &records(5, "e"))
        .await;
    assert_eq!(r.status(), 401);
    let other = serve(Default::default()).await;
    let foreign = other.owner();
    let r = s
        .upload(&rule, "Custom-AppEvents", &foreign, &records(5, "f"))
        .await;
    assert_eq!(r.status(), 401);
    let (status, _) = s.query(WS, &foreign, json!({"query": "AppEvents"})).await;
    assert_eq!(status, 401);

    // Only the accepted uploads are there.
    assert_eq!(s.count(WS, "AppEvents").await, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_workspaces_are_checked_on_every_call() {
    let s = serve(Default::default()).await;
    let rule = s.rule("rule-app", WS, "AppEvents", None);
    let reader = s.token(&[Role::Reader], Some(WS));
    let publisher = s.token(&[Role::Publisher], Some(WS));
    let other_ws_publisher = s.token(&[Role::Publisher], Some(OTHER_WS));
    let other_ws_reader = s.token(&[Role::Reader], Some(OTHER_WS));

    // A reader cannot ingest, over any protocol.
    let r = s
        .upload(&rule, "Custom-AppEvents", &reader, &records(3, "r"))
        .await;
    assert_eq!(r.status(), 403);
    let r = s
        .client
        .post(format!("{}/_bulk", s.url))
        .bearer_auth(&reader)
        .header("x-logvault-workspace", WS)
        .body("{\"index\":{\"_index\":\"AppEvents\"}}\n{\"a\":1}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A publisher for another workspace cannot write this one.
    let r = s
        .upload(
            &rule,
            "Custom-AppEvents",
            &other_ws_publisher,
            &records(3, "o"),
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = s
        .client
        .post(format!("{}/v1/logs", s.url))
        .bearer_auth(&other_ws_publisher)
        .header("x-logvault-workspace", WS)
        .header("content-type", "application/json")
        .body(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1772359200000000000","body":{"stringValue":"x"}}]}]}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(s.count(WS, "AppEvents").await, 0);
    assert_eq!(s.count(WS, "OTelLogs").await, 0);

    // The publisher writes; it cannot query. The reader queries its workspace only, by name
    // or by customerId; metrics need a token for every workspace.
    let r = s
        .upload(&rule, "Custom-AppEvents", &publisher, &records(4, "p"))
        .await;
    assert_eq!(r.status(), 204);
    let (status, body) = s.query(WS, &publisher, json!({"query": "AppEvents"})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "InsufficientAccessError");
    assert!(body.get("tables").is_none());
    let (status, body) = s
        .query(
            &s.customer_id(WS),
            &reader,
            json!({"query": "AppEvents | count"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tables"][0]["rows"][0][0], 4);
    let (status, body) = s
        .query(WS, &other_ws_reader, json!({"query": "AppEvents"}))
        .await;
    assert_eq!(status, 403);
    assert!(body.get("tables").is_none());
    let (status, _) = s
        .query(
            &s.customer_id(WS),
            &other_ws_reader,
            json!({"query": "AppEvents"}),
        )
        .await;
    assert_eq!(status, 403);
    let r = s
        .client
        .get(format!("{}/metrics", s.url))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = s
        .client
        .get(format!("{}/metrics", s.url))
        .bearer_auth(s.token(&[Role::Reader], None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains(
            "logvault_rows_ingested_total{workspace=\"ws-app\",protocol=\"logs-ingestion-api\"} 4"
        ),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_and_gzip_bombs_stop_at_the_decoded_limit() {
    let limits = logvault_server::Limits {
        max_body_bytes: 64 << 10,
        max_decoded_bytes: 256 << 10,
        ..Default::default()
    };
    let s = serve(crate::common::Options {
        limits: Some(limits),
        ..Default::default()
    })
    .await;
    let rule = s.rule("rule-app", WS, "AppEvents", None);
    let publisher = s.token(&[Role::Publisher], Some(WS));
    let r = s
        .upload(&rule, "Custom-AppEvents", &publisher, &records(2000, "big"))
        .await;
    assert_eq!(r.status(), 413);
    // 1 MiB of spaces gzips to about a kilobyte.
    let mut bomb = b"[".to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 1 << 20));
    bomb.extend(b"]");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &bomb).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 64 << 10);
    let r = s
        .client
        .post(format!(
            "{}/dataCollectionRules/{rule}/streams/Custom-AppEvents",
            s.url
        ))
        .bearer_auth(&publisher)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gz)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(s.count(WS, "AppEvents").await, 0);
}

/// A support operator's token (R-I1): refused without an approved Customer Lockbox request,
/// allowed while one is approved and unexpired, refused after its access ends; every query is
/// in the workspace's Lockbox audit with its text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_support_operator_queries_only_under_an_approved_lockbox_request() {
    let s = serve(Default::default()).await;
    let rule = s.rule("rule-lb", WS, "AppEvents", None);
    let publisher = s.token(&[Role::Publisher], Some(WS));
    let r = s
        .upload(&rule, "Custom-AppEvents", &publisher, &records(8, "lb"))
        .await;
    assert_eq!(r.status(), 204);
    s.link_to_customer_key(WS).await;
    let operator = s.token(&[Role::SupportOperator], None);
    let query = json!({"query": "AppEvents | count"});

    let (status, body) = s.query(WS, &operator, query.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "LockboxAccessDenied", "{body}");

    let control = s.engine.control();
    let request = control
        .create_lockbox_request(WS, "tester", "case 4711: ingestion stalls", Some(2))
        .unwrap();
    let (status, _) = s.query(WS, &operator, query.clone()).await;
    assert_eq!(status, 403, "a pending request gave access");
    control.decide_lockbox_request(&request.id, true).unwrap();
    let (status, body) = s.query(WS, &operator, query.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tables"][0]["rows"][0][0], 8, "{body}");
    // Only the workspace of the request.
    let (status, _) = s.query(OTHER_WS, &operator, query.clone()).await;
    assert_eq!(status, 403);
    // Access ends with the approved duration.
    s.clock.advance(Duration::hours(3));
    let operator = s.token(&[Role::SupportOperator], None);
    let (status, _) = s.query(WS, &operator, query.clone()).await;
    assert_eq!(status, 403, "access outlived the approved duration");

    // An operator's queries are in the Lockbox audit, not in the workspace's query history.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(s.engine.query_history(WS).await.unwrap().is_empty());
    let audit = control.lockbox_audit(Some(WS)).unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "Query").count(),
        1,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "QueryRefused").count(),
        3,
        "{actions:?}"
    );
    assert!(
        audit
            .iter()
            .filter(|e| e.action == "Query")
            .all(|e| e.detail.as_deref() == Some("AppEvents | count")),
        "{audit:?}"
    );
}
