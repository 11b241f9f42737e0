//! No secrets in the server's logs, and no forged log lines (issue 25): `logvault serve` logging
//! at trace level (`LOGVAULT_LOG=trace`, every crate), through a full scenario: the web page's
//! sign-in, ingestion over every protocol (Logs Ingestion API, OTLP JSON and protobuf, `_bulk`,
//! syslog) of rows holding secret values, queries naming those values (KQL and SQL, POST, GET
//! and `$batch`, over HTTP/1.1 and HTTP/2), and key operations through the Key Vault API (a
//! key created, a chosen value wrapped and unwrapped, the customer key rotated). Then the log
//! is searched for every token (whole, and its signature alone), the sign-in code and the
//! session's token, every secret value, the wrapped plaintext, the account keys, the token key
//! and the vault's master key (raw, hex or base64, as `occurs_in` looks); and CR/LF smuggled
//! into paths, bodies, KQL text and syslog messages must not start a line of the log.

use std::path::Path;
use std::time::Duration;

use logvault::crypto::{Key256, SecretBytes};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::served::{self, VAULT, WS, WS_CMK};

/// What a forged line would start with.
const FORGED: &str = "FORGED";

/// A fresh secret value.
fn secret(what: &str) -> String {
    let mut bytes = [0u8; 12];
    logvault::crypto::fill_random(&mut bytes).unwrap();
    format!("{what}-{}", hex_of(&bytes))
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Protobuf: a length-delimited field.
fn field(tag: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![((tag << 3) | 2) as u8];
    let mut n = bytes.len();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(bytes);
    out
}

/// An OTLP `ExportLogsServiceRequest` with one record whose body is `text`, encoded by hand.
fn otlp_protobuf(text: &str, nanos: u64) -> Vec<u8> {
    let mut record = vec![(1 << 3) | 1]; // time_unix_nano, fixed64
    record.extend_from_slice(&nanos.to_le_bytes());
    record.extend(field(5, &field(1, text.as_bytes()))); // body: AnyValue.string_value
    let scope_logs = field(2, &record); // ScopeLogs.log_records
    let resource_logs = field(2, &scope_logs); // ResourceLogs.scope_logs
    field(1, &resource_logs) // ExportLogsServiceRequest.resource_logs
}

/// Sends `request` and returns its status and body.
async fn send(request: reqwest::RequestBuilder) -> (u16, String) {
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// The vault's master keys (`master.key` files under the home).
fn master_keys(home: &Path) -> Vec<Key256> {
    let mut out = Vec::new();
    let mut dirs = vec![home.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().is_some_and(|n| n == "master.key") {
                out.push(logvault::crypto::master::load_root_key(&path).unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one scenario, told in order
async fn a_full_run_at_trace_level_logs_no_secret_and_no_forged_line() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    served::cmk_home(&home);
    let rule = served::rule(&home, "logs", WS, "Events");
    let rule_cmk = served::rule(&home, "logs-cmk", WS_CMK, "Events");
    let mut tokens = vec![
        served::token(&home, "log-owner", "Owner"),
        served::token(&home, "log-shipper", "Monitoring Metrics Publisher"),
        served::token(&home, "log-reader", "Log Analytics Reader"),
        served::token(&home, "log-officer", "Key Vault Crypto Officer"),
    ];
    let (owner, publisher, reader, officer) = (
        tokens[0].clone(),
        tokens[1].clone(),
        tokens[2].clone(),
        tokens[3].clone(),
    );
    let server = served::start(
        &home,
        &tmp.path().join("serve.log"),
        &[("LOGVAULT_LOG", "trace")],
        &[],
    );
    let url = server.url.clone();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let h2 = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut secrets: Vec<(String, String)> = Vec::new();

    // The web page's sign-in: the code, and the session token it sets in a cookie.
    let code = server.sign_in.split("code=").nth(1).unwrap().to_owned();
    secrets.push(("the sign-in code".into(), code));
    let r = http.get(&server.sign_in).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let session = cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("logvault_session=")
        .unwrap()
        .to_owned();
    tokens.push(session.clone());
    let (status, body) = send(
        http.get(format!("{url}/web/api/session"))
            .header("cookie", format!("logvault_session={session}")),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Ingestion over every protocol, each row holding a secret value.
    let now = chrono::Utc::now();
    let values: Vec<String> = (0..6).map(|i| secret(&format!("value{i}"))).collect();
    for (i, v) in values.iter().enumerate() {
        secrets.push((format!("ingested value {i}"), v.clone()));
    }
    let row = |v: &str| json!([{"TimeGenerated": now.to_rfc3339(), "Password": v, "Tag": "s"}]);
    for (ws_rule, v, client) in [(&rule, &values[0], &http), (&rule_cmk, &values[1], &h2)] {
        let (status, body) = send(
            client
                .post(format!(
                    "{url}/dataCollectionRules/{ws_rule}/streams/Custom-Events"
                ))
                .bearer_auth(&publisher)
                .json(&row(v)),
        )
        .await;
        assert_eq!(status, 204, "{body}");
    }
    let nanos = now.timestamp_nanos_opt().unwrap();
    let (status, body) = send(
        http.post(format!("{url}/v1/logs"))
            .bearer_auth(&publisher)
            .header("x-logvault-workspace", WS)
            .json(&json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{
                "timeUnixNano": nanos.to_string(), "body": {"stringValue": values[2]},
                "attributes": [{"key": "token", "value": {"stringValue": values[2]}}]}]}]}]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        http.post(format!("{url}/v1/logs"))
            .bearer_auth(&publisher)
            .header("x-logvault-workspace", WS)
            .header("content-type", "application/x-protobuf")
            .body(otlp_protobuf(&values[3], nanos as u64)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let bulk = format!(
        "{{\"index\":{{}}}}\n{}\n",
        json!({"@timestamp": now.to_rfc3339(), "Password": values[4]})
    );
    let (status, body) = send(
        http.post(format!("{url}/logs-secret/_bulk"))
            .basic_auth("elastic", Some(&publisher))
            .header("x-logvault-workspace", WS)
            .header("content-type", "application/x-ndjson")
            .body(bulk),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut tcp = tokio::net::TcpStream::connect(&server.syslog)
        .await
        .unwrap();
    let time = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let m1 = format!("<165>1 {time} host1 app - - - password={}", values[5]);
    // A message with a line break and what would be a forged line after it.
    let m2 = format!("<165>1 {time} host1 app - - - two lines\n{FORGED} INFO syslog forged");
    tcp.write_all(format!("{} {m1}{} {m2}", m1.len(), m2.len()).as_bytes())
        .await
        .unwrap();
    tcp.shutdown().await.unwrap();

    // Queries naming the secret values, every way the API takes them.
    let literal = secret("literal");
    secrets.push(("a query's literal".into(), literal.clone()));
    crate::served::wait_for(Duration::from_secs(20), || async {
        let (status, body) = send(
            http.post(format!("{url}/v1/workspaces/{WS}/query"))
                .bearer_auth(&reader)
                .json(&json!({"query": format!("Events | where Password == '{}' | count", values[0])})),
        )
        .await;
        status == 200 && body.contains("[[1]]")
    })
    .await;
    for (client, ws, q) in [
        (
            &http,
            WS,
            format!(
                "Events | where Password == '{}' or Password == '{literal}'",
                values[0]
            ),
        ),
        (
            &h2,
            WS_CMK,
            format!("Events | where Password has '{}'", values[1]),
        ),
        (
            &http,
            WS,
            format!(
                "OTelLogs | where tostring(Attributes.token) == '{}'",
                values[2]
            ),
        ),
        (
            &http,
            WS,
            format!(
                "logs_secret | where Password startswith '{}'",
                &values[4][..10]
            ),
        ),
        (
            &http,
            WS,
            format!("Syslog | where SyslogMessage contains '{}'", values[5]),
        ),
        (
            &http,
            WS,
            format!("Events | extend x = \"{literal}\\n{FORGED} INFO kql forged\" | take 1"),
        ),
        // A KQL error whose text carries the line break.
        (
            &http,
            WS,
            format!("Events | where Tag == \"a\n{FORGED} INFO kql error forged"),
        ),
    ] {
        let (status, body) = send(
            client
                .post(format!("{url}/v1/workspaces/{ws}/query"))
                .bearer_auth(&owner)
                .json(&json!({ "query": q })),
        )
        .await;
        assert!(status == 200 || status == 400, "{q}: {status} {body}");
    }
    let (status, body) = send(
        http.get(format!("{url}/v1/workspaces/{WS}/query"))
            .query(&[("query", format!("Events | where Password == '{literal}'"))])
            .bearer_auth(&reader),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        http.post(format!("{url}/v1/workspaces/{WS}/query"))
            .bearer_auth(&reader)
            .json(&json!({"query": format!("SELECT count(*) FROM \"Events\" WHERE \"Password\" = '{literal}'"),
                "language": "sql"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        http.post(format!("{url}/v1/$batch"))
            .bearer_auth(&reader)
            .json(&json!({"requests": [{"id": "1", "workspace": WS, "method": "POST",
                "path": "/query", "body": {"query": format!("Events | where Password == '{}'", values[0])}}]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Keys through the Key Vault API: a key created, a chosen value wrapped and unwrapped,
    // the customer key rotated.
    let kv = format!("{url}/vaults/{VAULT}/keys");
    let (status, body) = send(
        http.post(format!("{kv}/logkey/create?api-version=7.4"))
            .bearer_auth(&officer)
            .json(&json!({"kty": "RSA"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let plaintext = SecretBytes::from(Key256::generate().unwrap());
    let plain_b64 = plaintext.to_base64url();
    let (status, body) = send(
        http.post(format!("{kv}/logkey/wrapkey?api-version=7.4"))
            .bearer_auth(&officer)
            .json(&json!({"alg": "RSA-OAEP-256", "value": plain_b64})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let wrapped: Value = serde_json::from_str(&body).unwrap();
    let (status, body) = send(
        http.post(format!("{kv}/logkey/unwrapkey?api-version=7.4"))
            .bearer_auth(&officer)
            .json(&json!({"alg": "RSA-OAEP-256", "value": wrapped["value"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&plain_b64), "{body}");
    let (status, body) = send(
        http.post(format!("{kv}/{}/rotate?api-version=7.4", served::KEY))
            .bearer_auth(&officer),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // CR/LF smuggled into what may be logged: path parameters (percent-encoded), a bulk
    // index name, a client request id.
    for path in [
        format!("/v1/workspaces/ws%0D%0A{FORGED}%20INFO%20path/query"),
        format!("/dataCollectionRules/dcr%0A{FORGED}%20INFO%20rule/streams/Custom-Events"),
        format!("/vaults/kv%0D{FORGED}/keys/k%0A{FORGED}/wrapkey?api-version=7.4"),
        format!(
            "/subscriptions/s/resourceGroups/rg%0A{FORGED}/providers/Microsoft.OperationalInsights/workspaces/w%0D%0A{FORGED}?api-version=2022-10-01"
        ),
    ] {
        let (status, _) = send(
            http.post(format!("{url}{path}"))
                .bearer_auth(&owner)
                .header("x-ms-client-request-id", "id-ok")
                .json(&json!({})),
        )
        .await;
        assert!((400..500).contains(&status), "{path}: {status}");
    }
    let (status, _) = send(
        http.post(format!("{url}/_bulk"))
            .basic_auth("elastic", Some(&publisher))
            .header("x-logvault-workspace", WS)
            .body(format!(
                "{{\"index\":{{\"_index\":\"a\\n{FORGED} INFO index\"}}}}\n{{\"a\":1}}\n"
            )),
    )
    .await;
    assert!(status < 500, "{status}");

    let log_text = server.log();
    let status = server.stop();
    assert!(status.success(), "serve exited with {status:?}");
    let log = std::fs::read(tmp.path().join("serve.log")).unwrap();
    let text = String::from_utf8_lossy(&log).into_owned();
    assert!(text.len() >= log_text.len());
    // The log is there, at trace level, with the request lines.
    assert!(text.contains(" TRACE "), "no trace lines");
    assert!(
        text.contains("route=/v1/workspaces/{workspace}/query"),
        "no request lines"
    );

    // Key material, opened by another process on the home.
    let engine = logvault::Engine::open(&home).await.unwrap();
    for ws in [WS, WS_CMK] {
        engine.query_session(ws).await.unwrap();
    }
    let mut keys = 0;
    for account in engine.store().account_ids().await.unwrap() {
        if let Some(aek) = engine.store().keyring().cached_aek(&account) {
            assert!(
                !aek.to_secret().occurs_in(&log),
                "the account key of {account} is in the log"
            );
            keys += 1;
        }
    }
    assert!(keys >= 2, "{keys} account keys looked for");
    let token_key = engine.purpose_key("server/tokens/v1").await.unwrap();
    assert!(!token_key.occurs_in(&log), "the token key is in the log");
    let masters = master_keys(&home);
    assert!(!masters.is_empty());
    for m in &masters {
        assert!(!m.occurs_in(&log), "the vault's master key is in the log");
    }
    assert!(
        !plaintext.occurs_in(&log),
        "the wrapped plaintext is in the log"
    );

    // Tokens, whole and their signatures; the secrets.
    let mut found = Vec::new();
    for t in &tokens {
        let signature = t.rsplit('.').next().unwrap();
        if text.contains(t.as_str()) || text.contains(signature) {
            found.push(format!("a token ({}...)", &t[..12]));
        }
    }
    for (what, value) in &secrets {
        if text.contains(value.as_str()) {
            let line = text.lines().find(|l| l.contains(value.as_str())).unwrap();
            found.push(format!("{what}: {}", &line[..line.len().min(300)]));
        }
    }
    // No line of the log starts with what came after a smuggled line break.
    for line in text.split(['\n', '\r']) {
        if line.starts_with(FORGED) {
            found.push(format!("a forged line: {line}"));
        }
    }
    assert!(found.is_empty(), "in the log:\n{}", found.join("\n"));
    eprintln!(
        "logs: {} bytes, {} lines searched for {} tokens, {} secret values, {keys} account \
         keys, the token key, {} master keys, the wrapped value",
        log.len(),
        text.lines().count(),
        tokens.len(),
        secrets.len(),
        masters.len()
    );
}

/// With DataFusion's plans asked for by name (`LOGVAULT_LOG=debug,datafusion=debug`), a plan
/// holding a client's line break is logged, and still as one line: the text after the break
/// does not start a line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_plan_asked_for_by_name_is_logged_on_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    crate::common::json(&home, &["workspace", "create", "--name", WS]);
    let rule = served::rule(&home, "plans", WS, "Events");
    let owner = served::token(&home, "plan-owner", "Owner");
    let server = served::start(
        &home,
        &tmp.path().join("serve.log"),
        &[("LOGVAULT_LOG", "debug,datafusion=debug")],
        &[],
    );
    let http = reqwest::Client::new();
    let (status, body) = send(
        http.post(format!(
            "{}/dataCollectionRules/{rule}/streams/Custom-Events",
            server.url
        ))
        .bearer_auth(&owner)
        .json(&json!([{"TimeGenerated": chrono::Utc::now().to_rfc3339(), "Tag": "a"}])),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let q = format!("Events | where Tag != \"a\\r\\n{FORGED} INFO plan forged\" | count");
    let (status, body) = send(
        http.post(format!("{}/v1/workspaces/{WS}/query", server.url))
            .bearer_auth(&owner)
            .json(&json!({ "query": q })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let log = server.log();
    assert!(server.stop().success());
    assert!(
        log.contains(&format!("\\r\\n{FORGED} INFO plan forged")),
        "the plan with the line break is not in the log"
    );
    for line in log.split(['\n', '\r']) {
        assert!(!line.starts_with(FORGED), "a forged line: {line}");
    }
}
