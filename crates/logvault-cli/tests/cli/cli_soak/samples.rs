//! The server's memory and file descriptors, sampled from `/proc` and `/metrics`, and whether
//! they stay flat after the warm-up.

use super::*;

/// A memory and file descriptor sample of the server.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    pub(super) at: Duration,
    pub(super) rss_kib: u64,
    pub(super) fds: usize,
    /// What the hot cache holds in memory (`logvault_hot_cache_bytes{tier="memory"}`), KiB.
    pub(super) cache_kib: u64,
    /// The memory tier's buffers alive (`logvault_hot_cache_live_bytes`: those it holds and
    /// those it let go that a query still reads), KiB.
    pub(super) live_kib: u64,
    /// What the program holds, as its allocator counts it
    /// (`logvault_allocator_bytes{kind="allocated"}`), KiB: resident memory the allocator has
    /// not returned to the OS yet is not in it, so a leak shows here.
    pub(super) allocated_kib: u64,
}

pub(super) fn sample(pid: u32, at: Duration) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(Sample {
        at,
        rss_kib,
        fds,
        cache_kib: 0,
        live_kib: 0,
        allocated_kib: 0,
    })
}

/// The hot cache's bytes in memory, and its buffers alive, from the server's metrics.
/// The hot cache's memory tier, its live buffers and the allocator's allocated bytes, from
/// `/metrics`.
pub(super) async fn gauges(load: &Load) -> Option<(u64, u64, u64)> {
    let text = load
        .http
        .get(format!("{}/metrics", load.url))
        .bearer_auth(&load.owner)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let gauge = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))?
            .trim()
            .parse::<f64>()
            .ok()
            .map(|b| b as u64)
    };
    Some((
        gauge("logvault_hot_cache_bytes{tier=\"memory\"} ")?,
        gauge("logvault_hot_cache_live_bytes ")?,
        gauge("logvault_allocator_bytes{kind=\"allocated\"} ")?,
    ))
}

/// Whether the samples after the warm-up stay flat: the server's memory apart from what the hot
/// cache holds (which its own bound limits), both resident (VmRSS) and allocated (what the
/// allocator counts as held: a leak), the last third's median within 25% (and 32 MiB) of the
/// first third's; file descriptors, the last third's most within 16 of the first third's.
/// The figures (and a line a minute), and the verdicts.
pub(super) fn flat(samples: &[Sample], warm_up: Duration) -> (String, bool, bool) {
    let after: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.at >= warm_up)
        .collect();
    assert!(
        after.len() >= 6,
        "too few samples after the warm-up: {}",
        after.len()
    );
    let third = after.len() / 3;
    let median = |s: &[Sample], f: &dyn Fn(&Sample) -> u64| {
        let mut v: Vec<u64> = s.iter().map(f).collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let rss = |x: &Sample| x.rss_kib;
    let own = |x: &Sample| x.rss_kib.saturating_sub(x.cache_kib);
    let (first, last) = (&after[..third], &after[after.len() - third..]);
    let (rss_first, rss_last) = (median(first, &rss), median(last, &rss));
    let (own_first, own_last) = (median(first, &own), median(last, &own));
    let held = |x: &Sample| x.allocated_kib.saturating_sub(x.cache_kib);
    let (held_first, held_last) = (median(first, &held), median(last, &held));
    let fds_first = first.iter().map(|s| s.fds).max().unwrap();
    let fds_last = last.iter().map(|s| s.fds).max().unwrap();
    let rss_max = samples.iter().map(|s| s.rss_kib).max().unwrap();
    let fds_max = samples.iter().map(|s| s.fds).max().unwrap();
    let cache_last = last.iter().map(|s| s.cache_kib).max().unwrap();
    let series: Vec<String> = samples
        .iter()
        .filter(|s| s.at.as_secs() % 60 < 1 || s.at.as_secs() < 2)
        .map(|s| {
            format!(
                "{}s: {} MiB ({} MiB allocated, {} MiB cache, {} MiB live), {} fds",
                s.at.as_secs(),
                s.rss_kib / 1024,
                s.allocated_kib / 1024,
                s.cache_kib / 1024,
                s.live_kib / 1024,
                s.fds
            )
        })
        .collect();
    let figures = format!(
        "VmRSS median {} MiB after warm-up -> {} MiB at the end (max {} MiB, at start {} MiB); \
         without the hot cache's {} MiB: {} -> {} MiB; allocated without the hot cache: {} -> {} \
         MiB; fds max {fds_first} -> {fds_last} (max \
         {fds_max}, at start {}); by the minute: {}",
        rss_first / 1024,
        rss_last / 1024,
        rss_max / 1024,
        samples[0].rss_kib / 1024,
        cache_last / 1024,
        own_first / 1024,
        own_last / 1024,
        held_first / 1024,
        held_last / 1024,
        samples[0].fds,
        series.join("; ")
    );
    let within = |first: u64, last: u64| last <= first + (first / 4).max(32 * 1024);
    let rss_ok = within(own_first, own_last) && within(held_first, held_last);
    let fds_ok = fds_last <= fds_first + 16;
    (figures, rss_ok, fds_ok)
}
