//! Listening: the HTTP(S) accept loop (rustls with the home's certificate, or plain HTTP on
//! loopback), the syslog listener, and the graceful stop (stop accepting, refuse new requests
//! with 503, let in-flight ones finish within the drain time, then store what writers hold).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::ServeConfig;
use crate::http::{AppState, Shared};
use crate::hub::{HubConfig, IngestHub};
use crate::metrics::Metrics;
use crate::{ServerError, dcr, tls, tokens};

/// A running server.
pub struct RunningServer {
    url: String,
    cert: Option<PathBuf>,
    syslog: Option<SocketAddr>,
    state: Shared,
    stop: watch::Sender<bool>,
    http: JoinHandle<()>,
    syslog_task: Option<JoinHandle<()>>,
    alerts: Option<JoinHandle<()>>,
    compactor: Option<JoinHandle<()>>,
    drain: std::time::Duration,
    monitor: JoinHandle<()>,
    /// A node of several: the control plane's publication or copy (docs/deploy.md).
    node_sync: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("url", &self.url)
            .field("syslog", &self.syslog)
            .finish_non_exhaustive()
    }
}

fn listen_error(addr: SocketAddr, e: impl ToString) -> ServerError {
    ServerError::Listen {
        addr: addr.to_string(),
        reason: e.to_string(),
    }
}

/// Starts serving `engine` as `config` says: binds the listeners, starts the key monitor, and
/// returns once connections are accepted.
///
/// # Errors
/// A listener that cannot be bound, plain HTTP on a non-loopback address without
/// `allow_remote_http`, a TLS identity that cannot be made.
pub async fn start(
    engine: logvault::Engine,
    config: ServeConfig,
) -> Result<RunningServer, ServerError> {
    if config.plain_http && !config.listen.ip().is_loopback() && !config.allow_remote_http {
        return Err(ServerError::refused(
            400,
            format!(
                "plain HTTP on {} would send tokens and logs in clear over the network: serve \
                 HTTPS (drop --http), listen on loopback, or force it with --allow-remote-http",
                config.listen
            ),
        ));
    }
    let tls = if config.plain_http {
        None
    } else {
        Some(TlsAcceptor::from(tls::server_config(&engine).await?))
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| listen_error(config.listen, e))?;
    let local = listener
        .local_addr()
        .map_err(|e| listen_error(config.listen, e))?;
    let syslog_listener = match &config.syslog {
        Some(s) => {
            engine
                .control()
                .get_workspace(&s.workspace)
                .map_err(logvault::EngineError::from)?;
            let l = TcpListener::bind(s.listen)
                .await
                .map_err(|e| listen_error(s.listen, e))?;
            Some((l, s.clone()))
        }
        None => None,
    };
    // A node of several stores what its log kept from before a crash at once: the other
    // nodes query the storage, not this node's log.
    if engine.node().is_some() {
        match engine.recover_logs().await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "stored the rows the logs kept from before a stop"),
            Err(e) => tracing::warn!(error = %e, "replaying the logs at start failed"),
        }
    }
    let limits = config.limits.clone();
    let query_runtime = Arc::new(logvault::QueryRuntime::new(
        config.query_threads,
        config.query_priority,
    )?);
    let tokens = tokens::TokenService::open(&engine).await?;
    let state: Shared = Arc::new(AppState {
        hub: IngestHub::new(
            engine.clone(),
            HubConfig {
                max_workspace_bytes: limits.max_queued_bytes_per_workspace,
                max_total_bytes: limits.max_queued_bytes,
                flush_interval: config.flush_interval,
                writer_idle: config.writer_idle,
            },
        ),
        rules: dcr::RuleStore::new(engine.home().root()),
        tokens,
        metrics: Arc::new(Metrics::default()),
        in_flight: Semaphore::new(limits.max_in_flight),
        decoders: Semaphore::new(std::thread::available_parallelism().map_or(1, usize::from)),
        queries: Arc::new(Semaphore::new(limits.max_queries)),
        shutting_down: false.into(),
        web: crate::web::SignIn::new(tls.is_some()),
        limits: limits.clone(),
        engine: engine.clone(),
        record_query_history: config.record_query_history,
        query_runtime,
        distributed: config.distributed.clone(),
        allocator_stats: config.allocator_stats,
        distribute_above: config.distribute_above,
        management: crate::mgmt::Settings {
            tls: !config.plain_http,
            page_size: config.page_size,
            listen: local,
        },
    });
    let monitor = engine.spawn_key_monitor();
    let node_sync = engine.spawn_node_sync();
    let (stop, stop_rx) = watch::channel(false);
    let alerts = match config.alert_interval {
        Some(every) => Some(crate::alerts::spawn_scheduler(
            state.clone(),
            Arc::new(crate::alerts::ActionNotifier::new()?),
            every,
            stop_rx.clone(),
        )),
        None => None,
    };
    let compactor = config
        .compact_interval
        .map(|every| crate::compactor::spawn(state.clone(), every, stop_rx.clone()));
    let router = crate::http::router(state.clone());
    let http = tokio::spawn(accept_loop(
        listener,
        tls.clone(),
        router,
        config.clone(),
        stop_rx.clone(),
    ));
    let (syslog, syslog_task) = match syslog_listener {
        Some((l, s)) => {
            let addr = l.local_addr().map_err(|e| listen_error(s.listen, e))?;
            let task = tokio::spawn(crate::ingest::syslog::serve(state.clone(), l, s, stop_rx));
            (Some(addr), Some(task))
        }
        None => (None, None),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let host = if local.ip().is_loopback() && local.is_ipv4() {
        "127.0.0.1".to_owned()
    } else {
        match local {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        }
    };
    let url = format!("{scheme}://{host}:{}", local.port());
    crate::endpoint::record(engine.home().root(), &url);
    Ok(RunningServer {
        url,
        cert: tls.is_some().then(|| tls::cert_path(engine.home().root())),
        syslog,
        state,
        stop,
        http,
        syslog_task,
        alerts,
        compactor,
        drain: config.drain,
        monitor,
        node_sync,
    })
}

impl RunningServer {
    /// The base URL (`https://127.0.0.1:8443`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The certificate clients should trust (`HOME/tls/cert.pem`), when serving HTTPS.
    pub fn cert(&self) -> Option<&PathBuf> {
        self.cert.as_ref()
    }

    /// The web page's one-time sign-in link (`URL/signin?code=...`), until it is used.
    pub fn sign_in_url(&self) -> Option<String> {
        self.state.web.path().map(|p| format!("{}{p}", self.url))
    }

    /// The syslog listener's address, if there is one.
    pub fn syslog(&self) -> Option<SocketAddr> {
        self.syslog
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.state.metrics
    }

    /// Stops gracefully: refuses new requests (503 with `Retry-After`), stops accepting,
    /// lets in-flight requests finish (up to the drain time), stores what the writers hold and
    /// closes their logs. Every acknowledged row is in a log before this returns, and in a
    /// segment unless storing it failed (then the next start replays it).
    pub async fn shutdown(self) {
        self.state.shutting_down.store(true, Ordering::Release);
        let _ = self.stop.send(true);
        if let Err(e) = self.http.await {
            tracing::error!(error = %e, "the HTTP listener task failed");
        }
        if let Some(task) = self.syslog_task
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "the syslog listener task failed");
        }
        if let Some(mut task) = self.alerts {
            // A pass under way finishes (its alerts are delivered and kept) within the drain time.
            match tokio::time::timeout(self.drain, &mut task).await {
                Ok(Err(e)) => tracing::error!(error = %e, "the alert scheduler failed"),
                Ok(Ok(())) => {}
                Err(_) => {
                    tracing::warn!("the alert scheduler's pass did not end within the drain time");
                    task.abort();
                }
            }
        }
        if let Some(mut task) = self.compactor {
            // A pass under way finishes within the drain time (its stop is seen between
            // passes); past it, the merge under way is abandoned: the catalog swaps segments in
            // one update, so an unfinished merge is never listed (its file is an orphan the
            // collection pass deletes, as after a crash).
            match tokio::time::timeout(self.drain, &mut task).await {
                Ok(Err(e)) if !e.is_cancelled() => {
                    tracing::error!(error = %e, "the background compaction failed");
                }
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(
                        "the background compaction's pass did not end within the drain time"
                    );
                    task.abort();
                }
            }
        }
        self.state.hub.shutdown().await;
        self.monitor.abort();
        if let Some(task) = self.node_sync {
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    config: ServeConfig,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(
        config.limits.max_in_flight.saturating_mul(2),
    ));
    let header_timeout = config.limits.header_timeout;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many connections; closing this one");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let activity = crate::connection::Activity::new();
        let service =
            TowerToHyperService::new(crate::connection::counted(router.clone(), activity.clone()));
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            // A connection is closed once it has answered nothing for the header timeout (and
            // dropped here, which closes it, once it is answering nothing).
            let served =
                async {
                    match tls {
                        None => {
                            let conn = builder
                                .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                                .into_owned();
                            let _ = watcher.watch(conn).await;
                        }
                        Some(acceptor) => {
                            let stream =
                                match tokio::time::timeout(header_timeout, acceptor.accept(tcp))
                                    .await
                                {
                                    Ok(Ok(s)) => s,
                                    Ok(Err(e)) => {
                                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                        return;
                                    }
                                    Err(_) => {
                                        tracing::debug!(%peer, "TLS handshake timed out");
                                        return;
                                    }
                                };
                            let conn = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                                .into_owned();
                            let _ = watcher.watch(conn).await;
                        }
                    }
                };
            tokio::select! {
                () = served => {}
                () = activity.idle_for(header_timeout) => {
                    tracing::debug!(%peer, "closing a connection that sent no request in time");
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(config.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = config.drain.as_secs(),
            "in-flight requests did not finish within the drain time; their connections are closed"
        );
    }
}
