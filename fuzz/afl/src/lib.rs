//! AFL++ drivers of the fuzz targets of `logvault-fuzz` (docs/reliability.md, "Fuzzing"), and,
//! with the `dataflow` feature, of the parsers of the crates that link DataFusion (`dataflow`:
//! KQL's lexer, parser and planner, the server's OTLP and `_bulk` decoders).
//!
//! Each binary of this crate is one [`Target`]: it feeds the bytes AFL++ gives it to the
//! target's function, which panics naming the invariant it finds broken (no panic of the code
//! under test, a clear error or the right rows). The driver adds the bound on the peak
//! allocation of the proptest run (`crates/logvault-fuzz/tests/fuzz/harness.rs`); AFL++'s
//! timeout (`-t`) is the watchdog. `afl::fuzz!` turns a panic into an abort, which AFL++ saves
//! as a crash.
//!
//! Run outside AFL++, a binary reads one input from standard input (to replay a crash), or with
//! `--seeds DIR` writes the seeds that are made in the process (the vault's and the control
//! plane's documents, whose fixtures hold identifiers made when they are built) to `DIR`.

// A broken invariant is a panic: that is how AFL++ sees it.
#![allow(clippy::panic)]

#[cfg(feature = "dataflow")]
pub mod dataflow;

use std::path::Path;

use logvault_fuzz::mutate::Script;
use logvault_fuzz::vault::Doc;
use logvault_ingest::Format;
use peakmem_alloc::{INSTRUMENTED_SYSTEM, PeakMemAlloc, PeakMemAllocTrait};

#[global_allocator]
static GLOBAL: &PeakMemAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// One fuzz target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// JSON lines payloads (`parse_target`).
    JsonLines,
    /// JSON array payloads.
    Json,
    /// CSV payloads.
    Csv,
    /// Text and syslog lines.
    Text,
    /// Replay of a write-ahead log damaged by a mutation script (`replay_target`).
    Wal,
    /// The body of a vault's `vault.json` under a correct header (`body_target`).
    Vault,
    /// The body of `identities.json` under a correct header.
    Identities,
    /// The control plane's `state.json` (`state_target`).
    Control,
    /// A `timings` object of `config.json` (`timings_target`).
    Timings,
    /// A KQL query: lexer, parser and planner (`dataflow::kql`).
    #[cfg(feature = "dataflow")]
    Kql,
    /// An OTLP/JSON logs body (`dataflow::otlp`).
    #[cfg(feature = "dataflow")]
    OtlpJson,
    /// An OTLP protobuf logs body.
    #[cfg(feature = "dataflow")]
    OtlpProto,
    /// An Elasticsearch `_bulk` body (`dataflow::bulk`).
    #[cfg(feature = "dataflow")]
    Bulk,
}

impl Target {
    /// The most a single input may allocate at its peak, as in the proptest run: a fixed
    /// allowance plus, for the parsers, a multiple of the input.
    fn limit(self, len: usize) -> usize {
        match self {
            Self::JsonLines | Self::Json | Self::Csv | Self::Text => (16 << 20) + 512 * len,
            #[cfg(feature = "dataflow")]
            Self::OtlpJson | Self::OtlpProto | Self::Bulk => (16 << 20) + 512 * len,
            // Planning builds DataFusion plans and schemas; no data is read.
            #[cfg(feature = "dataflow")]
            Self::Kql => (64 << 20) + 1024 * len,
            Self::Timings => 16 << 20,
            Self::Wal | Self::Vault | Self::Identities | Self::Control => 64 << 20,
        }
    }

    /// Runs the target on one input.
    pub fn exec(self, data: &[u8]) {
        GLOBAL.reset_peak_memory();
        match self {
            Self::JsonLines => {
                logvault_fuzz::ingest::parse_target(Format::JsonLines, data);
            }
            Self::Json => {
                logvault_fuzz::ingest::parse_target(Format::Json, data);
            }
            Self::Csv => {
                logvault_fuzz::ingest::parse_target(Format::Csv, data);
            }
            Self::Text => {
                logvault_fuzz::ingest::parse_target(Format::Text, data);
            }
            Self::Wal => {
                logvault_fuzz::wal::replay_target(&Script::decode(data));
            }
            // An error is an allowed outcome: the target checks that it names the file.
            Self::Vault => {
                let _ = logvault_fuzz::vault::body_target(Doc::Vault, data);
            }
            Self::Identities => {
                let _ = logvault_fuzz::vault::body_target(Doc::Identities, data);
            }
            Self::Control => {
                logvault_fuzz::control::state_target(data);
            }
            Self::Timings => {
                logvault_fuzz::config::timings_target(data);
            }
            #[cfg(feature = "dataflow")]
            Self::Kql => dataflow::kql(data),
            #[cfg(feature = "dataflow")]
            Self::OtlpJson => dataflow::otlp(data, true),
            #[cfg(feature = "dataflow")]
            Self::OtlpProto => dataflow::otlp(data, false),
            #[cfg(feature = "dataflow")]
            Self::Bulk => dataflow::bulk(data),
        }
        let peak = GLOBAL.get_peak_memory();
        let limit = self.limit(data.len());
        assert!(
            peak <= limit,
            "{self:?}: an input of {} bytes allocated {peak} bytes at its peak, over the bound of {limit}",
            data.len()
        );
    }

    /// Builds the fixtures the target uses once per process, before the fork server starts,
    /// so that every input runs against the same fixture and none pays for building it.
    fn warm_up(self) {
        match self {
            Self::Wal => {
                logvault_fuzz::wal::fixture_files();
            }
            Self::Vault | Self::Identities => {
                logvault_fuzz::vault::fixture_body(Doc::Vault);
            }
            Self::Control => {
                logvault_fuzz::control::fixture_state();
            }
            #[cfg(feature = "dataflow")]
            Self::Kql => dataflow::warm_up_kql(),
            #[cfg(feature = "dataflow")]
            Self::OtlpJson | Self::OtlpProto | Self::Bulk => {}
            Self::JsonLines | Self::Json | Self::Csv | Self::Text | Self::Timings => {}
        }
    }

    /// The seeds made in the process (the committed corpora are under
    /// `crates/logvault-fuzz/corpus/`).
    fn made_seeds(self) -> Vec<(&'static str, Vec<u8>)> {
        match self {
            Self::Vault => vec![("vault.json", logvault_fuzz::vault::fixture_body(Doc::Vault))],
            Self::Identities => vec![(
                "identities.json",
                logvault_fuzz::vault::fixture_body(Doc::Identities),
            )],
            Self::Control => vec![(
                "state.json",
                logvault_fuzz::control::fixture_state().to_vec(),
            )],
            _ => Vec::new(),
        }
    }
}

fn write_seeds(target: Target, dir: &Path) {
    if let Err(e) = std::fs::create_dir_all(dir) {
        panic!("seeds: {}: {e}", dir.display());
    }
    for (name, bytes) in target.made_seeds() {
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, bytes) {
            panic!("seeds: {}: {e}", path.display());
        }
    }
}

/// The `main` of a driver binary.
pub fn main(target: Target) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, dir] = args.as_slice()
        && flag == "--seeds"
    {
        write_seeds(target, Path::new(dir));
        return;
    }
    target.warm_up();
    afl::fuzz!(|data: &[u8]| target.exec(data));
}
