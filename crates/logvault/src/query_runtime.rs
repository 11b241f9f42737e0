//! A runtime of its own for queries, so that ingestion in the same process comes first.
//!
//! A query is CPU-bound work (decrypting, decompressing, decoding and aggregating segments) that
//! DataFusion spreads over every worker of the runtime it runs on. In a process that also
//! ingests (`logvault serve`, an embedder), queries on the same runtime take the CPU from the
//! write path: on two cores, four query clients cut ingestion to a third of its rate alone. A
//! log store must keep up with what it is sent (rows not stored are dropped by the shippers'
//! bounded buffers), while a query may take longer; so queries run here, on worker threads
//! whose scheduling priority is lowered (`nice`, per thread, Linux), and everything else stays
//! on the caller's runtime. With nothing else to do, the query threads use every core; when
//! ingestion needs the CPU, the kernel gives it first.
//!
//! ```
//! # async fn demo() -> Result<(), logvault::EngineError> {
//! let queries = logvault::QueryRuntime::new(2, 10)?;
//! let answer = queries.spawn(async { 6 * 7 }).await.expect("the query task ran");
//! assert_eq!(answer, 42);
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

use crate::EngineError;

/// The most a nice value can be on Linux (the lowest priority).
const MAX_NICE: i32 = 19;

/// A multi-threaded tokio runtime for queries whose threads run at a lower CPU priority.
///
/// Run a query's whole future on it ([`QueryRuntime::spawn`]): DataFusion's own tasks are
/// spawned on the runtime that polls the plan, so they stay here too. Dropping it stops its
/// threads without waiting for what runs on them (it may be dropped inside another runtime).
pub struct QueryRuntime {
    runtime: Option<Runtime>,
    lowered_by: i32,
}

impl std::fmt::Debug for QueryRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryRuntime")
            .field("threads", &self.threads())
            .field("lowered_by", &self.lowered_by)
            .finish()
    }
}

impl QueryRuntime {
    /// The name its threads are given (what a profiler or `/proc/<pid>/task/*/comm` shows).
    pub const THREAD_NAME: &str = "logvault-query";

    /// A runtime of `threads` workers (0: one per core, tokio's default) whose threads' nice value is the
    /// process's plus `lower_by` (0 to 19; 0 keeps the process's priority, 19 is the lowest).
    /// The priority is lowered on Linux only; elsewhere the runtime is only separate.
    ///
    /// # Errors
    /// `lower_by` out of range, or a runtime the system cannot start.
    pub fn new(threads: usize, lower_by: i32) -> Result<Self, EngineError> {
        if !(0..=MAX_NICE).contains(&lower_by) {
            return Err(EngineError::QueryRuntime {
                reason: format!("the priority may be lowered by 0 to {MAX_NICE}, not {lower_by}"),
            });
        }
        let warned = std::sync::Arc::new(AtomicBool::new(false));
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if threads > 0 {
            builder.worker_threads(threads);
        }
        let runtime = builder
            .thread_name(Self::THREAD_NAME)
            .enable_all()
            .on_thread_start(move || lower_this_thread(lower_by, &warned))
            .build()
            .map_err(|e| EngineError::QueryRuntime {
                reason: format!("cannot start its threads: {e}"),
            })?;
        Ok(Self {
            runtime: Some(runtime),
            lowered_by: lower_by,
        })
    }

    /// Its workers.
    pub fn threads(&self) -> usize {
        self.handle().metrics().num_workers()
    }

    /// How much lower its threads' priority is than the process's.
    pub fn lowered_by(&self) -> i32 {
        self.lowered_by
    }

    /// How long its workers have been busy running tasks since it started, all together (the
    /// CPU time queries took, as tokio counts it).
    pub fn busy(&self) -> std::time::Duration {
        let metrics = self.handle().metrics();
        (0..metrics.num_workers())
            .map(|w| metrics.worker_total_busy_duration(w))
            .sum()
    }

    /// The runtime's handle.
    ///
    /// # Panics
    /// Never: the runtime is only taken when the value is dropped.
    pub fn handle(&self) -> &Handle {
        match &self.runtime {
            Some(rt) => rt.handle(),
            None => unreachable!("the query runtime is only taken out on drop"),
        }
    }

    /// Runs `future` on the query threads; the handle resolves to its output.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle().spawn(future)
    }
}

impl Drop for QueryRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Lowers the calling thread's priority by `by` (Linux: the nice value is per thread).
fn lower_this_thread(by: i32, warned: &AtomicBool) {
    if by == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let me = Some(rustix::thread::gettid());
        let result = rustix::process::getpriority_process(me)
            .and_then(|now| rustix::process::setpriority_process(me, (now + by).min(MAX_NICE)));
        if let Err(e) = result
            && !warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(error = %e, "cannot lower the query threads' priority; queries compete with ingestion for the CPU");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = warned.load(Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_priority_out_of_range_is_refused() {
        for bad in [-1, 20] {
            let e = QueryRuntime::new(1, bad).unwrap_err().to_string();
            assert!(e.contains(&bad.to_string()), "{e}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn query_threads_run_at_a_lower_priority_than_the_caller() {
        let me = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let queries = QueryRuntime::new(2, 7).unwrap();
        let theirs = queries.handle().block_on(async {
            queries
                .spawn(async {
                    rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
                })
                .await
                .unwrap()
        });
        assert_eq!(theirs, (me + 7).min(MAX_NICE));
        // A worker publishes its busy time when it parks, which may be after the task's output
        // has reached the caller: wait for it, boundedly.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while queries.busy() == std::time::Duration::ZERO && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(queries.busy() > std::time::Duration::ZERO);
        // The caller's own thread is untouched.
        let after = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        assert_eq!(after, me);
    }

    #[test]
    fn dropping_it_inside_another_runtime_does_not_panic() {
        let outer = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        outer.block_on(async {
            let queries = QueryRuntime::new(1, 0).unwrap();
            let n = queries.spawn(async { 1 + 1 }).await.unwrap();
            assert_eq!(n, 2);
            drop(queries);
        });
    }
}
