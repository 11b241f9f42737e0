//! A Ballista cluster for logvault: the scheduler's sessions, the executors' runtimes, an
//! in-process cluster for tests, and a query node's session that sends its queries to a
//! scheduler.

use std::sync::Arc;

use ballista_core::extension::{SessionConfigExt, SessionStateExt};
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::BallistaCodec;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::{ConfigProducer, RuntimeProducer};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use logvault_query::WorkspaceSession;
use logvault_store::Store;

use crate::codec::{LogvaultLogicalCodec, LogvaultPhysicalCodec};
use crate::functions::logvault_scalar_functions;
use crate::{DistributedError, EncryptedShuffle, executor_runtime};

/// The codecs every process of a logvault cluster uses.
pub fn codec() -> BallistaCodec {
    BallistaCodec::new(
        Arc::new(LogvaultLogicalCodec::default()),
        Arc::new(LogvaultPhysicalCodec::default()),
    )
}

/// `config` with logvault's codecs, as Ballista reads them from a session's configuration.
pub fn with_codecs(config: SessionConfig) -> SessionConfig {
    config
        .with_ballista_logical_extension_codec(Arc::new(LogvaultLogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(LogvaultPhysicalCodec::default()))
}

/// The session a scheduler plans a job in: DataFusion's and Ballista's functions, logvault's
/// helpers, logvault's codecs; no table (tables come with the plan) and no key.
///
/// # Errors
/// DataFusion's, building the runtime.
pub fn scheduler_session(config: SessionConfig) -> datafusion::common::Result<SessionState> {
    Ok(SessionStateBuilder::new()
        .with_config(with_codecs(config).upgrade_for_ballista())
        .with_runtime_env(Arc::new(RuntimeEnv::default()))
        .with_default_features()
        .with_scalar_functions(logvault_scalar_functions())
        .with_aggregate_functions(ballista_core::extension::ballista_aggregate_functions())
        .with_window_functions(ballista_core::extension::ballista_window_functions())
        .build())
}

/// The functions an executor decodes plans with (those of [`scheduler_session`]).
///
/// # Errors
/// As [`scheduler_session`].
pub fn executor_functions() -> datafusion::common::Result<BallistaFunctionRegistry> {
    Ok((&scheduler_session(SessionConfig::new())?).into())
}

/// A session like `session` (its tables, functions and options) whose queries run on the
/// Ballista cluster whose scheduler listens at `scheduler` (`host:port`). The query node still
/// admits every storage account before planning (`session` was opened through its key gate);
/// executors admit them again through their own keyrings.
///
/// # Errors
/// [`DistributedError::Cluster`] for an address Ballista refuses.
pub fn distributed_context(
    session: &WorkspaceSession,
    scheduler: &str,
) -> Result<SessionContext, DistributedError> {
    let original = session.context().state();
    let mut config = with_codecs(original.config().clone());
    // The session's catalog (its tables) is kept: a new default catalog would replace it in the
    // catalog list the two sessions share.
    config
        .options_mut()
        .catalog
        .create_default_catalog_and_schema = false;
    let state = SessionStateBuilder::new_from_existing(original.clone())
        .with_config(config)
        .build()
        .upgrade_for_ballista(format!("http://{scheduler}"))
        .map_err(|e| DistributedError::Cluster {
            address: scheduler.to_owned(),
            reason: e.strip_backtrace(),
        })?;
    let ctx = SessionContext::new_with_state(state);
    // Ballista's upgrade replaces the session's functions with its own: the session's helpers
    // (`now` and `ago` pinned to this query's start) are registered again.
    for f in original.scalar_functions().values() {
        ctx.register_udf(f.as_ref().clone());
    }
    for f in original.aggregate_functions().values() {
        ctx.register_udaf(f.as_ref().clone());
    }
    for f in original.window_functions().values() {
        ctx.register_udwf(f.as_ref().clone());
    }
    Ok(ctx)
}

/// One executor of an [`InProcessCluster`]: its name and the store it reads with (opened on the
/// cluster's storage root, with its own keyring and the vault).
#[derive(Debug, Clone)]
pub struct ExecutorSpec {
    /// A name for messages.
    pub name: String,
    /// Its store.
    pub store: Arc<Store>,
    /// Task slots.
    pub vcores: usize,
}

/// A scheduler and executors in this process, on loopback ports, each executor with its own
/// store and runtime ([`executor_runtime`]), as separate processes would have them.
#[derive(Debug)]
pub struct InProcessCluster {
    scheduler: String,
    executors: Vec<ExecutorInfo>,
    /// The executors' work directories (shuffle files), removed with the cluster.
    _work_dirs: Vec<tempfile::TempDir>,
}

/// An executor of an [`InProcessCluster`] as it runs.
#[derive(Debug, Clone)]
pub struct ExecutorInfo {
    /// Its name ([`ExecutorSpec::name`]).
    pub name: String,
    /// Its work directory, where its shuffle files are.
    pub work_dir: std::path::PathBuf,
    /// The loopback port of its Arrow Flight service.
    pub flight_port: u16,
}

/// How the executors of an [`InProcessCluster`] write and serve their stages' outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShuffleMode {
    /// logvault's encrypted shuffle ([`EncryptedShuffle`]): what every logvault executor runs.
    Encrypted,
    /// Ballista's own engine and Flight service, which write and serve plaintext Arrow IPC.
    /// For tests that show the difference only.
    BallistaPlaintext,
}

impl InProcessCluster {
    /// Starts a scheduler, then `executors` with the encrypted shuffle, and waits until the
    /// scheduler answers.
    ///
    /// # Errors
    /// [`DistributedError::Cluster`] when a part does not start.
    pub async fn start(executors: Vec<ExecutorSpec>) -> Result<Self, DistributedError> {
        Self::start_with(executors, ShuffleMode::Encrypted).await
    }

    /// As [`Self::start`], with the shuffle `shuffle`.
    ///
    /// # Errors
    /// As [`Self::start`].
    pub async fn start_with(
        executors: Vec<ExecutorSpec>,
        shuffle: ShuffleMode,
    ) -> Result<Self, DistributedError> {
        let cluster_error = |reason: String| DistributedError::Cluster {
            address: "in-process".into(),
            reason,
        };
        let session_builder = Arc::new(scheduler_session);
        let config_producer: ConfigProducer =
            Arc::new(|| with_codecs(SessionConfig::new_with_ballista()));
        let addr = ballista_scheduler::standalone::new_standalone_scheduler_with_builder(
            session_builder,
            config_producer.clone(),
            codec(),
        )
        .await
        .map_err(|e| cluster_error(e.to_string()))?;
        let scheduler = format!("localhost:{}", addr.port());
        let mut work_dirs = Vec::new();
        let mut infos = Vec::new();
        for spec in executors {
            let client = connect(&scheduler).await?;
            let work_dir = tempfile::tempdir().map_err(|e| {
                cluster_error(format!("executor {}: work directory: {e}", spec.name))
            })?;
            let flight_port = start_executor(
                client,
                &spec,
                work_dir.path(),
                config_producer.clone(),
                shuffle,
            )
            .await
            .map_err(|e| cluster_error(format!("executor {}: {e}", spec.name)))?;
            infos.push(ExecutorInfo {
                name: spec.name.clone(),
                work_dir: work_dir.path().to_owned(),
                flight_port,
            });
            work_dirs.push(work_dir);
        }
        Ok(Self {
            scheduler,
            executors: infos,
            _work_dirs: work_dirs,
        })
    }

    /// The executors, in the order they were given.
    pub fn executors(&self) -> &[ExecutorInfo] {
        &self.executors
    }

    /// The scheduler's address (`host:port`).
    pub fn scheduler(&self) -> &str {
        &self.scheduler
    }
}

/// Starts an executor in this process, as Ballista's `new_standalone_executor_from_builder`
/// does, but in `work_dir` (Ballista's own takes a temporary directory it does not remove),
/// with `spec`'s runtime and the `shuffle` engine: Arrow Flight for its shuffle output on a
/// loopback port, and the poll loop that takes tasks from the scheduler.
async fn start_executor(
    scheduler: SchedulerGrpcClient<tonic::transport::Channel>,
    spec: &ExecutorSpec,
    work_dir: &std::path::Path,
    config_producer: ConfigProducer,
    shuffle: ShuffleMode,
) -> Result<u16, DistributedError> {
    use arrow_flight::flight_service_server::FlightServiceServer;
    use ballista_core::serde::protobuf::ExecutorRegistration;
    use ballista_core::serde::scheduler::{
        ExecutorOperatingSystemSpecification, ExecutorSpecification,
    };
    use ballista_core::utils::{GrpcServerConfig, create_grpc_server};
    use ballista_executor::executor::Executor;
    use ballista_executor::flight_service::BallistaFlightService;
    use ballista_executor::metrics::LoggingMetricsCollector;

    let fail = |reason: String| DistributedError::Cluster {
        address: "in-process".into(),
        reason: format!("executor {}: {reason}", spec.name),
    };
    let listener = tokio::net::TcpListener::bind("localhost:0")
        .await
        .map_err(|e| fail(e.to_string()))?;
    let port = listener
        .local_addr()
        .map_err(|e| fail(e.to_string()))?
        .port();
    let vcores = spec.vcores.max(1);
    let registration = ExecutorRegistration {
        id: ballista_core::ids::new_instance_id(),
        host: Some("localhost".to_owned()),
        port: u32::from(port),
        // Unused: the executor pulls its tasks (Ballista's standalone executors say 50020).
        grpc_port: 50020,
        specification: Some(
            ExecutorSpecification::default()
                .with_vcores(u32::try_from(vcores).unwrap_or(u32::MAX))
                .into(),
        ),
        os_info: Some(ExecutorOperatingSystemSpecification::default().into()),
        ballista_protocol_version: ballista_core::BALLISTA_PROTOCOL_VERSION,
    };
    let work_dir = work_dir
        .to_str()
        .ok_or_else(|| fail("the work directory's path is not UTF-8".into()))?
        .to_owned();
    let max_message = config_producer().ballista_grpc_client_max_message_size();
    let runtime = executor_runtime(&spec.name, spec.store.clone(), None)?;
    let runtime_producer: RuntimeProducer = Arc::new(move |_| Ok(runtime.clone()));
    let functions = Arc::new(executor_functions()?);
    let metrics = Arc::new(LoggingMetricsCollector::default());
    let mut server = create_grpc_server(&GrpcServerConfig::default());
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let executor = match shuffle {
        ShuffleMode::Encrypted => {
            let shuffle = EncryptedShuffle::generate(&spec.name)?;
            let flight = FlightServiceServer::new(shuffle.flight_service(&work_dir))
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message);
            tokio::spawn(server.add_service(flight).serve_with_incoming(incoming));
            Executor::new(
                registration,
                &work_dir,
                runtime_producer,
                config_producer,
                functions,
                metrics,
                vcores,
                shuffle.engine(),
            )
        }
        ShuffleMode::BallistaPlaintext => {
            let flight = FlightServiceServer::new(BallistaFlightService::new(work_dir.clone()))
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message);
            tokio::spawn(server.add_service(flight).serve_with_incoming(incoming));
            Executor::with_default_execution_engine(
                registration,
                &work_dir,
                runtime_producer,
                config_producer,
                functions,
                metrics,
                vcores,
            )
        }
    };
    let executor = Arc::new(executor);
    tokio::spawn(ballista_executor::execution_loop::poll_loop(
        scheduler,
        executor,
        codec(),
        None,
        None,
        ballista_executor::health::ExecutorHealth::new(),
    ));
    Ok(port)
}

/// A gRPC client of the scheduler at `scheduler`, retried for up to ten seconds while it starts.
async fn connect(
    scheduler: &str,
) -> Result<SchedulerGrpcClient<tonic::transport::Channel>, DistributedError> {
    let url = format!("http://{scheduler}");
    let mut last = String::new();
    for _ in 0..100 {
        match SchedulerGrpcClient::connect(url.clone()).await {
            Ok(client) => return Ok(client),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(DistributedError::Cluster {
        address: scheduler.to_owned(),
        reason: format!("the scheduler does not answer: {last}"),
    })
}
