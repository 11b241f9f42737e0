//! The `logvault` binary's memory allocator: jemalloc, its settings, and its figures for
//! `/metrics`.
//!
//! jemalloc instead of glibc's malloc: glibc kept the memory a long-running `logvault serve`
//! freed (a heap fragmented by the hot cache's buffers and the decoding of whole segments, in
//! per-thread arenas trimmed only from their top), so its resident memory grew without a leak.
//! jemalloc returns freed pages to the OS once they have been unused for a while (its "decay").
//! By default that happens only when the arena that freed them allocates again, after 10 s;
//! here a background thread purges on schedule and pages go back after 1 s, so an idle arena's
//! memory is returned too and a burst (an ingest's buffers, a query's hash table) does not stay
//! resident (docs/server.md, "Memory"; docs/reliability.md, the soak). It keeps one arena per
//! CPU (`percpu_arena:percpu`; jemalloc's default is four per CPU, each thread in its own), which
//! lowered the ingestion peak by about a sixth (docs/ingest.md). Those options are built
//! into jemalloc (`JEMALLOC_SYS_WITH_MALLOC_CONF` in `.cargo/config.toml`, read by
//! `tikv-jemalloc-sys`' build script: no unsafe symbol override here); `_RJEM_MALLOC_CONF` in
//! the environment still overrides them at start.

use logvault_server::AllocatorStats;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The allocator's figures now, `None` if jemalloc cannot say.
pub(crate) fn stats() -> Option<AllocatorStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    // The figures are cached by jemalloc until the epoch advances.
    epoch::advance().ok()?;
    Some(AllocatorStats {
        allocated: stats::allocated::read().ok()? as u64,
        active: stats::active::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
        retained: stats::retained::read().ok()? as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_options_are_in_effect() {
        // Built in from `.cargo/config.toml`: a build without it (another config, a stale
        // jemalloc build) would keep freed pages for jemalloc's default 10 s in four arenas per
        // CPU.
        let built_in = tikv_jemalloc_ctl::config::malloc_conf::read().expect("jemalloc's config");
        // The build script hands jemalloc a C string; its terminator comes back with it.
        let built_in = built_in.trim_end_matches('\0');
        for option in [
            "background_thread:true",
            "dirty_decay_ms:1000",
            "muzzy_decay_ms:0",
            "percpu_arena:percpu",
        ] {
            assert!(
                built_in.split(',').any(|o| o == option),
                "{option} not in {built_in:?}"
            );
        }
        // `background_thread:true`: jemalloc's default is false, unless the environment
        // overrides it.
        if std::env::var_os("_RJEM_MALLOC_CONF").is_none() {
            assert_eq!(tikv_jemalloc_ctl::opt::background_thread::read(), Ok(true));
        }
    }

    #[test]
    fn the_figures_follow_what_the_program_holds() {
        let before = stats().expect("jemalloc's statistics are built in");
        let block = vec![7u8; 64 << 20];
        let during = stats().expect("jemalloc's statistics are built in");
        assert!(
            during.allocated >= before.allocated + (60 << 20),
            "{before:?} -> {during:?}"
        );
        assert!(during.resident >= during.allocated / 2, "{during:?}");
        assert!(during.active >= during.allocated, "{during:?}");
        drop(std::hint::black_box(block));
        let after = stats().expect("jemalloc's statistics are built in");
        assert!(
            after.allocated + (60 << 20) <= during.allocated,
            "{during:?} -> {after:?}"
        );
    }
}
