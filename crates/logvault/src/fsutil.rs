//! File helpers for the engine's local state: the workspace's one atomic replace.

pub(crate) use logvault_core::fsutil::write_atomic;
