//! Core types shared by every logvault crate.
//!
//! This crate owns:
//! - resource names and their validation ([`names`]), and Azure-style resource ids ([`ids`]);
//! - the [`clock`]: every time rule in logvault (key checks, soft-delete periods, link windows,
//!   hot windows) reads time through a [`Clock`], so tests move time by hand instead of sleeping;
//! - the tunable durations and limits of the service ([`config`]);
//! - the error kinds every layer shares ([`CoreError`]);
//! - the one file helper every layer shares ([`fsutil::write_atomic`]: replace a small state file
//!   with fsync, rename and directory fsync).
//!
//! It must never: touch key material, perform I/O beyond that helper, or depend on another
//! logvault crate. Everything else here is plain data and pure functions.

pub mod clock;
pub mod config;
mod error;
pub mod fsutil;
pub mod ids;
pub mod names;

pub use clock::{Clock, SharedClock, StartedClock, SystemClock, TestClock, display_time};
pub use config::Timings;
pub use error::CoreError;
pub use names::{NameKind, validate_name};
