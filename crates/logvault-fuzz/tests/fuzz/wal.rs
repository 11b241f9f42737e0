//! Replay of damaged write-ahead logs.

use logvault_fuzz::mutate::{Mutation, Script};
use logvault_fuzz::wal::{Outcome, fixture_files, replay_target};

use crate::harness::{self, Stats};

fn run(stats: &Stats, script: Script) {
    let out = harness::case(stats, 64 << 20, move || replay_target(&script));
    stats.note(format!("{out:?}"));
}

#[test]
fn damaged_logs_replay_every_acknowledged_record_or_are_refused() {
    let _turn = harness::turn();
    let stats = Stats::new("wal replay");
    let files = fixture_files().len();
    let mut runner = proptest::test_runner::TestRunner::new(harness::config(300));
    let result = runner.run(&harness::script(files), |script| {
        run(&stats, script);
        Ok(())
    });
    if let Err(e) = result {
        panic!("wal replay: {e}");
    }
}

/// One bit flipped at every `LOGVAULT_SWEEP_STRIDE`-th byte (default 5; 1 for the full sweep of
/// `docs/reliability.md`) of every file.
#[test]
fn a_bit_flipped_anywhere_in_the_log_is_caught_or_cut_as_the_torn_tail() {
    let _turn = harness::turn();
    let stats = Stats::new("wal bit-flip sweep");
    let names = fixture_files();
    let sizes: Vec<usize> = names
        .iter()
        .map(|n| logvault_fuzz::wal::fixture_len(n))
        .collect();
    let stride = harness::stride(5);
    for (file, size) in sizes.iter().enumerate() {
        for at in (file % stride..*size).step_by(stride) {
            let script = Script {
                file,
                mutations: vec![Mutation::FlipBit {
                    at,
                    bit: (at % 8) as u8,
                }],
            };
            let out = harness::case(&stats, 64 << 20, move || replay_target(&script));
            stats.note(format!("{}: {out:?}", names[file]));
            assert_ne!(
                out,
                Outcome::Intact,
                "a flipped bit at {at} of {} went unnoticed",
                names[file]
            );
        }
    }
}

#[test]
fn zz_estimate() {
    use proptest::strategy::{Strategy, ValueTree};
    let names = fixture_files();
    let lens: Vec<usize> = names.iter().map(|n| logvault_fuzz::wal::fixture_len(n)).collect();
    let mut runner = proptest::test_runner::TestRunner::default();
    let strat = harness::script(names.len());
    let n = 2_000_000;
    let mut hits = [0u64; 4];
    for _ in 0..n {
        let script = strat.new_tree(&mut runner).unwrap().current();
        let mut bytes = vec![0u8; lens[script.file]];
        for (i, b) in bytes.iter_mut().enumerate() { *b = (i % 251) as u8; }
        script.apply(&mut bytes);
        if bytes.len() == 25 && bytes.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8) {
            hits[script.file] += 1;
        }
    }
    eprintln!("{names:?} {hits:?} of {n}");
}
