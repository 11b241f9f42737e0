//! `logvault serve`: one engine behind HTTP(S) (the Log Analytics query API, the Logs Ingestion
//! API, OTLP/HTTP logs, Elasticsearch `_bulk`), the web page with its one-time sign-in link, and
//! syslog over TCP, until SIGTERM or SIGINT.

use std::io::Write;
use std::net::SocketAddr;

use clap::Args;
use logvault_server::{Period, ServeConfig, SyslogConfig};

use crate::args::{GlobalArgs, OutputFormat};

/// Arguments of `logvault serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The HTTP(S) listener's address (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// A syslog (RFC 5424/3164 over TCP) listener's address; needs `--syslog-workspace`.
    #[arg(long, requires = "syslog_workspace")]
    syslog_listen: Option<SocketAddr>,
    /// The workspace syslog messages go to.
    #[arg(long)]
    syslog_workspace: Option<String>,
    /// The table syslog messages go to.
    #[arg(long, default_value = "Syslog")]
    syslog_table: String,
    /// Serve plain HTTP instead of HTTPS (loopback only unless `--allow-remote-http`).
    #[arg(long)]
    http: bool,
    /// Allow plain HTTP on an address other than loopback (tokens and logs go in clear).
    #[arg(long, requires = "http")]
    allow_remote_http: bool,
    /// Largest request body in bytes (413 above it).
    #[arg(long)]
    max_body_bytes: Option<usize>,
    /// Most rows a query returns; above it the result is partial.
    #[arg(long)]
    max_result_rows: Option<usize>,
    /// How often the alert scheduler looks for due log alert rules (`30s`, `1m`), or `off`
    /// (then `logvault alert run-due` evaluates them).
    #[arg(long, default_value = "30s")]
    alert_interval: Period,
    /// How long acknowledged rows may wait before they are stored as segments when no more
    /// arrive (`1s`, `2m`: whole seconds, at most an hour): how soon queries, and the other
    /// nodes of several, see them.
    #[arg(long, default_value = "1s", value_parser = parse_flush_interval)]
    flush_interval: std::time::Duration,
    /// How often the small segments of every workspace's tables are merged in the background
    /// (`30s`, `5m`), as `logvault table compact` merges them, or `off`.
    #[arg(long, default_value = "1m")]
    compact_interval: Period,
    /// Do not keep the query API's queries in their workspaces' history
    /// (`workspace query-history`).
    #[arg(long)]
    no_query_history: bool,
    /// How much lower the query threads' CPU priority is than ingestion's: a nice increment
    /// from 0 (queries and ingestion compete as equals) to 19 (Linux; elsewhere queries only
    /// run on threads of their own).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(0..=19))]
    query_priority: i32,
}

fn parse_flush_interval(text: &str) -> Result<std::time::Duration, String> {
    let every = logvault::control::parse_duration(text)?;
    match every.to_std() {
        Ok(d) if !d.is_zero() && d <= std::time::Duration::from_secs(3600) => Ok(d),
        _ => Err(format!(
            "flush interval {text:?} must be longer than zero and at most an hour"
        )),
    }
}

/// Runs `logvault serve` until SIGTERM or SIGINT.
pub(crate) async fn run(global: &GlobalArgs, args: ServeArgs) -> anyhow::Result<()> {
    let mut signals = logvault_server::ShutdownSignals::install()?;
    let engine = super::open(global).await?;
    let mut config = ServeConfig {
        listen: args.listen,
        plain_http: args.http,
        allow_remote_http: args.allow_remote_http,
        alert_interval: args.alert_interval.0,
        compact_interval: args.compact_interval.0,
        record_query_history: !args.no_query_history,
        flush_interval: args.flush_interval,
        query_priority: args.query_priority,
        #[cfg(not(target_env = "msvc"))]
        allocator_stats: Some(crate::allocator::stats),
        ..ServeConfig::default()
    };
    if let Some(n) = args.max_body_bytes {
        config.limits.max_body_bytes = n;
    }
    if let Some(n) = args.max_result_rows {
        config.limits.max_result_rows = n;
    }
    if let (Some(listen), Some(workspace)) = (args.syslog_listen, args.syslog_workspace) {
        config.syslog = Some(SyslogConfig {
            listen,
            workspace,
            table: args.syslog_table,
        });
    }
    let server = logvault_server::start(engine, config).await?;
    let started = serde_json::json!({
        "url": server.url(),
        "cert": server.cert(),
        "syslog": server.syslog().map(|a| a.to_string()),
        "pid": std::process::id(),
        // The web page's one-time sign-in link (it works once).
        "signInUrl": server.sign_in_url(),
    });
    {
        let mut out = std::io::stdout().lock();
        match global.output {
            OutputFormat::Json => writeln!(out, "{started}")?,
            OutputFormat::Table => {
                writeln!(out, "listening on {}", server.url())?;
                if let Some(cert) = server.cert() {
                    writeln!(out, "certificate {}", cert.display())?;
                }
                if let Some(addr) = server.syslog() {
                    writeln!(out, "syslog on tcp://{addr}")?;
                }
                if let Some(link) = server.sign_in_url() {
                    writeln!(
                        out,
                        "web page: open {link} to sign in (the link works once)"
                    )?;
                }
            }
        }
        out.flush()?;
    }
    signals.wait().await;
    tracing::info!("stopping: finishing in-flight requests and storing acknowledged rows");
    server.shutdown().await;
    Ok(())
}
