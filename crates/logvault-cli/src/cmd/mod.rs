//! One module per command group; `run` dispatches.

pub(crate) mod alert;
pub(crate) mod cluster;
pub(crate) mod dcr;
pub(crate) mod demo;
pub(crate) mod identity;
pub(crate) mod ingest;
pub(crate) mod key;
pub(crate) mod lockbox;
pub(crate) mod query;
mod query_kql;
pub(crate) mod role;
pub(crate) mod saved_search;
pub(crate) mod search_job;
pub(crate) mod serve;
pub(crate) mod status;
pub(crate) mod storage_account;
pub(crate) mod table;
pub(crate) mod token;
pub(crate) mod vault;
pub(crate) mod verify;
pub(crate) mod workspace;

use std::path::PathBuf;

use anyhow::Context as _;
use logvault::{Engine, EngineBuilder};

use crate::args::{Cli, Command, GlobalArgs};

/// Runs one parsed command line.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init(args) => {
            let mut builder = builder(&cli.global, &home_dir(&cli.global)?);
            if let Some(url) = args.storage_url {
                builder = builder.storage_url(url);
            }
            let engine = builder.open().await?;
            let storage = engine.home().config().storage_url.clone();
            crate::output::print(
                cli.global.output,
                &serde_json::json!({ "home": engine.home().root(), "storageUrl": storage }),
                |_| {
                    let rests = storage.as_deref().unwrap_or("its storage directory");
                    format!(
                        "logvault home ready at {} (data rests at {rests})",
                        engine.home().root().display()
                    )
                },
            )
        }
        Command::Demo(args) => demo::run(&cli.global, args).await,
        Command::Vault(args) => vault::run(&cli.global, args).await,
        Command::Key(args) => key::run(&cli.global, args).await,
        Command::Role(args) => role::run(&cli.global, args).await,
        Command::Identity(args) => identity::run(&cli.global, args).await,
        Command::Cluster(args) => cluster::run(&cli.global, args).await,
        Command::Workspace(args) => workspace::run(&cli.global, args).await,
        Command::Ingest(args) => ingest::run(&cli.global, args).await,
        Command::Query(args) => query::run(&cli.global, args).await,
        Command::Status(args) => status::run(&cli.global, args).await,
        Command::Table(args) => table::run(&cli.global, args).await,
        Command::SavedSearch(args) => saved_search::run(&cli.global, args).await,
        Command::StorageAccount(args) => storage_account::run(&cli.global, args).await,
        Command::Alert(args) => alert::run(&cli.global, args).await,
        Command::Lockbox(args) => lockbox::run(&cli.global, args).await,
        Command::SearchJob(args) => search_job::run(&cli.global, args).await,
        Command::Serve(args) => serve::run(&cli.global, args).await,
        Command::Token(args) => token::run(&cli.global, args).await,
        Command::Dcr(args) => dcr::run(&cli.global, args).await,
    }
}

/// The home named by `--home` or `LOGVAULT_HOME`, else `~/.logvault`.
pub(crate) fn home_dir(global: &GlobalArgs) -> anyhow::Result<PathBuf> {
    if let Some(home) = &global.home {
        return Ok(home.clone());
    }
    let user_home = std::env::var_os("HOME").context("no --home given and HOME is not set")?;
    Ok(PathBuf::from(user_home).join(".logvault"))
}

/// Opens the engine on the home the global options name.
pub(crate) async fn open(global: &GlobalArgs) -> anyhow::Result<Engine> {
    Ok(builder(global, &home_dir(global)?).open().await?)
}

/// The engine builder for `home` with the global options: `--now` starts the clock there.
pub(crate) fn builder(global: &GlobalArgs, home: &std::path::Path) -> EngineBuilder {
    let builder = Engine::builder(home);
    match global.now {
        Some(now) => builder.clock(std::sync::Arc::new(logvault::core::StartedClock::new(now))),
        None => builder,
    }
}
