//! Structured fuzzing of the server's endpoints (issue: reliability under bad input): proptest
//! builds requests from valid seed bodies of every endpoint, damaged (bytes flipped, inserted,
//! cut), with headers varied (content type, gzip that is or is not gzip, tokens valid, foreign
//! or garbage). Invariants: every request is answered within the client's timeout (no hang), no
//! answer is a 500 or an unexplained 5xx (503/429 must carry `Retry-After`), every refusal has a
//! body that says what is wrong, and afterwards the server is healthy and holds exactly the rows
//! it acknowledged (its own counter against a count over the query API): never a phantom row.
//!
//! `LOGVAULT_FUZZ_CASES` sets the number of cases (default 500, CI's bounded run).

use std::io::Write as _;

use logvault_server::Role;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;

use crate::common::{Served, WS, records, serve};

/// One endpoint and its valid seed body.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    LogsApi,
    OtlpJson,
    OtlpProto,
    Bulk,
    Query,
    QueryGet,
    Batch,
    Metrics,
}

const ENDPOINTS: [Endpoint; 8] = [
    Endpoint::LogsApi,
    Endpoint::OtlpJson,
    Endpoint::OtlpProto,
    Endpoint::Bulk,
    Endpoint::Query,
    Endpoint::QueryGet,
    Endpoint::Batch,
    Endpoint::Metrics,
];

#[derive(Debug, Clone, Copy)]
enum Token {
    Owner,
    Publisher,
    Garbage,
    None,
}

#[derive(Debug, Clone, Copy)]
enum Encoding {
    Plain,
    Gzip,
    /// Says gzip, is not.
    FalseGzip,
    /// An encoding the server does not speak.
    Brotli,
}

/// What a case sends.
#[derive(Debug, Clone)]
struct Case {
    endpoint: Endpoint,
    /// (position, byte, kind): kind 0 sets, 1 inserts, 2 cuts there, 3 removes one byte.
    damage: Vec<(usize, u8, u8)>,
    token: Token,
    encoding: Encoding,
    /// Send the endpoint's content type, another one, or none.
    content_type: u8,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(ENDPOINTS.to_vec()),
        prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..4), 0..5),
        prop::sample::select(vec![
            Token::Owner,
            Token::Owner,
            Token::Publisher,
            Token::Garbage,
            Token::None,
        ]),
        prop::sample::select(vec![
            Encoding::Plain,
            Encoding::Plain,
            Encoding::Gzip,
            Encoding::FalseGzip,
            Encoding::Brotli,
        ]),
        0u8..4,
    )
        .prop_map(|(endpoint, damage, token, encoding, content_type)| Case {
            endpoint,
            damage,
            token,
            encoding,
            content_type,
        })
}

/// A valid OTLP protobuf body: one resource, one scope, two records (hand-encoded).
fn otlp_proto() -> Vec<u8> {
    fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let mut len = bytes.len();
        loop {
            let b = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(bytes);
        out
    }
    let string_value = |s: &str| field(0x0a, s.as_bytes()); // AnyValue.string_value = 1
    let record = |body: &str| {
        let mut r = vec![0x09]; // time_unix_nano = 1, fixed64
        r.extend_from_slice(&1_772_359_200_000_000_000u64.to_le_bytes());
        r.extend(field(0x1a, b"INFO")); // severity_text = 3
        r.extend(field(0x2a, &string_value(body))); // body = 5
        r
    };
    let mut scope_logs = Vec::new();
    scope_logs.extend(field(0x12, &record("fuzz one"))); // log_records = 2
    scope_logs.extend(field(0x12, &record("fuzz two")));
    let resource_logs = field(0x12, &scope_logs); // scope_logs = 2
    field(0x0a, &resource_logs) // resource_logs = 1
}

fn seed(endpoint: Endpoint) -> Vec<u8> {
    let json = |v: serde_json::Value| serde_json::to_vec(&v).unwrap_or_default();
    match endpoint {
        Endpoint::LogsApi => json(records(3, "fz")),
        Endpoint::OtlpJson => json(json!({"resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "fz"}}]},
            "scopeLogs": [{"logRecords": [
                {"timeUnixNano": "1772359200000000000", "severityText": "WARN",
                 "body": {"stringValue": "fuzz"},
                 "attributes": [{"key": "n", "value": {"intValue": "7"}}]}
            ]}]
        }]})),
        Endpoint::OtlpProto => otlp_proto(),
        Endpoint::Bulk => b"{\"index\":{\"_index\":\"logs-fuzz\"}}\n{\"@timestamp\":\"2026-03-01T10:00:00Z\",\"message\":\"fuzz\"}\n{\"create\":{}}\n{\"message\":\"two\"}\n".to_vec(),
        Endpoint::Query => json(json!({"query": "AppEvents | summarize count() by Level", "timespan": "PT24H"})),
        Endpoint::QueryGet => b"AppEvents | where Level == 'error' | take 3".to_vec(),
        Endpoint::Batch => json(json!({"requests": [
            {"id": "1", "body": {"query": "AppEvents | count"}, "method": "POST",
             "path": "/query", "workspace": WS},
            {"id": "2", "body": {"query": "print x = 1"}, "workspace": WS}
        ]})),
        Endpoint::Metrics => Vec::new(),
    }
}

fn damaged(mut body: Vec<u8>, damage: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(pos, byte, kind) in damage {
        let at = if body.is_empty() { 0 } else { pos % body.len() };
        match kind {
            0 if !body.is_empty() => body[at] = byte,
            1 => body.insert(at, byte),
            2 => body.truncate(at),
            3 if !body.is_empty() => {
                body.remove(at);
            }
            _ => {}
        }
    }
    body
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// Sends `case`; the status, whether `Retry-After` came, and the body.
async fn send(s: &Served, rule: &str, tokens: &[String; 2], case: &Case) -> (u16, bool, String) {
    let body = damaged(seed(case.endpoint), &case.damage);
    let (method, path, content_type) = match case.endpoint {
        Endpoint::LogsApi => (
            "POST",
            format!("/dataCollectionRules/{rule}/streams/Custom-AppEvents?api-version=2023-01-01"),
            "application/json",
        ),
        Endpoint::OtlpJson => ("POST", "/v1/logs".to_owned(), "application/json"),
        Endpoint::OtlpProto => ("POST", "/v1/logs".to_owned(), "application/x-protobuf"),
        Endpoint::Bulk => ("POST", "/_bulk".to_owned(), "application/x-ndjson"),
        Endpoint::Query => (
            "POST",
            format!("/v1/workspaces/{WS}/query"),
            "application/json",
        ),
        Endpoint::QueryGet => {
            let mut url = reqwest::Url::parse("http://x/").unwrap_or_else(|e| panic!("{e}"));
            url.query_pairs_mut()
                .append_pair("query", &String::from_utf8_lossy(&body));
            let query = url.query().unwrap_or_default().to_owned();
            ("GET", format!("/v1/workspaces/{WS}/query?{query}"), "")
        }
        Endpoint::Batch => ("POST", "/v1/$batch".to_owned(), "application/json"),
        Endpoint::Metrics => ("GET", "/metrics".to_owned(), ""),
    };
    let mut request = s
        .client
        .request(
            method.parse().unwrap_or(reqwest::Method::POST),
            format!("{}{path}", s.url),
        )
        .header("x-logvault-workspace", WS);
    request = match case.content_type {
        0 | 1 if !content_type.is_empty() => request.header("content-type", content_type),
        2 => request.header("content-type", "text/plain; charset=utf-16"),
        _ => request,
    };
    request = match case.token {
        Token::Owner => request.bearer_auth(&tokens[0]),
        Token::Publisher => request.bearer_auth(&tokens[1]),
        Token::Garbage => request.header("authorization", "Bearer eyJ.garbage.x"),
        Token::None => request,
    };
    if method == "POST" {
        let body = match case.encoding {
            Encoding::Plain => body,
            Encoding::Gzip => {
                request = request.header("content-encoding", "gzip");
                gzip(&body)
            }
            Encoding::FalseGzip => {
                request = request.header("content-encoding", "gzip");
                body
            }
            Encoding::Brotli => {
                request = request.header("content-encoding", "br");
                body
            }
        };
        request = request.body(body);
    }
    match request.send().await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            let retry = answer.headers().contains_key("retry-after");
            let text = answer.text().await.unwrap_or_default();
            (status, retry, text)
        }
        Err(e) => (0, false, format!("no answer: {e}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_damaged_requests_with_a_clear_refusal_and_stores_no_phantom_rows() {
    let s = serve(Default::default()).await;
    let rule = s.rule("rule-fuzz", WS, "AppEvents", None);
    // The tables exist before the queries arrive.
    let publisher = s.token(&[Role::Publisher], Some(WS));
    let r = s
        .upload(&rule, "Custom-AppEvents", &publisher, &records(8, "base"))
        .await;
    assert_eq!(r.status(), 204);
    let tokens = [s.owner(), publisher];
    let cases = std::env::var("LOGVAULT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u64>::new());
    let result = runner.run(&case(), |case| {
        let (status, retry, body) =
            tokio::task::block_in_place(|| handle.block_on(send(&s, &rule, &tokens, &case)));
        *statuses.lock().unwrap().entry(status).or_default() += 1;
        prop_assert!(status != 0, "no answer to {case:?}: {body}");
        prop_assert!(status != 500, "500 for {case:?}: {body}");
        if status >= 500 {
            prop_assert!(
                matches!(status, 503 | 504) && retry,
                "{status} without Retry-After for {case:?}: {body}"
            );
        }
        if status == 429 {
            prop_assert!(retry, "429 without Retry-After for {case:?}");
        }
        if (400..500).contains(&status) && status != 401 {
            prop_assert!(
                !body.trim().is_empty(),
                "{status} with an empty body for {case:?}"
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let statuses = statuses.into_inner().unwrap();
    println!("http fuzz: {cases} cases, statuses {statuses:?}");
    assert!(
        statuses.keys().any(|s| (200..300).contains(s)),
        "no case was accepted: the seeds are not valid requests ({statuses:?})"
    );
    // Healthy, and exactly the rows it acknowledged.
    let health = s
        .client
        .get(format!("{}/health", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let acknowledged = s.metric("logvault_rows_ingested_total", &[("workspace", WS)]) as i64;
    let stored = s.rows(WS, "union * | count").await;
    assert_eq!(
        stored,
        vec![vec![json!(acknowledged)]],
        "acknowledged {acknowledged}"
    );
}
