//! Target of the durations in a home's `config.json` (`timings`, `logvault_core::Timings`).
//!
//! The rest of `config.json` (the hot cache's settings, the storage URL) is fuzzed through the
//! facade in `crates/logvault/tests/it/fuzz_config.rs`, which opens whole homes.
//!
//! The invariant: a `timings` object is refused with an error naming the field, or every
//! duration it gives can be added to and subtracted from any time logvault accepts (the years 1
//! to 9999, the range of Log Analytics' `datetime`) without overflowing: the rules compute
//! `deleted + softDelete`, `now - hotWindow`, `now + asyncOperation` and the like on times that
//! come from files.

use chrono::{DateTime, Duration, TimeZone, Utc};
use logvault_core::Timings;

/// The extreme times the durations must combine with.
pub fn extreme_times() -> [DateTime<Utc>; 3] {
    let t = |y, mo, d, h, mi, s| {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .unwrap_or_else(|| panic!("fixture time {y}-{mo}-{d}"))
    };
    [
        t(1, 1, 1, 0, 0, 0),
        t(2026, 3, 1, 12, 0, 0),
        t(9999, 12, 31, 23, 59, 59),
    ]
}

/// Parses `bytes` as a `timings` object; returns whether it was accepted.
pub fn timings_target(bytes: &[u8]) -> bool {
    let Ok(t) = serde_json::from_slice::<Timings>(bytes) else {
        return false;
    };
    if let Err(e) = t.validate() {
        let text = e.to_string();
        assert!(
            [
                "keyCheckMinSecs",
                "keyCheckMaxSecs",
                "revocationBoundSecs",
                "restoreBoundSecs",
                "softDeleteSecs",
                "linkWindowSecs",
                "hotWindowSecs",
                "asyncOperationSecs",
            ]
            .iter()
            .any(|f| text.contains(f)),
            "a refusal naming no field: {text}"
        );
        return false;
    }
    type Accessor = fn(&Timings) -> Duration;
    let durations: [(&str, Accessor); 6] = [
        ("keyCheckMin", Timings::key_check_min),
        ("keyCheckMax", Timings::key_check_max),
        ("softDelete", Timings::soft_delete),
        ("linkWindow", Timings::link_window),
        ("hotWindow", Timings::hot_window),
        ("asyncOperation", Timings::async_operation),
    ];
    for (name, get) in durations {
        let d = std::panic::catch_unwind(|| get(&t))
            .unwrap_or_else(|_| panic!("{name}: a validated value does not make a duration"));
        for at in extreme_times() {
            assert!(
                at.checked_add_signed(d).is_some() && at.checked_sub_signed(d).is_some(),
                "{name}: a validated duration overflows a time in the years 1 to 9999 ({at})"
            );
        }
    }
    true
}
