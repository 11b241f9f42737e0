//! `logvault alert ...`: log alert rules, their history, and `run-due`, which evaluates the
//! rules that are due and sends what fires to the rules' webhooks (HTTP POST of the alert's
//! JSON) and commands (the JSON on standard input), with retry (R-H4).

use clap::{Args, Subcommand};
use logvault::control::{AlertOperator, AlertRule, FiredAlert, parse_duration};

use crate::args::GlobalArgs;
use crate::output::{fields, print, table};

/// Arguments of `logvault alert`.
#[derive(Debug, Args)]
pub(crate) struct AlertArgs {
    #[command(subcommand)]
    command: AlertCommand,
}

#[derive(Debug, Subcommand)]
enum AlertCommand {
    /// Create (or replace) a log alert rule.
    Create {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// The rule's name.
        #[arg(long)]
        name: String,
        /// The KQL query (its tables are limited to the window).
        #[arg(long)]
        query: String,
        /// How often it is evaluated (`5m`, `1h`, `PT15M`; 1 minute to 2 days).
        #[arg(long, value_parser = parse_duration)]
        frequency: chrono::Duration,
        /// The time window the query looks at.
        #[arg(long, value_parser = parse_duration)]
        window: chrono::Duration,
        /// GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual, Equal, NotEqual.
        #[arg(long)]
        operator: AlertOperator,
        /// The threshold the value is compared with.
        #[arg(long)]
        threshold: f64,
        /// A numeric column whose sum is the value (default: the number of rows).
        #[arg(long)]
        measure: Option<String>,
        /// Split by this column (repeat for several): one alert per combination of values.
        #[arg(long)]
        dimension: Vec<String>,
        /// Severity, 0 (critical) to 4 (verbose).
        #[arg(long, default_value_t = 3)]
        severity: u8,
        /// POST fired alerts to this URL.
        #[arg(long)]
        webhook: Option<String>,
        /// Run this shell command with each fired alert's JSON on its standard input.
        #[arg(long)]
        command: Option<String>,
    },
    /// Show a rule.
    Show {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// The rule's name.
        #[arg(long)]
        name: String,
    },
    /// List a workspace's rules.
    List {
        /// The workspace.
        #[arg(long)]
        workspace: String,
    },
    /// Delete a rule (its history stays).
    Delete {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// The rule's name.
        #[arg(long)]
        name: String,
    },
    /// Fired alerts (and failed evaluations), oldest first.
    History {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// Only this rule's.
        #[arg(long)]
        name: Option<String>,
    },
    /// Evaluate every rule that is due now (for homes without `logvault serve`).
    RunDue,
}

fn show(r: &AlertRule) -> String {
    fields(&[
        ("name", r.name.clone()),
        ("query", r.query.clone()),
        ("frequencySecs", r.frequency_secs.to_string()),
        ("windowSecs", r.window_secs.to_string()),
        ("operator", format!("{:?}", r.operator)),
        ("threshold", r.threshold.to_string()),
        ("dimensions", r.dimensions.join(", ")),
        ("severity", r.severity.to_string()),
        ("webhook", r.webhook.clone().unwrap_or_default()),
        ("nextDue", r.next_due().to_rfc3339()),
    ])
}

fn history_table(all: &[FiredAlert]) -> String {
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|a| {
            vec![
                a.fired_at.to_rfc3339(),
                a.workspace.clone(),
                a.rule.clone(),
                format!("{:?}", a.outcome),
                a.value.map(|v| v.to_string()).unwrap_or_default(),
                serde_json::to_string(&a.dimensions).unwrap_or_default(),
                a.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "FIRED AT",
            "WORKSPACE",
            "RULE",
            "OUTCOME",
            "VALUE",
            "DIMENSIONS",
            "ERROR",
        ],
        &rows,
    )
}

/// Runs `logvault alert ...`.
pub(crate) async fn run(global: &GlobalArgs, args: AlertArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    let rule = match args.command {
        AlertCommand::Create {
            workspace,
            name,
            query,
            frequency,
            window,
            operator,
            threshold,
            measure,
            dimension,
            severity,
            webhook,
            command,
        } => {
            let rule = AlertRule {
                name,
                query,
                frequency_secs: frequency.num_seconds(),
                window_secs: window.num_seconds(),
                operator,
                threshold,
                measure,
                dimensions: dimension,
                severity,
                webhook,
                command,
                created: chrono::Utc::now(),
                last_evaluated: None,
            };
            engine.create_alert_rule(&workspace, rule).await?
        }
        AlertCommand::Show { workspace, name } => engine.alert_rule(&workspace, &name).await?,
        AlertCommand::List { workspace } => {
            let all = engine.alert_rules(&workspace).await?;
            return print(global.output, &all, |all| {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|r| {
                        vec![
                            r.name.clone(),
                            r.severity.to_string(),
                            format!("{:?} {}", r.operator, r.threshold),
                            r.next_due().to_rfc3339(),
                        ]
                    })
                    .collect();
                table(&["NAME", "SEVERITY", "CONDITION", "NEXT DUE"], &rows)
            });
        }
        AlertCommand::Delete { workspace, name } => {
            engine.delete_alert_rule(&workspace, &name).await?;
            return print(
                global.output,
                &serde_json::json!({ "name": name, "deleted": true }),
                |_| format!("alert rule {name} deleted"),
            );
        }
        AlertCommand::History { workspace, name } => {
            let all = engine.alert_history(&workspace, name.as_deref()).await?;
            return print(global.output, &all, |a| history_table(a));
        }
        AlertCommand::RunDue => {
            let report = engine
                .run_due_alerts(&logvault_server::ActionNotifier::new()?)
                .await?;
            for (ws, error) in &report.unreadable {
                crate::output::note(&format!(
                    "warning: the alert rules of workspace {ws} cannot be read: {error}"
                ));
            }
            let failed = report
                .alerts
                .iter()
                .filter(|a| a.outcome == logvault::control::AlertOutcome::Failed)
                .count();
            if failed > 0 {
                crate::output::note(&format!("warning: {failed} alert rule evaluations failed"));
            }
            return print(global.output, &report.alerts, |a| history_table(a));
        }
    };
    print(global.output, &rule, show)
}
