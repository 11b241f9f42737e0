//! Log alerts in the server: the notifier that delivers fired alerts (webhooks and local
//! commands, also used by `logvault alert run-due`), and the scheduler that evaluates the due
//! rules of every workspace while the server runs (R-H4), so that no cron job is needed.
//!
//! Before each evaluation the scheduler stores what the workspaces' writers hold, as a query
//! over HTTP does, so that a rule sees every row acknowledged before it runs.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use logvault::control::{AlertOutcome, FiredAlert};
use logvault::{AlertNotifier, AlertTarget};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::ServerError;
use crate::http::Shared;

/// How long one webhook delivery may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends fired alerts to webhooks (`http://` or `https://`, with reqwest: the HTTP client
/// object storage already uses) and to local commands (`sh -c`, the alert as JSON on standard
/// input, on a blocking thread).
#[derive(Debug, Clone)]
pub struct ActionNotifier {
    http: reqwest::Client,
}

impl ActionNotifier {
    /// A notifier with a 10 s timeout per webhook delivery.
    ///
    /// # Errors
    /// The HTTP client cannot be built (no TLS roots).
    pub fn new() -> Result<Self, ServerError> {
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .user_agent(concat!("logvault/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ServerError::Tls(format!("cannot start the webhook client: {e}")))?;
        Ok(Self { http })
    }

    /// POSTs `body` as JSON; any 2xx answer is delivery.
    async fn post(&self, url: &str, body: Vec<u8>) -> Result<(), String> {
        let answer = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("webhook {url}: {e}"))?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("webhook {url} answered {}", status.as_u16()))
        }
    }
}

fn run_command(command: &str, body: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let fail = |e: &dyn std::fmt::Display| format!("command {command:?}: {e}");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| fail(&e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(body).map_err(|e| fail(&e))?;
    }
    let status = child.wait().map_err(|e| fail(&e))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("command {command:?} exited with {status}"))
    }
}

#[async_trait]
impl AlertNotifier for ActionNotifier {
    async fn send(&self, target: &AlertTarget, alert: &FiredAlert) -> Result<(), String> {
        let body = serde_json::to_vec(alert).map_err(|e| e.to_string())?;
        match target {
            AlertTarget::Webhook(url) => self.post(url, body).await,
            AlertTarget::Command(command) => {
                let command = command.clone();
                tokio::task::spawn_blocking(move || run_command(&command, &body))
                    .await
                    .map_err(|e| e.to_string())?
            }
        }
    }
}

/// Starts the scheduler: every `interval`, stores what the writers hold and evaluates the due
/// rules, until `stop` turns true. Its work is counted in the metrics
/// (`logvault_alert_evaluations_total`, `logvault_alerts_fired_total`).
pub(crate) fn spawn_scheduler(
    state: Shared,
    notifier: Arc<ActionNotifier>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            run_once(&state, notifier.as_ref()).await;
        }
    })
}

/// One pass of the scheduler.
async fn run_once(state: &Shared, notifier: &ActionNotifier) {
    let workspaces = match crate::http::blocking(state, |e| e.control().list_workspaces()).await {
        Ok(Ok(list)) => list,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "alert scheduler: cannot list the workspaces");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e.message, "alert scheduler: cannot list the workspaces");
            return;
        }
    };
    for ws in &workspaces {
        if let Err(e) = state.hub.flush(&ws.name).await {
            tracing::warn!(workspace = %ws.name, error = %e, "alert scheduler: cannot store the rows the writer holds");
        }
    }
    let report = match state.engine.run_due_alerts(notifier).await {
        Ok(report) => report,
        Err(e) => {
            tracing::warn!(error = %e, "alert scheduler: the due rules could not be run");
            return;
        }
    };
    for (workspace, error) in &report.unreadable {
        tracing::warn!(%workspace, %error, "alert scheduler: the workspace's rules cannot be read");
    }
    for rule in &report.evaluated {
        let workspace = rule.split('/').next().unwrap_or_default().to_owned();
        state.metrics.add(
            "logvault_alert_evaluations_total",
            vec![("workspace", workspace)],
            1.0,
        );
    }
    for alert in &report.alerts {
        let outcome = match alert.outcome {
            AlertOutcome::Fired => "fired",
            AlertOutcome::Failed => "failed",
        };
        tracing::info!(workspace = %alert.workspace, rule = %alert.rule, outcome, "alert rule evaluated");
        state.metrics.add(
            "logvault_alerts_fired_total",
            vec![
                ("workspace", alert.workspace.clone()),
                ("outcome", outcome.to_owned()),
            ],
            1.0,
        );
    }
}
