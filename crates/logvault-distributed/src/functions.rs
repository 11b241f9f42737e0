//! Which functions a plan may carry to a cluster, and how they travel.
//!
//! DataFusion's protobuf sends a function by its name (plus what the codec adds), and the
//! receiving side looks the name up in its own registry. That is right for DataFusion's and
//! Ballista's functions and logvault's helpers (`logvault_query::udf`), which every scheduler
//! and executor registers, and wrong for a function whose state is not in its name: `now()` and
//! `ago()` pinned to the query's start (the start time is written beside the name), and most of
//! KQL's library, planned with per-call types and function pointers, which a name cannot
//! rebuild. Sending one of those by name could silently run another function of that name, so
//! the codec refuses it ([`DistributedError::UnsupportedFunction`]).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};

use crate::DistributedError;

/// The marker of a pinned `now`/`ago`: then the start time in microseconds, as decimal text.
const PINNED: &[u8] = b"logvault-now:";

/// The functions every scheduler and executor of a logvault cluster has.
#[derive(Debug)]
pub(crate) struct Known {
    scalar: HashMap<String, Arc<ScalarUDF>>,
    aggregate: HashMap<String, Arc<AggregateUDF>>,
    window: HashMap<String, Arc<WindowUDF>>,
}

/// Ballista's functions (DataFusion's) and logvault's helpers (pinned to the epoch; a plan's
/// own start time travels with it), to register on a cluster's session: the helpers last, so
/// that logvault's `now` replaces DataFusion's.
pub(crate) fn logvault_scalar_functions() -> Vec<Arc<ScalarUDF>> {
    ballista_core::extension::ballista_scalar_functions()
        .into_iter()
        .chain(logvault_query::udf::all(0).into_iter().map(Arc::new))
        .collect()
}

static KNOWN: LazyLock<Known> = LazyLock::new(|| {
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_scalar_functions(logvault_scalar_functions())
        .with_aggregate_functions(ballista_core::extension::ballista_aggregate_functions())
        .with_window_functions(ballista_core::extension::ballista_window_functions())
        .build();
    Known {
        scalar: state.scalar_functions().clone(),
        aggregate: state.aggregate_functions().clone(),
        window: state.window_functions().clone(),
    }
});

fn unsupported(function: &str) -> datafusion::error::DataFusionError {
    DistributedError::UnsupportedFunction {
        function: function.to_owned(),
    }
    .into_df()
}

/// Encodes what a scalar function needs beside its name: a pinned start time, or nothing for a
/// function the cluster knows by name.
pub(crate) fn encode_udf(udf: &ScalarUDF, buf: &mut Vec<u8>) -> datafusion::error::Result<()> {
    if let Some(now) = logvault_query::udf::pinned_now_micros(udf) {
        buf.extend_from_slice(PINNED);
        buf.extend_from_slice(now.to_string().as_bytes());
        return Ok(());
    }
    match KNOWN.scalar.get(udf.name()) {
        Some(known) if known.as_ref() == udf => Ok(()),
        _ => Err(unsupported(udf.name())),
    }
}

/// Rebuilds a scalar function from what [`encode_udf`] wrote.
pub(crate) fn decode_udf(name: &str, buf: &[u8]) -> datafusion::error::Result<Arc<ScalarUDF>> {
    if let Some(text) = buf.strip_prefix(PINNED) {
        let now: i64 = std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| {
                DistributedError::Codec {
                    what: format!("function {name}"),
                    reason: "the pinned start time is not a number".into(),
                }
                .into_df()
            })?;
        return logvault_query::udf::all(now)
            .into_iter()
            .find(|f| f.name() == name)
            .map(Arc::new)
            .ok_or_else(|| unsupported(name));
    }
    KNOWN
        .scalar
        .get(name)
        .cloned()
        .ok_or_else(|| unsupported(name))
}

/// Checks that the cluster knows an aggregate function by its name.
pub(crate) fn encode_udaf(udaf: &AggregateUDF) -> datafusion::error::Result<()> {
    match KNOWN.aggregate.get(udaf.name()) {
        Some(known) if known.as_ref() == udaf => Ok(()),
        _ => Err(unsupported(udaf.name())),
    }
}

/// The aggregate function the cluster knows by `name`.
pub(crate) fn decode_udaf(name: &str) -> datafusion::error::Result<Arc<AggregateUDF>> {
    KNOWN
        .aggregate
        .get(name)
        .cloned()
        .ok_or_else(|| unsupported(name))
}

/// Checks that the cluster knows a window function by its name.
pub(crate) fn encode_udwf(udwf: &WindowUDF) -> datafusion::error::Result<()> {
    match KNOWN.window.get(udwf.name()) {
        Some(known) if known.as_ref() == udwf => Ok(()),
        _ => Err(unsupported(udwf.name())),
    }
}

/// The window function the cluster knows by `name`.
pub(crate) fn decode_udwf(name: &str) -> datafusion::error::Result<Arc<WindowUDF>> {
    KNOWN
        .window
        .get(name)
        .cloned()
        .ok_or_else(|| unsupported(name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pinned_times_travel_and_unknown_functions_are_refused() {
        let ago = logvault_query::udf::all(1_772_000_000_000_000)
            .into_iter()
            .find(|f| f.name() == "ago")
            .unwrap();
        let mut buf = Vec::new();
        encode_udf(&ago, &mut buf).unwrap();
        let back = decode_udf("ago", &buf).unwrap();
        assert_eq!(
            logvault_query::udf::pinned_now_micros(&back),
            Some(1_772_000_000_000_000)
        );

        // DataFusion's own functions go by name.
        let lower = KNOWN.scalar.get("lower").unwrap().clone();
        let mut buf = Vec::new();
        encode_udf(&lower, &mut buf).unwrap();
        assert!(buf.is_empty());
        assert_eq!(decode_udf("lower", &buf).unwrap().name(), "lower");

        let err = decode_udf("no_such_function", &[]).unwrap_err().to_string();
        assert!(
            err.contains("function no_such_function cannot run"),
            "{err}"
        );
        let err = decode_udf("ago", b"logvault-now:x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("pinned start time"), "{err}");
    }
}
