//! The local vault's documents: damaged files, and hand-edited bodies with a correct checksum.

use logvault_fuzz::vault::{Doc, body_target, document_target, fixture_body};
use proptest::prelude::*;
use serde_json::Value;

use crate::harness::{self, Stats};

fn doc() -> impl Strategy<Value = Doc> {
    prop_oneof![Just(Doc::Vault), Just(Doc::Identities)]
}

#[test]
fn damaged_documents_are_refused_by_their_checksum_or_served() {
    let _turn = harness::turn();
    let stats = Stats::new("vault documents");
    let mut runner = proptest::test_runner::TestRunner::new(harness::config(150));
    let result = runner.run(&(doc(), harness::script(1)), |(doc, script)| {
        let out = harness::case(&stats, 64 << 20, move || {
            document_target(doc, &script).is_ok()
        });
        stats.note(if out { "served" } else { "refused" });
        Ok(())
    });
    if let Err(e) = result {
        panic!("vault documents: {e}");
    }
}

/// A JSON value a hand edit might leave in a field.
fn edited_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(Value::Bool(true)),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(0)),
        Just(serde_json::json!(u32::MAX)),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::json!(i64::MIN)),
        Just(serde_json::json!(1e300)),
        Just(serde_json::json!("")),
        Just(serde_json::json!("x".repeat(300))),
        Just(serde_json::json!("../../etc")),
        Just(serde_json::json!("+262142-12-31T23:59:59Z")),
        Just(serde_json::json!("9999-12-31T23:59:59Z")),
        Just(serde_json::json!("0001-01-01T00:00:00Z")),
        Just(serde_json::json!("2026-03-01T12:00:00Z")),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        Just(serde_json::json!("oct")),
        Just(serde_json::json!("RSA")),
        Just(serde_json::json!("AAAA")),
        Just(serde_json::json!("timeout")),
    ]
}

/// Sets the `n`-th scalar or container of `v` (in document order) to `new`.
pub fn set_nth(v: &mut Value, n: &mut usize, new: &Value) -> bool {
    if *n == 0 {
        *v = new.clone();
        return true;
    }
    *n -= 1;
    match v {
        Value::Object(map) => map.values_mut().any(|c| set_nth(c, n, new)),
        Value::Array(items) => items.iter_mut().any(|c| set_nth(c, n, new)),
        _ => false,
    }
}

/// Removes the `n`-th object member of `v`.
pub fn remove_nth(v: &mut Value, n: &mut usize) -> bool {
    match v {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if *n == 0 {
                    map.remove(&k);
                    return true;
                }
                *n -= 1;
                if let Some(c) = map.get_mut(&k)
                    && remove_nth(c, n)
                {
                    return true;
                }
            }
            false
        }
        Value::Array(items) => items.iter_mut().any(|c| remove_nth(c, n)),
        _ => false,
    }
}

/// The number of nodes of `v` (itself included).
fn nodes(v: &Value) -> usize {
    1 + match v {
        Value::Object(map) => map.values().map(nodes).sum(),
        Value::Array(items) => items.iter().map(nodes).sum(),
        _ => 0,
    }
}

/// The `n`-th node of `v`, in the order of [`set_nth`].
fn nth(v: &Value, n: usize) -> Option<&Value> {
    fn go<'a>(v: &'a Value, n: &mut usize) -> Option<&'a Value> {
        if *n == 0 {
            return Some(v);
        }
        *n -= 1;
        match v {
            Value::Object(map) => map.values().find_map(|c| go(c, n)),
            Value::Array(items) => items.iter().find_map(|c| go(c, n)),
            _ => None,
        }
    }
    let mut n = n;
    go(v, &mut n)
}

/// Values of the same kind as `old`, at the edges of what the code may assume.
fn like(old: &Value, pick: usize, fallback: &Value) -> Value {
    let dates = [
        "+262142-12-31T23:59:59Z",
        "-262143-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",
    ];
    let numbers = [
        0i64,
        -1,
        1,
        i64::from(u32::MAX),
        i64::MAX,
        i64::MIN,
        730,
        731,
    ];
    match old {
        Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => {
            serde_json::json!(dates[pick % dates.len()])
        }
        Value::Number(_) => serde_json::json!(numbers[pick % numbers.len()]),
        Value::Null => match pick % 3 {
            0 => serde_json::json!(dates[pick % dates.len()]),
            1 => serde_json::json!(numbers[pick % numbers.len()]),
            _ => fallback.clone(),
        },
        _ => fallback.clone(),
    }
}

/// Edits of a JSON document: nodes set to values of their own kind at the edges (dates at the
/// end of time, numbers at the limits of their type), to odd values of other kinds, or removed.
pub fn edited(body: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let v: Value = serde_json::from_slice(&body).unwrap();
    let count = nodes(&v);
    prop::collection::vec((0u8..10, 0..count, any::<usize>(), edited_value()), 1..4).prop_map(
        move |edits| {
            let mut v = v.clone();
            for (how, at, pick, other) in edits {
                let mut n = at;
                match how {
                    0 => {
                        remove_nth(&mut v, &mut n);
                    }
                    1..=2 => {
                        set_nth(&mut v, &mut n, &other);
                    }
                    _ => {
                        let new = nth(&v, at).map(|old| like(old, pick, &other));
                        if let Some(new) = new {
                            set_nth(&mut v, &mut n, &new);
                        }
                    }
                }
            }
            serde_json::to_vec_pretty(&v).unwrap()
        },
    )
}

#[test]
fn hand_edited_bodies_are_refused_naming_the_vault_or_served() {
    let _turn = harness::turn();
    let stats = Stats::new("vault bodies");
    for doc in [Doc::Vault, Doc::Identities] {
        let mut runner = proptest::test_runner::TestRunner::new(harness::config(200));
        let result = runner.run(&edited(fixture_body(doc)), |body| {
            let out = harness::case(&stats, 64 << 20, move || body_target(doc, &body).is_ok());
            stats.note(format!(
                "{doc:?} {}",
                if out { "served" } else { "refused" }
            ));
            Ok(())
        });
        if let Err(e) = result {
            panic!("vault bodies ({doc:?}): {e}");
        }
    }
}
