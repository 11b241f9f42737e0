//! `GET /health` and `GET /metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::http::errors::{ApiError, Flavor};
use crate::http::{Shared, auth};
use crate::metrics::Gauge;
use crate::roles::Permission;

/// `GET /health`, without authentication: `{"status":"ok"}`.
pub(crate) async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /metrics`: Prometheus' text format. Needs a token for every workspace with a role that
/// reads metrics.
pub(crate) async fn metrics(
    State(state): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::authorize(&state, &headers, Permission::Metrics, None, Flavor::Azure)?;
    let mut gauges = Vec::new();
    // Key state per cluster: 1 active, 0 revoked, -1 degraded (no series for clusters without
    // a customer key).
    let mut keys = Gauge {
        name: "logvault_key_state",
        help: "Key state per cluster: 1 active, 0 revoked, -1 degraded.",
        series: Vec::new(),
    };
    if let Ok(states) = crate::http::blocking(&state, |engine| engine.key_states()).await? {
        for s in states {
            let v = match s.key_state {
                logvault::keys::KeyState::Active => 1.0,
                logvault::keys::KeyState::Revoked => 0.0,
                logvault::keys::KeyState::Degraded => -1.0,
                logvault::keys::KeyState::None => continue,
            };
            keys.series.push((vec![("cluster", s.cluster)], v));
        }
    }
    gauges.push(keys);
    let cache = state.engine.hot_cache().status();
    gauges.push(Gauge {
        name: "logvault_hot_cache_bytes",
        help: "Bytes held by the hot cache, by tier.",
        series: vec![
            (vec![("tier", "memory".into())], cache.memory_bytes as f64),
            (vec![("tier", "disk".into())], cache.disk_bytes as f64),
        ],
    });
    gauges.push(Gauge {
        name: "logvault_hot_cache_live_bytes",
        help: "Bytes of the memory tier's buffers alive: those it holds and those it let go that a query still reads.",
        series: vec![(Vec::new(), cache.memory_live_bytes as f64)],
    });
    gauges.push(Gauge {
        name: "logvault_hot_cache_promotions_pending",
        help: "Segments waiting to be decoded into the memory tier, or being decoded.",
        series: vec![(Vec::new(), cache.promotions_pending as f64)],
    });
    gauges.push(Gauge {
        name: "logvault_hot_cache_requests",
        help: "Hot cache lookups since the server started, by outcome.",
        series: vec![
            (vec![("outcome", "hit".into())], cache.counters.hits as f64),
            (
                vec![("outcome", "miss".into())],
                cache.counters.misses as f64,
            ),
        ],
    });
    gauges.push(Gauge {
        name: "logvault_wal_queued_bytes",
        help: "Bytes of parsed rows waiting for a workspace's write-ahead log.",
        series: state
            .hub
            .queued()
            .into_iter()
            .map(|(ws, bytes)| (vec![("workspace", ws)], bytes as f64))
            .collect(),
    });
    gauges.push(Gauge {
        name: "logvault_query_busy_seconds",
        help: "Time the query threads spent running queries since the server started (they run below ingestion's priority).",
        series: vec![(Vec::new(), state.query_runtime.busy().as_secs_f64())],
    });
    if let Some(stats) = state.allocator_stats.and_then(|read| read()) {
        gauges.push(Gauge {
            name: "logvault_allocator_bytes",
            help: "The memory allocator's bytes, by kind: allocated (held by the program), active (their pages), resident (physically mapped by the allocator), retained (mapped, returned to the OS).",
            series: [
                ("allocated", stats.allocated),
                ("active", stats.active),
                ("resident", stats.resident),
                ("retained", stats.retained),
            ]
            .into_iter()
            .map(|(kind, v)| (vec![("kind", kind.to_owned())], v as f64))
            .collect(),
        });
    }
    let body = state.metrics.render(&gauges);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
