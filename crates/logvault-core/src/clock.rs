//! Time, as logvault sees it.
//!
//! Every rule with a duration in it (key checks every 6-60 s, revocation within an hour, 14-day
//! soft delete, 30-day link window, 14-day hot window) asks a [`Clock`] for the time. Production
//! code uses [`SystemClock`]; tests use [`TestClock`] and move it by hand, so no test sleeps.
//!
//! ```
//! use chrono::{Duration, TimeZone, Utc};
//! use logvault_core::{Clock, TestClock};
//!
//! let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
//! clock.advance(Duration::days(14));
//! assert_eq!(clock.now(), Utc.with_ymd_and_hms(2026, 1, 15, 0, 0, 0).unwrap());
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// A clock shared between components.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct TestClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl TestClock {
    /// A clock reading `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward (or backward, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A time as messages print it: UTC to the second, `2026-12-02 02:23:20Z`.
pub fn display_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// A clock that starts at a given time and moves on with the wall clock from there: the CLI's
/// `--now`, so that a command run "as if it were" some time still sees time pass (an operation
/// due two seconds later completes two seconds later).
#[derive(Debug, Clone)]
pub struct StartedClock {
    start: DateTime<Utc>,
    since: std::time::Instant,
}

impl StartedClock {
    /// A clock reading `start` now, and `start + elapsed` later.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            start,
            since: std::time::Instant::now(),
        }
    }
}

impl Clock for StartedClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = Duration::from_std(self.since.elapsed()).unwrap_or(Duration::MAX);
        self.start
            .checked_add_signed(elapsed)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// A clock that never reads earlier than a floor: `max(inner.now(), floor)`.
///
/// The CLI's `--now` runs a command as if the clock read a given time; state written under a later
/// time must not be undone by an earlier one, so the engine raises the floor to the latest time it
/// has persisted.
#[derive(Debug, Clone)]
pub struct FlooredClock {
    inner: SharedClock,
    floor: DateTime<Utc>,
}

impl FlooredClock {
    /// Wraps `inner` so that it never reads earlier than `floor`.
    pub fn new(inner: SharedClock, floor: DateTime<Utc>) -> Self {
        Self { inner, floor }
    }
}

impl Clock for FlooredClock {
    fn now(&self) -> DateTime<Utc> {
        self.inner.now().max(self.floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn test_clock_clones_share_time() {
        let a = TestClock::new(t0());
        let b = a.clone();
        a.advance(Duration::seconds(61));
        assert_eq!(b.now(), t0() + Duration::seconds(61));
        b.set(t0());
        assert_eq!(a.now(), t0());
    }

    #[test]
    fn floored_clock_never_reads_before_floor() {
        let inner = TestClock::new(t0());
        let floored = FlooredClock::new(Arc::new(inner.clone()), t0() + Duration::days(1));
        assert_eq!(floored.now(), t0() + Duration::days(1));
        inner.advance(Duration::days(2));
        assert_eq!(floored.now(), t0() + Duration::days(2));
    }

    #[test]
    fn times_print_to_the_second_in_utc() {
        let t = t0() + Duration::nanoseconds(188_293_193);
        assert_eq!(display_time(t), "2026-03-01 12:00:00Z");
    }

    #[test]
    fn started_clock_starts_where_told_and_moves_on() {
        let clock = StartedClock::new(t0());
        let first = clock.now();
        assert!(
            first >= t0() && first - t0() < Duration::seconds(60),
            "{first}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(clock.now() > first, "the clock did not move");
    }

    #[test]
    fn system_clock_moves_forward() {
        let a = SystemClock.now();
        let b = SystemClock.now();
        assert!(b >= a);
    }
}
