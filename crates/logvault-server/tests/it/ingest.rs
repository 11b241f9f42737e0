//! The ingestion protocols over real HTTP and TCP: OTLP/HTTP (protobuf and JSON, gzip),
//! Elasticsearch `_bulk` (per-item results), syslog over TCP (octet-counted and newline
//! framing, RFC 5424 and 3164). Each is acknowledged only when durable: the rows are then
//! counted by a query.

use logvault_server::Role;
use prost::Message;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::common::{Options, WS, eventually, serve};

/// OTLP's log messages, encoded here independently of the server's own definitions.
mod otlp {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportLogsServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_logs: Vec<ResourceLogs>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceLogs {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_logs: Vec<ScopeLogs>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeLogs {
        #[prost(message, optional, tag = "1")]
        pub scope: Option<Scope>,
        #[prost(message, repeated, tag = "2")]
        pub log_records: Vec<LogRecord>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Scope {
        #[prost(string, tag = "1")]
        pub name: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LogRecord {
        #[prost(fixed64, tag = "1")]
        pub time_unix_nano: u64,
        #[prost(int32, tag = "2")]
        pub severity_number: i32,
        #[prost(string, tag = "3")]
        pub severity_text: String,
        #[prost(message, optional, tag = "5")]
        pub body: Option<AnyValue>,
        #[prost(message, repeated, tag = "6")]
        pub attributes: Vec<KeyValue>,
        #[prost(fixed64, tag = "11")]
        pub observed_time_unix_nano: u64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        #[prost(string, tag = "1")]
        pub string_value: String,
    }
}

fn kv(k: &str, v: &str) -> otlp::KeyValue {
    otlp::KeyValue {
        key: k.into(),
        value: Some(otlp::AnyValue {
            string_value: v.into(),
        }),
    }
}

/// 2026-03-01T10:00:00Z in nanoseconds.
const T0: u64 = 1_772_359_200_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_protobuf_and_json_with_gzip_store_every_record_with_its_attributes() {
    let s = serve(Options::default()).await;
    let publisher = s.token(&[Role::Publisher], Some(WS));
    let records: Vec<otlp::LogRecord> = (0..50u64)
        .map(|i| otlp::LogRecord {
            time_unix_nano: if i % 5 == 0 {
                0
            } else {
                T0 + i * 1_000_000_000
            },
            observed_time_unix_nano: T0 + i * 1_000_000_000,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(otlp::AnyValue {
                string_value: format!("message {i}"),
            }),
            attributes: vec![kv("http.route", "/orders"), kv("seq", &i.to_string())],
        })
        .collect();
    let request = otlp::ExportLogsServiceRequest {
        resource_logs: vec![otlp::ResourceLogs {
            resource: Some(otlp::Resource {
                attributes: vec![kv("service.name", "checkout")],
            }),
            scope_logs: vec![otlp::ScopeLogs {
                scope: Some(otlp::Scope {
                    name: "app.logger".into(),
                }),
                log_records: records,
            }],
        }],
    };
    let r = s
        .client
        .post(format!("{}/v1/logs", s.url))
        .bearer_auth(&publisher)
        .header("content-type", "application/x-protobuf")
        .header("x-logvault-workspace", WS)
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    assert!(r.bytes().await.unwrap().is_empty());

    // JSON, gzip, into another table.
    let json_request = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "billing"}}]},
        "scopeLogs": [{"scope": {"name": "py"}, "logRecords": (0..20).map(|i| json!({
            "timeUnixNano": (T0 + i * 1_000_000_000).to_string(),
            "severityText": "WARN",
            "body": {"stringValue": format!("json {i}")},
            "attributes": [{"key": "n", "value": {"intValue": i.to_string()}}],
        })).collect::<Vec<_>>()}],
    }]});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, json_request.to_string().as_bytes()).unwrap();
    let r = s
        .client
        .post(format!("{}/v1/logs", s.url))
        .bearer_auth(&publisher)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("x-logvault-workspace", WS)
        .header("x-logvault-table", "PyLogs")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}));

    let rows = s
        .rows(WS, "OTelLogs | summarize n = count(), services = dcount(ServiceName), routes = countif(tostring(Attributes['http.route']) == '/orders'), svc = countif(tostring(ResourceAttributes['service.name']) == 'checkout')")
        .await;
    assert_eq!(rows, vec![vec![json!(50), json!(1), json!(50), json!(50)]]);
    // timeUnixNano 0 falls back to observedTimeUnixNano.
    let rows = s
        .rows(
            WS,
            "OTelLogs | where Body == 'message 5' | project TimeGenerated, ScopeName, SeverityText",
        )
        .await;
    assert_eq!(
        rows,
        vec![vec![
            json!("2026-03-01T10:00:05Z"),
            json!("app.logger"),
            json!("INFO")
        ]]
    );
    let rows = s
        .rows(
            WS,
            "PyLogs | summarize n = count(), s = sum(toint(Attributes.n))",
        )
        .await;
    assert_eq!(rows, vec![vec![json!(20), json!(190)]]);

    // A malformed body: 400, nothing stored.
    let r = s
        .client
        .post(format!("{}/v1/logs", s.url))
        .bearer_auth(&publisher)
        .header("content-type", "application/x-protobuf")
        .header("x-logvault-workspace", WS)
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(s.count(WS, "OTelLogs").await, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_answers_per_item_and_accepts_the_token_as_a_basic_password() {
    let s = serve(Options::default()).await;
    let publisher = s.token(&[Role::Publisher], Some(WS));
    let body = [
        r#"{"index":{"_index":"web-2026.03.01","_type":"_doc"}}"#,
        r#"{"@timestamp":"2026-03-01T10:00:00Z","status":200,"path":"/a"}"#,
        r#"{"create":{"_index":"web-2026.03.01","_id":"x1"}}"#,
        r#"{"@timestamp":"2026-03-01T10:00:01Z","status":500,"path":"/b"}"#,
        r#"{"delete":{"_index":"web-2026.03.01","_id":"x1"}}"#,
        r#"{"index":{}}"#,
        r#"{"TimeGenerated":"2026-03-01T10:00:02Z","status":404,"path":"/c"}"#,
    ]
    .join("\n")
        + "\n";
    let r = s
        .client
        .post(format!("{}/logs-default/_bulk", s.url))
        .basic_auth("elastic", Some(&publisher))
        .header("content-type", "application/x-ndjson")
        .header("x-logvault-workspace", WS)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let reply: Value = r.json().await.unwrap();
    assert_eq!(reply["errors"], true, "{reply}");
    let items = reply["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["index"]["status"], 201);
    assert_eq!(items[1]["create"]["status"], 201);
    assert_eq!(items[1]["create"]["_id"], "x1");
    assert!(items[2]["delete"]["status"].as_u64().unwrap() >= 400);
    assert_eq!(items[3]["index"]["status"], 201);
    assert_eq!(s.count(WS, "web_2026_03_01").await, 2);
    let rows = s.rows(WS, "logs_default | project status, path").await;
    assert_eq!(rows, vec![vec![json!(404), json!("/c")]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_over_tcp_takes_both_framings_and_both_formats() {
    let s = serve(Options {
        syslog: true,
        ..Default::default()
    })
    .await;
    let addr = s.server().syslog().unwrap();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let rfc5424 = "<34>1 2026-03-01T10:00:00.000Z web01 sshd 4123 ID47 - Failed password for root";
    let rfc3164 = "<13>Mar  1 10:00:01 web02 cron[99]: job started";
    let mut payload = format!("{} {rfc5424}", rfc5424.len());
    for i in 0..10 {
        let m = format!(
            "<165>1 2026-03-01T10:00:{:02}Z app01 api - - - request {i}",
            i + 2
        );
        payload.push_str(&format!("{} {m}", m.len()));
    }
    payload.push_str(rfc3164);
    payload.push('\n');
    tcp.write_all(payload.as_bytes()).await.unwrap();
    tcp.shutdown().await.unwrap();
    eventually("12 syslog messages stored", || async {
        s.count(WS, "Syslog").await == 12
    })
    .await;
    let rows = s.rows(WS, "Syslog | where HostName in ('web01', 'web02') | order by HostName asc | project HostName, ProcessName, SyslogMessage").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0][0], "web01");
    assert_eq!(rows[0][1], "sshd");
    assert!(
        rows[0][2].as_str().unwrap().contains("Failed password"),
        "{rows:?}"
    );
    assert_eq!(rows[1][0], "web02");
    assert!(
        rows[1][2].as_str().unwrap().contains("job started"),
        "{rows:?}"
    );
    // The connection's task counts its rows after the hub has acknowledged them, and a query
    // can see them before that: the counter may trail the count by a moment.
    eventually("the 12 syslog rows counted", || async {
        s.metric("logvault_rows_ingested_total", &[("protocol", "syslog")]) == 12.0
    })
    .await;
}

/// SIGTERM's path: a graceful stop stores every acknowledged row (in segments, the log
/// checkpointed), so another process on the home reads them all; requests after the stop
/// began are refused with a retryable status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_keeps_every_acknowledged_row() {
    let mut s = serve(Options::default()).await;
    let rule = s.rule("rule-app", WS, "AppEvents", None);
    let publisher = s.token(&[Role::Publisher], Some(WS));
    let mut acknowledged = 0;
    for i in 0..5 {
        let r = s
            .upload(
                &rule,
                "Custom-AppEvents",
                &publisher,
                &crate::common::records(100, &format!("b{i}")),
            )
            .await;
        assert_eq!(r.status(), 204);
        acknowledged += 100;
    }
    s.shutdown().await;
    let again = reqwest_fails_or_refuses(&s, &rule, &publisher).await;
    assert!(again, "a request after the stop was accepted");
    // Another engine on the home (another process) reads every acknowledged row.
    let other = logvault::Engine::builder(s.dir.path())
        .clock(std::sync::Arc::new(s.clock.clone()))
        .open()
        .await
        .unwrap();
    let result = other.query_kql(WS, "AppEvents | count").await.unwrap();
    let batches: Vec<arrow::array::RecordBatch> = futures::TryStreamExt::try_collect(result.stream)
        .await
        .unwrap();
    let n = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n, acknowledged);
}

/// After a stop, a request either finds no listener or gets 503.
async fn reqwest_fails_or_refuses(s: &crate::common::Served, rule: &str, token: &str) -> bool {
    match s
        .client
        .post(format!(
            "{}/dataCollectionRules/{rule}/streams/Custom-AppEvents",
            s.url
        ))
        .bearer_auth(token)
        .json(&crate::common::records(1, "late"))
        .send()
        .await
    {
        Err(_) => true,
        Ok(r) => r.status() == 503,
    }
}

/// A POST to the rule's `Custom-AppEvents` stream with `token`.
fn stream_post(s: &crate::common::Served, rule: &str, token: &str) -> reqwest::RequestBuilder {
    s.client
        .post(format!(
            "{}/dataCollectionRules/{rule}/streams/Custom-AppEvents?api-version=2023-01-01",
            s.url
        ))
        .bearer_auth(token)
}

/// Posts `records` to the rule's stream with an optional `x-ms-client-request-id`.
async fn upload_with_id(
    s: &crate::common::Served,
    rule: &str,
    token: &str,
    records: &Value,
    id: Option<&str>,
) -> u16 {
    let mut request = stream_post(s, rule, token).json(records);
    if let Some(id) = id {
        request = request.header("x-ms-client-request-id", id);
    }
    request.send().await.unwrap().status().as_u16()
}

/// Posts `body` (JSON records, already gzipped when `gzip`) to the rule's stream with
/// `x-ms-client-request-id: id`.
async fn upload_bytes_with_id(
    s: &crate::common::Served,
    rule: &str,
    token: &str,
    body: Vec<u8>,
    gzip: bool,
    id: &str,
) -> u16 {
    let mut request = stream_post(s, rule, token)
        .header("content-type", "application/json")
        .header("x-ms-client-request-id", id)
        .body(body);
    if gzip {
        request = request.header("content-encoding", "gzip");
    }
    request.send().await.unwrap().status().as_u16()
}

/// The Azure SDK gzips a chunk once and its retry policy sends that request again: a gzipped
/// request sent again with its id is stored once (the key digests the body as sent). The same
/// rows under the same id sent uncompressed, or gzipped at another level (other bytes), are
/// other requests, stored again (docs/server.md says so).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzipped_request_sent_again_with_its_id_is_stored_once() {
    use std::io::Write;
    let s = serve(Options::default()).await;
    let rule = s.rule("rule-app", WS, "AppEvents", None);
    let publisher = s.token(&[Role::Publisher], Some(WS));
    let json = serde_json::to_vec(&crate::common::records(12, "zipped")).unwrap();
    let gzip = |level| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        enc.write_all(&json).unwrap();
        enc.finish().unwrap()
    };
    let (fast, best) = (gzip(1), gzip(9));
    assert_ne!(
        fast, best,
        "two levels gave the same bytes: the test would prove nothing"
    );
    for _ in 0..3 {
        assert_eq!(
            upload_bytes_with_id(&s, &rule, &publisher, fast.clone(), true, "gz-1").await,
            204
        );
    }
    assert_eq!(s.count(WS, "AppEvents").await, 12);
    assert_eq!(
        upload_bytes_with_id(&s, &rule, &publisher, best, true, "gz-1").await,
        204
    );
    assert_eq!(
        upload_bytes_with_id(&s, &rule, &publisher, json.clone(), false, "gz-1").await,
        204
    );
    assert_eq!(s.count(WS, "AppEvents").await, 3 * 12);
    let labels = [("workspace", WS), ("protocol", "logs-ingestion-api")];
    assert_eq!(s.metric("logvault_duplicate_requests_total", &labels), 2.0);
}

/// A client that got no answer sends the same request again with the same
/// `x-ms-client-request-id` (Azure's SDKs keep it across retries): acknowledged again, stored
/// once, counted as a duplicate. The same id with other rows, and requests without an id, are
/// stored each time; so is the same body under another id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_sent_again_with_its_client_request_id_is_stored_once() {
    let s = serve(Options::default()).await;
    let rule = s.rule("rule-app", WS, "AppEvents", None);
    let publisher = s.token(&[Role::Publisher], Some(WS));
    let first = crate::common::records(10, "first");
    let other = crate::common::records(7, "other");
    let plain = crate::common::records(3, "plain");

    for _ in 0..3 {
        assert_eq!(
            upload_with_id(&s, &rule, &publisher, &first, Some("id-1")).await,
            204
        );
    }
    // The same id with other rows is not a retry.
    assert_eq!(
        upload_with_id(&s, &rule, &publisher, &other, Some("id-1")).await,
        204
    );
    // The same rows under another id, and without an id, are new requests.
    assert_eq!(
        upload_with_id(&s, &rule, &publisher, &first, Some("id-2")).await,
        204
    );
    for _ in 0..2 {
        assert_eq!(
            upload_with_id(&s, &rule, &publisher, &plain, None).await,
            204
        );
    }
    assert_eq!(s.count(WS, "AppEvents").await, 10 + 7 + 10 + 2 * 3);
    let labels = [("workspace", WS), ("protocol", "logs-ingestion-api")];
    assert_eq!(s.metric("logvault_duplicate_requests_total", &labels), 2.0);
    assert_eq!(
        s.metric("logvault_rows_ingested_total", &labels),
        (10 + 7 + 10 + 2 * 3) as f64
    );
}
