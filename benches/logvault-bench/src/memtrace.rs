//! A memory trace of an ingestion case, for finding where its peak comes from: with
//! `LOGVAULT_BENCH_MEM_TRACE=FILE` set, the case's process samples itself every 50 ms and writes
//! one tab-separated line per sample to `FILE`: seconds since the start, the resident set
//! (`VmRSS`) and its anonymous part (`RssAnon`) from `/proc/self/status`, and jemalloc's figures
//! (`allocated`: what the program holds; `active`: its pages; `resident`: jemalloc's pages in
//! memory, freed ones not yet returned included; `retained`: address space kept but returned),
//! all in KiB. A trace started with [`start_with`] adds the caller's own columns (the HTTP load
//! benchmark's server child: the memory tier's bytes, its buffers still alive, and the
//! promotions pending). The last
//! line, `# peak`, has the maximum of each column.
//!
//! Only a diagnostic: the report's figures do not come from it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The environment variable naming the trace file.
pub const TRACE_ENV: &str = "LOGVAULT_BENCH_MEM_TRACE";

const COLUMNS: [&str; 6] = ["rss", "anon", "allocated", "active", "resident", "retained"];

/// A running trace; [`Trace::finish`] stops it and writes the peaks.
#[derive(Debug)]
pub struct Trace {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

/// Starts a trace if [`TRACE_ENV`] names a file.
pub fn start() -> Option<Trace> {
    start_with(&[], Vec::new)
}

/// As [`start`], with a column per name in `names`, whose values (one per name, in KiB or a
/// count) `extra` reads at each sample.
pub fn start_with(
    names: &'static [&'static str],
    extra: impl Fn() -> Vec<u64> + Send + 'static,
) -> Option<Trace> {
    let path = PathBuf::from(std::env::var_os(TRACE_ENV)?);
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let thread = std::thread::spawn(move || sample(&path, &stopping, names, &extra));
    Some(Trace { stop, thread })
}

impl Trace {
    /// Stops sampling; the error of writing the file, if any.
    pub fn finish(self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(result) => Ok(result?),
            Err(_) => anyhow::bail!("the memory trace thread panicked"),
        }
    }
}

fn sample(
    path: &Path,
    stop: &AtomicBool,
    names: &[&str],
    extra: &dyn Fn() -> Vec<u64>,
) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let header: Vec<&str> = COLUMNS.iter().chain(names).copied().collect();
    writeln!(out, "secs\t{}", header.join("\t"))?;
    let started = Instant::now();
    let mut peak = vec![0u64; header.len()];
    while !stop.load(Ordering::Relaxed) {
        let mut now = reading().to_vec();
        let mut theirs = extra();
        theirs.resize(names.len(), 0);
        now.extend(theirs);
        for (p, v) in peak.iter_mut().zip(&now) {
            *p = (*p).max(*v);
        }
        let values: Vec<String> = now.iter().map(u64::to_string).collect();
        writeln!(
            out,
            "{:.2}\t{}",
            started.elapsed().as_secs_f64(),
            values.join("\t")
        )?;
        std::thread::sleep(Duration::from_millis(50));
    }
    let values: Vec<String> = peak.iter().map(u64::to_string).collect();
    writeln!(out, "# peak\t{}", values.join("\t"))?;
    out.flush()
}

/// The columns now, in KiB (0 when unreadable).
fn reading() -> [u64; COLUMNS.len()] {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    let jemalloc = jemalloc().unwrap_or_default();
    [
        field("VmRSS:"),
        field("RssAnon:"),
        jemalloc[0] >> 10,
        jemalloc[1] >> 10,
        jemalloc[2] >> 10,
        jemalloc[3] >> 10,
    ]
}

fn jemalloc() -> Option<[u64; 4]> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    Some([
        stats::allocated::read().ok()? as u64,
        stats::active::read().ok()? as u64,
        stats::resident::read().ok()? as u64,
        stats::retained::read().ok()? as u64,
    ])
}
