//! The durations of `config.json`.

use logvault_fuzz::config::timings_target;
use proptest::prelude::*;

use crate::harness::{self, Stats};

fn field() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "keyCheckMinSecs",
        "keyCheckMaxSecs",
        "revocationBoundSecs",
        "restoreBoundSecs",
        "softDeleteSecs",
        "linkWindowSecs",
        "hotWindowSecs",
        "asyncOperationSecs",
    ])
}

fn number() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        prop::sample::select(vec![
            i64::MAX,
            i64::MAX / 1000,
            i64::MAX / 1000 + 1,
            9_000_000_000_000_000,
            100_000_000_000_000,
            8_000_000_000_000,
            3_153_600_000,
            86_400,
            1,
            0,
            -1,
            i64::MIN
        ])
        .prop_map(serde_json::Value::from),
        Just(serde_json::json!(1.5)),
        Just(serde_json::json!("60")),
    ]
}

#[test]
fn timings_are_refused_naming_the_field_or_usable_with_any_time() {
    let _turn = harness::turn();
    let stats = Stats::new("config timings");
    let strategy = prop::collection::vec((field(), number()), 0..6).prop_map(|fields| {
        let mut obj = serde_json::Map::new();
        for (f, v) in fields {
            obj.insert(f.to_owned(), v);
        }
        serde_json::to_vec(&obj).unwrap()
    });
    let mut runner = proptest::test_runner::TestRunner::new(harness::config(1000));
    let result = runner.run(&strategy, |bytes| {
        let out = harness::case(&stats, 16 << 20, move || timings_target(&bytes));
        stats.note(if out { "accepted" } else { "refused" });
        Ok(())
    });
    if let Err(e) = result {
        panic!("config timings: {e}");
    }
}
