//! The `logvault` command line: a thin layer over the `logvault` library.
//!
//! It owns argument parsing, output formatting (table or JSON) and exit codes; everything else
//! is the library's. Its contract (names, flags and JSON fields scripts rely on) is docs/cli.md.

mod args;
mod cmd;
mod logging;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;

/// jemalloc instead of glibc's malloc: glibc kept the memory a long-running `logvault serve`
/// freed (a heap fragmented by the hot cache's buffers and the decoding of whole segments, in
/// per-thread arenas trimmed only from their top), so its resident memory grew without a leak;
/// jemalloc returns freed pages to the OS after a few seconds (docs/reliability.md, the soak).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server logs its requests (info) unless told otherwise; a command only its errors.
    let serving = matches!(cli.command, args::Command::Serve(_));
    logging::init(cli.global.verbose.max(u8::from(serving)));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return output::fail(&anyhow::anyhow!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(cmd::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => output::fail(&e),
    }
}
