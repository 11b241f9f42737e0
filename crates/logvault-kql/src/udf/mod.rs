//! The functions KQL needs that DataFusion does not have with Kusto's semantics.
//!
//! [`rowfn`] runs a Rust function per row on [`value::Val`]s (most of Kusto's library);
//! [`strings`] holds vectorized kernels for the hot string operators (`has` and friends);
//! [`convert`] the `to*` conversions; [`dynamic`] property paths into dynamic values;
//! [`aggregate`] Kusto's aggregations that DataFusion lacks (`make_list`, `percentile`, ...);
//! `range` the values of a `range` whose bounds are known only at run time; `window` the
//! window functions behind `row_rank_dense`, `row_rank_min` and
//! `row_window_session`.

pub mod aggregate;
pub mod convert;
pub mod dynamic;
pub(crate) mod range;
pub mod rowfn;
pub mod schema;
pub mod strings;
pub mod value;
pub(crate) mod window;
