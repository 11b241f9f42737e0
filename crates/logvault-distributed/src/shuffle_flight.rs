//! The encrypted shuffle's serving side: the Arrow Flight service an executor answers other
//! executors' (and the client's) partition fetches with, in place of Ballista's
//! `BallistaFlightService`, which reads shuffle files as plaintext Arrow IPC.
//!
//! It serves what Ballista's readers ask for: `do_get` with a `FetchPartition` ticket (decoded
//! batches, as Flight data) and the `IO_BLOCK_TRANSPORT` action (the file's Arrow IPC stream
//! bytes, which the reader decodes). Both decrypt the file with the executor's shuffle key
//! first; a file that fails authentication fails the fetch with an error naming the job, stage,
//! partition and file. Byte ranges, index files and the sort-shuffle layout are refused: the
//! engine ([`crate::shuffle_engine`]) never writes them.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use ballista_core::execution_plans::create_shuffle_path;
use ballista_core::serde::decode_protobuf;
use ballista_core::serde::scheduler::{Action as BallistaAction, ShuffleFileKind, ShuffleLayout};
use logvault_crypto::{ShuffleKey, ShuffleOpenReader};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::shuffle_engine::shuffle_binding;

type BoxedStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Bytes per message of a block transfer (as Ballista's service sends them).
const BLOCK_BYTES: usize = 4 * 1024 * 1024;
/// The action Ballista's block reader asks for.
const BLOCK_TRANSPORT: &str = "IO_BLOCK_TRANSPORT";

/// The Flight service of an executor with encrypted shuffle files.
#[derive(Clone)]
pub struct EncryptedShuffleFlightService {
    executor: String,
    work_dir: PathBuf,
    key: Arc<ShuffleKey>,
}

impl std::fmt::Debug for EncryptedShuffleFlightService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedShuffleFlightService")
            .field("executor", &self.executor)
            .field("work_dir", &self.work_dir)
            .finish_non_exhaustive()
    }
}

/// A partition file a fetch names: where it is and what binds its encryption.
struct Wanted {
    path: PathBuf,
    binding: String,
}

impl EncryptedShuffleFlightService {
    /// The service of executor `executor` (a name for messages) over its work directory, with
    /// the key its engine writes under.
    pub fn new(executor: &str, work_dir: impl Into<PathBuf>, key: Arc<ShuffleKey>) -> Self {
        Self {
            executor: executor.to_owned(),
            work_dir: work_dir.into(),
            key,
        }
    }

    fn status(&self, binding: &str, reason: impl std::fmt::Display) -> Status {
        Status::internal(format!(
            "executor {} cannot serve shuffle file {binding}: {reason}",
            self.executor
        ))
    }

    fn wanted(&self, bytes: &[u8]) -> Result<Wanted, Status> {
        let action = decode_protobuf(bytes)
            .map_err(|e| Status::invalid_argument(format!("not a partition fetch: {e}")))?;
        let BallistaAction::FetchPartition {
            job_id,
            stage_id,
            partition_id,
            file_id,
            layout,
            file_kind,
            byte_ranges,
            ..
        } = action;
        let binding = shuffle_binding(job_id.as_str(), stage_id, partition_id, file_id);
        if !byte_ranges.is_empty() {
            return Err(Status::unimplemented(format!(
                "executor {}: shuffle file {binding} is encrypted; byte ranges are not served",
                self.executor
            )));
        }
        if !matches!(layout, ShuffleLayout::Passthrough)
            || !matches!(file_kind, ShuffleFileKind::Data)
        {
            return Err(Status::unimplemented(format!(
                "executor {}: shuffle file {binding}: only whole pass-through data files are \
                 written by the encrypted shuffle",
                self.executor
            )));
        }
        let path = create_shuffle_path(
            &self.work_dir,
            &job_id,
            stage_id,
            partition_id,
            file_id,
            false,
        )
        .map_err(|e| self.status(&binding, e))?;
        Ok(Wanted { path, binding })
    }

    /// The decrypted contents of a partition file, as a reader.
    fn open(&self, wanted: &Wanted) -> Result<ShuffleOpenReader<BufReader<File>>, Status> {
        let file = File::open(&wanted.path).map_err(|e| self.status(&wanted.binding, e))?;
        ShuffleOpenReader::new(&self.key, &wanted.binding, BufReader::new(file))
            .map_err(|e| self.status(&wanted.binding, e))
    }
}

#[tonic::async_trait]
impl FlightService for EncryptedShuffleFlightService {
    type HandshakeStream = BoxedStream<HandshakeResponse>;
    type ListFlightsStream = BoxedStream<FlightInfo>;
    type DoGetStream = BoxedStream<FlightData>;
    type DoPutStream = BoxedStream<PutResult>;
    type DoActionStream = BoxedStream<arrow_flight::Result>;
    type ListActionsStream = BoxedStream<ActionType>;
    type DoExchangeStream = BoxedStream<FlightData>;

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let wanted = self.wanted(&request.into_inner().ticket)?;
        let opened = self.open(&wanted)?;
        let reader =
            StreamReader::try_new(opened, None).map_err(|e| self.status(&wanted.binding, e))?;
        let schema = reader.schema();
        let (tx, rx) = mpsc::channel(2);
        let service = self.clone();
        tokio::task::spawn_blocking(move || {
            for batch in reader {
                let item = batch
                    .map_err(|e| FlightError::Tonic(Box::new(service.status(&wanted.binding, e))));
                let stop = item.is_err();
                if tx.blocking_send(item).is_err() || stop {
                    break;
                }
            }
        });
        let options = IpcWriteOptions::default();
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .with_options(options)
            .build(ReceiverStream::new(rx))
            .map(|item| item.map_err(|e| Status::internal(e.to_string())));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let action = request.into_inner();
        if action.r#type != BLOCK_TRANSPORT {
            return Err(Status::unimplemented(format!(
                "do_action does not implement {}",
                action.r#type
            )));
        }
        let wanted = self.wanted(&action.body)?;
        let mut opened = self.open(&wanted)?;
        let (tx, rx) = mpsc::channel::<Result<arrow_flight::Result, Status>>(2);
        let service = self.clone();
        tokio::task::spawn_blocking(move || {
            loop {
                let mut block = vec![0u8; BLOCK_BYTES];
                let mut filled = 0;
                let outcome = loop {
                    match opened.read(&mut block[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == BLOCK_BYTES {
                                break Ok(());
                            }
                        }
                        Err(e) => break Err(service.status(&wanted.binding, e)),
                    }
                };
                block.truncate(filled);
                let send = match outcome {
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                    Ok(()) if filled == 0 => return,
                    Ok(()) => tx.blocking_send(Ok(arrow_flight::Result { body: block.into() })),
                };
                if send.is_err() || filled < BLOCK_BYTES {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        let actions = vec![Ok(ActionType {
            r#type: BLOCK_TRANSPORT.to_owned(),
            description: "a decrypted shuffle partition's Arrow IPC stream".to_owned(),
        })];
        Ok(Response::new(Box::pin(tokio_stream::iter(actions))))
    }

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(Status::unimplemented("handshake"))
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        Err(Status::unimplemented("list_flights"))
    }

    async fn get_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(Status::unimplemented("get_flight_info"))
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented("poll_flight_info"))
    }

    async fn get_schema(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        Err(Status::unimplemented("get_schema"))
    }

    async fn do_put(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        Err(Status::unimplemented("do_put"))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented("do_exchange"))
    }
}
