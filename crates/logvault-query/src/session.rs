//! The DataFusion session a query runs in.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::{SessionConfig, SessionContext};

/// Options of a query session.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// The query's start time: what `ago()` and `now()` count from.
    pub now: DateTime<Utc>,
    /// Parallel partitions per scan (default: the number of cores).
    pub target_partitions: usize,
    /// Rows per batch.
    pub batch_size: usize,
    /// The runtime (memory pool, object stores, encryption factories) to run in: an engine
    /// shares one between its queries, so that its memory limit holds for all of them. `None`:
    /// a runtime of the session's own, without a limit.
    pub runtime: Option<Arc<RuntimeEnv>>,
}

impl SessionOptions {
    /// Defaults, with the query starting at `now`.
    pub fn at(now: DateTime<Utc>) -> Self {
        Self {
            now,
            // Read once per process (DataFusion remembers it): `available_parallelism` reads
            // the control group's files each time it is asked.
            target_partitions: datafusion::common::utils::get_available_parallelism(),
            batch_size: 8192,
            runtime: None,
        }
    }
}

/// A session configured for log queries:
/// - unquoted identifiers keep their case, so `SELECT TimeGenerated FROM SigninLogs` works on
///   tables and columns ingested with those names (Log Analytics' convention);
/// - the helper functions of [`crate::udf`] are registered;
/// - `now()` and `ago()` read the query's start time;
/// - a partial aggregation by one string column of few values groups in
///   [`crate::grouping::StringGroupAggregateExec`], which reads that column from segments as a
///   dictionary;
/// - a column compared with a string literal (`Level = 'ERROR'`) is compared a string view at a
///   time ([`crate::view_eq`]), and `date_trunc` truncates UTC timestamps to the hour or day by
///   arithmetic;
/// - filters are pushed into the Parquet reader, but a hash join's keys are not (DataFusion's
///   join dynamic filter is off: a hash lookup per row of the large side).
pub fn new_session(options: &SessionOptions, runtime: Arc<RuntimeEnv>) -> SessionContext {
    let mut config = SessionConfig::new()
        .with_target_partitions(options.target_partitions.max(1))
        .with_batch_size(options.batch_size.max(1))
        .with_information_schema(true);
    let opts = config.options_mut();
    opts.sql_parser.enable_ident_normalization = false;
    opts.execution.parquet.pushdown_filters = true;
    opts.execution.parquet.reorder_filters = true;
    // A hash join's dynamic filter (the build side's key range and hash table) is pushed into
    // the probe side's Parquet scan, where it runs as a row filter: a hash lookup per log row
    // that a log table's row groups, which hold every host, seldom let it skip. The
    // benchmark's join (10M log rows against a 200-row inventory, release build, medians):
    // 168-182 ms with it, 141-144 ms without it, 150-154 ms when the join was still built on
    // the filtered log rows (before the scans had row counts).
    opts.optimizer.enable_join_dynamic_filter_pushdown = false;
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(Arc::clone(&runtime))
        .with_default_features()
        // Before the grouping's rule, whose copy of a Parquet scan takes the scan's predicate.
        .with_physical_optimizer_rule(Arc::new(crate::view_eq::ViewEquality))
        .with_physical_optimizer_rule(Arc::new(crate::grouping::StringGroupAggregation::new(
            runtime,
        )))
        .build();
    let ctx = SessionContext::new_with_state(state);
    let now_micros = options.now.timestamp_micros();
    for f in crate::udf::all(now_micros) {
        ctx.register_udf(f);
    }
    ctx
}
