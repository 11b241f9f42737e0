//! Log alerts (R-H4): rules kept sealed with the workspace (or in the storage account linked
//! for `Alerts`, under its key), evaluated when due on the engine's clock
//! ([`Engine::run_due_alerts`]: `logvault alert run-due`, and the server's scheduler). A rule's
//! query looks at its window, its rows are split by the rule's dimensions, and each group
//! whose value (row count, or the sum of a measure) passes the threshold fires an alert. A
//! fired alert carries the query and the rows that fired it, unless the workspace is linked
//! for `Alerts`: then only its dimensions. Fired alerts are kept (history) and handed to an
//! [`AlertNotifier`] (webhook, command) with retry; a query that fails is reported as a failed
//! evaluation, never as "no alert".

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use logvault_control::{
    AlertDelivery, AlertOutcome, AlertRule, DataSourceType, FiredAlert, check_artifact_name,
};
use serde_json::Value;

use crate::artifacts::{DocKind, refused};
use crate::saved::uuid_suffix;
use crate::{Engine, EngineError};

/// Deliveries are tried this many times.
pub const ALERT_DELIVERY_ATTEMPTS: u32 = 3;
/// At most this many rows are kept with a fired alert.
pub const ALERT_MAX_ROWS: usize = 100;

/// Where a fired alert is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertTarget {
    /// POST the alert as JSON to this URL.
    Webhook(String),
    /// Run this command with the alert as JSON on its standard input.
    Command(String),
}

/// Sends fired alerts; the binary and the server implement it (HTTP, processes). An error is
/// retried up to [`ALERT_DELIVERY_ATTEMPTS`] times.
#[async_trait]
pub trait AlertNotifier: Send + Sync {
    /// Sends `alert` to `target`.
    async fn send(&self, target: &AlertTarget, alert: &FiredAlert) -> Result<(), String>;
}

/// What one run of the due rules did.
#[derive(Debug, Clone, Default)]
pub struct AlertRunReport {
    /// The rules evaluated, as `workspace/rule`.
    pub evaluated: Vec<String>,
    /// Alerts fired and evaluations that failed, as kept in history.
    pub alerts: Vec<FiredAlert>,
    /// Workspaces whose rules could not be read (a revoked storage key), with the error.
    pub unreadable: Vec<(String, String)>,
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn mentions(query: &str, table: &str) -> bool {
    query
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| w == table)
}

fn kql_time(t: DateTime<Utc>) -> String {
    format!("datetime({})", t.format("%Y-%m-%dT%H:%M:%S%.9fZ"))
}

impl Engine {
    /// Creates (or replaces) an alert rule of `workspace`; its query must parse. It is first
    /// due at once.
    ///
    /// # Errors
    /// 400 for bad fields or a query that does not parse; the Alerts storage account's key
    /// errors.
    pub async fn create_alert_rule(
        &self,
        workspace: &str,
        mut rule: AlertRule,
    ) -> Result<AlertRule, EngineError> {
        rule.check()?;
        logvault_kql::parse(&rule.query)
            .map_err(|e| refused(400, format!("alert rule {}: {e}", rule.name)))?;
        rule.created = self.now();
        rule.last_evaluated = None;
        self.docs(workspace, DocKind::AlertRules)
            .await?
            .put(&rule.name, &rule)
            .await?;
        Ok(rule)
    }

    /// An alert rule.
    ///
    /// # Errors
    /// 404 if there is none; key errors of the account it lives in.
    pub async fn alert_rule(&self, workspace: &str, name: &str) -> Result<AlertRule, EngineError> {
        check_artifact_name("alert rule", name)?;
        self.docs(workspace, DocKind::AlertRules)
            .await?
            .get(name)
            .await?
            .ok_or_else(|| {
                refused(
                    404,
                    format!("alert rule {name} not found in workspace {workspace}"),
                )
            })
    }

    /// Every alert rule of `workspace`.
    ///
    /// # Errors
    /// Key errors of the account they live in.
    pub async fn alert_rules(&self, workspace: &str) -> Result<Vec<AlertRule>, EngineError> {
        self.docs(workspace, DocKind::AlertRules).await?.all().await
    }

    /// Deletes an alert rule (its history stays).
    ///
    /// # Errors
    /// 404 if there is none.
    pub async fn delete_alert_rule(&self, workspace: &str, name: &str) -> Result<(), EngineError> {
        self.alert_rule(workspace, name).await?;
        self.docs(workspace, DocKind::AlertRules)
            .await?
            .delete(name)
            .await
    }

    /// Fired alerts and failed evaluations of `workspace` (of one rule, if given), oldest
    /// first.
    ///
    /// # Errors
    /// Key errors of the account they live in.
    pub async fn alert_history(
        &self,
        workspace: &str,
        rule: Option<&str>,
    ) -> Result<Vec<FiredAlert>, EngineError> {
        let mut all: Vec<FiredAlert> = self
            .docs(workspace, DocKind::FiredAlerts)
            .await?
            .all()
            .await?;
        all.retain(|a| rule.is_none_or(|r| a.rule == r));
        all.sort_by_key(|a| a.fired_at);
        Ok(all)
    }

    /// Evaluates every rule of every workspace that is due at the engine's clock, keeps what
    /// fired (and what failed) in history, and sends fired alerts to the rules' actions.
    ///
    /// # Errors
    /// Control-plane errors listing workspaces; storage errors keeping history. A workspace
    /// whose rules cannot be read is reported in [`AlertRunReport::unreadable`].
    pub async fn run_due_alerts(
        &self,
        notifier: &dyn AlertNotifier,
    ) -> Result<AlertRunReport, EngineError> {
        let mut report = AlertRunReport::default();
        let now = self.now();
        for ws in self.control().list_workspaces()? {
            let rules = match self.alert_rules(&ws.name).await {
                Ok(rules) => rules,
                Err(e) => {
                    report.unreadable.push((ws.name.clone(), e.to_string()));
                    continue;
                }
            };
            let linked = ws.linked_for(DataSourceType::Alerts).is_some();
            for mut rule in rules {
                if rule.next_due() > now {
                    continue;
                }
                report.evaluated.push(format!("{}/{}", ws.name, rule.name));
                let mut alerts = self.evaluate_alert_rule(&ws.name, &rule, now, linked).await;
                for alert in &mut alerts {
                    if alert.outcome == AlertOutcome::Fired {
                        deliver(notifier, &rule, alert).await;
                    }
                    let id = format!(
                        "{}-{}-{}",
                        alert.fired_at.format("%Y%m%dT%H%M%S%.9fZ"),
                        rule.name,
                        uuid_suffix()
                    );
                    self.docs(&ws.name, DocKind::FiredAlerts)
                        .await?
                        .put(&id, alert)
                        .await?;
                }
                rule.last_evaluated = Some(now);
                self.docs(&ws.name, DocKind::AlertRules)
                    .await?
                    .put(&rule.name, &rule)
                    .await?;
                report.alerts.extend(alerts);
            }
        }
        Ok(report)
    }

    /// Evaluates `rule` at `now` over its window; the alerts it fires (one per dimension group
    /// past the threshold), or one `Failed` entry if its query fails.
    async fn evaluate_alert_rule(
        &self,
        workspace: &str,
        rule: &AlertRule,
        now: DateTime<Utc>,
        linked: bool,
    ) -> Vec<FiredAlert> {
        let base = FiredAlert {
            rule: rule.name.clone(),
            workspace: workspace.to_owned(),
            outcome: AlertOutcome::Fired,
            fired_at: now,
            severity: rule.severity,
            dimensions: BTreeMap::new(),
            value: None,
            operator: rule.operator,
            threshold: rule.threshold,
            query: (!linked).then(|| rule.query.clone()),
            rows: None,
            error: None,
            deliveries: Vec::new(),
        };
        let groups = match self.alert_groups(workspace, rule, now).await {
            Ok(groups) => groups,
            Err(e) => {
                return vec![FiredAlert {
                    outcome: AlertOutcome::Failed,
                    error: Some(e.to_string()),
                    ..base
                }];
            }
        };
        groups
            .into_iter()
            .filter(|(_, (value, _))| rule.operator.fires(*value, rule.threshold))
            .map(|(dimensions, (value, rows))| FiredAlert {
                dimensions,
                value: Some(value),
                rows: (!linked).then_some(rows),
                ..base.clone()
            })
            .collect()
    }

    /// The rule's query over its window, its rows grouped by the dimensions' values: each
    /// group's value and (up to [`ALERT_MAX_ROWS`]) rows. Without dimensions, one group (also
    /// when there are no rows, so that `LessThan` rules fire on silence).
    async fn alert_groups(
        &self,
        workspace: &str,
        rule: &AlertRule,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<BTreeMap<String, String>, (f64, Vec<Value>)>, EngineError> {
        let from = now - Duration::seconds(rule.window_secs);
        let mut kql = String::new();
        for table in self.store().catalog().tables(workspace).await? {
            if mentions(&rule.query, &table) {
                kql.push_str(&format!(
                    "let {table} = {table} | where TimeGenerated > {} and TimeGenerated <= {};\n",
                    kql_time(from),
                    kql_time(now)
                ));
            }
        }
        kql.push_str(&rule.query);
        let result = self.query_kql(workspace, &kql).await?;
        let schema = result.schema.clone();
        let batches: Vec<_> = result
            .stream
            .try_collect()
            .await
            .map_err(|e| EngineError::Query(e.into()))?;
        for d in rule.dimensions.iter().chain(rule.measure.iter()) {
            if !schema.iter().any(|c| &c.name == d) {
                return Err(refused(
                    400,
                    format!(
                        "alert rule {}: the query's result has no column {d}",
                        rule.name
                    ),
                ));
            }
        }
        let mut groups: BTreeMap<BTreeMap<String, String>, (f64, Vec<Value>)> = BTreeMap::new();
        if rule.dimensions.is_empty() {
            groups.insert(BTreeMap::new(), (0.0, Vec::new()));
        }
        for batch in &batches {
            for row in logvault_kql::format::batch_rows(batch, &schema)? {
                let dims: BTreeMap<String, String> = rule
                    .dimensions
                    .iter()
                    .map(|d| (d.clone(), text_of(&row[d.as_str()])))
                    .collect();
                let add = match &rule.measure {
                    Some(m) => row[m.as_str()].as_f64().unwrap_or(0.0),
                    None => 1.0,
                };
                let entry = groups.entry(dims).or_insert((0.0, Vec::new()));
                entry.0 += add;
                if entry.1.len() < ALERT_MAX_ROWS {
                    entry.1.push(row);
                }
            }
        }
        Ok(groups)
    }
}

/// Sends a fired alert to each of its rule's actions, retrying, and records the deliveries.
async fn deliver(notifier: &dyn AlertNotifier, rule: &AlertRule, alert: &mut FiredAlert) {
    let targets: Vec<AlertTarget> = rule
        .webhook
        .iter()
        .map(|u| AlertTarget::Webhook(u.clone()))
        .chain(rule.command.iter().map(|c| AlertTarget::Command(c.clone())))
        .collect();
    for target in targets {
        let mut delivery = AlertDelivery {
            target: match &target {
                AlertTarget::Webhook(u) | AlertTarget::Command(u) => u.clone(),
            },
            attempts: 0,
            delivered: false,
            last_error: None,
        };
        while delivery.attempts < ALERT_DELIVERY_ATTEMPTS && !delivery.delivered {
            if delivery.attempts > 0 {
                tokio::time::sleep(StdDuration::from_millis(100 << delivery.attempts)).await;
            }
            delivery.attempts += 1;
            match notifier.send(&target, alert).await {
                Ok(()) => delivery.delivered = true,
                Err(e) => delivery.last_error = Some(e),
            }
        }
        alert.deliveries.push(delivery);
    }
}
