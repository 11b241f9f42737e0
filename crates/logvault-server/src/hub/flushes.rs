//! The flushes queries ask of a workspace's writer: stored without holding its appends.
//!
//! A query must see every row acknowledged before it, so it asks the writer to store what it
//! holds into segments. The writer's task asks its encoding stage for the flush and goes on
//! logging (acknowledging) and batching the next appends while the flush's segments are
//! encoded; the query waits for the flush alone. At most one flush is in flight: queries that
//! come while it is stored, after more rows were acknowledged, wait together for one more, which
//! starts when it is done; queries that come while nothing was acknowledged since it started
//! wait for it. So queries back to back cut one segment per flush in flight, not one each.
//!
//! Before, the writer's task waited for the flush itself: no append was logged while the
//! segments were encoded, and under a saturating stream beside four query clients the server
//! acknowledged a sixth fewer rows a second (docs/bench/README.md, "A query's flush beside the
//! appends").

use std::sync::Arc;

use logvault::WorkspaceIngestor;
use tokio::task::JoinHandle;

use super::{FlushReply, HubError};

/// A flush being stored, and the queries waiting for it.
struct InFlight {
    task: JoinHandle<Result<(), HubError>>,
    waiting: Vec<FlushReply>,
}

/// The queries' flushes of one writer (see the module documentation).
pub(super) struct QueryFlushes {
    workspace: String,
    in_flight: Option<InFlight>,
    /// Queries that came after rows were acknowledged past the flush in flight.
    next: Vec<FlushReply>,
}

impl QueryFlushes {
    pub(super) fn new(workspace: &str) -> Self {
        Self {
            workspace: workspace.to_owned(),
            in_flight: None,
            next: Vec::new(),
        }
    }

    /// A query asks for a flush; `dirty`: rows were acknowledged since the last flush started.
    /// Returns whether a flush was started (what the writer held is then being stored).
    pub(super) async fn ask(
        &mut self,
        reply: FlushReply,
        dirty: bool,
        ingestor: &mut WorkspaceIngestor,
    ) -> bool {
        match (&mut self.in_flight, dirty) {
            (None, false) => {
                let _ = reply.send(Ok(()));
                false
            }
            (Some(flight), false) => {
                flight.waiting.push(reply);
                false
            }
            (Some(_), true) => {
                self.next.push(reply);
                false
            }
            (None, true) => self.start(vec![reply], ingestor).await,
        }
    }

    /// Waits for the flush in flight (forever if there is none: a branch of the writer's
    /// `select!`), answers its queries and returns its outcome.
    pub(super) async fn finished(&mut self) -> Result<(), HubError> {
        let Some(flight) = self.in_flight.as_mut() else {
            return std::future::pending().await;
        };
        let result = (&mut flight.task).await.unwrap_or_else(|e| {
            tracing::error!(workspace = %self.workspace, error = %e, "a flush's task failed");
            Err(HubError::FlushFailed {
                workspace: self.workspace.clone(),
            })
        });
        if let Some(flight) = self.in_flight.take() {
            for reply in flight.waiting {
                let _ = reply.send(result.clone());
            }
        }
        result
    }

    /// After [`QueryFlushes::finished`]: starts the flush the queries that came meanwhile wait
    /// for, if any. Returns whether one was started.
    pub(super) async fn start_next(&mut self, ingestor: &mut WorkspaceIngestor) -> bool {
        if self.in_flight.is_some() || self.next.is_empty() {
            return false;
        }
        let waiting = std::mem::take(&mut self.next);
        self.start(waiting, ingestor).await
    }

    async fn start(&mut self, waiting: Vec<FlushReply>, ingestor: &mut WorkspaceIngestor) -> bool {
        match ingestor.start_flush().await {
            Ok(pending) => {
                let task = tokio::spawn(async move {
                    pending
                        .wait()
                        .await
                        .map_err(|e| HubError::Engine(Arc::new(e)))
                });
                self.in_flight = Some(InFlight { task, waiting });
                true
            }
            Err(e) => {
                let e = HubError::Engine(Arc::new(e));
                for reply in waiting {
                    let _ = reply.send(Err(e.clone()));
                }
                false
            }
        }
    }

    /// The writer is closing: waits for the flush in flight, then answers the queries waiting
    /// for the next one with `closing`'s outcome (closing stores everything).
    pub(super) async fn close(mut self, closing: Result<(), HubError>) {
        if self.in_flight.is_some() {
            let _ = self.finished().await;
        }
        for reply in self.next {
            let _ = reply.send(closing.clone());
        }
    }
}
