//! `logvault workspace update --hot-cache-days` (R-F1: the hot window per workspace).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn logvault(home: &Path, args: &[&str]) -> Output {
    Command::new(crate::common::bin())
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

#[test]
fn workspace_update_sets_and_replaces_tags_shown_as_arm_s() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    json(home, &["workspace", "create", "--name", "ws-tags"]);
    let ws = json(
        home,
        &[
            "workspace",
            "update",
            "--name",
            "ws-tags",
            "--tag",
            "team=ops",
            "--tag",
            "cost=42",
        ],
    );
    assert_eq!(ws["tags"], serde_json::json!({"team": "ops", "cost": "42"}));
    let ws = json(home, &["workspace", "show", "--name", "ws-tags"]);
    assert_eq!(ws["tags"], serde_json::json!({"team": "ops", "cost": "42"}));
    // Replaced, not merged; `--tag ''` clears them.
    let ws = json(
        home,
        &[
            "workspace",
            "update",
            "--name",
            "ws-tags",
            "--tag",
            "team=sre",
        ],
    );
    assert_eq!(ws["tags"], serde_json::json!({"team": "sre"}));
    let ws = json(
        home,
        &["workspace", "update", "--name", "ws-tags", "--tag", ""],
    );
    assert_eq!(ws["tags"], serde_json::json!({}));
    for bad in [vec!["--tag", "novalue"], vec![]] {
        let mut args = vec!["workspace", "update", "--name", "ws-tags"];
        args.extend(bad.iter());
        let out = logvault(home, &args);
        assert!(!out.status.success(), "{bad:?} was accepted");
    }
}

/// Writes `input` to a command's stdin and returns its output.
fn with_stdin(home: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(crate::common::bin())
        .arg("--home")
        .arg(home)
        .env_remove("LOGVAULT_HOME")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Regression: the second workspace of a home could not ingest ("write-ahead log of workspace
/// other: HOME/wal/wal-00000000000000000001.lvw is corrupt at offset 0: the file belongs to
/// workspace \"alpha\"").
#[test]
fn a_second_workspace_of_a_home_ingests_from_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let rows = "{\"TimeGenerated\":\"2026-03-01T00:00:00Z\",\"Level\":\"info\"}\n\
                {\"TimeGenerated\":\"2026-03-01T00:01:00Z\",\"Level\":\"warn\"}\n";
    for ws in ["alpha", "other"] {
        json(home, &["workspace", "create", "--name", ws]);
    }
    for ws in ["alpha", "other", "alpha"] {
        let out = with_stdin(
            home,
            &[
                "-o",
                "json",
                "ingest",
                "--workspace",
                ws,
                "--table",
                "App",
                "--format",
                "json",
            ],
            rows,
        );
        assert!(
            out.status.success(),
            "{ws}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["accepted"], 2, "{ws}: {report}");
    }
    for (ws, n) in [("alpha", 4), ("other", 2)] {
        let v = json(
            home,
            &["query", "--workspace", ws, "SELECT count(*) AS n FROM App"],
        );
        assert_eq!(v[0]["n"], n, "{ws}: {v}");
    }
}

/// Every file under `dir` (but the vault's audit log, which records each key use) with its
/// inode, size and modification time.
fn file_states(
    dir: &Path,
) -> std::collections::BTreeMap<String, (u64, u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let path = entry.path();
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            if name.starts_with("vault/") && name.contains("audit") {
                continue;
            }
            out.insert(name, (meta.ino(), meta.size(), meta.modified().unwrap()));
        }
    }
    out
}

/// Reads are reads: a query, `status`, `workspace show`, `cluster list` and `key show` on a home
/// with nothing due leave every file of the home as it was (same inode, size and modification
/// time), the vault's audit log excepted.
///
/// Regression: every control-plane read took the exclusive lock and rewrote
/// `control/state.json` (fsync, rename, directory fsync), and a query opened the workspace's
/// write-ahead log, which starts a new log file.
#[test]
fn read_only_commands_leave_every_file_of_the_home_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    // Key checks far apart, so that none falls due while the reads run.
    json(home, &["status"]);
    let config_path = home.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["timings"]["keyCheckMinSecs"] = 3600.into();
    config["timings"]["keyCheckMaxSecs"] = 3600.into();
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();

    json(home, &["workspace", "create", "--name", "ws-read"]);
    json(
        home,
        &[
            "vault",
            "create",
            "--name",
            "kv-read",
            "--purge-protection",
            "true",
        ],
    );
    json(
        home,
        &["key", "create", "--vault", "kv-read", "--name", "cmk"],
    );
    let cluster = json(home, &["cluster", "create", "--name", "cluster-read"]);
    let principal = cluster["identity"]["principalId"]
        .as_str()
        .unwrap()
        .to_owned();
    json(
        home,
        &[
            "vault",
            "set-policy",
            "--name",
            "kv-read",
            "--object-id",
            &principal,
            "--key-permissions",
            "get",
            "wrapKey",
            "unwrapKey",
        ],
    );
    json(
        home,
        &[
            "cluster",
            "update",
            "--name",
            "cluster-read",
            "--key-vault-uri",
            "https://kv-read.vault.local",
            "--key-name",
            "cmk",
        ],
    );
    let rows = "{\"TimeGenerated\":\"2026-03-01T00:00:00Z\",\"Level\":\"info\"}\n";
    let ingest = |ws: &str| {
        let out = with_stdin(
            home,
            &[
                "-o",
                "json",
                "ingest",
                "--workspace",
                ws,
                "--table",
                "App",
                "--format",
                "json",
            ],
            rows,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ingest("ws-read");
    json(
        home,
        &[
            "workspace",
            "link",
            "--name",
            "ws-read",
            "--cluster",
            "cluster-read",
        ],
    );
    ingest("ws-read");
    // One query first: it may check the key (due once after the link).
    json(
        home,
        &[
            "query",
            "--workspace",
            "ws-read",
            "SELECT count(*) AS n FROM App",
        ],
    );

    let before = file_states(home);
    let reads: [&[&str]; 6] = [
        &[
            "query",
            "--workspace",
            "ws-read",
            "SELECT count(*) AS n FROM App",
        ],
        &["status"],
        &["status", "--workspace", "ws-read"],
        &["workspace", "show", "--name", "ws-read"],
        &["cluster", "list"],
        &["key", "show", "--vault", "kv-read", "--name", "cmk"],
    ];
    for args in reads {
        json(home, args);
        let after = file_states(home);
        let changed: Vec<&String> = after
            .iter()
            .filter(|(name, state)| before.get(*name) != Some(state))
            .map(|(name, _)| name)
            .chain(before.keys().filter(|name| !after.contains_key(*name)))
            .collect();
        assert!(changed.is_empty(), "{args:?} changed {changed:?}");
    }
}
