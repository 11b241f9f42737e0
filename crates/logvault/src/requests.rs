//! Recognising a client request that is sent again: a bounded window of the idempotency keys of
//! the requests a workspace's ingestor acknowledged.
//!
//! A client that gets no answer (a timeout, a connection cut, a server killed after its fsync)
//! sends the same request again. Its key (a server forms it from the client's request id and a
//! digest of what the request holds) is logged with its rows
//! ([`logvault_write::WorkspaceWriter::append_group_keyed`]), kept here once acknowledged, and
//! read back from the log when the writer opens after a crash; a request whose key is known is
//! acknowledged again without storing its rows a second time.

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Duration, Utc};

/// How many keys a workspace's window holds at most (about 100 bytes each).
pub const REQUEST_WINDOW_KEYS: usize = 100_000;

/// How long a key is kept: a retry later than this after the first attempt is stored again.
pub const REQUEST_WINDOW_AGE: Duration = Duration::hours(1);

/// The idempotency keys of recently acknowledged requests, oldest first.
#[derive(Debug, Default)]
pub(crate) struct RequestWindow {
    keys: HashSet<String>,
    order: VecDeque<(DateTime<Utc>, String)>,
}

impl RequestWindow {
    /// Whether `key` was acknowledged within the window (as of `now`).
    pub(crate) fn contains(&mut self, key: &str, now: DateTime<Utc>) -> bool {
        self.expire(now);
        self.keys.contains(key)
    }

    /// Keeps `keys` as acknowledged at `now`.
    pub(crate) fn insert(&mut self, keys: impl IntoIterator<Item = String>, now: DateTime<Utc>) {
        for key in keys {
            if self.keys.insert(key.clone()) {
                self.order.push_back((now, key));
            }
        }
        while self.order.len() > REQUEST_WINDOW_KEYS {
            if let Some((_, key)) = self.order.pop_front() {
                self.keys.remove(&key);
            }
        }
    }

    fn expire(&mut self, now: DateTime<Utc>) {
        while let Some((at, _)) = self.order.front() {
            if now - *at <= REQUEST_WINDOW_AGE {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                self.keys.remove(&key);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_known_within_the_window_and_forgotten_after_it() {
        let t0 = DateTime::parse_from_rfc3339("2026-12-03T08:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let mut w = RequestWindow::default();
        w.insert(["a".to_owned(), "b".to_owned(), "a".to_owned()], t0);
        assert_eq!(w.len(), 2);
        assert!(w.contains("a", t0 + Duration::minutes(59)));
        assert!(!w.contains("c", t0));
        w.insert(["c".to_owned()], t0 + Duration::minutes(30));
        // An hour and a second after the first two: they are gone, the later one is kept.
        let later = t0 + REQUEST_WINDOW_AGE + Duration::seconds(1);
        assert!(!w.contains("a", later));
        assert!(!w.contains("b", later));
        assert!(w.contains("c", later));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn the_window_keeps_the_newest_keys_up_to_its_bound() {
        let t0 = Utc::now();
        let mut w = RequestWindow::default();
        w.insert((0..REQUEST_WINDOW_KEYS + 10).map(|i| format!("k{i}")), t0);
        assert_eq!(w.len(), REQUEST_WINDOW_KEYS);
        assert!(!w.contains("k0", t0));
        assert!(!w.contains("k9", t0));
        assert!(w.contains("k10", t0));
        assert!(w.contains(&format!("k{}", REQUEST_WINDOW_KEYS + 9), t0));
    }
}
