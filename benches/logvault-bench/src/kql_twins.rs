//! KQL against SQL (`logvault-bench kql-twins`): the query suite written in KQL as well as SQL,
//! run side by side in one session on a workspace under a customer key. Each pair must give the
//! same answer (checked on every run); the report gives each language's median warm time, the
//! ratio, and whether the two plan to the same physical plan.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, bail};
use datafusion::physical_plan::displayable;
use datafusion::prelude::{DataFrame, SessionContext};
use logvault::kql_lang::PlanOptions;
use serde::{Deserialize, Serialize};

use crate::answers::Answer;
use crate::ingest::{DataFormat, IngestTarget, LOG_TABLE};
use crate::queries::{self, SuiteParams};
use crate::setup::{self, HomeTimings, WORKSPACE};
use crate::stats::{format_ms, format_ratio, median, ratio};
use crate::sys::Machine;

/// The KQL twin of each query of [`queries::suite`], by name: the same rows and columns.
pub fn kql_suite(params: &SuiteParams) -> Vec<(String, String)> {
    let logs = LOG_TABLE;
    let inventory = crate::ingest::INVENTORY_TABLE;
    let q = |name: &str, kql: String| (name.to_owned(), kql);
    vec![
        q(
            "count_by_level",
            format!("{logs} | summarize n = count() by level = Level | order by level asc"),
        ),
        q(
            "errors_per_hour",
            format!(
                "{logs} | where Level in ('ERROR', 'CRITICAL') \
                 | summarize errors = count() by h = bin(TimeGenerated, 1h) \
                 | project hour = (h - datetime(1970-01-01)) / 1s, errors | order by hour asc"
            ),
        ),
        q(
            "message_search",
            format!(
                "{logs} | where Message contains_cs 'timed out after 4' \
                 | summarize n = count() by service = Service | order by service asc"
            ),
        ),
        q(
            "request_lookup",
            format!(
                "{logs} | where RequestId == '{}' \
                 | project host = Host, level = Level, message = Message, latency = LatencyMs \
                 | order by host asc",
                params.needle
            ),
        ),
        q(
            "top_hosts",
            format!(
                "{logs} | summarize n = count(), avg_latency = avg(LatencyMs) by host = Host \
                 | order by n desc, host asc | take 10"
            ),
        ),
        q(
            "window_level",
            format!(
                "{logs} | where TimeGenerated >= datetime({}) and TimeGenerated < datetime({}) \
                 and Level == 'WARN' \
                 | summarize n = count(), max_latency = max(LatencyMs) by service = Service \
                 | order by service asc",
                params.window_start, params.window_end
            ),
        ),
        q(
            "distinct_users",
            format!("{logs} | summarize users = count_distinct(UserId)"),
        ),
        q(
            "join_inventory",
            format!(
                "{logs} | where Level in ('ERROR', 'CRITICAL') \
                 | join kind=inner ({inventory}) on Host \
                 | summarize n = count(), avg_latency = avg(LatencyMs) by datacenter = Datacenter \
                 | order by datacenter asc"
            ),
        ),
    ]
}

/// What to run.
#[derive(Debug, Clone)]
pub struct TwinOptions {
    /// Rows of generated logs.
    pub rows: u64,
    /// Warm runs of each query in each language.
    pub repeats: usize,
    /// Generator seed.
    pub seed: u64,
    /// Scratch directory.
    pub work: PathBuf,
    /// Where `kql-vs-sql.md` and `kql-vs-sql.json` go.
    pub out: PathBuf,
}

/// One pair's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TwinRow {
    /// The query's name.
    pub query: String,
    /// The KQL text.
    pub kql: String,
    /// Milliseconds of each warm SQL run.
    pub sql_ms: Vec<f64>,
    /// Milliseconds of each warm KQL run (planning included, as for SQL).
    pub kql_ms: Vec<f64>,
    /// Median KQL time over median SQL time.
    pub ratio: Option<f64>,
    /// Whether both languages' physical plans are the same tree of operators (names and
    /// nesting; the expressions' aliases differ).
    pub same_physical_plan: bool,
    /// Rows of the answer (equal in both; checked).
    pub rows: usize,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TwinReport {
    /// The machine.
    pub machine: Machine,
    /// When (RFC 3339).
    pub date: String,
    /// Rows of the data.
    pub rows: u64,
    /// The pairs.
    pub pairs: Vec<TwinRow>,
}

async fn sql_run(ctx: &SessionContext, sql: &str) -> anyhow::Result<(Answer, String)> {
    let df = ctx
        .sql(sql)
        .await
        .with_context(|| format!("planning {sql}"))?;
    collect(df).await
}

async fn collect(df: DataFrame) -> anyhow::Result<(Answer, String)> {
    let plan = df.clone().create_physical_plan().await?;
    let text = displayable(plan.as_ref()).indent(false).to_string();
    let batches = df.collect().await?;
    Ok((Answer::from_batches(&batches)?, text))
}

/// Runs the pairs and writes the report to `options.out`.
///
/// # Errors
/// Set-up errors, a KQL twin that fails or answers differently from its SQL.
pub async fn run(options: &TwinOptions) -> anyhow::Result<TwinReport> {
    let progress = crate::run::Progress(Instant::now());
    let dir = options.work.join("kql-twins");
    let exe = crate::run::private_exe(&dir)?;
    progress.say(&format!("generating {} rows", options.rows));
    let input = crate::ingest::input_file(
        &options.work.join("data"),
        options.rows,
        options.seed,
        DataFormat::Ndjson,
    )?;
    let parquet = dir.join(format!("logs-{}.parquet", options.rows));
    let home = dir.join(format!("home-{}", options.rows));
    for (target, output) in [
        (IngestTarget::Parquet, &parquet),
        (IngestTarget::Customer, &home),
    ] {
        crate::run::remove(output)?;
        progress.say(&format!("ingesting into {}", target.label()));
        crate::ingest::spawn_case(&exe, target, DataFormat::Ndjson, &input, output)?;
    }
    let inventory_parquet = dir.join("host-inventory.parquet");
    queries::write_inventory_parquet(
        &inventory_parquet,
        crate::generator::GenOptions::default().hosts,
    )?;
    let inventory = crate::ingest::inventory_file(&options.work.join("data"))?;
    crate::run::add_inventory(&home, &inventory).await?;
    let params = queries::discover_params(&parquet, &inventory_parquet).await?;

    let engine = setup::open_home(
        &home,
        HomeTimings {
            key_check_secs: None,
        },
    )
    .await?;
    let session = engine.query_session(WORKSPACE).await?;
    let ctx = session.context();
    let kql = kql_suite(&params);
    let mut pairs = Vec::new();
    for query in queries::suite(&params) {
        let Some((_, text)) = kql.iter().find(|(name, _)| *name == query.name) else {
            bail!("query {} has no KQL twin", query.name);
        };
        progress.say(&format!("{}: SQL and KQL", query.name));
        let mut row = TwinRow {
            query: query.name.clone(),
            kql: text.clone(),
            sql_ms: Vec::new(),
            kql_ms: Vec::new(),
            ratio: None,
            same_physical_plan: false,
            rows: 0,
        };
        // One run of each first (the cache warm for both), then alternating warm runs.
        for round in 0..=options.repeats {
            let started = Instant::now();
            let (sql_answer, sql_plan) = sql_run(ctx, &query.sql).await?;
            let sql_ms = started.elapsed().as_secs_f64() * 1000.0;
            let started = Instant::now();
            let plan = engine
                .plan_kql_in(
                    &session,
                    WORKSPACE,
                    text,
                    &PlanOptions::at(chrono::Utc::now()),
                )
                .await
                .with_context(|| format!("planning the KQL twin of {}: {text}", query.name))?;
            let (kql_answer, kql_plan) = collect(DataFrame::new(ctx.state(), plan.plan)).await?;
            let kql_ms = started.elapsed().as_secs_f64() * 1000.0;
            if let Some(diff) = kql_answer.difference(&sql_answer) {
                bail!("the KQL twin of {} answers differently: {diff}", query.name);
            }
            row.rows = sql_answer.rows.len();
            row.same_physical_plan = shape(&sql_plan) == shape(&kql_plan);
            if round == 0
                && !row.same_physical_plan
                && std::env::var_os("LOGVAULT_BENCH_PLANS").is_some()
            {
                progress.say(&format!("SQL plan:\n{sql_plan}\nKQL plan:\n{kql_plan}"));
            }
            if round > 0 {
                row.sql_ms.push(sql_ms);
                row.kql_ms.push(kql_ms);
            }
        }
        row.ratio = match (median(&row.kql_ms), median(&row.sql_ms)) {
            (Some(k), Some(s)) => ratio(k, s),
            _ => None,
        };
        pairs.push(row);
    }
    let report = TwinReport {
        machine: Machine::describe(),
        date: chrono::Utc::now().to_rfc3339(),
        rows: options.rows,
        pairs,
    };
    crate::report::write_report(&options.out, "kql-vs-sql", &report, &markdown(&report))?;
    Ok(report)
}

/// A printed physical plan's operators, with their nesting (what follows each operator's name:
/// aliases, sort options, file lists, is left out).
fn shape(plan: &str) -> Vec<String> {
    plan.lines()
        .map(|line| {
            let depth = line.len() - line.trim_start().len();
            let name = line.trim_start().split(':').next().unwrap_or_default();
            format!("{depth}:{name}")
        })
        .collect()
}

/// The report as markdown.
pub fn markdown(r: &TwinReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# KQL against SQL: the query suite in both languages\n");
    let _ = writeln!(
        s,
        "Run of {} on {} ({} cores), {} build, {} rows under a customer key, one session; \
         median of the warm runs of each language, alternated. Every run's answers are equal \
         (checked). \"Same operator tree\": both physical plans have the same operators, nested the \
         same way (the expressions' names differ; `LOGVAULT_BENCH_PLANS=1` prints both plans \
         where the trees differ).\n",
        r.date, r.machine.cpu_model, r.machine.cores, r.machine.profile, r.rows
    );
    let _ = writeln!(
        s,
        "| query | SQL | KQL | KQL / SQL | same operator tree | rows |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---|---:|");
    for p in &r.pairs {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            p.query,
            median(&p.sql_ms).map_or("-".into(), format_ms),
            median(&p.kql_ms).map_or("-".into(), format_ms),
            format_ratio(p.ratio),
            if p.same_physical_plan { "yes" } else { "no" },
            p.rows
        );
    }
    let _ = writeln!(s, "\nThe KQL twins:\n");
    for p in &r.pairs {
        let _ = writeln!(s, "- `{}`: `{}`", p.query, p.kql);
    }
    s
}
