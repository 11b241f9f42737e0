//! logvault as a library.
//!
//! This crate is the facade embedders use: it opens a logvault *home* (the directory where the
//! embedded default keeps its vault, control-plane state, storage, hot cache and write-ahead log)
//! and wires the layers below into one [`Engine`].
//!
//! It owns the wiring and nothing else: every rule lives in the crate of its layer. It must never
//! know about terminals, command lines or HTTP (the `logvault` binary and the server do).
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let engine = logvault::Engine::open(logvault::EngineOptions::new(dir.path()))?;
//! assert!(engine.home().root().join("config.json").exists());
//! // Every home has the service key, used like a customer key.
//! assert_eq!(engine.service_key().key.vault, "logvault-service");
//! # Ok::<(), anyhow::Error>(())
//! ```

mod engine;
mod error;
mod home;

pub use engine::{Engine, EngineOptions};
pub use error::EngineError;
pub use home::{Home, HomeConfig};

pub use logvault_core as core;
pub use logvault_kms as kms;
