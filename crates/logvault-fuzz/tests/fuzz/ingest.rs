//! The ingest parsers: mutated corpus payloads, random bytes, and generated rows that must come
//! back exactly.

use logvault_fuzz::ingest::{Summary, parse_target};
use logvault_fuzz::mutate::Mutation;
use logvault_ingest::Format;
use proptest::prelude::*;

use crate::harness::{self, Stats};

/// Peak allocation bound of one parse of a small payload (limits: 512-byte records, 300-byte
/// chunks): a fixed allowance plus a multiple of the input.
fn limit(len: usize) -> usize {
    (16 << 20) + 512 * len
}

fn run(stats: &Stats, format: Format, data: Vec<u8>) {
    let len = data.len();
    let out: Summary = harness::case(stats, limit(len), move || parse_target(format, &data));
    stats.note(if out.refused {
        "refused"
    } else if out.rejected > 0 {
        "some rejected"
    } else {
        "all accepted"
    });
}

fn mutated(dir: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = harness::corpus(dir);
    (
        prop::sample::select(seeds),
        prop::collection::vec(harness::mutation(), 0..6),
    )
        .prop_map(|(mut seed, ms): (Vec<u8>, Vec<Mutation>)| {
            for m in &ms {
                m.apply(&mut seed);
            }
            seed
        })
}

fn fuzz(name: &'static str, format: Format, dir: &'static str) {
    let _turn = harness::turn();
    let stats = Stats::new(name);
    let mut runner = proptest::test_runner::TestRunner::new(harness::config(300));
    let result = runner.run(&mutated(dir), |data| {
        run(&stats, format, data);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    // Random bytes too, and the seeds themselves.
    let mut runner = proptest::test_runner::TestRunner::new(harness::config(100));
    let result = runner.run(&prop::collection::vec(any::<u8>(), 0..600), |data| {
        run(&stats, format, data);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name} (random bytes): {e}");
    }
    for seed in harness::corpus(dir) {
        run(&stats, format, seed);
    }
}

#[test]
fn json_lines_payloads() {
    fuzz("json lines", Format::JsonLines, "jsonl");
}

#[test]
fn json_array_payloads() {
    fuzz("json arrays", Format::Json, "json");
}

#[test]
fn csv_payloads() {
    fuzz("csv", Format::Csv, "csv");
}

#[test]
fn text_and_syslog_payloads() {
    fuzz("text", Format::Text, "text");
}

/// Regression of the first AFL++ finding (docs/reliability.md, "Fuzzing"): a string value with a
/// lone surrogate escape (`"\ud800"`, no character) fails the parser's decoding, so the line is
/// rejected; the test's reference reading took the line (serde_json's `RawValue` does not decode
/// escapes) and then panicked decoding it as a time. Both reject such a line now; a valid pair
/// and a lone surrogate inside an object (kept as its text) are accepted.
#[test]
fn a_lone_surrogate_escape_rejects_the_line_in_the_parser_and_the_reference_alike() {
    let _turn = harness::turn();
    let stats = Stats::new("json lines: lone surrogate escapes");
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/corpus/jsonl/lone_surrogate.jsonl"
    );
    let data = std::fs::read(path).unwrap();
    let out = harness::case(&stats, limit(data.len()), move || {
        parse_target(Format::JsonLines, &data)
    });
    assert_eq!(
        (out.accepted, out.rejected),
        (2, 3),
        "lines accepted and rejected"
    );
}
