//! The `logvault` command line: a thin layer over the `logvault` library.
//!
//! It owns argument parsing, output formatting (table or JSON) and exit codes; everything else
//! is the library's. Its contract (names, flags and JSON fields scripts rely on) is docs/cli.md.

mod args;
mod cmd;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server logs its requests (info) unless told otherwise; a command only its errors.
    let serving = matches!(cli.command, args::Command::Serve(_));
    init_tracing(cli.global.verbose.max(u8::from(serving)));
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

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "error",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGVAULT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
