//! `logvault table verify`: the scrub of a workspace's data at rest.

use std::io::{IsTerminal, Write};

use clap::Args;
use logvault::store::{SegmentStatus, VerifyProgress, VerifyReport};

use crate::args::GlobalArgs;
use crate::output::{print, table};

/// Arguments of `logvault table verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The workspace.
    #[arg(long)]
    workspace: String,
    /// Only this table.
    #[arg(long)]
    table: Option<String>,
}

/// Runs the scrub; fails (after printing the report) when damage is found.
pub(crate) async fn run(global: &GlobalArgs, args: VerifyArgs) -> anyhow::Result<()> {
    let engine = super::open(global).await?;
    let bar = progress_bar();
    let mut on_progress = |p: VerifyProgress| {
        if let Some(bar) = &bar {
            bar.set_length(p.segments_total as u64);
            bar.set_position(p.segments_done as u64);
            bar.set_message(format!("{} MB read", p.bytes / 1_000_000));
        }
    };
    let report = engine
        .verify(&args.workspace, args.table.as_deref(), &mut on_progress)
        .await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let _ = writeln!(
        std::io::stderr(),
        "verified workspace {}: {} segments authenticated ({} bytes), {} damaged or missing, \
         {} skipped (key unavailable), {} orphans, {} replaced segments waiting for deletion",
        report.workspace,
        report.segments_ok,
        report.bytes_read,
        report.damaged,
        report.skipped,
        report.orphans,
        report.retired
    );
    print(global.output, &report, render)?;
    if report.is_clean() {
        Ok(())
    } else {
        anyhow::bail!(
            "workspace {}: {} damaged or missing (segments or catalog versions); see the report",
            report.workspace,
            report.damaged
        )
    }
}

fn progress_bar() -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("verify {pos}/{len} segments {msg} [{elapsed}]")
            .ok()?,
    );
    Some(bar)
}

fn render(report: &VerifyReport) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for t in &report.tables {
        for m in &t.damaged_manifests {
            rows.push(vec![
                format!(
                    "catalog {}/{} version {}",
                    report.workspace, t.table, m.version
                ),
                "damaged".into(),
                m.reason.clone(),
            ]);
        }
        for s in &t.segments {
            let (state, reason) = match &s.status {
                SegmentStatus::Ok => continue,
                SegmentStatus::Damaged { reason } => ("damaged", reason.clone()),
                SegmentStatus::Missing => ("missing", String::new()),
                SegmentStatus::Skipped { reason } => ("skipped", reason.clone()),
            };
            rows.push(vec![s.segment.clone(), state.into(), reason]);
        }
        for o in &t.orphans {
            rows.push(vec![
                o.clone(),
                "orphan".into(),
                "not in the catalog (not counted)".into(),
            ]);
        }
    }
    let summary = format!(
        "{} segments authenticated, {} damaged or missing, {} skipped, {} orphans",
        report.segments_ok, report.damaged, report.skipped, report.orphans
    );
    if rows.is_empty() {
        return summary;
    }
    format!(
        "{}\n{summary}",
        table(&["SEGMENT", "STATE", "REASON"], &rows)
    )
}
