//! The load generator's side: request bodies made from the benchmark's generated logs (the Logs
//! Ingestion API's JSON array, and OTLP/JSON), senders that each hold one connection and post
//! back to back until the deadline (retrying what is refused with 429/503 after `Retry-After`),
//! and query clients that run a KQL aggregation back to back meanwhile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::server::{STREAM, Started};
use crate::generator::{GenOptions, LogGenerator};

/// An ingestion protocol of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// The Azure Logs Ingestion API through a data collection rule.
    LogsApi,
    /// OTLP/HTTP logs, JSON encoding.
    OtlpJson,
}

impl Protocol {
    /// Both, in report order.
    pub const ALL: [Protocol; 2] = [Self::LogsApi, Self::OtlpJson];

    /// The name in reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::LogsApi => "Logs Ingestion API",
            Self::OtlpJson => "OTLP/JSON",
        }
    }

    /// The table the rows land in.
    pub fn table(self) -> &'static str {
        match self {
            Self::LogsApi => crate::ingest::LOG_TABLE,
            Self::OtlpJson => "OTelLogs",
        }
    }
}

/// How the requests are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// A fixed number of rows per request, uncompressed, no request id.
    Rows,
    /// What the clients' SDKs send. The Azure SDK (azure-monitor-ingestion 1.1,
    /// `_helpers.py`): records gathered into chunks while the sum of their `json.dumps` sizes
    /// stays within 1 MiB (`MAX_CHUNK_SIZE_BYTES`), each chunk gzipped (zlib's default level),
    /// and azure-core's `x-ms-client-request-id` on every request. The OpenTelemetry SDK
    /// (1.45): `BatchLogRecordProcessor` exports at most 512 records per request
    /// (`_DEFAULT_MAX_EXPORT_BATCH_SIZE`), and its OTLP/HTTP exporter compresses nothing unless
    /// told (`OTEL_EXPORTER_OTLP_COMPRESSION` defaults to none).
    Sdk,
}

/// The Azure SDK's chunk bound (`MAX_CHUNK_SIZE_BYTES`).
pub const AZURE_CHUNK_BYTES: usize = 1024 * 1024;
/// The OpenTelemetry SDK's `BatchLogRecordProcessor` export batch (`_DEFAULT_MAX_EXPORT_BATCH_SIZE`).
pub const OTEL_BATCH_RECORDS: usize = 512;

impl Shape {
    /// How reports name it, for `protocol` and `rows` rows per request.
    pub fn label(self, protocol: Protocol, rows: usize) -> String {
        match (self, protocol) {
            (Self::Rows, _) => format!("{rows} rows"),
            (Self::Sdk, Protocol::LogsApi) => "Azure SDK: ≤1 MiB, gzip".into(),
            (Self::Sdk, Protocol::OtlpJson) => format!("OTel SDK: {OTEL_BATCH_RECORDS} rows"),
        }
    }
}

/// One request body and the rows it carries.
#[derive(Debug, Clone)]
pub struct Payload {
    body: Bytes,
    rows: u64,
    /// Gzipped (sent with `Content-Encoding: gzip`).
    gzip: bool,
    /// Sent with a new `x-ms-client-request-id` (as azure-core does).
    request_id: bool,
}

impl Payload {
    /// Rows it carries.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Its body as sent.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Its body's bytes as sent.
    pub fn body_len(&self) -> usize {
        self.body.len()
    }
}

/// The generated logs as JSON objects (one per row), `rows` of them. Their `TimeGenerated`
/// starts a day before now: the generator's fixed start (2026-01-01) is past the tables'
/// 30-day retention, and a server purges such segments every minute, so a case longer than a
/// minute lost what it had stored before the purge.
///
/// # Errors
/// If arrow's JSON writer fails.
pub fn records(rows: u64, seed: u64) -> anyhow::Result<Vec<Map<String, Value>>> {
    let mut out = Vec::with_capacity(usize::try_from(rows).unwrap_or(0));
    let start = chrono::Utc::now() - chrono::Duration::days(1);
    for batch in LogGenerator::new(GenOptions {
        rows,
        seed,
        start_micros: start.timestamp_micros(),
        ..GenOptions::default()
    }) {
        let mut writer = arrow::json::ArrayWriter::new(Vec::new());
        writer.write(&batch)?;
        writer.finish()?;
        let array: Vec<Map<String, Value>> = serde_json::from_slice(&writer.into_inner())?;
        out.extend(array);
    }
    Ok(out)
}

fn otlp_value(v: &Value) -> Value {
    match v {
        Value::String(s) => json!({ "stringValue": s }),
        Value::Number(n) if n.is_i64() => json!({ "intValue": n.to_string() }),
        Value::Number(n) => json!({ "doubleValue": n.as_f64() }),
        Value::Bool(b) => json!({ "boolValue": b }),
        other => json!({ "stringValue": other.to_string() }),
    }
}

/// One OTLP/JSON `ExportLogsServiceRequest` carrying `rows`: `Message` is the body, `Level` the
/// severity text, `Service` the resource's `service.name`, the other fields attributes.
fn otlp_body(rows: &[Map<String, Value>]) -> anyhow::Result<Value> {
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let time = row
            .get("TimeGenerated")
            .and_then(Value::as_str)
            .context("a generated row has no TimeGenerated")?;
        let nanos = chrono::DateTime::parse_from_rfc3339(time)
            .or_else(|_| chrono::DateTime::parse_from_rfc3339(&format!("{time}Z")))
            .with_context(|| format!("generated time {time:?}"))?
            .timestamp_nanos_opt()
            .context("generated time out of range")?;
        let attributes: Vec<Value> = row
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "TimeGenerated" | "Message" | "Level"))
            .map(|(k, v)| json!({ "key": k, "value": otlp_value(v) }))
            .collect();
        records.push(json!({
            "timeUnixNano": nanos.to_string(),
            "severityText": row.get("Level").cloned().unwrap_or(Value::Null),
            "body": { "stringValue": row.get("Message").cloned().unwrap_or(Value::Null) },
            "attributes": attributes,
        }));
    }
    Ok(json!({
        "resourceLogs": [{
            "resource": { "attributes": [
                { "key": "service.name", "value": { "stringValue": "bench" } }
            ] },
            "scopeLogs": [{ "scope": { "name": "logvault-bench" }, "logRecords": records }]
        }]
    }))
}

/// The Azure SDK's chunks (`_split_chunks`): records in order while the sum of their JSON
/// sizes stays within `max` bytes; a record larger than `max` is a chunk of its own.
fn azure_chunks(
    records: &[Map<String, Value>],
    max: usize,
) -> anyhow::Result<Vec<&[Map<String, Value>]>> {
    let mut chunks = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, record) in records.iter().enumerate() {
        let n = serde_json::to_vec(record)?.len();
        if size + n > max && i > start {
            chunks.push(&records[start..i]);
            start = i;
            size = 0;
        }
        size += n;
    }
    if start < records.len() {
        chunks.push(&records[start..]);
    }
    Ok(chunks)
}

fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut encoder =
        flate2_unify::write::GzEncoder::new(Vec::new(), flate2_unify::Compression::default());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// The request bodies of `protocol` cut as `shape` says (`rows_per_request` rows each for
/// [`Shape::Rows`]), from `records`.
///
/// # Errors
/// If a body cannot be serialized.
pub fn payloads(
    protocol: Protocol,
    shape: Shape,
    records: &[Map<String, Value>],
    rows_per_request: usize,
) -> anyhow::Result<Vec<Payload>> {
    let chunks: Vec<&[Map<String, Value>]> = match (shape, protocol) {
        (Shape::Rows, _) => records.chunks(rows_per_request.max(1)).collect(),
        (Shape::Sdk, Protocol::LogsApi) => azure_chunks(records, AZURE_CHUNK_BYTES)?,
        (Shape::Sdk, Protocol::OtlpJson) => records.chunks(OTEL_BATCH_RECORDS).collect(),
    };
    let azure = shape == Shape::Sdk && protocol == Protocol::LogsApi;
    chunks
        .into_iter()
        .map(|chunk| {
            let body = match protocol {
                Protocol::LogsApi => serde_json::to_vec(chunk)?,
                Protocol::OtlpJson => serde_json::to_vec(&otlp_body(chunk)?)?,
            };
            Ok(Payload {
                body: Bytes::from(if azure { gzip(&body)? } else { body }),
                rows: chunk.len() as u64,
                gzip: azure,
                request_id: azure,
            })
        })
        .collect()
}

/// An HTTPS client that trusts the server's certificate, one connection.
///
/// # Errors
/// If the certificate cannot be read.
pub fn client(started: &Started) -> anyhow::Result<reqwest::Client> {
    let pem = std::fs::read(&started.cert).with_context(|| format!("reading {}", started.cert))?;
    Ok(reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem)?)
        .tls_built_in_root_certs(false)
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(120))
        .build()?)
}

/// What one sender did.
#[derive(Debug, Default)]
pub struct Sent {
    /// Rows acknowledged.
    pub rows: u64,
    /// Body bytes of acknowledged requests.
    pub bytes: u64,
    /// Acknowledged requests.
    pub requests: u64,
    /// Seconds from sending a request to its acknowledgement (the last, accepted, attempt).
    pub latencies: Vec<f64>,
    /// Requests refused with 429 or 503 and sent again.
    pub retries: u64,
    /// Rows of requests that failed without an answer (neither acknowledged nor refused).
    pub in_doubt: u64,
    /// Other failures (status and text), at most a few.
    pub errors: Vec<String>,
}

/// Posts `payloads` (starting at `first`, round robin) until `deadline`.
pub async fn send(
    protocol: Protocol,
    started: Arc<Started>,
    payloads: Arc<Vec<Payload>>,
    first: usize,
    deadline: Instant,
    pace: Option<Duration>,
) -> anyhow::Result<Sent> {
    let http = client(&started)?;
    let url = match protocol {
        Protocol::LogsApi => format!(
            "{}/dataCollectionRules/{}/streams/{STREAM}?api-version=2023-01-01",
            started.url, started.rule
        ),
        Protocol::OtlpJson => format!("{}/v1/logs", started.url),
    };
    let mut sent = Sent::default();
    let mut i = first;
    let begin = tokio::time::Instant::now();
    // The first request goes whatever the clock says: the warm-up's deadline (a millisecond
    // on) can pass while the client above is built, which sent nothing.
    while !payloads.is_empty() && (i == first || Instant::now() < deadline) {
        let payload = &payloads[i % payloads.len()];
        // Paced: request k starts k intervals after the first (late ones go at once).
        if let Some(every) = pace {
            let k = u32::try_from(i - first).unwrap_or(u32::MAX);
            tokio::time::sleep_until(begin + every * k).await;
            if Instant::now() >= deadline && i != first {
                break;
            }
        }
        i += 1;
        // One id per request, kept across its retries (as azure-core's RequestIdPolicy).
        let request_id = payload
            .request_id
            .then(|| uuid_unify::Uuid::now_v7().to_string());
        loop {
            let mut request = http
                .post(&url)
                .bearer_auth(&started.publisher)
                .header("content-type", "application/json")
                .body(payload.body.clone());
            if protocol == Protocol::OtlpJson {
                request = request.header("x-logvault-workspace", crate::setup::WORKSPACE);
            }
            if payload.gzip {
                request = request.header("content-encoding", "gzip");
            }
            if let Some(id) = &request_id {
                request = request.header("x-ms-client-request-id", id);
            }
            let at = Instant::now();
            match request.send().await {
                Ok(answer) if answer.status().is_success() => {
                    sent.latencies.push(at.elapsed().as_secs_f64());
                    sent.rows += payload.rows;
                    sent.bytes += payload.body.len() as u64;
                    sent.requests += 1;
                    break;
                }
                Ok(answer) if matches!(answer.status().as_u16(), 429 | 503) => {
                    sent.retries += 1;
                    let wait = answer
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .map_or(Duration::from_millis(100), Duration::from_secs);
                    tokio::time::sleep(wait.min(Duration::from_secs(2))).await;
                }
                Ok(answer) => {
                    let status = answer.status();
                    let text = answer.text().await.unwrap_or_default();
                    if sent.errors.len() < 5 {
                        sent.errors.push(format!("{status}: {text}"));
                    }
                    break;
                }
                Err(e) => {
                    sent.in_doubt += payload.rows;
                    if sent.errors.len() < 5 {
                        sent.errors.push(e.to_string());
                    }
                    break;
                }
            }
        }
    }
    Ok(sent)
}

/// What one query client did.
#[derive(Debug, Default)]
pub struct Queried {
    /// Seconds per answered query.
    pub latencies: Vec<f64>,
    /// Queries that failed (status and text), at most a few kept.
    pub errors: Vec<String>,
    /// How many failed.
    pub failed: u64,
}

/// Runs `kql` back to back until `deadline`.
pub async fn query_loop(
    started: Arc<Started>,
    kql: String,
    deadline: Instant,
) -> anyhow::Result<Queried> {
    let http = client(&started)?;
    let url = format!(
        "{}/v1/workspaces/{}/query",
        started.url, started.workspace_id
    );
    let mut done = Queried::default();
    while Instant::now() < deadline {
        let at = Instant::now();
        let answer = http
            .post(&url)
            .bearer_auth(&started.reader)
            .json(&json!({ "query": kql }))
            .send()
            .await;
        match answer {
            Ok(a) if a.status().is_success() => {
                // The whole answer is read: the time is until the last byte.
                let _ = a.bytes().await?;
                done.latencies.push(at.elapsed().as_secs_f64());
            }
            Ok(a) => {
                done.failed += 1;
                let status = a.status();
                if done.errors.len() < 5 {
                    done.errors
                        .push(format!("{status}: {}", a.text().await.unwrap_or_default()));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                done.failed += 1;
                if done.errors.len() < 5 {
                    done.errors.push(e.to_string());
                }
            }
        }
    }
    Ok(done)
}

/// The number of rows of `table`, asked over the query API.
///
/// # Errors
/// If the query fails or its answer has no count.
pub async fn count(started: &Started, table: &str) -> anyhow::Result<u64> {
    let http = client(started)?;
    let answer: Value = http
        .post(format!(
            "{}/v1/workspaces/{}/query",
            started.url, started.workspace_id
        ))
        .bearer_auth(&started.reader)
        .json(&json!({ "query": format!("{table} | count") }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    answer["tables"][0]["rows"][0][0]
        .as_u64()
        .with_context(|| format!("no count in {answer}"))
}

/// The `q`-quantile (0..=1) of `values` (seconds), in milliseconds; `None` when empty.
pub fn quantile_ms(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(crate::stats::percentile(&sorted, q * 100.0) * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_the_ranked_value() {
        let v: Vec<f64> = (1..=100).map(|i| f64::from(i) / 1000.0).collect();
        assert_eq!(quantile_ms(&v, 0.5).map(f64::round), Some(51.0));
        assert_eq!(quantile_ms(&v, 0.99).map(f64::round), Some(99.0));
        assert_eq!(quantile_ms(&[], 0.5), None);
    }

    #[test]
    fn otlp_bodies_carry_every_row_with_its_time() {
        let rows = records(10, 7).unwrap();
        let body = otlp_body(&rows).unwrap();
        let records = body["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
            .as_array()
            .unwrap();
        assert_eq!(records.len(), 10);
        let nanos: i64 = records[0]["timeUnixNano"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(nanos >= 1_767_225_600_000_000_000, "{nanos}");
        let payloads = payloads(Protocol::LogsApi, Shape::Rows, &rows, 4).unwrap();
        assert_eq!(
            payloads.iter().map(|p| p.rows).collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
    }

    #[test]
    fn sdk_requests_are_gzipped_chunks_of_at_most_a_mebibyte_or_512_records() {
        use std::io::Read as _;
        let rows = records(6000, 7).unwrap();
        let azure = payloads(Protocol::LogsApi, Shape::Sdk, &rows, 500).unwrap();
        assert!(azure.len() >= 2, "{}", azure.len());
        assert_eq!(azure.iter().map(|p| p.rows).sum::<u64>(), 6000);
        for p in &azure {
            assert!(p.gzip && p.request_id);
            let mut json = Vec::new();
            flate2_unify::read::GzDecoder::new(&p.body[..])
                .read_to_end(&mut json)
                .unwrap();
            let array: Vec<Value> = serde_json::from_slice(&json).unwrap();
            assert_eq!(array.len() as u64, p.rows);
            // The SDK's bound is on the records' sizes; the array adds its commas and brackets.
            let sizes: usize = array.iter().map(|r| r.to_string().len()).sum();
            assert!(sizes <= AZURE_CHUNK_BYTES, "{sizes}");
        }
        // Full chunks: adding the next record would have passed the bound.
        let first: Vec<Value> = {
            let mut json = Vec::new();
            flate2_unify::read::GzDecoder::new(&azure[0].body[..])
                .read_to_end(&mut json)
                .unwrap();
            serde_json::from_slice(&json).unwrap()
        };
        let sizes: usize = first.iter().map(|r| r.to_string().len()).sum();
        let next = serde_json::to_vec(&rows[first.len()]).unwrap().len();
        assert!(sizes + next > AZURE_CHUNK_BYTES);
        let otel = payloads(Protocol::OtlpJson, Shape::Sdk, &rows, 500).unwrap();
        assert_eq!(otel[0].rows, 512);
        assert!(!otel[0].gzip && !otel[0].request_id);
    }
}
