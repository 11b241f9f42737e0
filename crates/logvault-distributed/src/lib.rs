//! Distributed queries for logvault on Apache DataFusion Ballista (issue 23; guide:
//! `docs/distributed.md`).
//!
//! A query node opens a workspace session as usual (its key gate admits every storage
//! account), then sends the query to a Ballista scheduler ([`distributed_context`]). The plan
//! travels through logvault's codecs ([`LogvaultLogicalCodec`], [`LogvaultPhysicalCodec`]):
//! tables as their segment lists ([`TableSpec`]), scans as [`LogvaultScanExec`]s with the
//! Parquet encryption settings DataFusion's protobuf drops. Executors read segments through
//! their own store and an [`ExecutorEncryptionFactory`] registered in their runtime
//! ([`executor_runtime`]), which gets account keys from the vault under the cluster's identity.
//! Stage outputs (Ballista's shuffle) rest and travel between executors encrypted under each
//! executor's ephemeral key ([`EncryptedShuffle`]: its engine writes them, its Flight service
//! decrypts them for a fetch).
//! A scheduler and executors run as processes of the `logvault-cluster` binary
//! ([`serve_scheduler`], [`run_executor`]); an executor's error reaches the client as text,
//! from which [`DistributedError::from_remote`] recovers logvault's named errors.
//!
//! It must never: put a key (account, data or any other) in a plan or a message, let an
//! executor read a segment whose account key the vault refuses, write query data to an
//! executor's disk in clear, or send a function that the receiving side would rebuild as
//! another one.

mod cluster;
mod codec;
mod error;
mod executor;
mod functions;
mod process;
mod scan;
mod shuffle_engine;
mod shuffle_flight;
mod spec;
mod table;

pub use cluster::{
    ExecutorInfo, ExecutorSpec, InProcessCluster, ShuffleMode, codec, distributed_context,
    executor_functions, scheduler_session, with_codecs,
};
pub use codec::{LogvaultLogicalCodec, LogvaultPhysicalCodec};
pub use error::DistributedError;
pub use executor::{ExecutorEncryptionFactory, executor_runtime};
pub use process::{ExecutorProcess, run_executor, serve_scheduler};
pub use scan::{LogvaultScanExec, wrap_encrypted_scans};
pub use shuffle_engine::{EncryptedShuffle, EncryptedShuffleEngine};
pub use shuffle_flight::EncryptedShuffleFlightService;
pub use spec::{SegmentSpec, TABLE_SPEC_VERSION, TableSpec};
pub use table::DistributedTable;
