//! The `logvault` command line: a thin layer over the `logvault` library.
//!
//! It owns argument parsing, output formatting (table or JSON) and exit codes; everything else
//! is the library's. Its contract (names, flags and JSON fields scripts rely on) is docs/cli.md.

#[cfg(not(target_env = "msvc"))]
mod allocator;
mod args;
mod cmd;
mod logging;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;

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
