//! `logvault workspace update --hot-cache-days` (R-F1: the hot window per workspace).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn logvault(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logvault"))
        .arg("--home")
        .arg(home)
        .env_remove("LOGVAULT_HOME")
        .args(args)
        .output()
        .unwrap()
}

fn json(home: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    let out = logvault(home, &all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn workspace_update_sets_and_resets_the_hot_cache_window() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    json(home, &["workspace", "create", "--name", "ws-hot"]);
    let ws = json(
        home,
        &[
            "workspace",
            "update",
            "--name",
            "ws-hot",
            "--hot-cache-days",
            "60",
        ],
    );
    assert_eq!(ws["hotCacheWindowDays"], 60);
    // Kept: a later process shows it.
    let ws = json(home, &["workspace", "show", "--name", "ws-hot"]);
    assert_eq!(ws["hotCacheWindowDays"], 60);
    // Refused with a one-line error and the 400 code; the setting stays.
    for bad in ["0", "731", "soon"] {
        let out = logvault(
            home,
            &[
                "workspace",
                "update",
                "--name",
                "ws-hot",
                "--hot-cache-days",
                bad,
            ],
        );
        assert!(!out.status.success(), "{bad} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("out of range") || err.contains("number of days"),
            "{bad}: {err}"
        );
    }
    assert_eq!(
        json(home, &["workspace", "show", "--name", "ws-hot"])["hotCacheWindowDays"],
        60
    );
    let ws = json(
        home,
        &[
            "workspace",
            "update",
            "--name",
            "ws-hot",
            "--hot-cache-days",
            "default",
        ],
    );
    assert!(ws.get("hotCacheWindowDays").is_none(), "{ws}");
}
