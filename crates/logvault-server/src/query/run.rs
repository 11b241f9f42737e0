//! Running one query: the workspace and the caller's right to it, the session, the plan (with
//! the timespan on every table a KQL query reads), the first batch, then the rows as JSON chunks.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use arrow::array::RecordBatch;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use datafusion::prelude::DataFrame;
use futures::StreamExt;
use futures::stream::BoxStream;
use logvault::kql_lang::{KqlError, PlanOptions};
use logvault::query::{QueryError, WorkspaceSession};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::request::{Language, QuerySpec};
use super::results::{Cut, ResultColumns, partial_error, tail};
use super::timespan::parse_timespan;
use crate::http::errors::{ApiError, Flavor, engine_error};
use crate::http::{Shared, auth};
use crate::roles::{Permission, Role};
use crate::tokens::Principal;

/// JSON is sent in chunks of about this size.
const CHUNK: usize = 64 << 10;

type Rows = BoxStream<'static, Result<RecordBatch, String>>;

/// What the first wait for rows gave.
enum First {
    Batch(RecordBatch),
    End,
    TimedOut,
}

/// A started query, its first batch in hand.
struct Running {
    columns: ResultColumns,
    rows: Rows,
    first: Option<First>,
    deadline: tokio::time::Instant,
    wait: u64,
    session: WorkspaceSession,
    render: Option<String>,
    spec: QuerySpec,
    started: Instant,
    workspace: String,
    _permit: OwnedSemaphorePermit,
}

/// The workspace a path or a list names: its `customerId` (a GUID), its name, or its ARM
/// resource id ([`logvault::Engine::find_workspace`]).
async fn resolve(state: &Shared, reference: &str) -> Result<Option<String>, ApiError> {
    let reference = reference.to_owned();
    Ok(
        crate::http::blocking(state, move |engine| engine.find_workspace(&reference))
            .await?
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map(|w| w.name),
    )
}

fn kql_error(e: &KqlError) -> ApiError {
    let code = match e {
        KqlError::Syntax { .. } => "SyntaxError",
        KqlError::Semantic { .. } => "SemanticError",
        KqlError::Unsupported { .. } => "NotSupportedError",
        KqlError::Plan(_) => "SemanticError",
    };
    let mut inner = json!({ "code": code, "message": e.to_string() });
    if let Some(at) = e.location() {
        inner["line"] = json!(at.line);
        inner["pos"] = json!(at.column);
    }
    ApiError::bad_request("The request had some invalid properties").with_inner(inner)
}

fn sql_error(state: &Shared, e: QueryError) -> ApiError {
    match e {
        QueryError::KeyUnavailable { .. } => {
            engine_error(&state.engine, &logvault::EngineError::Query(e))
        }
        other => ApiError::bad_request("The request had some invalid properties")
            .with_inner(json!({ "code": "SemanticError", "message": other.to_string() })),
    }
}

fn guarded(
    stream: datafusion::physical_plan::SendableRecordBatchStream,
    workspace: String,
) -> Rows {
    AssertUnwindSafe(stream)
        .catch_unwind()
        .map(move |item| match item {
            Ok(Ok(batch)) => Ok(batch),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "a segment of workspace {workspace} could not be read (the reader failed); it \
                 may be damaged: run `logvault table verify --workspace {workspace}`"
            )),
        })
        .boxed()
}

/// A support operator's query (R-I1): allowed only under an approved, unexpired Customer
/// Lockbox request for this operator and workspace, audited either way (with the query text).
async fn lockbox_gate(
    state: &Shared,
    principal: &crate::tokens::Principal,
    workspace: &str,
    query: &str,
) -> Result<(), ApiError> {
    if principal
        .workspace
        .as_deref()
        .is_some_and(|w| w != workspace)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "InsufficientAccessError",
            format!(
                "The provided credentials have insufficient access to perform the requested \
                 operation: the token of {} is for another workspace",
                principal.name
            ),
        ));
    }
    let (ws, name, text) = (
        workspace.to_owned(),
        principal.name.clone(),
        query.to_owned(),
    );
    match crate::http::blocking(state, move |e| {
        e.control().authorize_operator_query(&ws, &name, &text)
    })
    .await?
    {
        Ok(_) => Ok(()),
        Err(e) if e.code() == 403 => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "LockboxAccessDenied",
            e.to_string(),
        )),
        Err(e) => Err(engine_error(&state.engine, &e.into())),
    }
}

/// Whether `principal` may query `workspace`: by its roles, or as a support operator through
/// the Lockbox gate.
async fn allow(
    state: &Shared,
    principal: &crate::tokens::Principal,
    operator: bool,
    workspace: &str,
    query: &str,
) -> Result<(), ApiError> {
    if operator {
        lockbox_gate(state, principal, workspace, query).await
    } else {
        auth::check(principal, Permission::Query, Some(workspace), Flavor::Azure)
    }
}

async fn start(state: &Shared, principal: Principal, spec: QuerySpec) -> Result<Running, ApiError> {
    let started = Instant::now();
    let resolved = resolve(state, &spec.workspace).await?;
    let target = resolved.as_deref().unwrap_or(&spec.workspace);
    let operator = principal.roles.contains(&Role::SupportOperator)
        && !principal.roles.iter().any(|r| r.allows(Permission::Query));
    if !operator {
        auth::check(&principal, Permission::Query, Some(target), Flavor::Azure)?;
    }
    let Some(workspace) = resolved else {
        return Err(ApiError::not_found(
            "WorkspaceNotFoundError",
            format!("The workspace {} could not be found", spec.workspace),
        ));
    };
    if spec.distributed == Some(true) {
        super::distributed::engine(state)?;
    }
    if operator {
        lockbox_gate(state, &principal, &workspace, &spec.query).await?;
    }
    // A cross-workspace query: every other workspace must exist and be allowed as well.
    let mut across = vec![workspace.clone()];
    for other in &spec.workspaces {
        let Some(name) = resolve(state, other).await? else {
            return Err(ApiError::not_found(
                "WorkspaceNotFoundError",
                format!("The workspace {other} could not be found"),
            ));
        };
        if across.contains(&name) {
            continue;
        }
        allow(state, &principal, operator, &name, &spec.query).await?;
        across.push(name);
    }
    // KQL's `workspace("x").Table`: each workspace named must exist and be allowed too (the
    // engine adds its tables to the session; a lexical error is the planner's to report).
    let mut referenced = Vec::new();
    if matches!(spec.language, Language::Kql) {
        for other in logvault::kql_lang::referenced_workspaces(&spec.query).unwrap_or_default() {
            let Some(name) = resolve(state, &other).await? else {
                return Err(ApiError::not_found(
                    "WorkspaceNotFoundError",
                    format!("The workspace {other} named by workspace() could not be found"),
                ));
            };
            if across.contains(&name) || referenced.contains(&name) {
                continue;
            }
            allow(state, &principal, operator, &name, &spec.query).await?;
            referenced.push(name);
        }
    }
    let permit = state.queries.clone().try_acquire_owned().map_err(|_| {
        ApiError::retry(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            format!(
                "{} queries are running already; retry after a second",
                state.limits.max_queries
            ),
        )
    })?;
    let wait = spec.prefer.wait.map_or(state.limits.query_time, |w| {
        std::time::Duration::from_secs(w).min(state.limits.max_query_time)
    });
    let deadline = tokio::time::Instant::now() + wait;
    let now = state.engine.clock().now();
    let range = spec
        .timespan
        .as_deref()
        .map(|t| parse_timespan(t, now))
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("the timespan is invalid: {e}")))?;
    // Rows acknowledged before the query are in segments when it reads.
    for ws in across.iter().chain(&referenced) {
        if let Err(e) = state.hub.flush(ws).await {
            tracing::warn!(workspace = %ws, error = %e, "storing acknowledged rows before a query failed");
        }
    }
    // KQL: the planner puts the range on every table it scans. SQL: refused rather than
    // ignored (a view swapped in for each table did not reach the SQL planner's scans either).
    if range.is_some() && matches!(spec.language, Language::Sql) {
        return Err(ApiError::bad_request(
            "a timespan is not applied to SQL queries: filter on TimeGenerated in the query, \
             or leave the timespan out"
                .to_owned(),
        ));
    }
    let options = match range {
        Some((from, to)) => PlanOptions::at(now).within(from, to),
        None => PlanOptions::at(now),
    };
    // A compaction or purge (in this process or another) may delete a segment the query's
    // view of the catalog still lists: the query then runs again on the catalog as it is now.
    let mut attempt = 1;
    let opened = loop {
        match open(state, &across, &workspace, &spec, &options, deadline).await {
            Err(e) if attempt < OPEN_ATTEMPTS && replaced_segment(&e) => {
                tracing::debug!(workspace = %workspace, attempt, "a segment the query listed is gone; running it again");
                state.engine.store().catalog().forget_for_queries();
                attempt += 1;
            }
            Err(e) if attempt < OPEN_ATTEMPTS && evicted_key(&e) => {
                tracing::debug!(workspace = %workspace, attempt, "an account key the query's gate resolved was evicted while it ran; running it again");
                attempt += 1;
            }
            other => break other?,
        }
    };
    // Kept in the workspace's history (sealed; not while it is linked for Query) beside the
    // query, never delaying it; a support operator's query is in the Lockbox audit instead.
    if state.record_query_history && !operator {
        let engine = state.engine.clone();
        let (ws, text) = (workspace.clone(), spec.query.clone());
        let language = match spec.language {
            Language::Kql => "kql",
            Language::Sql => "sql",
        };
        tokio::spawn(async move {
            if let Err(e) = engine.record_query(&ws, language, &text).await {
                tracing::warn!(workspace = %ws, error = %e, "the query could not be kept in the history");
            }
        });
    }
    let Opened {
        columns,
        rows,
        first,
        session,
        render,
    } = opened;
    Ok(Running {
        columns,
        rows,
        first: Some(first),
        deadline,
        wait: wait.as_secs(),
        session,
        render,
        spec,
        started,
        workspace,
        _permit: permit,
    })
}

/// How many times a query is opened when a segment it listed is gone (see [`replaced_segment`]).
const OPEN_ATTEMPTS: u32 = 3;

/// A query planned on a session, with its first batch.
struct Opened {
    columns: ResultColumns,
    rows: Rows,
    first: First,
    session: WorkspaceSession,
    render: Option<String>,
}

/// Whether a query failed on a segment file that is not there: a compaction or retention purge
/// deleted it after the query read the catalog (the catalog then lists its replacement or
/// nothing). Damage fails the same way again, and is answered after the last attempt.
fn replaced_segment(e: &ApiError) -> bool {
    let text = error_text(e);
    text.contains("/segments/") && text.contains("not found")
}

/// The error's message and its inner error's, the text the retry reasons are recognised by.
fn error_text(e: &ApiError) -> String {
    format!(
        "{} {}",
        e.message,
        e.inner
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    )
}

/// Whether a query failed because an account key its gate had resolved left the keyring's
/// cache before a segment under it was opened: evicted on a revocation another request or the
/// key monitor saw meanwhile (found by the hour-long soak: 4 of 1,424 queries answered 400
/// "is not cached" while the customer key was disabled every few seconds). Run again, the
/// query passes the gate again: the key is resolved anew, or the revocation is answered as the
/// key's error (403 or 503), as for any query that starts after it.
fn evicted_key(e: &ApiError) -> bool {
    error_text(e).contains("is not cached: resolve it before reading its segments")
}

/// Opens `spec` on a new session of the workspaces `across` (the first is `workspace`):
/// planned, and its first batch awaited until `deadline`.
async fn open(
    state: &Shared,
    across: &[String],
    workspace: &str,
    spec: &QuerySpec,
    options: &PlanOptions,
    deadline: tokio::time::Instant,
) -> Result<Opened, ApiError> {
    let session = if across.len() > 1 {
        state.engine.query_session_across(across).await
    } else {
        state.engine.query_session(workspace).await
    }
    .map_err(|e| engine_error(&state.engine, &e))?;
    // Planned here all the same; run on the distributed engine when asked (`"distributed":
    // true`) or, not asked either way, when it reads more than the server's threshold.
    let (columns, stream, render) = match spec.language {
        Language::Kql => {
            // The workspace's saved functions are in scope, as in every KQL query (R-H1).
            let plan = state
                .engine
                .plan_kql_in(&session, workspace, &spec.query, options)
                .await
                .map_err(|e| match e {
                    logvault::EngineError::Kql(e) => kql_error(&e),
                    other => engine_error(&state.engine, &other),
                })?;
            let stream = match super::distributed::choose(state, spec.distributed, &plan.plan)? {
                Some(engine) => {
                    super::distributed::start(
                        state,
                        engine.as_ref(),
                        &session,
                        plan.plan,
                        workspace,
                        deadline,
                    )
                    .await?
                }
                None => DataFrame::new(session.context().state(), plan.plan)
                    .execute_stream()
                    .await
                    .map_err(|e| kql_error(&KqlError::Plan(e)))?,
            };
            (ResultColumns::kusto(plan.schema), stream, plan.render)
        }
        Language::Sql => {
            let plan = session
                .plan(&spec.query)
                .await
                .map_err(|e| sql_error(state, e))?;
            let stream = match super::distributed::choose(state, spec.distributed, &plan)? {
                Some(engine) => {
                    super::distributed::start(
                        state,
                        engine.as_ref(),
                        &session,
                        plan,
                        workspace,
                        deadline,
                    )
                    .await?
                }
                None => session
                    .execute_plan(plan)
                    .await
                    .map_err(|e| sql_error(state, e))?,
            };
            let schema = stream.schema();
            (ResultColumns::of_fields(schema.fields()), stream, None)
        }
    };
    let mut rows = guarded(stream, workspace.to_owned());
    let first = match tokio::time::timeout_at(deadline, rows.next()).await {
        Err(_) => First::TimedOut,
        Ok(None) => First::End,
        Ok(Some(Ok(batch))) => First::Batch(batch),
        Ok(Some(Err(e))) => {
            return Err(ApiError::bad_request("The query failed while it ran")
                .with_inner(json!({ "code": "QueryExecutionError", "message": e })));
        }
    };
    Ok(Opened {
        columns,
        rows,
        first,
        session,
        render,
    })
}

/// Writes the result of `r` into `tx` chunk by chunk; stops early if the receiver is gone.
async fn drive(state: Shared, mut r: Running, tx: mpsc::Sender<Bytes>) {
    let limits = &state.limits;
    let mut out = r.columns.head();
    let mut rows = 0usize;
    let mut sent = 0usize;
    let mut cut: Option<Cut> = None;
    loop {
        let batch = match r.first.take() {
            Some(First::Batch(b)) => b,
            Some(First::End) => break,
            Some(First::TimedOut) => {
                cut = Some(Cut::Time(r.wait));
                break;
            }
            None => match tokio::time::timeout_at(r.deadline, r.rows.next()).await {
                Err(_) => {
                    cut = Some(Cut::Time(r.wait));
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    cut = Some(Cut::Failed(e));
                    break;
                }
                Ok(Some(Ok(b))) => b,
            },
        };
        if batch.num_rows() == 0 {
            continue;
        }
        let room = limits.max_result_rows.saturating_sub(rows);
        if room == 0 {
            cut = Some(Cut::Rows(limits.max_result_rows));
            break;
        }
        match r.columns.write_rows(&batch, rows == 0, room, &mut out) {
            Ok(n) => {
                rows += n;
                if n < batch.num_rows() {
                    cut = Some(Cut::Rows(limits.max_result_rows));
                    break;
                }
            }
            Err(e) => {
                cut = Some(Cut::Failed(e));
                break;
            }
        }
        if sent + out.len() > limits.max_result_bytes {
            cut = Some(Cut::Bytes(limits.max_result_bytes));
            break;
        }
        if out.len() >= CHUNK {
            sent += out.len();
            if tx
                .send(Bytes::from(std::mem::take(&mut out)))
                .await
                .is_err()
            {
                return;
            }
        }
    }
    let elapsed = r.started.elapsed();
    let statistics = r.spec.prefer.statistics.then(|| {
        let stats = r.session.stats();
        let load =
            |a: &std::sync::atomic::AtomicUsize| a.load(std::sync::atomic::Ordering::Relaxed);
        json!({
            "query": {
                "executionTime": elapsed.as_secs_f64(),
                "datasetStatistics": [{ "tableRowCount": rows, "tableSize": sent + out.len() }],
                "inputDatasetStatistics": {
                    "extents": {
                        "total": load(&stats.segments_scanned) + load(&stats.segments_pruned),
                        "scanned": load(&stats.segments_scanned),
                        "scannedFromMemory": load(&stats.segments_in_memory),
                    }
                },
            }
        })
    });
    let render = if r.spec.prefer.render {
        r.render.as_ref().map(|v| json!({ "visualization": v }))
    } else {
        None
    };
    let outcome = match &cut {
        None => "ok",
        Some(Cut::Failed(_)) => "failed",
        Some(_) => "partial",
    };
    out.push_str(&tail(statistics, render, cut.as_ref().map(partial_error)));
    let _ = tx.send(Bytes::from(out)).await;
    record(&state, &r.workspace, r.spec.language, outcome, elapsed);
}

fn record(
    state: &Shared,
    workspace: &str,
    language: Language,
    outcome: &str,
    elapsed: std::time::Duration,
) {
    state.metrics.add(
        "logvault_queries_total",
        vec![
            ("workspace", workspace.to_owned()),
            ("language", language.name().to_owned()),
            ("outcome", outcome.to_owned()),
        ],
        1.0,
    );
    state.metrics.observe(
        "logvault_query_seconds",
        vec![("workspace", workspace.to_owned())],
        elapsed,
    );
}

/// Runs `spec` and answers with its result streamed.
pub(crate) async fn stream(
    state: &Shared,
    principal: Principal,
    spec: QuerySpec,
) -> Result<Response, ApiError> {
    let running = start_on_query_threads(state, principal, spec)
        .await
        .inspect_err(|e| {
            tracing::debug!(code = %e.code, "query refused");
        })?;
    let applied = running.spec.prefer.applied(running.wait);
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    state.query_runtime.spawn(drive(state.clone(), running, tx));
    let body = Body::from_stream(tokio_stream_of(rx).map(Ok::<Bytes, std::convert::Infallible>));
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if !applied.is_empty()
        && let Ok(v) = HeaderValue::from_str(&applied)
    {
        h.insert("preference-applied", v);
    }
    Ok(response)
}

/// Runs `spec` and returns its whole result (for `$batch`).
pub(crate) async fn collect(
    state: &Shared,
    principal: Principal,
    spec: QuerySpec,
) -> Result<(StatusCode, Value), ApiError> {
    let running = start_on_query_threads(state, principal, spec).await?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(4);
    let driver = Aborting(state.query_runtime.spawn(drive(state.clone(), running, tx)));
    let mut doc = Vec::new();
    while let Some(chunk) = rx.recv().await {
        doc.extend_from_slice(&chunk);
    }
    driver
        .await
        .map_err(|e| ApiError::internal(format!("the query stopped: {e}")))?;
    let value: Value = serde_json::from_slice(&doc)
        .map_err(|e| ApiError::internal(format!("the result is not valid JSON: {e}")))?;
    Ok((StatusCode::OK, value))
}

/// Starts `spec` on the query runtime's threads, which run below ingestion's priority
/// (`logvault::QueryRuntime`): planning, the first batch and, later, every batch after it are
/// computed there, and DataFusion's own tasks are spawned there too.
async fn start_on_query_threads(
    state: &Shared,
    principal: Principal,
    spec: QuerySpec,
) -> Result<Running, ApiError> {
    let on = state.clone();
    Aborting(
        state
            .query_runtime
            .spawn(async move { start(&on, principal, spec).await }),
    )
    .await
    .map_err(|e| ApiError::internal(format!("the query stopped: {e}")))?
}

/// A task on the query runtime that is cancelled when the request that awaits it goes away
/// (a client that hangs up stops its query).
struct Aborting<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Aborting<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for Aborting<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

/// A receiver as a stream.
fn tokio_stream_of(mut rx: mpsc::Receiver<Bytes>) -> impl futures::Stream<Item = Bytes> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
