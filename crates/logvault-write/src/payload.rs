//! A text payload (JSON, CSV, text lines) through a writer: parsed on a blocking thread (a slow
//! sender never holds an async worker), appended batch by batch, with the key gate asked again
//! at most once a second.

use std::io::BufRead;

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use logvault_core::SharedClock;
use logvault_ingest::{Format, IngestError, ParseOptions, ParseReport, Parser, TableSchema};
use logvault_store::AccountKeyLease;
use tokio::sync::mpsc;

use crate::{WorkspaceWriter, WriteError, WriteGate};

/// How often (on the writer's clock) a running payload asks its gate whether the key it was
/// admitted under was revoked, and records rows dropped so far.
pub(crate) const GATE_INTERVAL: chrono::Duration = chrono::Duration::seconds(1);

/// A payload to parse.
#[derive(Debug)]
pub struct Payload<R> {
    /// The input.
    pub input: R,
    /// Its format.
    pub format: Format,
    /// Parsing limits and the bad-record policy.
    pub parse: ParseOptions,
    /// The table's schema to grow from (its name is the table's).
    pub schema: TableSchema,
    /// When the rows were received (`_TimeReceived`).
    pub received: DateTime<Utc>,
}

/// What a payload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayloadReport {
    /// Rows acknowledged (durable in the log).
    pub accepted: u64,
    /// Rows dropped because the key was revoked while the payload ran (R-E2).
    pub dropped: u64,
    /// Why rows were dropped.
    pub reason: Option<String>,
    /// Malformed records skipped.
    pub rejected: u64,
    /// The first malformed records, with their line numbers.
    pub errors: Vec<String>,
}

/// Progress of a running payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PayloadProgress {
    /// Rows acknowledged so far (durable: in the log, or stored by a bulk load's checkpoint).
    pub accepted: u64,
    /// Rows read and taken so far (acknowledged or not yet).
    pub read: u64,
    /// Malformed records so far.
    pub rejected: u64,
}

/// A callback for progress.
pub type ProgressFn<'a> = &'a mut (dyn FnMut(PayloadProgress) + Send);

/// What the parsing thread sends: a batch with the records rejected so far.
pub(crate) type Parsed = Result<(RecordBatch, u64), IngestError>;

/// Starts parsing `payload` on a blocking thread; batches arrive on the receiver, the final
/// report from the handle.
pub(crate) fn spawn_parser<R: BufRead + Send + 'static>(
    payload: Payload<R>,
) -> (
    mpsc::Receiver<Parsed>,
    tokio::task::JoinHandle<Result<ParseReport, IngestError>>,
) {
    let (tx, rx) = mpsc::channel::<Parsed>(2);
    let handle = tokio::task::spawn_blocking(move || {
        let Payload {
            input,
            format,
            parse,
            mut schema,
            received,
        } = payload;
        let mut parser = Parser::new(input, format, &mut schema, parse, received)?;
        loop {
            match parser.next_batch() {
                Ok(Some(batch)) => {
                    let rejected = parser.report().rejected;
                    if tx.blocking_send(Ok((batch, rejected))).is_err() {
                        // The writer stopped (an error): nothing more to parse for.
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
        Ok(parser.into_report())
    });
    (rx, handle)
}

pub(crate) async fn join(
    workspace: &str,
    handle: tokio::task::JoinHandle<Result<ParseReport, IngestError>>,
) -> Result<ParseReport, WriteError> {
    handle
        .await
        .map_err(|e| WriteError::Internal {
            workspace: workspace.to_owned(),
            reason: format!("the parsing thread failed: {e}"),
        })?
        .map_err(WriteError::from)
}

/// Counts dropped rows into the gate at most once a second.
pub(crate) struct DropCounter<'a> {
    gate: &'a dyn WriteGate,
    clock: SharedClock,
    workspace: String,
    pending: u64,
    next: DateTime<Utc>,
}

impl<'a> DropCounter<'a> {
    pub(crate) fn new(gate: &'a dyn WriteGate, clock: &SharedClock, workspace: &str) -> Self {
        Self {
            gate,
            clock: clock.clone(),
            workspace: workspace.to_owned(),
            pending: 0,
            next: clock.now() + GATE_INTERVAL,
        }
    }

    pub(crate) fn add(&mut self, rows: u64, reason: &str) -> Result<(), WriteError> {
        self.pending += rows;
        if self.clock.now() >= self.next {
            self.flush(reason)?;
        }
        Ok(())
    }

    pub(crate) fn flush(&mut self, reason: &str) -> Result<(), WriteError> {
        if self.pending > 0 {
            self.gate
                .dropped(self.pending, reason)
                .map_err(|reason| WriteError::Gate {
                    workspace: self.workspace.clone(),
                    reason,
                })?;
            self.pending = 0;
        }
        self.next = self.clock.now() + GATE_INTERVAL;
        Ok(())
    }
}

impl WorkspaceWriter {
    /// Parses `payload` and appends its batches for `lease`'s account, then stores them. Every
    /// second the gate is asked whether the key was revoked since admission: if so, the batch
    /// in hand and the rest of the input are dropped and counted (R-E2), what was acknowledged
    /// before stays in the log, not stored under the revoked key, until the key is back.
    ///
    /// # Errors
    /// Parse errors under the refuse policy, read errors (what was acknowledged before stays
    /// acknowledged), log, batcher and store errors.
    pub async fn ingest_payload<R: BufRead + Send + 'static>(
        &mut self,
        payload: Payload<R>,
        lease: &AccountKeyLease,
        gate: &dyn WriteGate,
        mut progress: Option<ProgressFn<'_>>,
    ) -> Result<PayloadReport, WriteError> {
        let table = payload.schema.table().to_owned();
        let clock = self.clock().clone();
        let mut report = PayloadReport::default();
        let (mut rx, handle) = spawn_parser(payload);
        let mut next_gate = clock.now() + GATE_INTERVAL;
        let mut drops = DropCounter::new(gate, &clock, self.workspace());
        while let Some(parsed) = rx.recv().await {
            let (batch, rejected) = parsed?;
            let rows = batch.num_rows() as u64;
            if let Some(reason) = &report.reason {
                report.dropped += rows;
                drops.add(rows, reason)?;
                continue;
            }
            if clock.now() >= next_gate {
                next_gate = clock.now() + GATE_INTERVAL;
                if let Some(reason) = gate.revoked().await {
                    self.abandon_current().await;
                    report.dropped += rows;
                    drops.add(rows, &reason)?;
                    report.reason = Some(reason);
                    continue;
                }
            }
            self.append(&table, &batch, lease).await?;
            report.accepted += rows;
            if let Some(progress) = progress.as_mut() {
                progress(PayloadProgress {
                    accepted: report.accepted,
                    read: report.accepted,
                    rejected,
                });
            }
        }
        if let Some(reason) = report.reason.clone() {
            drops.flush(&reason)?;
        }
        let parsed = join(self.workspace(), handle).await?;
        report.rejected = parsed.rejected;
        report.errors = parsed.errors.iter().map(ToString::to_string).collect();
        if report.reason.is_none() {
            self.flush().await?;
        }
        Ok(report)
    }
}

/// Reads `payload` to its end without storing anything, counting its rows into `gate` as
/// dropped for `reason` (at most once a second, so that an endless stream shows) (R-E2, R-D2).
/// Returns the rows dropped.
///
/// # Errors
/// Parse and read errors; the gate's.
pub async fn drop_payload<R: BufRead + Send + 'static>(
    workspace: &str,
    payload: Payload<R>,
    clock: &SharedClock,
    gate: &dyn WriteGate,
    reason: &str,
) -> Result<u64, WriteError> {
    let (mut rx, handle) = spawn_parser(payload);
    let mut drops = DropCounter::new(gate, clock, workspace);
    let mut total = 0;
    while let Some(parsed) = rx.recv().await {
        let (batch, _) = parsed?;
        total += batch.num_rows() as u64;
        drops.add(batch.num_rows() as u64, reason)?;
    }
    drops.flush(reason)?;
    join(workspace, handle).await?;
    Ok(total)
}
