//! Log alerts (R-H4): evaluation on the engine's clock, payloads with and without the Alerts
//! link, retries, failing queries, and rules under a revoked storage account key.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::Duration;
use logvault::control::{
    AlertOperator, AlertOutcome, AlertRule, DataSourceType, FiredAlert, KeyVaultProperties,
    StorageAccountSpec,
};
use logvault::kms::KeyType;
use logvault::kms::local::CreateVaultOptions;
use logvault::{AlertNotifier, AlertTarget};

use crate::common::{Home, KEY, VAULT, WS, home};

/// Records what it is sent; fails the first `fail_first` attempts.
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<(AlertTarget, FiredAlert)>>,
    fail_first: Mutex<u32>,
}

#[async_trait]
impl AlertNotifier for Recorder {
    async fn send(&self, target: &AlertTarget, alert: &FiredAlert) -> Result<(), String> {
        let mut left = self.fail_first.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            return Err("receiver down".into());
        }
        self.sent
            .lock()
            .unwrap()
            .push((target.clone(), alert.clone()));
        Ok(())
    }
}

fn rule(name: &str, query: &str) -> AlertRule {
    AlertRule {
        name: name.into(),
        query: query.into(),
        frequency_secs: 300,
        window_secs: 7200,
        operator: AlertOperator::GreaterThan,
        threshold: 2.0,
        measure: None,
        dimensions: vec!["Tag".into()],
        severity: 1,
        webhook: Some("http://127.0.0.1:9/hook".into()),
        command: None,
        created: chrono::Utc::now(),
        last_evaluated: None,
    }
}

/// The clock at 2026-03-01 12:00; rows at 11:00..11:09 tagged `a` (10) and 11:30..11:31 `b` (2).
async fn home_with_recent_rows() -> Home {
    let h = home().await;
    h.workspace(WS);
    h.ingest(WS, "AppLogs", &Home::lines("a", 660, 10)).await;
    h.ingest(WS, "AppLogs", &Home::lines("b", 690, 2)).await;
    h
}

async fn keyed_account(h: &Home, name: &str) {
    let vault = h.engine.vault();
    vault
        .create_vault(
            VAULT,
            &CreateVaultOptions {
                region: "local".into(),
                tenant: "local".into(),
                soft_delete: true,
                purge_protection: true,
                retention_days: None,
            },
        )
        .unwrap();
    vault.create_key(VAULT, KEY, KeyType::Oct, None).unwrap();
    let account = h
        .engine
        .create_storage_account(StorageAccountSpec {
            name: name.into(),
            ..StorageAccountSpec::default()
        })
        .await
        .unwrap();
    vault
        .set_policy(
            VAULT,
            account.identity.principal_id.as_ref().unwrap(),
            &["get".into(), "wrapKey".into(), "unwrapKey".into()],
        )
        .unwrap();
    h.engine
        .set_storage_account_key(
            name,
            KeyVaultProperties {
                key_vault_uri: format!("https://{VAULT}.vault.local"),
                key_name: KEY.into(),
                key_version: String::new(),
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rule_fires_per_dimension_with_query_and_rows_and_is_due_again_after_its_frequency() {
    let h = home_with_recent_rows().await;
    let e = &h.engine;
    e.create_alert_rule(WS, rule("many", "AppLogs | where Seq >= 0"))
        .await
        .unwrap();
    let notifier = Recorder {
        fail_first: Mutex::new(1),
        ..Recorder::default()
    };
    let report = e.run_due_alerts(&notifier).await.unwrap();
    assert_eq!(report.evaluated, [format!("{WS}/many")]);
    // Tag a has 10 rows (> 2): fires; tag b has 2: does not.
    assert_eq!(report.alerts.len(), 1);
    let fired = &report.alerts[0];
    assert_eq!(fired.outcome, AlertOutcome::Fired);
    assert_eq!(fired.rule, "many");
    assert_eq!(fired.workspace, WS);
    assert_eq!(fired.severity, 1);
    assert_eq!(fired.dimensions.get("Tag").map(String::as_str), Some("a"));
    assert_eq!(fired.value, Some(10.0));
    assert_eq!(fired.threshold, 2.0);
    assert_eq!(fired.query.as_deref(), Some("AppLogs | where Seq >= 0"));
    assert_eq!(fired.rows.as_ref().unwrap().len(), 10);
    assert_eq!(fired.rows.as_ref().unwrap()[0]["Tag"], "a");
    assert_eq!(fired.fired_at, logvault_core::Clock::now(&h.clock));
    // The first attempt failed; the retry delivered it.
    assert_eq!(fired.deliveries.len(), 1);
    assert_eq!(fired.deliveries[0].attempts, 2);
    assert!(fired.deliveries[0].delivered);
    let sent = notifier.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].0,
        AlertTarget::Webhook("http://127.0.0.1:9/hook".into())
    );
    assert_eq!(sent[0].1.dimensions, fired.dimensions);

    // Not due again until its frequency has passed.
    h.clock.advance(Duration::seconds(299));
    assert!(
        e.run_due_alerts(&notifier)
            .await
            .unwrap()
            .evaluated
            .is_empty()
    );
    h.clock.advance(Duration::seconds(1));
    let again = e.run_due_alerts(&notifier).await.unwrap();
    assert_eq!(again.evaluated.len(), 1);
    // History keeps both, oldest first.
    let history = e.alert_history(WS, Some("many")).await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(history[0].fired_at < history[1].fired_at);

    // Three hours later the rows are out of the two-hour window: nothing fires.
    h.clock.advance(Duration::hours(3));
    let quiet = e.run_due_alerts(&notifier).await.unwrap();
    assert_eq!(quiet.evaluated.len(), 1);
    assert!(quiet.alerts.is_empty());
}

#[tokio::test]
async fn linked_for_alerts_a_fired_alert_carries_only_its_dimensions() {
    let h = home_with_recent_rows().await;
    let e = &h.engine;
    e.create_alert_rule(WS, rule("many", "AppLogs"))
        .await
        .unwrap();
    keyed_account(&h, "alertstore").await;
    let outcome = e
        .link_storage(WS, DataSourceType::Alerts, "alertstore")
        .await
        .unwrap();
    assert_eq!(outcome.moved_alert_documents, 1, "the rule moved");
    let notifier = Recorder::default();
    let report = e.run_due_alerts(&notifier).await.unwrap();
    assert_eq!(report.alerts.len(), 1);
    let sent = notifier.sent.lock().unwrap()[0].1.clone();
    assert_eq!(sent.dimensions.get("Tag").map(String::as_str), Some("a"));
    assert_eq!(sent.query, None, "no query text");
    assert_eq!(sent.rows, None, "no results");
    let json = serde_json::to_value(&sent).unwrap();
    assert!(
        json.get("query").is_none() && json.get("rows").is_none(),
        "{json}"
    );

    // Revoking the account's key hides the rules (reported), restoring brings them back.
    e.vault().set_key_enabled(VAULT, KEY, None, false).unwrap();
    let err = e.alert_rules(WS).await.unwrap_err();
    assert!(
        err.to_string().contains("storage account alertstore"),
        "{err}"
    );
    h.clock.advance(Duration::minutes(5));
    let report = e.run_due_alerts(&notifier).await.unwrap();
    assert_eq!(report.unreadable.len(), 1);
    assert_eq!(report.unreadable[0].0, WS);
    e.vault().set_key_enabled(VAULT, KEY, None, true).unwrap();
    assert_eq!(e.alert_rules(WS).await.unwrap().len(), 1);
    assert_eq!(e.run_due_alerts(&notifier).await.unwrap().alerts.len(), 1);

    // Unlinked, the rules come back under the service key, and alerts carry the query again.
    e.unlink_storage(WS, DataSourceType::Alerts).await.unwrap();
    h.clock.advance(Duration::minutes(5));
    let report = e.run_due_alerts(&notifier).await.unwrap();
    assert_eq!(report.alerts[0].query.as_deref(), Some("AppLogs"));
}

#[tokio::test]
async fn a_failing_query_is_reported_as_a_failure_not_as_no_alert() {
    let h = home_with_recent_rows().await;
    let e = &h.engine;
    e.create_alert_rule(WS, rule("broken", "NoSuchTable | count"))
        .await
        .unwrap();
    let notifier = Recorder::default();
    let report = e.run_due_alerts(&notifier).await.unwrap();
    assert_eq!(report.alerts.len(), 1);
    let failed = &report.alerts[0];
    assert_eq!(failed.outcome, AlertOutcome::Failed);
    assert!(
        failed.error.as_ref().unwrap().contains("NoSuchTable"),
        "{failed:?}"
    );
    assert!(
        notifier.sent.lock().unwrap().is_empty(),
        "failures are not sent"
    );
    assert_eq!(
        e.alert_history(WS, None).await.unwrap()[0].outcome,
        AlertOutcome::Failed
    );
    // A rule on a missing dimension column fails too.
    e.delete_alert_rule(WS, "broken").await.unwrap();
    let mut r = rule("nodim", "AppLogs");
    r.dimensions = vec!["Nope".into()];
    e.create_alert_rule(WS, r).await.unwrap();
    let report = e.run_due_alerts(&notifier).await.unwrap();
    assert_eq!(report.alerts[0].outcome, AlertOutcome::Failed);
    // Bad rules are refused at creation.
    let mut bad = rule("bad", "AppLogs | where (");
    assert_eq!(
        e.create_alert_rule(WS, bad.clone())
            .await
            .unwrap_err()
            .code(),
        Some(400)
    );
    bad.query = "AppLogs".into();
    bad.frequency_secs = 10;
    assert_eq!(
        e.create_alert_rule(WS, bad).await.unwrap_err().code(),
        Some(400)
    );
}

#[tokio::test]
async fn a_measure_is_summed_and_less_than_fires_on_silence() {
    let h = home_with_recent_rows().await;
    let e = &h.engine;
    let mut sum = rule("seqsum", "AppLogs | where Tag == 'a'");
    sum.dimensions.clear();
    sum.measure = Some("Seq".into());
    sum.threshold = 44.0; // 0 + 1 + ... + 9 = 45
    e.create_alert_rule(WS, sum).await.unwrap();
    let mut silent = rule("silent", "AppLogs | where Tag == 'zzz'");
    silent.dimensions.clear();
    silent.operator = AlertOperator::LessThan;
    silent.threshold = 1.0;
    e.create_alert_rule(WS, silent).await.unwrap();
    let report = e.run_due_alerts(&Recorder::default()).await.unwrap();
    let by_rule = |n: &str| report.alerts.iter().find(|a| a.rule == n).cloned();
    assert_eq!(by_rule("seqsum").unwrap().value, Some(45.0));
    assert_eq!(by_rule("silent").unwrap().value, Some(0.0));
}
