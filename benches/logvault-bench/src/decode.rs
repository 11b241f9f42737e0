//! `logvault-bench decode`: what turning a request body into rows costs, per protocol, on one
//! thread, without a server: the CPU part of the HTTP load benchmark's requests that no
//! network, log or storage hides. The same generated rows go through the file path's parser
//! (NDJSON, what `logvault ingest` reads), the Logs Ingestion API's (a JSON array, by the
//! streaming parser and by the server's one pass, `parse_json_array`) and the OTLP
//! decoder (the server's own, through `logvault_server::fuzzing`), in request bodies as the
//! HTTP load benchmark sends them; each is timed over every body, several rounds, the best
//! round kept. Results: `decode.md` and `decode.json` in `--out`.

use std::io::Cursor;
use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Utc};
use logvault::ingest::{
    ErrorPolicy, Format, ParseOptions, TableSchema, parse_json_array, parse_payload,
};
use serde::Serialize;

use crate::http_load::client::{self, Protocol, Shape};

/// What to measure.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Generated rows (the same rows in every form).
    pub rows: u64,
    /// Rows per request body.
    pub rows_per_request: usize,
    /// Timed rounds over all the bodies; the best is reported.
    pub rounds: usize,
    /// Where decode.md and decode.json go.
    pub out: PathBuf,
}

/// One decoder's figures.
#[derive(Debug, Clone, Serialize)]
pub struct DecodeCase {
    /// What was decoded.
    pub name: String,
    /// Body bytes per row.
    pub bytes_per_row: f64,
    /// CPU time per row of the best round, microseconds (one thread).
    pub micros_per_row: f64,
    /// Body megabytes (10^6) decoded per second.
    pub mb_per_s: f64,
    /// Time per row against the file path's NDJSON parse.
    pub vs_file: f64,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct DecodeReport {
    /// Rows decoded per round by every case.
    pub rows: u64,
    /// Rows per request body.
    pub rows_per_request: usize,
    /// Rounds per case.
    pub rounds: usize,
    /// The cases, the file path first.
    pub cases: Vec<DecodeCase>,
}

/// Runs the measurement and writes the report.
///
/// # Errors
/// A body a decoder refuses, a row count that differs from the generated one, or an I/O error.
pub fn run(options: &DecodeOptions) -> anyhow::Result<DecodeReport> {
    let records = client::records(options.rows, 42)?;
    let received: DateTime<Utc> = Utc::now();
    let mut ndjson = Vec::new();
    for record in &records {
        serde_json::to_writer(&mut ndjson, record)?;
        ndjson.push(b'\n');
    }
    let per = options.rows_per_request.max(1);
    let lines: Vec<&[u8]> = ndjson.split_inclusive(|b| *b == b'\n').collect();
    let file_bodies: Vec<Vec<u8>> = lines.chunks(per).map(|c| c.concat()).collect();
    let logs_api = client::payloads(Protocol::LogsApi, Shape::Rows, &records, per)?;
    let otlp = client::payloads(Protocol::OtlpJson, Shape::Rows, &records, per)?;
    let rounds = options.rounds.max(1);
    let logs_api: Vec<&[u8]> = logs_api.iter().map(|p| p.body()).collect();
    let otlp: Vec<&[u8]> = otlp.iter().map(|p| p.body()).collect();
    let mut cases = vec![
        measure(
            "file path: NDJSON lines",
            rounds,
            options.rows,
            &file_bodies,
            |body| parsed_rows(body, Format::JsonLines, received),
        )?,
        measure(
            "Logs Ingestion API: JSON array, streaming parser",
            rounds,
            options.rows,
            &logs_api,
            |body| parsed_rows(body, Format::JsonArray, received),
        )?,
        measure(
            "Logs Ingestion API: JSON array, one pass (the server's)",
            rounds,
            options.rows,
            &logs_api,
            |body| array_rows(body, received),
        )?,
        measure("OTLP/JSON", rounds, options.rows, &otlp, |body| {
            otlp_json_rows(body, received)
        })?,
    ];
    // Every case against the first, the file path's.
    let file = cases[0].micros_per_row;
    for case in &mut cases {
        case.vs_file = case.micros_per_row / file;
    }

    let report = DecodeReport {
        rows: options.rows,
        rows_per_request: per,
        rounds,
        cases,
    };
    crate::report::write_report(&options.out, "decode", &report, &markdown(&report))?;
    Ok(report)
}

fn parsed_rows(body: &[u8], format: Format, received: DateTime<Utc>) -> anyhow::Result<usize> {
    let clock = logvault::core::TestClock::new(received);
    let mut schema = TableSchema::new(crate::ingest::LOG_TABLE)?;
    let outcome = parse_payload(
        Cursor::new(body),
        format,
        &mut schema,
        &ParseOptions::default(),
        &clock,
    )?;
    Ok(outcome.batches.iter().map(|b| b.num_rows()).sum())
}

/// What the server does with a Logs Ingestion API body: `parse_json_array`, refusing.
fn array_rows(body: &[u8], received: DateTime<Utc>) -> anyhow::Result<usize> {
    let clock = logvault::core::TestClock::new(received);
    let mut schema = TableSchema::new(crate::ingest::LOG_TABLE)?;
    let options = ParseOptions {
        on_error: ErrorPolicy::Refuse,
        ..ParseOptions::default()
    };
    let outcome = parse_json_array(body, &mut schema, &options, &clock)?;
    Ok(outcome.batches.iter().map(|b| b.num_rows()).sum())
}

fn otlp_json_rows(body: &[u8], received: DateTime<Utc>) -> anyhow::Result<usize> {
    let (records, batches) = logvault_server::fuzzing::otlp_rows(body, true, "OTelLogs", received)
        .map_err(|r| anyhow::anyhow!("the OTLP/JSON decoder refused a body: {}", r.message))?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    anyhow::ensure!(
        rows == records,
        "OTLP/JSON: {records} records gave {rows} rows"
    );
    Ok(rows)
}

/// The best of `rounds` rounds of `decode` over every body; every round must give `rows` rows.
/// `vs_file` is left at 1 for the caller to set.
fn measure<B: AsRef<[u8]>>(
    name: &str,
    rounds: usize,
    rows: u64,
    bodies: &[B],
    decode: impl Fn(&[u8]) -> anyhow::Result<usize>,
) -> anyhow::Result<DecodeCase> {
    let mut best = f64::INFINITY;
    for _ in 0..rounds {
        let start = Instant::now();
        let mut got = 0u64;
        for body in bodies {
            got += decode(body.as_ref())? as u64;
        }
        best = best.min(start.elapsed().as_secs_f64());
        anyhow::ensure!(got == rows, "{name}: decoded {got} rows of {rows}");
    }
    let bytes: usize = bodies.iter().map(|b| b.as_ref().len()).sum();
    Ok(DecodeCase {
        name: name.to_owned(),
        bytes_per_row: bytes as f64 / rows as f64,
        micros_per_row: best * 1e6 / rows as f64,
        mb_per_s: bytes as f64 / 1e6 / best,
        vs_file: 1.0,
    })
}

fn markdown(report: &DecodeReport) -> String {
    let mut out = format!(
        "# Decoding request bodies into rows\n\n{} generated rows in bodies of {} rows, one \
         thread, best of {} rounds (`logvault-bench decode`).\n\n\
         | decoder | body bytes/row | µs/row | MB/s | vs file path |\n|---|---:|---:|---:|---:|\n",
        report.rows, report.rows_per_request, report.rounds
    );
    for c in &report.cases {
        out.push_str(&format!(
            "| {} | {:.0} | {:.2} | {:.0} | {:.2}x |\n",
            c.name, c.bytes_per_row, c.micros_per_row, c.mb_per_s, c.vs_file
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_decoder_gives_every_row_and_the_report_names_them() {
        let dir = tempfile::tempdir().unwrap();
        let report = run(&DecodeOptions {
            rows: 1_200,
            rows_per_request: 500,
            rounds: 1,
            out: dir.path().to_path_buf(),
        })
        .unwrap();
        let names: Vec<&str> = report.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(report.cases[0].vs_file == 1.0);
        // The same bodies through both array parsers.
        assert_eq!(report.cases[1].bytes_per_row, report.cases[2].bytes_per_row);
        // OTLP's JSON carries every attribute as a typed value object: larger bodies.
        assert!(report.cases[3].bytes_per_row > report.cases[1].bytes_per_row);
        let md = std::fs::read_to_string(dir.path().join("decode.md")).unwrap();
        assert!(md.contains("| OTLP/JSON |"), "{md}");
    }
}
