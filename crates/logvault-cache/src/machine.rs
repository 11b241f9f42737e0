//! How much memory this process may use: the machine's, or its control group's limit when that
//! is lower (a container). The memory tier's default bound is a share of it
//! ([`default_memory_bytes`]), and so is the engine's query memory pool.
//!
//! Read from Linux's `/proc/meminfo` (`MemTotal`) and the cgroup limit files (v2
//! `/sys/fs/cgroup/memory.max`, v1 `/sys/fs/cgroup/memory/memory.limit_in_bytes`); `None` on
//! other systems or when nothing can be read.

use crate::config::DEFAULT_MEMORY_BYTES;

/// The memory tier's share of the memory available ([`available_memory_bytes`]): an eighth.
/// The query memory pool takes a quarter by default, so the two leave more than half to the
/// rest of the process (ingestion's buffers, the read caches) and to the system.
pub const MEMORY_TIER_SHARE: u64 = 8;

/// The smallest default bound of the memory tier on a machine with little memory.
pub const MIN_DEFAULT_MEMORY_BYTES: u64 = 256 * 1024 * 1024;

/// The memory this process may use: the machine's (`MemTotal`), lowered to the control group's
/// limit when one is set below it. `None` when neither can be read (not Linux).
///
/// Read once per process and remembered: both are fixed for the life of a process in practice,
/// and each engine opening asks twice (the memory tier's default, the query pool's), which cost
/// a quarter of an opening's CPU when `/proc/meminfo` was read every time. A limit changed while
/// the process runs applies from its next start.
pub fn available_memory_bytes() -> Option<u64> {
    static AVAILABLE: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(read_available_memory_bytes)
}

fn read_available_memory_bytes() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total(&text));
    let limit = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|path| cgroup_limit(&std::fs::read_to_string(path).ok()?));
    match (total, limit) {
        (Some(t), Some(l)) => Some(t.min(l)),
        (t, l) => t.or(l),
    }
}

/// The memory tier's default bound: an eighth of [`available_memory_bytes`], at least
/// [`MIN_DEFAULT_MEMORY_BYTES`]; [`DEFAULT_MEMORY_BYTES`] (512 MiB) when the memory is unknown.
pub fn default_memory_bytes() -> u64 {
    memory_tier_bytes_for(available_memory_bytes())
}

/// [`default_memory_bytes`] for a given amount of available memory.
pub fn memory_tier_bytes_for(available: Option<u64>) -> u64 {
    available.map_or(DEFAULT_MEMORY_BYTES, |bytes| {
        (bytes / MEMORY_TIER_SHARE).max(MIN_DEFAULT_MEMORY_BYTES)
    })
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    kib.checked_mul(1024)
}

/// A cgroup memory limit file's value: `None` for "max" (v2) or v1's "no limit" (a number near
/// `i64::MAX`, rounded down to the page size), or anything not a number.
fn cgroup_limit(text: &str) -> Option<u64> {
    let bytes = text.trim().parse::<u64>().ok()?;
    // v1 writes 9223372036854771712 (i64::MAX rounded to 4 KiB pages) when there is no limit.
    (bytes < 1 << 60).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_is_read_in_bytes() {
        let text = "MemTotal:       24634412 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total(text), Some(24_634_412 * 1024));
        assert_eq!(mem_total("MemFree: 10 kB\n"), None);
        assert_eq!(mem_total("MemTotal: lots kB\n"), None);
        assert_eq!(mem_total("MemTotal: 99999999999999999999 kB\n"), None);
    }

    #[test]
    fn a_cgroup_limit_is_a_number_below_no_limit() {
        assert_eq!(cgroup_limit("4294967296\n"), Some(4 << 30));
        assert_eq!(cgroup_limit("max\n"), None);
        assert_eq!(cgroup_limit("9223372036854771712\n"), None);
        assert_eq!(cgroup_limit(""), None);
    }

    #[test]
    fn the_memory_tier_takes_an_eighth_with_a_floor_and_a_fallback() {
        // This machine (24 GiB): 3 GiB, enough for the 10M-row benchmark's 2.2 GB decoded.
        assert_eq!(memory_tier_bytes_for(Some(24 << 30)), 3 << 30);
        assert_eq!(memory_tier_bytes_for(Some(8 << 30)), 1 << 30);
        assert_eq!(
            memory_tier_bytes_for(Some(1 << 30)),
            MIN_DEFAULT_MEMORY_BYTES
        );
        assert_eq!(memory_tier_bytes_for(None), DEFAULT_MEMORY_BYTES);
    }

    #[test]
    fn the_default_follows_what_this_machine_has() {
        let available = available_memory_bytes();
        if cfg!(target_os = "linux") {
            assert!(available.is_some_and(|b| b > 0), "{available:?}");
        }
        assert_eq!(default_memory_bytes(), memory_tier_bytes_for(available));
        // Remembered: the same answer as reading the files now.
        assert_eq!(available, read_available_memory_bytes());
    }
}
