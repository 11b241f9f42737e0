//! When the query engine is busy, so that promotions wait for it.
//!
//! On a machine with few cores (or two hyperthreads of one core) any background CPU work slows
//! the queries running beside it, even at the lowest priority: promotions share execution
//! units, memory bandwidth and page-fault work with them. So a promotion waits until queries
//! have left the cache alone for [`QUIET`]: no scan planned over the cache, no segment read
//! through its disk-tier store and no ingested batch (`HotCache::note_activity`) for that long. A query that only reads the memory tier marks
//! its planning, not its execution. Under constant load a promotion waits at most
//! [`MAX_DEFER`] from when it was asked for, so hot data still reaches memory: the bound counts
//! from the request, not from each wait, so promotions queued behind one another run one after
//! the other once their time is up instead of waiting the bound again each (a server whose
//! queries never paused promoted one segment per bound, and its queries read nearly every
//! segment from its file: docs/bench/journal.md).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long queries must have been quiet before a promotion starts.
pub(crate) const QUIET: Duration = Duration::from_millis(100);
/// The longest a promotion waits for quiet.
pub(crate) const MAX_DEFER: Duration = Duration::from_secs(10);
/// How often a waiting promotion looks again.
const POLL: Duration = Duration::from_millis(10);

/// The time of the latest query activity.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    last: Mutex<Option<Instant>>,
}

impl Activity {
    /// Notes query activity now.
    pub(crate) fn mark(&self) {
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
    }

    /// Notes query activity lasting until `for_` from now (tests: busy without a thread that
    /// must be scheduled to keep marking).
    #[cfg(test)]
    pub(crate) fn busy_for(&self, for_: Duration) {
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now() + for_);
    }

    /// How long until queries have been quiet for [`QUIET`] (zero: quiet now).
    fn remaining(&self) -> Duration {
        let last = *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.map_or(Duration::ZERO, |t| QUIET.saturating_sub(t.elapsed()))
    }

    /// How long to sleep before looking again, or `None` to go ahead (quiet, or
    /// [`MAX_DEFER`] has passed since `since`).
    fn pause(&self, since: Instant) -> Option<Duration> {
        let left = self.remaining();
        (!left.is_zero() && since.elapsed() < MAX_DEFER).then(|| left.min(POLL * 5).max(POLL))
    }

    /// Waits (async) until queries are quiet, or until [`MAX_DEFER`] after `since` (when the
    /// work was asked for).
    pub(crate) async fn quiet(&self, since: Instant) {
        while let Some(pause) = self.pause(since) {
            tokio::time::sleep(pause).await;
        }
    }

    /// As [`Activity::quiet`], blocking the calling thread; stops waiting early once
    /// `cancelled` says so.
    pub(crate) fn quiet_blocking(&self, since: Instant, cancelled: impl Fn() -> bool) {
        while !cancelled() {
            match self.pause(since) {
                Some(pause) => std::thread::sleep(pause),
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_at_first_and_after_the_quiet_period() {
        let a = Activity::default();
        assert!(a.remaining().is_zero());
        a.mark();
        assert!(!a.remaining().is_zero());
        let started = Instant::now();
        a.quiet_blocking(started, || false);
        assert!(started.elapsed() >= QUIET / 2, "{:?}", started.elapsed());
        assert!(a.remaining().is_zero());
    }

    #[test]
    fn a_cancelled_wait_ends_at_once() {
        let a = Activity::default();
        a.mark();
        let asked = std::cell::Cell::new(0);
        a.quiet_blocking(Instant::now(), || {
            asked.set(asked.get() + 1);
            true
        });
        // Asked once, before any sleep.
        assert_eq!(asked.get(), 1);
    }

    #[tokio::test]
    async fn marks_keep_a_promotion_waiting() {
        let a = std::sync::Arc::new(Activity::default());
        a.mark();
        let marker = std::sync::Arc::clone(&a);
        let busy = tokio::spawn(async move {
            for _ in 0..6 {
                marker.mark();
                tokio::time::sleep(QUIET / 4).await;
            }
        });
        let started = Instant::now();
        a.quiet(started).await;
        // Six marks a quarter period apart, then a whole quiet period.
        assert!(
            started.elapsed() >= QUIET * 6 / 4,
            "{:?}",
            started.elapsed()
        );
        busy.await.unwrap();
    }

    /// The bound counts from the request: work asked for longer than [`MAX_DEFER`] ago goes
    /// ahead at once however busy queries are, and work asked for now still waits.
    #[test]
    fn the_bound_counts_from_when_the_work_was_asked_for() {
        let a = Activity::default();
        a.busy_for(Duration::from_secs(60));
        let Some(asked_long_ago) = Instant::now().checked_sub(MAX_DEFER) else {
            return; // A machine up for less than the bound: nothing to ask for that long ago.
        };
        let started = Instant::now();
        a.quiet_blocking(asked_long_ago, || false);
        assert!(started.elapsed() < QUIET, "{:?}", started.elapsed());
        assert!(a.pause(Instant::now()).is_some(), "asked now: still waits");
    }
}
