//! `logvault-bench`: the benchmark harness's command line.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use logvault_bench::generator::{GenOptions, LogGenerator, schema};

#[derive(Debug, Parser)]
#[command(name = "logvault-bench", about = "logvault benchmark harness")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate synthetic logs to a file.
    Gen {
        /// Rows to generate.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Ndjson)]
        format: Format,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Ndjson,
    Csv,
    Parquet,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Gen {
            rows,
            seed,
            format,
            out,
        } => {
            let file = BufWriter::new(
                File::create(&out).with_context(|| format!("creating {}", out.display()))?,
            );
            let batches = LogGenerator::new(GenOptions {
                rows,
                seed,
                ..GenOptions::default()
            });
            match format {
                Format::Ndjson => {
                    let mut w = arrow::json::LineDelimitedWriter::new(file);
                    for b in batches {
                        w.write(&b)?;
                    }
                    w.finish()?;
                }
                Format::Csv => {
                    let mut w = arrow::csv::Writer::new(file);
                    for b in batches {
                        w.write(&b)?;
                    }
                }
                Format::Parquet => {
                    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema(), None)?;
                    for b in batches {
                        w.write(&b)?;
                    }
                    w.close()?;
                }
            }
            Ok(())
        }
    }
}
