//! What every fuzz case runs under: one case at a time, a watchdog, a peak-allocation bound.

use std::alloc::System;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use peakmem_alloc::{INSTRUMENTED_SYSTEM, PeakMemAlloc, PeakMemAllocTrait};
use proptest::prelude::*;

#[global_allocator]
static GLOBAL: &PeakMemAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Fuzz tests take turns, so that the peak allocation of a case is its own.
static SERIAL: Mutex<()> = Mutex::new(());

/// How long one case may run before it counts as a hang. Generous: a debug build on a busy
/// 2-core machine; the cases take milliseconds.
const HANG: Duration = Duration::from_secs(60);

/// Cases per target: `LOGVAULT_FUZZ_CASES`, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("LOGVAULT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Byte stride of the bit-flip sweeps: `LOGVAULT_SWEEP_STRIDE`, else `default`.
pub fn stride(default: usize) -> usize {
    std::env::var("LOGVAULT_SWEEP_STRIDE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s| *s > 0)
        .unwrap_or(default)
}

pub fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Counts of one target's run, printed at the end.
#[derive(Debug)]
pub struct Stats {
    pub name: &'static str,
    inner: std::cell::RefCell<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    cases: u64,
    outcomes: std::collections::BTreeMap<String, u64>,
    peak: usize,
    slowest: Duration,
}

impl Stats {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            inner: std::cell::RefCell::default(),
        }
    }

    pub fn note(&self, outcome: impl Into<String>) {
        *self
            .inner
            .borrow_mut()
            .outcomes
            .entry(outcome.into())
            .or_default() += 1;
    }
}

#[allow(clippy::print_stderr)] // the counts a fuzz run reports
impl Drop for Stats {
    fn drop(&mut self) {
        let c = self.inner.borrow();
        eprintln!(
            "fuzz {}: {} cases, outcomes {:?}, peak allocation {} KiB, slowest case {:?}",
            self.name,
            c.cases,
            c.outcomes,
            c.peak / 1024,
            c.slowest
        );
    }
}

/// Holds the turn of one fuzz test.
pub fn turn() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs one case: `f` on its own thread under the watchdog; its peak allocation (above what
/// was allocated before) must stay under `limit` bytes.
pub fn case<T: Send + 'static>(
    stats: &Stats,
    limit: usize,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    GLOBAL.reset_peak_memory();
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(());
        out
    });
    if rx.recv_timeout(HANG).is_err() {
        panic!("{}: a case ran for more than {HANG:?} (a hang)", stats.name);
    }
    let out = match worker.join() {
        Ok(Ok(out)) => out,
        Ok(Err(panic)) | Err(panic) => std::panic::resume_unwind(panic),
    };
    let elapsed = started.elapsed();
    let peak = GLOBAL.get_peak_memory();
    {
        let mut c = stats.inner.borrow_mut();
        c.cases += 1;
        c.peak = c.peak.max(peak);
        c.slowest = c.slowest.max(elapsed);
    }
    assert!(
        peak <= limit,
        "{}: a case allocated {peak} bytes at its peak, over the bound of {limit}",
        stats.name
    );
    out
}

/// The files of a corpus directory of this crate.
pub fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", path.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let out: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!out.is_empty(), "corpus {} is empty", path.display());
    out
}

/// A mutation, as proptest generates and shrinks it.
pub fn mutation() -> impl Strategy<Value = logvault_fuzz::mutate::Mutation> {
    use logvault_fuzz::mutate::{INTERESTING, Mutation};
    let at = any::<usize>();
    prop_oneof![
        4 => (at, 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        2 => (at, any::<u8>()).prop_map(|(at, value)| Mutation::SetByte { at, value }),
        1 => at.prop_map(|at| Mutation::Truncate { at }),
        2 => (at, interesting_bytes()).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (at, 0usize..64).prop_map(|(at, len)| Mutation::Remove { at, len }),
        1 => (at, at, 0usize..256)
            .prop_map(|(from, to, len)| Mutation::CopyWithin { from, to, len }),
        1 => (at, 0usize..64, prop_oneof![Just(0u8), Just(0xff), any::<u8>()])
            .prop_map(|(at, len, value)| Mutation::Fill { at, len, value }),
        1 => (at, 0..INTERESTING.len())
            .prop_map(|(at, i)| Mutation::SetU64 { at, value: INTERESTING[i] }),
    ]
}

/// Byte strings that parsers treat specially.
fn interesting_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(vec![
            b"\n".to_vec(),
            b"\r\n".to_vec(),
            b"\"".to_vec(),
            b",".to_vec(),
            b"\\".to_vec(),
            b"{".to_vec(),
            b"}".to_vec(),
            b"[".to_vec(),
            b"]".to_vec(),
            b"\xef\xbb\xbf".to_vec(),
            b"\xff\xfe".to_vec(),
            b"\0".to_vec(),
            b"\"TimeGenerated\":".to_vec(),
            b"<13>".to_vec(),
            b"<191>1 ".to_vec(),
            b"Oct 11 22:14:15 ".to_vec(),
            b"2019-07-08T16:08:00Z".to_vec(),
            b"4/28/2021, 2:08:45.221 PM".to_vec(),
            b" [UTC]".to_vec(),
            b"1e400".to_vec(),
            b"-9223372036854775809".to_vec(),
            "\u{feff}é漢".as_bytes().to_vec(),
        ]),
        prop::collection::vec(any::<u8>(), 0..16),
    ]
}

pub fn script(files: usize) -> impl Strategy<Value = logvault_fuzz::mutate::Script> {
    (0..files.max(1), prop::collection::vec(mutation(), 1..4))
        .prop_map(|(file, mutations)| logvault_fuzz::mutate::Script { file, mutations })
}
