//! The soak's load: each protocol's batches, the queries, the key's changes through the Key
//! Vault API, the CLI's maintenance beside the server, and the counts at the end.

use super::*;

pub(super) struct Load {
    pub(super) http: reqwest::Client,
    pub(super) url: String,
    pub(super) owner: String,
    pub(super) publisher: String,
    pub(super) rule: String,
    pub(super) rule_cmk: String,
    pub(super) tally: Shared,
    pub(super) stop: Arc<AtomicBool>,
}

impl Load {
    /// One protocol's batches until stopped.
    pub(super) async fn ingest(self: Arc<Self>, protocol: &'static str) {
        let mut n = 0;
        while !self.stop.load(Ordering::Acquire) {
            n += 1;
            let tag = format!("{protocol}-{n}");
            // The Logs Ingestion API alternates between the two workspaces.
            let ws = if protocol == "logs" && n % 2 == 0 {
                WS_CMK
            } else {
                WS
            };
            let rows = batch(&tag, chrono::Utc::now());
            let (table, request) = match protocol {
                "logs" => {
                    let rule = if ws == WS { &self.rule } else { &self.rule_cmk };
                    (
                        "Events",
                        self.http
                            .post(format!(
                                "{}/dataCollectionRules/{rule}/streams/Custom-Events",
                                self.url
                            ))
                            .bearer_auth(&self.publisher)
                            .json(&rows),
                    )
                }
                "otlp" => {
                    let records: Vec<Value> = rows
                        .iter()
                        .map(|r| {
                            let nanos = chrono::DateTime::parse_from_rfc3339(
                                r["TimeGenerated"].as_str().unwrap(),
                            )
                            .unwrap()
                            .timestamp_nanos_opt()
                            .unwrap();
                            json!({"timeUnixNano": nanos.to_string(), "eventName": tag,
                                "severityText": r["Level"], "body": {"stringValue": r["Message"]},
                                "attributes": [{"key": "Seq", "value": {"intValue": r["Seq"]}}]})
                        })
                        .collect();
                    (
                        "OTelLogs",
                        self.http
                            .post(format!("{}/v1/logs", self.url))
                            .bearer_auth(&self.publisher)
                            .header("x-logvault-workspace", WS)
                            .json(&json!({"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]})),
                    )
                }
                _ => {
                    let mut body = String::new();
                    for r in &rows {
                        body.push_str("{\"index\":{}}\n");
                        body.push_str(&r.to_string());
                        body.push('\n');
                    }
                    (
                        "soak_bulk",
                        self.http
                            .post(format!("{}/soak-bulk/_bulk", self.url))
                            .basic_auth("elastic", Some(&self.publisher))
                            .header("x-logvault-workspace", WS)
                            .header("content-type", "application/x-ndjson")
                            .body(body),
                    )
                }
            };
            let key = (ws.to_owned(), table.to_owned(), tag.clone());
            match request.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let retry_after = r.headers().contains_key("retry-after");
                    let body = r.text().await.unwrap_or_default();
                    note(&self.tally, protocol, status);
                    let ok = match protocol {
                        "logs" => status == 204,
                        "otlp" => status == 200,
                        _ => {
                            status == 200
                                && serde_json::from_str::<Value>(&body)
                                    .is_ok_and(|v| v["errors"] == false)
                        }
                    };
                    let mut t = self.tally.lock().unwrap();
                    if ok {
                        t.acknowledged.insert(key, ROWS);
                    } else if caused_by_load(status, ws, &body, retry_after) {
                        t.refused.insert(key, ROWS);
                    } else {
                        t.unexpected
                            .push(format!("{protocol} {tag} to {ws}: {status} {body}"));
                        t.refused.insert(key, ROWS);
                    }
                }
                Err(e) => {
                    unexpected(&self.tally, format!("{protocol} {tag}: {e}"));
                    self.tally.lock().unwrap().refused.insert(key, ROWS);
                }
            }
            tokio::time::sleep(PAUSE).await;
        }
    }

    /// Syslog messages over one TCP connection (syslog has no acknowledgement).
    pub(super) async fn syslog(self: Arc<Self>, addr: String) {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut n = 0;
        while !self.stop.load(Ordering::Acquire) {
            let mut frames = String::new();
            for _ in 0..ROWS {
                n += 1;
                let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let m = format!("<165>1 {time} soak01 soak - - - soak syslog {n}");
                frames.push_str(&format!("{} {m}", m.len()));
            }
            if let Err(e) = tcp.write_all(frames.as_bytes()).await {
                unexpected(&self.tally, format!("syslog: {e}"));
                return;
            }
            self.tally.lock().unwrap().syslog_sent += ROWS;
            tokio::time::sleep(PAUSE).await;
        }
        let _ = tcp.shutdown().await;
    }

    /// KQL queries, one after the other.
    pub(super) async fn queries(self: Arc<Self>) {
        let queries = [
            (WS, "Events | summarize n = count() by Level"),
            (
                WS,
                "union Events, OTelLogs | where TimeGenerated > ago(1h) | count",
            ),
            (
                WS,
                "soak_bulk | where Seq < 3 | summarize max(Seq) by Tag | take 5",
            ),
            (WS, "Syslog | summarize count() by bin(TimeGenerated, 1m)"),
            (
                WS_CMK,
                "Events | summarize n = count(), last = max(TimeGenerated)",
            ),
            (WS_CMK, "Events | where Level == 'error' | take 20"),
        ];
        let mut answered = [false; 6];
        let mut i = 0;
        while !self.stop.load(Ordering::Acquire) {
            let which = i % queries.len();
            let (ws, q) = queries[which];
            i += 1;
            match self
                .http
                .post(format!("{}/v1/workspaces/{ws}/query", self.url))
                .bearer_auth(&self.owner)
                .json(&json!({ "query": q }))
                .send()
                .await
            {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let retry_after = r.headers().contains_key("retry-after");
                    let body = r.text().await.unwrap_or_default();
                    note(&self.tally, "query", status);
                    let bad_body = status == 200 && !body.contains("\"tables\"");
                    answered[which] |= status == 200;
                    // Until a table's first rows are acknowledged, it does not exist.
                    let too_early =
                        !answered[which] && status == 400 && body.contains("unknown table or name");
                    if (status != 200 || bad_body)
                        && !too_early
                        && !caused_by_load(status, ws, &body, retry_after)
                    {
                        unexpected(&self.tally, format!("query {q} on {ws}: {status} {body}"));
                    }
                    self.tally.lock().unwrap().queries += 1;
                }
                Err(e) => unexpected(&self.tally, format!("query {q}: {e}")),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// The customer key through the Key Vault API: rotated, disabled, enabled again.
    pub(super) async fn keys(self: Arc<Self>) {
        let base = format!("{}/vaults/{VAULT}/keys/{KEY}", self.url);
        let mut step = 0;
        while !self.stop.load(Ordering::Acquire) {
            let (what, request) = match step % 3 {
                0 => (
                    "rotate",
                    self.http.post(format!("{base}/rotate?api-version=7.4")),
                ),
                1 => (
                    "disable",
                    self.http
                        .patch(format!("{base}?api-version=7.4"))
                        .json(&json!({"attributes": {"enabled": false}})),
                ),
                _ => (
                    "enable",
                    self.http
                        .patch(format!("{base}?api-version=7.4"))
                        .json(&json!({"attributes": {"enabled": true}})),
                ),
            };
            step += 1;
            match request.bearer_auth(&self.owner).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    note(&self.tally, what, status);
                    if status != 200 {
                        let body = r.text().await.unwrap_or_default();
                        unexpected(&self.tally, format!("key {what}: {status} {body}"));
                    }
                    self.tally.lock().unwrap().key_changes += 1;
                }
                Err(e) => unexpected(&self.tally, format!("key {what}: {e}")),
            }
            sleep_unless_stopped(&self.stop, Duration::from_secs(3)).await;
        }
        // The key ends enabled.
        if step % 3 == 2 {
            let r = self
                .http
                .patch(format!("{base}?api-version=7.4"))
                .bearer_auth(&self.owner)
                .json(&json!({"attributes": {"enabled": true}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    }
}

pub(super) async fn sleep_unless_stopped(stop: &AtomicBool, d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until && !stop.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Compaction and retention purges by the CLI beside the server.
pub(super) fn maintenance(home: &Path, tally: &Shared, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        for args in [
            &["table", "compact", "--workspace", WS][..],
            &["table", "compact", "--workspace", WS_CMK][..],
            &["table", "purge"][..],
        ] {
            let out = crate::common::logvault(home, args, "");
            if out.status.success() {
                tally.lock().unwrap().maintenance += 1;
            } else {
                unexpected(
                    tally,
                    format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr)),
                );
            }
        }
        let until = Instant::now() + Duration::from_secs(8);
        while Instant::now() < until && !stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `count()` by `column` of `table` in `ws` (empty when the table does not exist).
pub(super) async fn counts(
    load: &Load,
    ws: &str,
    table: &str,
    column: &str,
) -> BTreeMap<String, usize> {
    let r = load
        .http
        .post(format!("{}/v1/workspaces/{ws}/query", load.url))
        .bearer_auth(&load.owner)
        .json(&json!({"query": format!("{table} | summarize n = count() by {column}")}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    if status == 400 && body.to_string().contains(table) {
        return BTreeMap::new();
    }
    assert_eq!(status, 200, "{body}");
    body["tables"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row[0].as_str().unwrap_or_default().to_owned(),
                row[1].as_u64().unwrap() as usize,
            )
        })
        .collect()
}
