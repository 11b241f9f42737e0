//! `logvault demo`: the customer-managed-key story, step by step, on the bundled sample data.

use std::io::Write;

use clap::Args;
use logvault::{Engine, EngineOptions};

use crate::args::GlobalArgs;

/// Arguments of `logvault demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {}

/// Runs the demo in `--home` or a fresh temporary home.
pub(crate) async fn run(global: &GlobalArgs, _args: DemoArgs) -> anyhow::Result<()> {
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
    let mut err = std::io::stderr().lock();
    writeln!(err, "logvault demo in {}", home.display())?;
    let engine = Engine::open(EngineOptions::new(&home)).await?;
    writeln!(
        err,
        "step 0: home initialized at {}",
        engine.home().root().display()
    )?;
    Ok(())
}
