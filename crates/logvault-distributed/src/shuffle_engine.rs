//! The encrypted shuffle's writing side: a Ballista `ExecutionEngine` whose query stages write
//! their output partitions as encrypted shuffle files (`logvault_crypto::shuffle`) under the
//! executor's ephemeral key, never as plaintext Arrow IPC.
//!
//! Ballista's scheduler ends every stage with one of three writers: `ShuffleWriterExec` (the
//! stage's own partitioning, passed through), `SortShuffleWriterExec` (hash repartitioning)
//! and, only under the opt-in parallel-window rule, `RangeShuffleWriterExec`. This engine takes
//! the first two apart and runs their input itself:
//! - pass-through: local partition `i` goes to global partition `ids[i]` (Ballista's
//!   `compute_global_output_partition_ids`, as its own writer resolves them);
//! - hash: each input partition's batches are split by DataFusion's `BatchPartitioner` over the
//!   writer's `Partitioning::Hash`, as Ballista's sort shuffle does.
//!
//! Both write one file per output partition per task at Ballista's pass-through path
//! (`<work>/<job>/<stage>/<partition>/data-<task>.arrow`) and report the pass-through layout,
//! so readers fetch them whole from the executor's Flight service ([`crate::shuffle_flight`]),
//! which decrypts them. Ballista's sort-shuffle layout (one file with all partitions and an
//! offset index, served by byte range) is not used: a byte range of ciphertext means nothing
//! to the reader. Range shuffle (parallel-window rule) is refused with a clear error.
//!
//! Every stage runs with `ballista.shuffle.force_remote_read` set, so a reader on the same host
//! (`ShuffleReaderExec`, or the adaptive planner's ordered `RangeShuffleReaderExec`) never opens
//! the file itself (it could not decrypt it).

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow::record_batch::RecordBatch;
use arrow_flight::flight_service_server::FlightServiceServer;
use ballista_core::JobId;
use ballista_core::error::BallistaError;
use ballista_core::execution_plans::sort_shuffle::SortShuffleWriterExec;
use ballista_core::execution_plans::{
    RangeShuffleReaderExec, RangeShuffleWriterExec, ShuffleReaderExec, ShuffleWriterExec,
    compute_global_output_partition_ids, create_shuffle_path,
};
use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::protobuf::{
    RuntimeStatsReport, ShuffleWritePartition, WindowStateReport,
};
use ballista_core::utils::{GrpcServerConfig, create_grpc_server};
use ballista_executor::ArrowFlightServerProvider;
use ballista_executor::execution_engine::{ExecutionEngine, QueryStageExecutor};
use ballista_executor::executor_process::ExecutorProcessConfig;
use ballista_executor::shutdown::Shutdown;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::metrics::{MetricsSet, Time};
use datafusion::physical_plan::repartition::BatchPartitioner;
use datafusion::physical_plan::{ExecutionPlan, Partitioning};
use datafusion::prelude::SessionConfig;
use logvault_crypto::ShuffleKey;
use logvault_crypto::shuffle::{DEFAULT_SHUFFLE_CHUNK, ShuffleSealWriter};
use tokio_stream::StreamExt;

use crate::{DistributedError, EncryptedShuffleFlightService};

/// What names a shuffle file inside its encryption (the binding of `logvault_crypto::shuffle`),
/// from the identifiers a fetch request carries.
pub(crate) fn shuffle_binding(
    job: &str,
    stage: usize,
    partition: usize,
    file_id: Option<u64>,
) -> String {
    match file_id {
        Some(f) => format!("job {job} stage {stage} partition {partition} file {f}"),
        None => format!("job {job} stage {stage} partition {partition}"),
    }
}

/// The encrypted shuffle of one executor process: a key drawn when the process starts, held in
/// memory only, shared by the process's engine (which writes stage outputs under it) and its
/// Flight service (which decrypts them for a fetch).
#[derive(Debug, Clone)]
pub struct EncryptedShuffle {
    executor: String,
    key: Arc<ShuffleKey>,
}

impl EncryptedShuffle {
    /// A fresh shuffle key for executor `executor` (a name for messages).
    ///
    /// # Errors
    /// [`DistributedError::Shuffle`] if the random source fails.
    pub fn generate(executor: &str) -> Result<Self, DistributedError> {
        let key = ShuffleKey::generate().map_err(|e| DistributedError::Shuffle {
            executor: executor.to_owned(),
            reason: format!("no shuffle key: {e}"),
        })?;
        Ok(Self {
            executor: executor.to_owned(),
            key: Arc::new(key),
        })
    }

    /// The execution engine, for `ExecutorProcessConfig::override_execution_engine` or
    /// `Executor::new`.
    pub fn engine(&self) -> Arc<dyn ExecutionEngine> {
        Arc::new(EncryptedShuffleEngine::new(
            &self.executor,
            self.key.clone(),
        ))
    }

    /// The Flight service over `work_dir`, the executor's work directory.
    pub fn flight_service(&self, work_dir: impl Into<PathBuf>) -> EncryptedShuffleFlightService {
        EncryptedShuffleFlightService::new(&self.executor, work_dir, self.key.clone())
    }

    /// Sets `config`'s execution engine and Arrow Flight service to this shuffle's, for an
    /// executor process started with `ballista_executor::executor_process::start_executor_process`.
    pub fn configure(&self, config: &mut ExecutorProcessConfig) {
        config.override_execution_engine = Some(self.engine());
        let shuffle = self.clone();
        let max_message =
            SessionConfig::new_with_ballista().ballista_grpc_client_max_message_size();
        let provider: Arc<ArrowFlightServerProvider> = Arc::new(
            move |work_dir: String,
                  address: SocketAddr,
                  mut shutdown: Shutdown,
                  grpc: GrpcServerConfig| {
                let service = FlightServiceServer::new(shuffle.flight_service(work_dir))
                    .max_decoding_message_size(max_message)
                    .max_encoding_message_size(max_message);
                tokio::spawn(async move {
                    create_grpc_server(&grpc)
                        .add_service(service)
                        .serve_with_shutdown(address, shutdown.recv())
                        .await
                        .map_err(BallistaError::TonicError)
                })
            },
        );
        config.override_arrow_flight_service = Some(provider);
    }
}

/// The engine of an executor with encrypted shuffle files (see the module's documentation).
pub struct EncryptedShuffleEngine {
    executor: String,
    key: Arc<ShuffleKey>,
}

impl fmt::Debug for EncryptedShuffleEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedShuffleEngine")
            .field("executor", &self.executor)
            .finish_non_exhaustive()
    }
}

impl EncryptedShuffleEngine {
    /// The engine of executor `executor` (a name for messages), writing under `key`.
    pub fn new(executor: &str, key: Arc<ShuffleKey>) -> Self {
        Self {
            executor: executor.to_owned(),
            key,
        }
    }

    fn refuse(&self, what: &str) -> DataFusionError {
        DistributedError::Shuffle {
            executor: self.executor.clone(),
            reason: what.to_owned(),
        }
        .into_df()
    }
}

impl ExecutionEngine for EncryptedShuffleEngine {
    fn create_query_stage_exec(
        &self,
        job_id: JobId,
        stage_id: usize,
        task_id: usize,
        global_output_partition_ids: Vec<usize>,
        plan: Arc<dyn ExecutionPlan>,
        work_dir: &str,
        _config: &SessionConfig,
    ) -> Result<Arc<dyn QueryStageExecutor>> {
        let plan = plan
            .transform(|p| {
                if let Some(reader) = p.downcast_ref::<ShuffleReaderExec>() {
                    Ok(Transformed::yes(
                        Arc::new(reader.with_work_dir(work_dir.to_owned())) as _,
                    ))
                } else if let Some(reader) = p.downcast_ref::<RangeShuffleReaderExec>() {
                    // The ordered reader (a k-way merge of sorted partitions) fetches whole
                    // files unless the scheduler gave it range cuts, which only the
                    // parallel-window rule's range writer produces (refused below); the byte
                    // ranges it would then ask for are refused by the Flight service.
                    Ok(Transformed::yes(
                        Arc::new(reader.with_work_dir(work_dir.to_owned())) as _,
                    ))
                } else {
                    Ok(Transformed::no(p))
                }
            })?
            .data;
        let child = |name: &str| {
            plan.children()
                .first()
                .map(|c| (*c).clone())
                .ok_or_else(|| self.refuse(&format!("{name} of stage {stage_id} has no input")))
        };
        let route = if plan.downcast_ref::<ShuffleWriterExec>().is_some() {
            Route::PassThrough(compute_global_output_partition_ids(
                &plan,
                &global_output_partition_ids,
            ))
        } else if let Some(w) = plan.downcast_ref::<SortShuffleWriterExec>() {
            match w.shuffle_output_partitioning() {
                Partitioning::Hash(exprs, n) => Route::Hash(Partitioning::Hash(exprs.clone(), *n)),
                other => {
                    return Err(self.refuse(&format!(
                        "stage {stage_id}: unsupported shuffle partitioning {other}"
                    )));
                }
            }
        } else if plan.downcast_ref::<RangeShuffleWriterExec>().is_some() {
            return Err(self.refuse(
                "the range shuffle of the parallel-window rule \
                 (ballista.planner.parallel_window.enabled) is not supported by the encrypted \
                 shuffle: leave the rule off",
            ));
        } else {
            return Err(self.refuse(&format!(
                "stage {stage_id} does not end in a shuffle writer"
            )));
        };
        let input = child("the shuffle writer")?;
        Ok(Arc::new(EncryptedStageExec {
            executor: self.executor.clone(),
            key: self.key.clone(),
            job_id,
            stage_id,
            task_id,
            writer: plan,
            input,
            route,
            work_dir: work_dir.to_owned(),
        }))
    }
}

/// Where a stage's batches go.
#[derive(Debug, Clone)]
enum Route {
    /// Local partition `i` is global partition `ids[i]`.
    PassThrough(Vec<usize>),
    /// Rows are hashed into the partitioning's partitions.
    Hash(Partitioning),
}

/// One task of a stage, writing encrypted shuffle files.
struct EncryptedStageExec {
    executor: String,
    key: Arc<ShuffleKey>,
    job_id: JobId,
    stage_id: usize,
    task_id: usize,
    /// Ballista's writer as the scheduler sent it (for metrics and stage reports only; it is
    /// never executed).
    writer: Arc<dyn ExecutionPlan>,
    input: Arc<dyn ExecutionPlan>,
    route: Route,
    work_dir: String,
}

impl fmt::Debug for EncryptedStageExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedStageExec")
            .field("executor", &self.executor)
            .field("job", &self.job_id.as_str())
            .field("stage", &self.stage_id)
            .field("task", &self.task_id)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for EncryptedStageExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EncryptedStageExec: job={} stage={} task={} executor={}\n{}",
            self.job_id,
            self.stage_id,
            self.task_id,
            self.executor,
            datafusion::physical_plan::displayable(self.input.as_ref()).indent(true)
        )
    }
}

/// A task context like `context` with remote reads forced: a local encrypted file is fetched
/// (and decrypted) through the executor's Flight service like any other.
fn forcing_remote_reads(context: &TaskContext) -> Arc<TaskContext> {
    let config = context
        .session_config()
        .clone()
        .with_ballista_shuffle_reader_force_remote_read(true);
    Arc::new(TaskContext::new(
        context.task_id(),
        context.session_id(),
        config,
        context.scalar_functions().clone(),
        context.higher_order_functions().clone(),
        context.aggregate_functions().clone(),
        context.window_functions().clone(),
        context.runtime_env(),
    ))
}

#[async_trait::async_trait]
impl QueryStageExecutor for EncryptedStageExec {
    async fn execute_query_stage(
        &self,
        _task_id: usize,
        context: Arc<TaskContext>,
    ) -> Result<Vec<ShuffleWritePartition>> {
        let context = forcing_remote_reads(&context);
        let compression = context
            .session_config()
            .ballista_config()
            .shuffle_compression_codec()?;
        let options = IpcWriteOptions::default().try_with_compression(compression)?;
        let inputs = self
            .input
            .properties()
            .output_partitioning()
            .partition_count();
        let (tx, rx) = tokio::sync::mpsc::channel::<(usize, RecordBatch)>(8);
        let files = StageFiles {
            executor: self.executor.clone(),
            key: self.key.clone(),
            job: self.job_id.as_str().to_owned(),
            stage: self.stage_id,
            file_id: self.task_id as u64,
            work_dir: PathBuf::from(&self.work_dir),
            schema: self.input.schema(),
            options,
            open: HashMap::new(),
        };
        let writer = tokio::task::spawn_blocking(move || files.run(rx));
        let mut producers = tokio::task::JoinSet::new();
        for local in 0..inputs {
            let mut stream = self.input.execute(local, context.clone())?;
            let tx = tx.clone();
            let route = self.route.clone();
            let executor = self.executor.clone();
            producers.spawn(async move {
                let gone = || {
                    DistributedError::Shuffle {
                        executor: executor.clone(),
                        reason: "the shuffle file writer stopped".into(),
                    }
                    .into_df()
                };
                match route {
                    Route::PassThrough(ids) => {
                        let global = ids.get(local).copied().unwrap_or(local);
                        while let Some(batch) = stream.next().await {
                            tx.send((global, batch?)).await.map_err(|_| gone())?;
                        }
                    }
                    Route::Hash(partitioning) => {
                        let mut partitioner =
                            BatchPartitioner::try_new(partitioning, Time::new(), local, inputs)?;
                        while let Some(batch) = stream.next().await {
                            let parts: Vec<(usize, RecordBatch)> =
                                partitioner.partition_iter(batch?)?.collect::<Result<_>>()?;
                            for part in parts {
                                tx.send(part).await.map_err(|_| gone())?;
                            }
                        }
                    }
                }
                Ok::<(), DataFusionError>(())
            });
        }
        drop(tx);
        let mut failed = None;
        while let Some(joined) = producers.join_next().await {
            let outcome = joined.map_err(|e| self.join_error(&e)).and_then(|r| r);
            if let Err(e) = outcome {
                failed.get_or_insert(e);
                producers.abort_all();
            }
        }
        // The writer's own error first: a producer that lost the writer only says it stopped.
        let written = writer.await.map_err(|e| self.join_error(&e))??;
        match failed {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }

    fn collect_plan_metrics(&self) -> Vec<MetricsSet> {
        // Ballista's writer heads the list (its own set stays empty: it never runs), so the
        // scheduler lays the metrics on the stage plan node for node.
        ballista_core::utils::collect_plan_metrics(self.writer.as_ref())
    }

    fn collect_runtime_stats_reports(&self) -> Vec<RuntimeStatsReport> {
        ballista_core::execution_plans::collect_runtime_stats_reports(&self.writer).unwrap_or_else(
            |e| {
                tracing::warn!(executor = %self.executor, "runtime statistics dropped: {e}");
                Vec::new()
            },
        )
    }

    fn collect_window_state_reports(&self) -> Result<Vec<WindowStateReport>> {
        // Only the pass-through writer can sit over a window whose state the next stage merges
        // (as in Ballista's engine); Ballista's writer walks the plan for it.
        let Some(w) = self.writer.downcast_ref::<ShuffleWriterExec>() else {
            return Ok(Vec::new());
        };
        let Route::PassThrough(ids) = &self.route else {
            return Ok(Vec::new());
        };
        w.clone()
            .with_global_output_partition_ids(ids.clone())
            .collect_window_state()?
            .iter()
            .map(|(partition, observed)| {
                ballista_core::execution_plans::window_state_to_proto(*partition, observed)
            })
            .collect()
    }
}

impl EncryptedStageExec {
    fn join_error(&self, e: &tokio::task::JoinError) -> DataFusionError {
        DistributedError::Shuffle {
            executor: self.executor.clone(),
            reason: format!(
                "a task of job {} stage {} failed: {e}",
                self.job_id, self.stage_id
            ),
        }
        .into_df()
    }
}

/// The open shuffle files of one task, written on a blocking thread.
struct StageFiles {
    executor: String,
    key: Arc<ShuffleKey>,
    job: String,
    stage: usize,
    file_id: u64,
    work_dir: PathBuf,
    schema: SchemaRef,
    options: IpcWriteOptions,
    open: HashMap<usize, OpenFile>,
}

struct OpenFile {
    writer: StreamWriter<ShuffleSealWriter<BufWriter<File>>>,
    batches: u64,
    rows: u64,
}

impl StageFiles {
    fn fail(&self, partition: usize, e: impl fmt::Display) -> DataFusionError {
        DistributedError::Shuffle {
            executor: self.executor.clone(),
            reason: format!(
                "writing shuffle file {}: {e}",
                shuffle_binding(&self.job, self.stage, partition, Some(self.file_id))
            ),
        }
        .into_df()
    }

    fn open(&self, partition: usize) -> Result<OpenFile> {
        let job = JobId::from(self.job.as_str());
        let path = create_shuffle_path(
            &self.work_dir,
            &job,
            self.stage,
            partition,
            Some(self.file_id),
            false,
        )?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| self.fail(partition, e))?;
        }
        let file = File::create(&path).map_err(|e| self.fail(partition, e))?;
        let binding = shuffle_binding(&self.job, self.stage, partition, Some(self.file_id));
        let sealed = ShuffleSealWriter::new(
            &self.key,
            &binding,
            DEFAULT_SHUFFLE_CHUNK,
            BufWriter::new(file),
        )
        .map_err(|e| self.fail(partition, e))?;
        let writer =
            StreamWriter::try_new_with_options(sealed, self.schema.as_ref(), self.options.clone())
                .map_err(|e| self.fail(partition, e))?;
        Ok(OpenFile {
            writer,
            batches: 0,
            rows: 0,
        })
    }

    /// Writes every batch received to its partition's file until the senders are gone, then
    /// closes the files (writing their final frames) and describes them for the scheduler.
    fn run(
        mut self,
        mut rx: tokio::sync::mpsc::Receiver<(usize, RecordBatch)>,
    ) -> Result<Vec<ShuffleWritePartition>> {
        while let Some((partition, batch)) = rx.blocking_recv() {
            if batch.num_rows() == 0 {
                continue;
            }
            if !self.open.contains_key(&partition) {
                let file = self.open(partition)?;
                self.open.insert(partition, file);
            }
            let outcome = match self.open.get_mut(&partition) {
                Some(file) => {
                    file.batches += 1;
                    file.rows += batch.num_rows() as u64;
                    file.writer.write(&batch)
                }
                None => continue,
            };
            outcome.map_err(|e| self.fail(partition, e))?;
        }
        let mut written = Vec::with_capacity(self.open.len());
        for (partition, mut file) in std::mem::take(&mut self.open) {
            file.writer.finish().map_err(|e| self.fail(partition, e))?;
            let sealed = file
                .writer
                .into_inner()
                .map_err(|e| self.fail(partition, e))?;
            let (_, bytes) = sealed.finish().map_err(|e| self.fail(partition, e))?;
            written.push(ShuffleWritePartition {
                partition_id: partition as u64,
                num_batches: file.batches,
                num_rows: file.rows,
                num_bytes: bytes,
                file_id: Some(self.file_id),
                is_sort_shuffle: false,
            });
        }
        written.sort_by_key(|p| p.partition_id);
        Ok(written)
    }
}
