//! The promoter: the one thread that decodes segments into the memory tier.
//!
//! Promotion decrypts and decodes a whole segment, as much CPU as a full scan of it. Run on the
//! query engine's threads, it made the queries that caused it slower (a benchmark found warm
//! queries 3-4x slower while promotions ran). So every promotion runs here: one job at a time,
//! on a thread of its own that on Linux runs at the lowest priority (nice 19), so the scheduler
//! gives it the cores queries leave idle, and each job first waits for queries to be quiet
//! (`activity`). The thread starts at the first promotion and ends with the cache; jobs whose
//! caller is gone are skipped.

use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::oneshot;

use crate::activity::Activity;

type Job = Box<dyn FnOnce() + Send>;

/// The name of the promotion thread (what a profiler or `/proc/<pid>/task/*/comm` shows, cut
/// to 15 bytes there: `logvault-promot`).
pub const PROMOTION_THREAD_NAME: &str = "logvault-promote";

/// Runs jobs on the low-priority promotion thread.
#[derive(Debug, Default)]
pub(crate) struct Promoter {
    jobs: Mutex<Option<Sender<Job>>>,
}

impl Promoter {
    /// Runs `job` on the promotion thread (started if needed) and waits for its result without
    /// blocking the async runtime. `since` is when the work was asked for: the job waits for
    /// quiet at most `activity::MAX_DEFER` after it.
    ///
    /// # Errors
    /// If the thread cannot be started, or stopped before the job ran.
    /// The job first waits for queries to be quiet (`activity`); it is skipped if the caller
    /// stopped waiting for it meanwhile (a cache dropped, a task aborted).
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        activity: Arc<Activity>,
        since: Instant,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            activity.quiet_blocking(since, || done.is_closed());
            if !done.is_closed() {
                // The caller may be gone by now: nothing to tell then.
                let _ = done.send(job());
            }
        });
        self.sender()?
            .send(job)
            .map_err(|_| "the promotion thread has stopped".to_owned())?;
        result
            .await
            .map_err(|_| "the promotion thread dropped the job".to_owned())
    }

    fn sender(&self) -> Result<Sender<Job>, String> {
        let mut jobs = self
            .jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tx) = jobs.as_ref() {
            return Ok(tx.clone());
        }
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name(PROMOTION_THREAD_NAME.into())
            .spawn(move || {
                lower_priority();
                for job in rx {
                    job();
                }
            })
            .map_err(|e| format!("cannot start the promotion thread: {e}"))?;
        *jobs = Some(tx.clone());
        Ok(tx)
    }
}

/// The lowest scheduling priority for the calling thread (Linux: `setpriority` on its thread id
/// applies to that thread only). Elsewhere, or if refused, it keeps the normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
        tracing::debug!(error = %e, "promotion thread keeps the normal priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_in_order_on_one_named_thread() {
        let promoter = Promoter::default();
        let first = promoter
            .run(Arc::default(), Instant::now(), || {
                std::thread::current().name().map(str::to_owned)
            })
            .await
            .unwrap();
        assert_eq!(first.as_deref(), Some("logvault-promote"));
        let ids: Vec<_> = futures::future::join_all((0..4).map(|_| {
            promoter.run(Arc::default(), Instant::now(), || {
                std::thread::current().id()
            })
        }))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "one thread: {ids:?}");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_thread_runs_at_the_lowest_priority() {
        let promoter = Promoter::default();
        let nice = promoter
            .run(Arc::default(), Instant::now(), || {
                rustix::process::getpriority_process(Some(rustix::thread::gettid()))
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(nice, 19);
        // The caller's own priority is untouched.
        let mine = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        assert_ne!(mine, 19);
    }

    #[tokio::test]
    async fn a_job_whose_caller_is_gone_is_skipped() {
        let promoter = Promoter::default();
        let activity = Arc::new(Activity::default());
        // Queries keep running until well after the caller has given up. (A thread marking
        // activity every few milliseconds let the job run when it was not scheduled for longer
        // than the quiet period, on a loaded machine.)
        activity.busy_for(std::time::Duration::from_secs(60));
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        // The caller gives up while the job waits for quiet.
        let gave_up = tokio::time::timeout(
            crate::activity::QUIET / 4,
            promoter.run(Arc::clone(&activity), Instant::now(), move || {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }),
        )
        .await;
        assert!(gave_up.is_err());
        // A later job runs after it: the first was skipped, not run late.
        promoter
            .run(Arc::default(), Instant::now(), || ())
            .await
            .unwrap();
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }
}
