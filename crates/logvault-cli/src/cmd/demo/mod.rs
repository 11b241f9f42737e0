//! `logvault demo`: the customer-managed-key story of the seed, step by step, on the bundled
//! sample data. Each step prints what it does and a few rows of evidence; the run ends with a
//! summary table and exits non-zero unless every step behaved as the seed describes, so it is
//! also an end-to-end test (CI runs it).

mod steps;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use clap::Args;
use logvault::HomeConfig;
use serde::Serialize;

use crate::args::{GlobalArgs, OutputFormat};
use crate::output::table;

/// Arguments of `logvault demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Longest wait for the key monitor to notice a change, in seconds.
    #[arg(long, default_value_t = 30)]
    wait: u64,
}

/// One step's outcome.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StepResult {
    step: String,
    expected: String,
    observed: String,
    ok: bool,
}

/// Where the demo writes its narrative: stdout for people, stderr under `-o json` (stdout then
/// carries only the JSON summary).
pub(crate) struct Narrator {
    json: bool,
    results: Vec<StepResult>,
    wait: Duration,
}

impl Narrator {
    pub(crate) fn say(&self, text: &str) {
        if self.json {
            let _ = writeln!(std::io::stderr(), "{text}");
        } else {
            let _ = writeln!(std::io::stdout(), "{text}");
        }
    }

    pub(crate) fn heading(&self, text: &str) {
        self.say(&format!("\n== {text}"));
    }

    /// Records a check of the step.
    pub(crate) fn check(
        &mut self,
        step: &str,
        expected: &str,
        observed: impl Into<String>,
        ok: bool,
    ) {
        let observed = observed.into();
        self.say(&format!(
            "   {} {expected}: {observed}",
            if ok { "ok  " } else { "FAIL" }
        ));
        self.results.push(StepResult {
            step: step.to_owned(),
            expected: expected.to_owned(),
            observed,
            ok,
        });
    }

    pub(crate) fn wait(&self) -> Duration {
        self.wait
    }
}

/// The demo's home: short key checks so the story runs in seconds, as a long-running service
/// with its key monitor in the background would behave over minutes.
fn prepare_home(home: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(home)?;
    let config = home.join("config.json");
    if !config.exists() {
        let mut c = HomeConfig {
            version: 1,
            ..HomeConfig::default()
        };
        c.timings.key_check_min_secs = 1;
        c.timings.key_check_max_secs = 2;
        c.timings.async_operation_secs = 1;
        std::fs::write(&config, serde_json::to_vec_pretty(&c)?)?;
    }
    Ok(())
}

/// Runs the demo in `--home` or a fresh temporary home.
pub(crate) async fn run(global: &GlobalArgs, args: DemoArgs) -> anyhow::Result<()> {
    let temp;
    let home = match &global.home {
        Some(home) => home.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("logvault-demo-")
                .tempdir()?;
            temp.path().to_owned()
        }
    };
    prepare_home(&home)?;
    let mut narrator = Narrator {
        json: global.output == OutputFormat::Json,
        results: Vec::new(),
        wait: Duration::from_secs(args.wait.max(1)),
    };
    narrator.say(&format!(
        "logvault demo: the customer-managed-key story, in {}",
        home.display()
    ));
    let engine = super::builder(global, &home).open().await?;
    // A long-running service checks keys in the background; so does the demo.
    let monitor = engine.spawn_key_monitor();
    let outcome = steps::run_all(&engine, &mut narrator).await;
    monitor.abort();
    if let Err(e) = outcome {
        narrator.check("aborted", "every step runs", format!("error: {e:#}"), false);
    }
    let all_ok = narrator.results.iter().all(|r| r.ok);
    let rows: Vec<Vec<String>> = narrator
        .results
        .iter()
        .map(|r| {
            vec![
                if r.ok { "ok" } else { "FAIL" }.to_owned(),
                r.step.clone(),
                r.expected.clone(),
            ]
        })
        .collect();
    narrator.heading("summary");
    narrator.say(&table(
        &["RESULT", "STEP", "EXPECTED (as the seed describes)"],
        &rows,
    ));
    if narrator.json {
        let summary = serde_json::json!({ "ok": all_ok, "steps": narrator.results });
        writeln!(
            std::io::stdout(),
            "{}",
            serde_json::to_string_pretty(&summary)?
        )?;
    }
    if global.home.is_some()
        && let Err(e) = keep_sample(&engine).await
    {
        narrator.say(&format!("the sample's tables keep their retention: {e:#}"));
    }
    narrator.say(&browser_hint(global.home.as_deref()));
    if all_ok {
        narrator.say("\nevery step behaved as the seed describes");
        Ok(())
    } else {
        anyhow::bail!("the demo found steps that did not behave as the seed describes")
    }
}

/// The sample data is from 2019: in a home that stays, its tables keep it as long as a table
/// may (4383 days), so that a server started on the home does not purge it as expired.
async fn keep_sample(engine: &logvault::Engine) -> anyhow::Result<()> {
    for ws in engine.control().list_workspaces()? {
        for table in engine.tables(&ws.name).await? {
            engine
                .set_retention(&ws.name, &table.name, logvault::store::MAX_RETENTION_DAYS)
                .await?;
        }
    }
    Ok(())
}

/// How to look at the demo's workspaces in a browser.
fn browser_hint(home: Option<&Path>) -> String {
    match home {
        Some(home) => format!(
            "\nto look at these workspaces in a browser: run `logvault serve --home {}` and open \
             the sign-in URL it prints (https://127.0.0.1:8443/signin?code=..., once; the \
             certificate is {}); the sample is from 2019, so pick a time range of \"Set in \
             query\" (its tables keep 4383 days)",
            home.display(),
            home.join("tls").join("cert.pem").display()
        ),
        None => "\nthis demo's home was temporary and is gone; to look at its workspaces in a \
                 browser, run `logvault demo --home DIR`, then `logvault serve --home DIR` and \
                 open the sign-in URL it prints (it works once)"
            .to_owned(),
    }
}
