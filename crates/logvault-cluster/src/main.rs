//! `logvault-cluster`: logvault on an Apache DataFusion Ballista cluster, one process per role
//! (docs/distributed.md, "Running a cluster").
//!
//! - `scheduler`: a Ballista scheduler with logvault's codecs and session (no home, no key).
//! - `executor`: a Ballista executor over a home's storage and vault: it unwraps account keys
//!   at the vault itself, and writes and serves its stage outputs encrypted.
//! - `serve`: `logvault serve` whose query API sends queries asking for it (`"distributed":
//!   true`) to the scheduler.
//!
//! Each prints one JSON line on stdout once it is up (its address and pid), logs on stderr
//! (`LOGVAULT_LOG`, default `info`), and stops on SIGTERM or Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use logvault::Engine;
use logvault::store::{KeyringConfig, Store, StoreConfig};
use logvault_distributed::{ExecutorProcess, run_executor, serve_scheduler};
use logvault_server::{Period, ServeConfig};

/// logvault on an Apache DataFusion Ballista cluster.
#[derive(Debug, Parser)]
#[command(name = "logvault-cluster", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A scheduler: plans distributed queries and hands their tasks to executors.
    Scheduler(SchedulerArgs),
    /// An executor: runs tasks over the home's storage, with keys from the vault.
    Executor(ExecutorArgs),
    /// `logvault serve`, sending queries with `"distributed": true` to a scheduler.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
struct SchedulerArgs {
    /// The address its gRPC service listens on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:50050")]
    bind: SocketAddr,
    /// The name executors and query nodes reach it by (default: the bind address).
    #[arg(long)]
    external_host: Option<String>,
}

#[derive(Debug, Args)]
struct ExecutorArgs {
    /// The home whose storage and vault it reads (its `config.json` names them).
    #[arg(long, env = "LOGVAULT_HOME")]
    home: Option<PathBuf>,
    /// The scheduler (`host:port`).
    #[arg(long)]
    scheduler: String,
    /// Its id in the cluster (default: `executor-<pid>`); unique among the scheduler's.
    #[arg(long)]
    name: Option<String>,
    /// The address its Arrow Flight service (stage outputs) binds to.
    #[arg(long, default_value = "127.0.0.1")]
    bind_host: String,
    /// The name other executors and query nodes reach it by (default: the bind address, or as
    /// the scheduler sees it when that is unspecified).
    #[arg(long)]
    external_host: Option<String>,
    /// Its Arrow Flight service's port.
    #[arg(long, default_value_t = 50051)]
    flight_port: u16,
    /// Where its encrypted shuffle files go (default: HOME/cluster/<name>).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Tasks it runs at once (0: one per core).
    #[arg(long, default_value_t = 0)]
    concurrency: usize,
    /// Bytes its tasks may hold together (default: 70 % of the machine's memory); nothing
    /// spills to disk.
    #[arg(long)]
    memory_limit: Option<u64>,
    /// How long to wait for the scheduler at start, in seconds.
    #[arg(long, default_value_t = 30)]
    scheduler_timeout: u16,
    /// How long it uses an account key it unwrapped before asking the vault again, in seconds
    /// (default: the home's `keyCheckMaxSecs`, 60 s, the interval a query node checks keys
    /// at): a key revoked at the vault stops this executor within it.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    key_check_secs: Option<u32>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The home to serve.
    #[arg(long, env = "LOGVAULT_HOME")]
    home: Option<PathBuf>,
    /// The HTTP(S) listener's address (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Serve plain HTTP instead of HTTPS (loopback only).
    #[arg(long, alias = "plain-http")]
    http: bool,
    /// The scheduler distributed queries go to (`host:port`).
    #[arg(long)]
    scheduler: String,
    /// Send a query that does not say `"distributed"` to the cluster when the segments of the
    /// tables it scans hold more rows than this (the catalog's statistics; off by default).
    #[arg(long)]
    distribute_above_rows: Option<u64>,
    /// The same, in stored bytes of those segments.
    #[arg(long)]
    distribute_above_bytes: Option<u64>,
    /// How often the alert scheduler looks for due log alert rules (`30s`, `1m`), or `off`, as
    /// `logvault serve --alert-interval`.
    #[arg(long, default_value = "30s")]
    alert_interval: Period,
    /// How often the small segments of every workspace's tables are merged in the background
    /// (`30s`, `5m`), or `off`, as `logvault serve --compact-interval` (one node at a time, under
    /// the maintenance lease).
    #[arg(long, default_value = "1m")]
    compact_interval: Period,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = std::env::var("LOGVAULT_LOG")
        .ok()
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&anyhow::anyhow!("cannot start the runtime: {e}")),
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Scheduler(args) => scheduler(args).await,
            Command::Executor(args) => executor(args).await,
            Command::Serve(args) => serve(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &anyhow::Error) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "error: {e:#}");
    ExitCode::FAILURE
}

/// The one line a process prints once it is up.
fn started(line: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

fn home(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(home) = given {
        return Ok(home);
    }
    let user_home = std::env::var_os("HOME").context("no --home given and HOME is not set")?;
    Ok(PathBuf::from(user_home).join(".logvault"))
}

async fn scheduler(args: SchedulerArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let local = listener.local_addr()?;
    let host = args.external_host.unwrap_or_else(|| local.ip().to_string());
    started(&serde_json::json!({
        "scheduler": format!("{host}:{}", local.port()),
        "pid": std::process::id(),
    }))?;
    let mut signals = logvault_server::ShutdownSignals::install()?;
    tokio::select! {
        served = serve_scheduler(listener, &host) => Ok(served?),
        () = signals.wait() => Ok(()),
    }
}

async fn executor(args: ExecutorArgs) -> anyhow::Result<()> {
    let home = home(args.home)?;
    let (scheduler_host, scheduler_port) = args
        .scheduler
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
        .with_context(|| format!("--scheduler {}: expected host:port", args.scheduler))?;
    let name = args
        .name
        .unwrap_or_else(|| format!("executor-{}", std::process::id()));
    // The executor's own engine on the home: its store (storage root and vault, a keyring of
    // its own), without a hot cache (executors read segments from storage).
    let engine = Engine::builder(&home)
        .hot_cache(logvault::cache::HotCacheConfig {
            memory_bytes: 0,
            disk_bytes: 0,
            ..Default::default()
        })
        .open()
        .await
        .with_context(|| format!("cannot open the home {}", home.display()))?;
    // Its own store on the home's storage and vault: an executor runs no key monitor, so its
    // keyring asks the vault again once a key is older than the check interval (the engine's
    // keyring keeps keys for the revocation bound, relying on the monitor).
    let timings = &engine.home().config().timings;
    let key_check = args.key_check_secs.map_or(timings.key_check_max(), |s| {
        chrono::Duration::seconds(i64::from(s))
    });
    let store = Arc::new(
        Store::open(
            engine.store().root().clone(),
            engine.key_vault(),
            engine.store().service_binding(),
            StoreConfig {
                keyring: KeyringConfig {
                    aek_ttl: key_check,
                    ..KeyringConfig::default()
                },
                ..StoreConfig::default()
            },
            engine.clock().clone(),
        )
        .await
        .with_context(|| format!("cannot open the storage of the home {}", home.display()))?,
    );
    // Advertised as bound unless told otherwise (an unspecified address is not reachable).
    let external_host = args.external_host.or_else(|| {
        let unspecified = args
            .bind_host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        (!unspecified).then(|| args.bind_host.clone())
    });
    let work_dir = args
        .work_dir
        .unwrap_or_else(|| home.join("cluster").join(&name));
    started(&serde_json::json!({
        "executor": name,
        "flight": format!("{}:{}", external_host.as_deref().unwrap_or(&args.bind_host), args.flight_port),
        "scheduler": args.scheduler,
        "keyCheckSecs": key_check.num_seconds(),
        "pid": std::process::id(),
    }))?;
    run_executor(ExecutorProcess {
        name,
        store,
        scheduler_host,
        scheduler_port,
        scheduler_timeout_secs: args.scheduler_timeout,
        bind_host: args.bind_host,
        external_host,
        flight_port: args.flight_port,
        work_dir,
        vcores: args.concurrency,
        memory_limit: args.memory_limit,
    })
    .await?;
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut signals = logvault_server::ShutdownSignals::install()?;
    let home = home(args.home)?;
    let engine = Engine::open(&home)
        .await
        .with_context(|| format!("cannot open the home {}", home.display()))?;
    let config = ServeConfig {
        listen: args.listen,
        plain_http: args.http,
        distributed: Some(Arc::new(logvault_cluster::BallistaQueries::new(
            args.scheduler.clone(),
        ))),
        distribute_above: (args.distribute_above_rows.is_some()
            || args.distribute_above_bytes.is_some())
        .then_some(logvault_server::DistributeAbove {
            rows: args.distribute_above_rows,
            bytes: args.distribute_above_bytes,
        }),
        alert_interval: args.alert_interval.0,
        compact_interval: args.compact_interval.0,
        ..ServeConfig::default()
    };
    let server = logvault_server::start(engine, config).await?;
    started(&serde_json::json!({
        "url": server.url(),
        "cert": server.cert(),
        "scheduler": args.scheduler,
        "distributeAboveRows": args.distribute_above_rows,
        "distributeAboveBytes": args.distribute_above_bytes,
        "pid": std::process::id(),
        "signInUrl": server.sign_in_url(),
    }))?;
    signals.wait().await;
    tracing::info!("stopping: finishing in-flight requests and storing acknowledged rows");
    server.shutdown().await;
    Ok(())
}
