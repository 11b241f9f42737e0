//! `GET /status[?workspace=W]`: keys and health, for the page's banner and key view and for
//! scripts. Per workspace: the key protecting new data (the service key, or cluster, vault, key
//! and version), its state (`active`, `degraded`, `revoked`), since when and why, and the
//! dropped-row counters; per cluster: its identity and key properties and the key's state and
//! counters. `revoked` lists the workspaces whose key is revoked now. Needs a role that reads
//! metrics (`Log Analytics Reader` and up); a token for one workspace sees that workspace.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use logvault::keys::KeyState;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::errors::{ApiError, Flavor, engine_error};
use crate::http::{Shared, auth};
use crate::roles::Permission;

#[derive(Debug, Deserialize)]
pub(crate) struct StatusQuery {
    workspace: Option<String>,
}

fn state_name(state: KeyState) -> &'static str {
    match state {
        KeyState::Active => "active",
        KeyState::Degraded => "degraded",
        KeyState::Revoked => "revoked",
        KeyState::None => "none",
    }
}

/// The vault's name in a key vault URI (`https://NAME.vault...`), else the URI.
fn vault_name(uri: &str) -> String {
    let host = uri
        .split("://")
        .nth(1)
        .unwrap_or(uri)
        .split('/')
        .next()
        .unwrap_or(uri);
    host.split('.').next().unwrap_or(host).to_owned()
}

/// `GET /status`.
pub(crate) async fn status(
    State(state): State<Shared>,
    Query(query): Query<StatusQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let principal = auth::authenticate(&state, &headers, Flavor::Azure)?;
    let only = query.workspace.or_else(|| principal.workspace.clone());
    auth::check(
        &principal,
        Permission::Metrics,
        only.as_deref(),
        Flavor::Azure,
    )?;
    let engine = &state.engine;
    let status = engine
        .status(only.as_deref())
        .await
        .map_err(|e| engine_error(engine, &e))?;
    let (workspaces, clusters) = crate::http::blocking(&state, |engine| {
        Ok::<_, logvault::EngineError>((
            engine.control().list_workspaces()?,
            engine.control().list_clusters(None, None)?,
        ))
    })
    .await?
    .map_err(|e| engine_error(engine, &e))?;
    let workspaces: HashMap<_, _> = workspaces
        .into_iter()
        .map(|w| (w.name.clone(), w))
        .collect();
    let clusters: HashMap<_, _> = clusters.into_iter().map(|c| (c.name.clone(), c)).collect();
    let keys: HashMap<_, _> = status
        .clusters
        .iter()
        .map(|c| (c.name.clone(), c))
        .collect();

    let mut revoked = Vec::new();
    let mut out_ws = Vec::new();
    for w in &status.workspaces {
        let key = w.cluster.as_ref().and_then(|c| keys.get(c));
        let props = w
            .cluster
            .as_ref()
            .and_then(|c| clusters.get(c))
            .and_then(|c| c.key.as_ref());
        let customer = key.filter(|k| k.key_state != KeyState::None).zip(props);
        let (protection, key_state, since, reason) = match customer {
            Some((k, p)) => (
                json!({
                    "kind": "customerKey",
                    "cluster": k.name,
                    "vault": vault_name(&p.key_vault_uri),
                    "keyVaultUri": p.key_vault_uri,
                    "key": p.key_name,
                    "version": k.key_version_in_use.clone().or_else(
                        || Some(p.key_version.clone()).filter(|v| !v.is_empty())),
                }),
                state_name(k.key_state),
                k.since,
                k.reason.clone(),
            ),
            None => (json!({ "kind": "serviceKey" }), "active", None, None),
        };
        if key_state == "revoked" {
            revoked.push(w.name.clone());
        }
        out_ws.push(json!({
            "name": w.name,
            "customerId": workspaces.get(&w.name).map(|x| x.customer_id.clone()),
            "cluster": w.cluster,
            "protection": protection,
            "keyState": key_state,
            "since": since,
            "reason": reason,
            "rows": w.rows,
            "segments": w.segments,
            "droppedRows": w.dropped_rows,
            "lastDropReason": w.last_drop_reason,
        }));
    }
    let out_clusters: Vec<Value> = status
        .clusters
        .iter()
        .map(|k| {
            let c = clusters.get(&k.name);
            json!({
                "name": k.name,
                "clusterId": c.map(|c| c.cluster_id.clone()),
                "identity": c.map(|c| json!(c.identity)),
                "keyVaultProperties": c.and_then(|c| c.key.as_ref()).map(|p| json!(p)),
                "keyState": state_name(k.key_state),
                "key": k.key,
                "keyVersionInUse": k.key_version_in_use,
                "since": k.since,
                "lastUnwrap": k.last_unwrap,
                "nextCheck": k.next_check,
                "reason": k.reason,
                "counters": k.counters,
            })
        })
        .collect();
    let timings = &engine.home().config().timings;
    Ok(Json(json!({
        "time": engine.clock().now(),
        "keyCheckSeconds": { "min": timings.key_check_min_secs, "max": timings.key_check_max_secs },
        "revoked": revoked,
        "workspaces": out_ws,
        "clusters": out_clusters,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vault_is_named_by_its_uri() {
        assert_eq!(vault_name("https://kv-1.vault.local"), "kv-1");
        assert_eq!(vault_name("https://kv-1.vault.azure.net/"), "kv-1");
        assert_eq!(vault_name("kv"), "kv");
    }
}
