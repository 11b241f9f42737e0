//! The hot cache's settings.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::CacheError;

/// Bound of the memory tier when the machine's memory is unknown: 512 MiB of decoded segments.
/// Elsewhere the default is a share of the memory ([`crate::default_memory_bytes`]).
pub const DEFAULT_MEMORY_BYTES: u64 = 512 * 1024 * 1024;
/// Default bound of the disk tier: 10 GiB of cache files.
pub const DEFAULT_DISK_BYTES: u64 = 10 * 1024 * 1024 * 1024;
/// Default window in which a segment read by a query stays hot outside the hot window: 1 day.
pub const DEFAULT_RECENT_SECS: i64 = 86_400;

/// Settings of a hot cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HotCacheConfig {
    /// Bound of the memory tier, in bytes of decoded (Arrow IPC) segments. 0 turns it off.
    /// Default: an eighth of the memory available ([`crate::default_memory_bytes`]), written
    /// into a new home's `config.json`.
    pub memory_bytes: u64,
    /// Bound of the disk tier, in bytes of cache files. 0 turns it off (reads pass through).
    pub disk_bytes: u64,
    /// Segments whose newest row is younger than this are hot (R-F1; 14 days). Workspaces can
    /// have their own ([`crate::HotCache::set_hot_window`]).
    pub hot_window_secs: i64,
    /// A segment read by a query stays hot this long after its last read, even outside the
    /// hot window (R-F1: "data recently used in queries").
    pub recent_secs: i64,
    /// Plaintext bytes per sealed chunk of a cache file (the unit of a range read).
    pub chunk_size: u32,
    /// Whether [`crate::HotCache::warm`] also decodes the hot window into the memory tier
    /// (newest segments first, up to the memory bound), not only onto disk.
    pub warm_memory: bool,
    /// Whether a segment a query read from disk or storage is decoded into the memory tier in
    /// the background (the memory tier's admission policy then decides whether it stays).
    pub promote_on_read: bool,
}

impl Default for HotCacheConfig {
    fn default() -> Self {
        Self {
            memory_bytes: crate::machine::default_memory_bytes(),
            disk_bytes: DEFAULT_DISK_BYTES,
            hot_window_secs: logvault_core::Timings::default().hot_window_secs,
            recent_secs: DEFAULT_RECENT_SECS,
            chunk_size: logvault_crypto::infra::DEFAULT_CHUNK_SIZE,
            warm_memory: true,
            promote_on_read: true,
        }
    }
}

/// Smallest and largest chunk sizes accepted (4 KiB .. 16 MiB).
const CHUNK_RANGE: std::ops::RangeInclusive<u32> = 4096..=16 * 1024 * 1024;

impl HotCacheConfig {
    /// Checks every value.
    ///
    /// # Errors
    /// [`CacheError::Config`] naming the first setting out of range.
    pub fn validate(&self) -> Result<(), CacheError> {
        if self.hot_window_secs <= 0 {
            return Err(CacheError::Config {
                field: "hotWindowSecs",
                reason: format!("must be positive, got {}", self.hot_window_secs),
            });
        }
        if self.recent_secs < 0 {
            return Err(CacheError::Config {
                field: "recentSecs",
                reason: format!("must not be negative, got {}", self.recent_secs),
            });
        }
        let max = logvault_core::config::MAX_DURATION_SECS;
        for (field, value) in [
            ("hotWindowSecs", self.hot_window_secs),
            ("recentSecs", self.recent_secs),
        ] {
            if value > max {
                return Err(CacheError::Config {
                    field,
                    reason: format!("must be at most {max} (100 years), got {value}"),
                });
            }
        }
        if !CHUNK_RANGE.contains(&self.chunk_size) {
            return Err(CacheError::Config {
                field: "chunkSize",
                reason: format!(
                    "must be between {} and {} bytes, got {}",
                    CHUNK_RANGE.start(),
                    CHUNK_RANGE.end(),
                    self.chunk_size
                ),
            });
        }
        Ok(())
    }

    /// The hot window as a duration.
    pub fn hot_window(&self) -> Duration {
        Duration::seconds(self.hot_window_secs)
    }

    /// The recent-read window as a duration.
    pub fn recent(&self) -> Duration {
        Duration::seconds(self.recent_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_follow_the_service_timings() {
        let c = HotCacheConfig::default();
        assert!(c.validate().is_ok());
        assert_eq!(c.hot_window(), Duration::days(14));
        let partial: HotCacheConfig = serde_json::from_str(r#"{"memoryBytes": 1024}"#).unwrap();
        assert_eq!(partial.memory_bytes, 1024);
        assert_eq!(partial.disk_bytes, DEFAULT_DISK_BYTES);
    }

    /// Regression (found by fuzzing `config.json`): a huge window passed validation, then
    /// panicked when made a duration.
    #[test]
    fn windows_beyond_a_hundred_years_are_refused_by_name() {
        for (hot, recent, field) in [(i64::MAX, 1, "hotWindowSecs"), (1, i64::MAX, "recentSecs")] {
            let bad = HotCacheConfig {
                hot_window_secs: hot,
                recent_secs: recent,
                ..HotCacheConfig::default()
            };
            assert!(bad.validate().unwrap_err().to_string().contains(field));
        }
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let bad = HotCacheConfig {
            chunk_size: 10,
            ..HotCacheConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("chunkSize")
        );
        let bad = HotCacheConfig {
            hot_window_secs: 0,
            ..HotCacheConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("hotWindowSecs")
        );
    }
}
