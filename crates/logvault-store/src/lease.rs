//! Leases in the object store: work that one node of several should do at a time (compaction,
//! retention) is done by the node holding the lease.
//!
//! A lease is a directory of numbered records (`records`), each written with a create-if-absent
//! put: `service/leases/<name>/<seq:020>.json`, plaintext JSON holding the holder's node name,
//! a token unique to the holding process, and when the lease expires. The latest record says who
//! holds it. To acquire, a node reads the latest record: if it is expired (or released), the
//! node creates the next number; of two nodes racing, one creates it and the other finds it
//! taken. The holder renews by creating the next number before the expiry; a holder that crashed
//! stops renewing and another node takes the lease over once it has expired. Every backend
//! behaves the same (the local filesystem has no conditional update, only create).
//!
//! A lease only keeps nodes from doing the same work twice: the catalog's own conditional puts
//! keep every change safe whoever makes it, so a holder that is late to notice it lost the lease
//! (a pause longer than the expiry) costs duplicated work, never lost data. Expiry is compared
//! on each node's clock: clocks must agree to well within the lease's duration.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use object_store::ObjectStore;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::layout::{AccountId, account_prefix};
use crate::records::{Created, MAX_ATTEMPTS, RecordLog};

/// Format version of a lease record.
pub const LEASE_FORMAT_VERSION: u32 = 1;

/// Records kept behind the latest (older ones are deleted after each write).
const KEEP: u64 = 4;

/// One record of a lease's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeaseRecord {
    version: u32,
    /// The holder's node name (what errors and `status` show).
    holder: String,
    /// Unique to the holding process: a restarted node is another holder.
    token: String,
    /// When the holder took the lease (kept across renewals).
    acquired: DateTime<Utc>,
    /// Until when the lease is held unless renewed; a released lease expires when released.
    expires: DateTime<Utc>,
}

/// A lease this process holds: what renewing and releasing it need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseGrant {
    /// The lease's name.
    pub lease: String,
    /// This node's name.
    pub holder: String,
    /// The record that granted it.
    pub number: u64,
    /// Until when it is held unless renewed.
    pub expires: DateTime<Utc>,
    token: String,
    acquired: DateTime<Utc>,
}

/// Who holds a lease now, as read from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The holder's node name.
    pub holder: String,
    /// Until when it holds it unless renewed.
    pub expires: DateTime<Utc>,
}

/// The leases of a storage root.
#[derive(Debug, Clone)]
pub struct Leases {
    objects: Arc<dyn ObjectStore>,
}

impl Leases {
    /// The leases kept under the service account of the storage root `root`.
    pub fn new(root: Arc<dyn ObjectStore>) -> Self {
        Self { objects: root }
    }

    fn log(&self, lease: &str) -> Result<RecordLog, StoreError> {
        if lease.is_empty()
            || lease.len() > 64
            || !lease
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(StoreError::InvalidName {
                kind: "lease",
                name: lease.to_owned(),
                reason: "must be 1-64 letters, digits, `-` or `_`".into(),
            });
        }
        let dir: Path = account_prefix(&AccountId::service())
            .join("leases")
            .join(lease);
        Ok(RecordLog::new(
            self.objects.clone(),
            dir,
            ".json",
            format!("lease {lease}"),
        ))
    }

    async fn latest(
        &self,
        log: &RecordLog,
        lease: &str,
    ) -> Result<Option<(u64, LeaseRecord)>, StoreError> {
        let Some((n, bytes)) = log.latest().await? else {
            return Ok(None);
        };
        let record: LeaseRecord =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                what: format!("lease {lease} (record {n})"),
                reason: e.to_string(),
            })?;
        if record.version > LEASE_FORMAT_VERSION {
            return Err(StoreError::UnsupportedFormat {
                what: format!("lease {lease} (record {n})"),
                version: record.version,
                supported: LEASE_FORMAT_VERSION,
            });
        }
        Ok(Some((n, record)))
    }

    async fn write(
        &self,
        log: &RecordLog,
        n: u64,
        record: &LeaseRecord,
    ) -> Result<Created, StoreError> {
        let bytes = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt {
            what: log.what().to_owned(),
            reason: e.to_string(),
        })?;
        let created = log.create(n, bytes).await?;
        if created == Created::Yes && n > KEEP {
            // Best effort: history is only for reading; a failed delete leaves a small object.
            for old in log.numbers().await.unwrap_or_default() {
                if old + KEEP < n {
                    let _ = log.delete(old).await;
                }
            }
        }
        Ok(created)
    }

    /// Who holds `lease` at `now`, if anyone.
    ///
    /// # Errors
    /// A bad lease name, storage errors, a damaged record.
    pub async fn holder(
        &self,
        lease: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<LeaseHolder>, StoreError> {
        let log = self.log(lease)?;
        Ok(self
            .latest(&log, lease)
            .await?
            .filter(|(_, r)| now < r.expires)
            .map(|(_, r)| LeaseHolder {
                holder: r.holder,
                expires: r.expires,
            }))
    }

    /// Takes `lease` for `holder` (this node's name) until `now + ttl`, if nobody holds it.
    ///
    /// # Errors
    /// [`StoreError::LeaseHeld`] naming the holder and its expiry; storage errors;
    /// [`StoreError::Conflict`] after too many lost races.
    pub async fn acquire(
        &self,
        lease: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseGrant, StoreError> {
        let log = self.log(lease)?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        for _ in 0..MAX_ATTEMPTS {
            let next = match self.latest(&log, lease).await? {
                Some((_, held)) if now < held.expires => {
                    return Err(StoreError::LeaseHeld {
                        lease: lease.to_owned(),
                        holder: held.holder,
                        until: held.expires.to_rfc3339(),
                    });
                }
                Some((n, _)) => n + 1,
                None => 1,
            };
            let record = LeaseRecord {
                version: LEASE_FORMAT_VERSION,
                holder: holder.to_owned(),
                token: token.clone(),
                acquired: now,
                expires: now + ttl,
            };
            if self.write(&log, next, &record).await? == Created::Yes {
                return Ok(LeaseGrant {
                    lease: lease.to_owned(),
                    holder: holder.to_owned(),
                    number: next,
                    expires: record.expires,
                    token,
                    acquired: now,
                });
            }
        }
        Err(StoreError::Conflict {
            what: log.what().to_owned(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Extends a held lease to `now + ttl`.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] if another node took the lease over (this one was too late to
    /// renew); storage errors.
    pub async fn renew(
        &self,
        grant: &LeaseGrant,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseGrant, StoreError> {
        self.follow(grant, now + ttl).await
    }

    /// Gives a held lease up: another node may take it at once.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] if another node had taken it over; storage errors.
    pub async fn release(&self, grant: &LeaseGrant, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.follow(grant, now).await.map(drop)
    }

    /// Writes the record after `grant`'s, still held by this process, expiring at `expires`.
    async fn follow(
        &self,
        grant: &LeaseGrant,
        expires: DateTime<Utc>,
    ) -> Result<LeaseGrant, StoreError> {
        let log = self.log(&grant.lease)?;
        let lost = |taken_by: String| StoreError::LeaseLost {
            lease: grant.lease.clone(),
            holder: grant.holder.clone(),
            taken_by,
        };
        let latest = self.latest(&log, &grant.lease).await?;
        match latest {
            Some((n, record)) if n == grant.number && record.token == grant.token => {}
            Some((_, record)) => return Err(lost(record.holder)),
            None => return Err(lost("nobody (its records are gone)".into())),
        }
        let record = LeaseRecord {
            version: LEASE_FORMAT_VERSION,
            holder: grant.holder.clone(),
            token: grant.token.clone(),
            acquired: grant.acquired,
            expires,
        };
        match self.write(&log, grant.number + 1, &record).await? {
            Created::Yes => Ok(LeaseGrant {
                number: grant.number + 1,
                expires,
                ..grant.clone()
            }),
            Created::Lost => {
                let by = self
                    .latest(&log, &grant.lease)
                    .await?
                    .map_or_else(|| "another node".to_owned(), |(_, r)| r.holder);
                Err(lost(by))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + secs, 0).unwrap()
    }

    fn leases() -> Leases {
        Leases::new(Arc::new(InMemory::new()))
    }

    #[tokio::test]
    async fn one_holder_at_a_time_then_expiry_lets_another_take_over() {
        let l = leases();
        let ttl = Duration::seconds(30);
        let a = l
            .acquire("maintenance", "node-1", ttl, at(0))
            .await
            .unwrap();
        assert_eq!((a.number, a.expires), (1, at(30)));
        let err = l
            .acquire("maintenance", "node-2", ttl, at(10))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::LeaseHeld { holder, .. } if holder == "node-1"),
            "{err}"
        );
        assert!(err.to_string().contains("node-1"), "{err}");
        // The same node's next process (a restart) is another holder: it waits too.
        assert!(
            l.acquire("maintenance", "node-1", ttl, at(10))
                .await
                .is_err()
        );
        // Renewed, it holds on past the first expiry.
        let a = l.renew(&a, ttl, at(20)).await.unwrap();
        assert_eq!(a.expires, at(50));
        assert!(
            l.acquire("maintenance", "node-2", ttl, at(40))
                .await
                .is_err()
        );
        assert_eq!(
            l.holder("maintenance", at(40)).await.unwrap(),
            Some(LeaseHolder {
                holder: "node-1".into(),
                expires: at(50)
            })
        );
        // node-1 crashes (stops renewing): node-2 takes over after the expiry.
        let b = l
            .acquire("maintenance", "node-2", ttl, at(50))
            .await
            .unwrap();
        assert_eq!(b.expires, at(80));
        // node-1, back, cannot renew what it lost.
        let err = l.renew(&a, ttl, at(51)).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::LeaseLost { taken_by, .. } if taken_by == "node-2"),
            "{err}"
        );
        // Released, it is free at once; other leases are independent.
        l.release(&b, at(52)).await.unwrap();
        assert_eq!(l.holder("maintenance", at(52)).await.unwrap(), None);
        l.acquire("maintenance", "node-3", ttl, at(52))
            .await
            .unwrap();
        l.acquire("other", "node-1", ttl, at(52)).await.unwrap();
        assert!(l.acquire("bad/name", "node-1", ttl, at(0)).await.is_err());
    }

    #[tokio::test]
    async fn racing_nodes_get_exactly_one_grant_and_history_stays_short() {
        let l = leases();
        let ttl = Duration::seconds(30);
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let l = l.clone();
                tokio::spawn(
                    async move { l.acquire("race", &format!("node-{i}"), ttl, at(0)).await },
                )
            })
            .collect();
        let mut granted = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(g) => granted.push(g),
                Err(StoreError::LeaseHeld { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(granted.len(), 1, "{granted:?}");
        let mut g = granted.remove(0);
        for i in 1..20 {
            g = l.renew(&g, ttl, at(i)).await.unwrap();
        }
        let numbers = l.log("race").unwrap().numbers().await.unwrap();
        assert!(numbers.len() as u64 <= KEEP + 1, "{numbers:?}");
        assert_eq!(numbers.last(), Some(&g.number));
    }
}
