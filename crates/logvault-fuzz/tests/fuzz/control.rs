//! The control plane's state file: damaged and hand-edited.

use logvault_fuzz::control::{fixture_state, state_target};
use proptest::prelude::*;

use crate::harness::{self, Stats};
use crate::vault::edited;

#[test]
fn damaged_or_edited_state_files_are_refused_naming_the_file_or_served() {
    let _turn = harness::turn();
    let stats = Stats::new("control state");
    let seed = fixture_state().to_vec();
    let raw = {
        let seed = seed.clone();
        prop::collection::vec(harness::mutation(), 1..5).prop_map(move |ms| {
            let mut b = seed.clone();
            for m in &ms {
                m.apply(&mut b);
            }
            b
        })
    };
    let strategy = prop_oneof![raw, edited(seed)];
    let mut runner = proptest::test_runner::TestRunner::new(harness::config(300));
    let result = runner.run(&strategy, |bytes| {
        let out = harness::case(&stats, 64 << 20, move || state_target(&bytes));
        stats.note(if out { "served" } else { "refused" });
        Ok(())
    });
    if let Err(e) = result {
        panic!("control state: {e}");
    }
}
