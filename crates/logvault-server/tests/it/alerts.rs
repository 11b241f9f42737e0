//! The alert scheduler inside the server: due rules are evaluated without `alert run-due`, on
//! the engine's clock, over rows acknowledged through the ingestion API, and what fires reaches
//! the rule's webhook.

use std::sync::{Arc, Mutex};

use chrono::Duration;
use logvault::control::{AlertOperator, AlertOutcome, AlertRule};
use logvault_server::Role;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::common::{Options, WS, eventually, records, serve};

/// A webhook receiver on a free local port that answers 200 and keeps every body.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/alert", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                let mut length = 0;
                reader.read_line(&mut line).await.unwrap();
                assert!(line.starts_with("POST /hooks/alert "), "{line}");
                loop {
                    line.clear();
                    reader.read_line(&mut line).await.unwrap();
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).await.unwrap();
                kept.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                let mut stream = reader.into_inner();
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (url, bodies)
}

fn received(bodies: &Mutex<Vec<Value>>) -> Vec<Value> {
    bodies.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_fires_a_due_rule_over_ingested_rows_at_its_frequency() {
    let mut s = serve(Options {
        alert_interval: Some(std::time::Duration::from_millis(200)),
        ..Options::default()
    })
    .await;
    let (webhook, bodies) = receiver().await;
    // 40 records from 10:00 on, a quarter of them errors; the clock stands at 12:00.
    let rule = s.rule("rule-app", WS, "AppEvents", None);
    let publisher = s.token(&[Role::Publisher], Some(WS));
    let r = s
        .upload(&rule, "Custom-AppEvents", &publisher, &records(40, "a"))
        .await;
    assert_eq!(r.status(), 204);
    s.engine
        .create_alert_rule(
            WS,
            AlertRule {
                name: "errors".into(),
                query: "AppEvents | where Level == 'error'".into(),
                frequency_secs: 300,
                window_secs: 3 * 3600,
                operator: AlertOperator::GreaterThan,
                threshold: 5.0,
                measure: None,
                dimensions: Vec::new(),
                severity: 2,
                webhook: Some(webhook),
                command: None,
                created: chrono::Utc::now(),
                last_evaluated: None,
            },
        )
        .await
        .unwrap();

    eventually("the first alert at the webhook", || async {
        !received(&bodies).is_empty()
    })
    .await;
    let first = received(&bodies);
    assert_eq!(first[0]["rule"], "errors", "{first:?}");
    assert_eq!(first[0]["workspace"], WS, "{first:?}");
    assert_eq!(first[0]["value"].as_f64(), Some(10.0), "{first:?}");

    // Not due again until the rule's frequency has passed on the engine's clock.
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    assert_eq!(received(&bodies).len(), 1, "fired again before it was due");
    s.clock.advance(Duration::seconds(301));
    eventually("the second alert at the webhook", || async {
        received(&bodies).len() == 2
    })
    .await;

    // The scheduler records an alert after it has delivered it: the history may trail the
    // webhook by a moment.
    let engine = &s.engine;
    eventually("the history holds both alerts", || async {
        engine
            .alert_history(WS, Some("errors"))
            .await
            .is_ok_and(|h| h.len() >= 2)
    })
    .await;
    let history = s.engine.alert_history(WS, Some("errors")).await.unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(history.iter().all(|a| a.outcome == AlertOutcome::Fired));
    // The scheduler counts an evaluation after it has delivered and recorded it: the metrics
    // may trail the webhook and the history by a moment.
    eventually("the metrics count both alerts", || async {
        s.metric("logvault_alerts_fired_total", &[("outcome", "fired")]) >= 2.0
            && s.metric("logvault_alert_evaluations_total", &[("workspace", WS)]) >= 2.0
    })
    .await;
    s.shutdown().await;
}

/// A rule whose query fails is reported as a failed evaluation (in history and the metrics),
/// never as silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_keeps_a_failed_evaluation_in_history() {
    let mut s = serve(Options {
        alert_interval: Some(std::time::Duration::from_millis(200)),
        ..Options::default()
    })
    .await;
    s.engine
        .create_alert_rule(
            WS,
            AlertRule {
                name: "missing-table".into(),
                query: "NoSuchTable | where Level == 'error'".into(),
                frequency_secs: 300,
                window_secs: 3600,
                operator: AlertOperator::GreaterThan,
                threshold: 0.0,
                measure: None,
                dimensions: Vec::new(),
                severity: 1,
                webhook: None,
                command: None,
                created: chrono::Utc::now(),
                last_evaluated: None,
            },
        )
        .await
        .unwrap();
    let engine = s.engine.clone();
    eventually("a failed evaluation in history", || {
        let engine = engine.clone();
        async move {
            engine
                .alert_history(WS, Some("missing-table"))
                .await
                .unwrap()
                .iter()
                .any(|a| a.outcome == AlertOutcome::Failed && a.error.is_some())
        }
    })
    .await;
    // The scheduler counts a pass's outcomes once the pass has kept them in history: the
    // counter may trail the history by a moment (this test failed in CI when it read both at
    // once).
    let metrics = s.server().metrics().clone();
    eventually("the failed evaluation counted", || {
        let metrics = metrics.clone();
        async move { metrics.counter("logvault_alerts_fired_total", &[("outcome", "failed")]) >= 1.0 }
    })
    .await;
    s.shutdown().await;
}
