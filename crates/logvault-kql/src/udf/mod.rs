//! The functions KQL needs that DataFusion does not have with Kusto's semantics.
//!
//! [`rowfn`] runs a Rust function per row on [`value::Val`]s (most of Kusto's library);
//! [`strings`] holds vectorized kernels for the hot string operators (`has` and friends);
//! [`convert`] the `to*` conversions; [`dynamic`] property paths into dynamic values;
//! [`aggregate`] Kusto's aggregations that DataFusion lacks (`make_list`, `percentile`, ...).

pub mod aggregate;
pub mod convert;
pub mod dynamic;
pub mod rowfn;
pub mod schema;
pub mod strings;
pub mod value;
