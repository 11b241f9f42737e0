//! Revocation while the server runs: the key monitor inside the server notices it without any
//! request; ingestion over every protocol is refused (or, for syslog, dropped) and counted,
//! queries are refused with an error naming the workspace, cluster and key; after the restore
//! both work again, without restarting the server.

use logvault_server::Role;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::common::{CLUSTER, KEY, Options, VAULT, WS, eventually, records, serve};

const OTLP_JSON: &str = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
  {"timeUnixNano":"1772359200000000000","body":{"stringValue":"a"}},
  {"timeUnixNano":"1772359201000000000","body":{"stringValue":"b"}}]}]}]}"#;
const BULK: &str = "{\"index\":{\"_index\":\"Web\"}}\n{\"TimeGenerated\":\"2026-03-01T10:00:00Z\",\"status\":200}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_and_restore_take_effect_while_the_server_runs() {
    let s = serve(Options {
        syslog: true,
        ..Default::default()
    })
    .await;
    let principal = s.link_to_customer_key(WS).await;
    let rule = s.rule("rule-app", WS, "AppEvents", None);
    let publisher = s.token(&[Role::Publisher], Some(WS));
    let syslog = s.server().syslog().unwrap();

    let send_all = |tag: &'static str| {
        let s = &s;
        let rule = rule.clone();
        let publisher = publisher.clone();
        async move {
            let logs_api = s
                .upload(&rule, "Custom-AppEvents", &publisher, &records(3, tag))
                .await;
            let otlp = s
                .client
                .post(format!("{}/v1/logs", s.url))
                .bearer_auth(&publisher)
                .header("content-type", "application/json")
                .header("x-logvault-workspace", WS)
                .body(OTLP_JSON)
                .send()
                .await
                .unwrap();
            let bulk = s
                .client
                .post(format!("{}/_bulk", s.url))
                .bearer_auth(&publisher)
                .header("x-logvault-workspace", WS)
                .body(BULK)
                .send()
                .await
                .unwrap();
            let mut tcp = tokio::net::TcpStream::connect(syslog).await.unwrap();
            tcp.write_all(format!("<14>1 2026-03-01T10:00:00Z h app - - - {tag}\n").as_bytes())
                .await
                .unwrap();
            tcp.shutdown().await.unwrap();
            (
                logs_api.status().as_u16(),
                logs_api.text().await.unwrap(),
                otlp.status().as_u16(),
                otlp.text().await.unwrap(),
                bulk.status().as_u16(),
                bulk.text().await.unwrap(),
            )
        }
    };

    let before = send_all("before").await;
    assert_eq!(
        (before.0, before.2, before.4),
        (204, 200, 200),
        "{before:?}"
    );
    eventually("the syslog message stored", || async {
        s.count(WS, "Syslog").await == 1
    })
    .await;
    assert_eq!(s.count(WS, "AppEvents").await, 3);

    // Revoke: the cluster's identity loses its access policy. No request is made until the
    // server's key monitor has noticed (the metrics' key state turns 0).
    s.engine.vault().delete_policy(VAULT, &principal).unwrap();
    s.pass_check_interval();
    let owner = s.owner();
    eventually("the key monitor notices the revocation", || async {
        s.metrics_text()
            .await
            .contains(&format!("logvault_key_state{{cluster=\"{CLUSTER}\"}} 0"))
    })
    .await;

    let during = send_all("during").await;
    for (status, body) in [
        (during.0, &during.1),
        (during.2, &during.3),
        (during.4, &during.5),
    ] {
        assert_eq!(status, 403, "{body}");
        for name in [WS, CLUSTER, KEY] {
            assert!(body.contains(name), "{name} not in {body}");
        }
    }
    let (status, body) = s
        .query(WS, &owner, json!({"query": "AppEvents | count"}))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "CustomerManagedKeyRevoked");
    let message = body["error"]["message"].as_str().unwrap();
    for name in [WS, CLUSTER, KEY] {
        assert!(message.contains(name), "{name} not in {message}");
    }
    for protocol in ["logs-ingestion-api", "otlp", "elasticsearch-bulk"] {
        assert!(
            s.metric("logvault_rows_dropped_total", &[("protocol", protocol)]) > 0.0,
            "{protocol}"
        );
    }
    eventually("the syslog message counted as dropped", || async {
        s.metric("logvault_rows_dropped_total", &[("protocol", "syslog")]) == 1.0
    })
    .await;

    // Restore: the policy is back; the monitor notices; everything works again.
    s.engine
        .vault()
        .set_policy(
            VAULT,
            &principal,
            &["get".into(), "wrapKey".into(), "unwrapKey".into()],
        )
        .unwrap();
    s.pass_check_interval();
    eventually("the key monitor notices the restore", || async {
        s.metrics_text()
            .await
            .contains(&format!("logvault_key_state{{cluster=\"{CLUSTER}\"}} 1"))
    })
    .await;
    let after = send_all("after").await;
    assert_eq!((after.0, after.2, after.4), (204, 200, 200), "{after:?}");
    eventually("the second syslog message stored", || async {
        s.count(WS, "Syslog").await == 2
    })
    .await;
    // Rows sent during the revocation were dropped, not held.
    assert_eq!(s.count(WS, "AppEvents").await, 6);
    assert_eq!(s.count(WS, "OTelLogs").await, 4);
    assert_eq!(s.count(WS, "Web").await, 2);
}
