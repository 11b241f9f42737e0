//! A scheduler and an executor as processes of their own (the `logvault-cluster` binary), on
//! Ballista's own process code: the scheduler's `create_scheduler` and gRPC service, the
//! executor's `start_executor_process` (registration, the poll loop, its Flight service, the
//! graceful stop on SIGTERM or Ctrl-C). logvault sets what makes them logvault's: the codecs and
//! the scheduler's session ([`scheduler_session`]); each executor's runtime over its own store
//! ([`executor_runtime`]), its function registry and its encrypted shuffle
//! ([`EncryptedShuffle`]).
//!
//! Both run pull-staged, as Ballista's standalone cluster does: executors ask the scheduler for
//! tasks, so an executor opens no port but its Flight service's.

use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::extension::SessionConfigExt;
use ballista_core::{ConfigProducer, RuntimeProducer};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion::prelude::SessionConfig;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use logvault_store::Store;

use crate::codec::{LogvaultLogicalCodec, LogvaultPhysicalCodec};
use crate::{
    DistributedError, EncryptedShuffle, executor_functions, executor_runtime, scheduler_session,
    with_codecs,
};

/// The session configuration every process of a logvault cluster starts from.
fn config_producer() -> ConfigProducer {
    Arc::new(|| with_codecs(SessionConfig::new_with_ballista()))
}

/// Serves a Ballista scheduler on `listener` until the process ends: logvault's codecs, its
/// scheduler session (no table, no key: tables come with each plan), pull-staged scheduling.
/// `external_host` is the name executors and clients reach it by.
///
/// # Errors
/// [`DistributedError::Cluster`] when the scheduler cannot start or its service stops.
pub async fn serve_scheduler(
    listener: tokio::net::TcpListener,
    external_host: &str,
) -> Result<(), DistributedError> {
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "scheduler".into());
    let fail = |reason: String| DistributedError::Cluster {
        address: address.clone(),
        reason,
    };
    let port = listener
        .local_addr()
        .map_err(|e| fail(e.to_string()))?
        .port();
    let mut config = SchedulerConfig::default()
        .with_hostname(external_host)
        .with_port(port)
        .with_scheduler_policy(TaskSchedulingPolicy::PullStaged)
        .with_override_config_producer(config_producer())
        .with_override_session_builder(Arc::new(scheduler_session));
    config.override_logical_codec = Some(Arc::new(LogvaultLogicalCodec::default()));
    config.override_physical_codec = Some(Arc::new(LogvaultPhysicalCodec::default()));
    config.validate().map_err(|e| fail(e.to_string()))?;
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let scheduler =
        create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config))
            .await
            .map_err(|e| fail(e.to_string()))?;
    start_grpc_service_with_listener(listener, scheduler)
        .await
        .map_err(|e| fail(format!("the scheduler's service stopped: {e}")))
}

/// An executor process: who it is, where its scheduler is, what it serves and reads with.
#[derive(Debug, Clone)]
pub struct ExecutorProcess {
    /// Its id in the cluster (unique among the scheduler's executors), also in its messages.
    pub name: String,
    /// Its store, opened on the cluster's storage root with the vault: the executor's own
    /// keyring unwraps each account's key under the identity the account's key record names.
    pub store: Arc<Store>,
    /// The scheduler's host.
    pub scheduler_host: String,
    /// The scheduler's port.
    pub scheduler_port: u16,
    /// How long to wait for the scheduler at start (seconds; 0: fail at once).
    pub scheduler_timeout_secs: u16,
    /// The address its Flight service (stage outputs) binds to.
    pub bind_host: String,
    /// The name other executors and the client reach its Flight service by (the bind address
    /// when `None`).
    pub external_host: Option<String>,
    /// Its Flight service's port.
    pub flight_port: u16,
    /// Where its (encrypted) shuffle files go.
    pub work_dir: PathBuf,
    /// Task slots (0: one per core).
    pub vcores: usize,
    /// Bytes its tasks may hold together (Ballista splits them across task slots); `None`:
    /// Ballista's default, 70 % of the machine's or the cgroup's memory. Nothing spills: an
    /// executor has no disk manager, so a task that needs more fails.
    pub memory_limit: Option<u64>,
}

/// Runs the executor `process` until SIGTERM, Ctrl-C or the scheduler's stop request.
///
/// # Errors
/// [`DistributedError::Cluster`] when it cannot start (the scheduler unreachable, a port
/// taken) or stops on a failure.
pub async fn run_executor(process: ExecutorProcess) -> Result<(), DistributedError> {
    let address = format!("{}:{}", process.scheduler_host, process.scheduler_port);
    let fail = |reason: String| DistributedError::Cluster {
        address: address.clone(),
        reason: format!("executor {}: {reason}", process.name),
    };
    let work_dir = process
        .work_dir
        .to_str()
        .ok_or_else(|| fail("the work directory's path is not UTF-8".into()))?
        .to_owned();
    std::fs::create_dir_all(&work_dir).map_err(|e| fail(format!("{work_dir}: {e}")))?;
    let runtime = executor_runtime(&process.name, process.store.clone(), None)?;
    let runtime_producer: RuntimeProducer = Arc::new(move |_| Ok(runtime.clone()));
    let mut config = ExecutorProcessConfig {
        executor_id: process.name.clone(),
        bind_host: process.bind_host.clone(),
        external_host: process.external_host.clone(),
        port: process.flight_port,
        scheduler_host: process.scheduler_host.clone(),
        scheduler_port: process.scheduler_port,
        scheduler_connect_timeout_seconds: process.scheduler_timeout_secs,
        vcores: process.vcores,
        task_scheduling_policy: TaskSchedulingPolicy::PullStaged,
        work_dir: Some(work_dir),
        print_thread_info: false,
        memory_pool_size: process.memory_limit,
        override_function_registry: Some(Arc::new(executor_functions()?)),
        override_runtime_producer: Some(runtime_producer),
        override_config_producer: Some(config_producer()),
        override_logical_codec: Some(Arc::new(LogvaultLogicalCodec::default())),
        override_physical_codec: Some(Arc::new(LogvaultPhysicalCodec::default())),
        ..ExecutorProcessConfig::default()
    };
    EncryptedShuffle::generate(&process.name)?.configure(&mut config);
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| fail(e.to_string()))
}
