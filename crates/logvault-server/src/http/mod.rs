//! The HTTP side: the router, the state every handler shares, and the frame around every request
//! (request id, refusal while shutting down, the bound on requests in flight, the request log
//! and the metrics).

pub(crate) mod auth;
pub(crate) mod body;
mod deadline;
pub(crate) mod errors;
mod ops;
pub(crate) mod routes;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::config::Limits;
use crate::dcr::RuleStore;
use crate::http::errors::ApiError;
use crate::hub::IngestHub;
use crate::metrics::Metrics;
use crate::roles::Permission;
use crate::tokens::TokenService;
use routes::{Access, Routes};

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) engine: logvault::Engine,
    pub(crate) tokens: TokenService,
    pub(crate) rules: RuleStore,
    pub(crate) hub: IngestHub,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limits: Limits,
    pub(crate) in_flight: Semaphore,
    /// Request bodies being decompressed, decoded or parsed at once: one per core
    /// ([`decoding`]).
    pub(crate) decoders: Semaphore,
    pub(crate) queries: Arc<Semaphore>,
    pub(crate) shutting_down: AtomicBool,
    /// The web page's one-time sign-in secret.
    pub(crate) web: crate::web::SignIn,
    /// What the management and Key Vault APIs need to know of the server.
    pub(crate) management: crate::mgmt::Settings,
    /// Keep the query API's queries in their workspaces' history.
    pub(crate) record_query_history: bool,
    /// Where the query API's queries run: threads of their own, at a lower priority than
    /// ingestion's.
    pub(crate) query_runtime: Arc<logvault::QueryRuntime>,
    /// Where queries asked to run distributed run, if anywhere.
    pub(crate) distributed: Option<Arc<dyn crate::DistributedQueries>>,
    /// The allocator's figures for `/metrics`, if the binary gave a way to read them.
    pub(crate) allocator_stats: Option<crate::AllocatorStatsFn>,
    /// The size above which a query goes there without asking.
    pub(crate) distribute_above: Option<crate::DistributeAbove>,
}

pub(crate) type Shared = Arc<AppState>;

tokio::task_local! {
    /// The id of the token a request was authorized with, for its log line.
    pub(crate) static REQUEST_PRINCIPAL: std::sync::Mutex<Option<String>>;
}

/// Runs a call of the engine's control plane (file reads and, for changes, a file lock) on a
/// blocking thread, so that it never holds an async worker.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &AppState,
    call: impl FnOnce(&logvault::Engine) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let engine = state.engine.clone();
    tokio::task::spawn_blocking(move || call(&engine))
        .await
        .map_err(|e| ApiError::internal(format!("a control-plane call failed: {e}")))
}

/// Runs the CPU-bound part of a request (decompressing, decoding or parsing its body) on a
/// blocking thread, at most one per core at once (`AppState::decoders`); `what` names it in the
/// error if the thread fails. Unbounded, every request in flight decoded on a thread of its own
/// (64 at once from 64 connections on 2 cores), each holding its body's rows meanwhile. Bounded,
/// from 64 connections sending the Azure SDK's 1 MiB gzip chunks beside 4 query clients, the
/// server's peak went from 1.4 GiB to 389 MiB and its rows/s up by a sixth (CPU per row 4.12 ->
/// 3.67 µs); for OTLP/JSON without query clients the peak went from 190-210 to 164-171 MiB.
pub(crate) async fn decoding<T: Send + 'static>(
    state: &AppState,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    bounded_blocking(&state.decoders, what, work).await
}

/// `work` on a blocking thread once `permits` gives a permit, held until it is done.
async fn bounded_blocking<T: Send + 'static>(
    permits: &Semaphore,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = permits.acquire().await.map_err(|_| {
        ApiError::retry(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            format!("{what}: the server is stopping"),
        )
    })?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("{what} failed: {e}")))
}

/// Notes who a request was authorized as, for its log line (the token's id, never the token).
pub(crate) fn note_principal(token_id: &str) {
    let _ = REQUEST_PRINCIPAL.try_with(|p| {
        *p.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(token_id.to_owned());
    });
}

/// Every route, with who may call it: the table the router is built from ([`routes::routes`]).
pub(crate) fn table() -> Routes {
    use Access::{Needs, NeedsEach, Public};
    Routes::new()
        .get(
            "/health",
            Public("liveness for load balancers and scripts: answers {\"status\":\"ok\"} only"),
            ops::health,
        )
        .get("/metrics", Needs(Permission::Metrics), ops::metrics)
        .get(
            "/v1/workspaces/{workspace}/query",
            Needs(Permission::Query),
            crate::query::get_query,
        )
        .post(
            "/v1/workspaces/{workspace}/query",
            Needs(Permission::Query),
            crate::query::post_query,
        )
        .post(
            "/v1/$batch",
            NeedsEach(Permission::Query),
            crate::query::batch,
        )
        .post(
            "/dataCollectionRules/{rule}/streams/{stream}",
            Needs(Permission::Ingest),
            crate::ingest::logs_api::upload,
        )
        .post(
            "/v1/logs",
            Needs(Permission::Ingest),
            crate::ingest::otlp::export,
        )
        .post(
            "/_bulk",
            Needs(Permission::Ingest),
            crate::ingest::bulk::bulk,
        )
        .put(
            "/_bulk",
            Needs(Permission::Ingest),
            crate::ingest::bulk::bulk,
        )
        .post(
            "/{index}/_bulk",
            Needs(Permission::Ingest),
            crate::ingest::bulk::bulk_index,
        )
        .put(
            "/{index}/_bulk",
            Needs(Permission::Ingest),
            crate::ingest::bulk::bulk_index,
        )
        .merge(crate::web::routes())
        .merge(crate::mgmt::routes())
        .merge(crate::keyvault::routes())
}

/// The router of every endpoint.
pub(crate) fn router(state: Shared) -> Router {
    table()
        .router()
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(state.clone(), frame))
        .with_state(state)
}

async fn fallback(req: Request) -> ApiError {
    ApiError::not_found(
        "PathNotFoundError",
        format!(
            "The requested path does not exist: {} {}",
            req.method(),
            req.uri().path()
        ),
    )
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-ms-request-id");

/// The request's id: the client's (`x-ms-client-request-id`, `x-request-id`) when it is a
/// short token of safe characters, else a new one.
fn request_id(req: &Request) -> String {
    ["x-ms-client-request-id", "x-request-id"]
        .iter()
        .filter_map(|h| req.headers().get(*h)?.to_str().ok())
        .find(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// The frame around every request.
async fn frame(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&req);
    let method = req.method().clone();
    // The route's pattern, never the path itself: paths and query strings may carry data.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(none)".to_owned(), |p| p.as_str().to_owned());
    let mut response = if state.shutting_down.load(Ordering::Acquire) && route != "/health" {
        ApiError::retry(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "the server is shutting down; retry against its next start",
        )
        .into_response()
    } else {
        match state.in_flight.try_acquire() {
            Ok(_permit) => {
                let late = Arc::new(AtomicBool::new(false));
                let (parts, body) = req.into_parts();
                let body = deadline::limit(body, state.limits.request_timeout, late.clone());
                let req = Request::from_parts(parts, body);
                REQUEST_PRINCIPAL
                    .scope(std::sync::Mutex::new(None), async {
                        let mut response = next.run(req).await;
                        // An extractor that met the deadline answered its own refusal (400):
                        // the request was late, and is answered so.
                        if late.load(Ordering::Acquire)
                            && response.status() != StatusCode::REQUEST_TIMEOUT
                        {
                            response = body::late(
                                deadline::BodyTimeout {
                                    after: state.limits.request_timeout,
                                }
                                .to_string(),
                                errors::Flavor::Azure,
                            )
                            .into_response();
                        }
                        let principal = REQUEST_PRINCIPAL.with(|p| {
                            p.lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .clone()
                        });
                        log_line(&id, &method, &route, response.status(), started, principal);
                        response
                    })
                    .await
            }
            Err(_) => {
                let response = ApiError::retry(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    format!(
                        "the server is answering {} requests already; retry after a second",
                        state.limits.max_in_flight
                    ),
                )
                .into_response();
                log_line(&id, &method, &route, response.status(), started, None);
                response
            }
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, v.clone());
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), v);
    }
    let status = response.status().as_u16().to_string();
    state.metrics.add(
        "logvault_http_requests_total",
        vec![("route", route.clone()), ("status", status)],
        1.0,
    );
    state.metrics.observe(
        "logvault_http_request_seconds",
        vec![("route", route)],
        started.elapsed(),
    );
    response
}

fn log_line(
    id: &str,
    method: &axum::http::Method,
    route: &str,
    status: StatusCode,
    started: Instant,
    principal: Option<String>,
) {
    tracing::info!(
        target: "logvault::request",
        request_id = %id,
        method = %method,
        route = %route,
        status = status.as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        token_id = principal.as_deref().unwrap_or("-"),
        "request"
    );
}

#[cfg(test)]
mod decoding_tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::sync::Semaphore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_bodies_decode_at_once_than_there_are_permits() {
        let permits = Arc::new(Semaphore::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (permits, running, most) = (permits.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    super::bounded_blocking(&permits, "decoding", move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(10));
                        running.fetch_sub(1, Ordering::SeqCst);
                        i
                    })
                    .await
                })
            })
            .collect();
        let mut done = Vec::new();
        for task in tasks {
            done.push(task.await.unwrap().unwrap());
        }
        assert_eq!(done, (0..16).collect::<Vec<_>>(), "every body decoded");
        assert_eq!(most.load(Ordering::SeqCst), 2, "two at once, never more");
    }
}
