//! The vault, key, role and identity commands, run as the `logvault` binary: JSON shapes, the
//! `error:` line with its HTTP-like code, state shared between processes, and `--now`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn logvault(home: &Path, args: &[&str]) -> Output {
    Command::new(crate::common::bin())
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("LOGVAULT_HOME")
        .output()
        .unwrap()
}

/// Runs with `-o json`, expects success and exactly one JSON document on stdout.
fn json(home: &Path, args: &[&str]) -> Value {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    let out = logvault(home, &all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs, expects failure with one `error: CODE ...` line on stderr and nothing on stdout.
fn fails(home: &Path, args: &[&str], code: &str, text: &str) {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    let out = logvault(home, &all);
    assert!(!out.status.success(), "{args:?} succeeded");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
    assert!(
        lines[0].starts_with(&format!("error: {code} ")),
        "{args:?}: {stderr}"
    );
    assert!(lines[0].contains(text), "{args:?}: {stderr} lacks {text:?}");
    assert!(out.stdout.is_empty(), "{args:?}: stdout must be empty");
}

#[test]
fn vault_key_identity_and_role_commands_keep_the_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();

    let v = json(
        home,
        &[
            "vault",
            "create",
            "--name",
            "contoso",
            "--purge-protection",
            "true",
        ],
    );
    assert_eq!(v["name"], "contoso");
    assert_eq!(v["uri"], "https://contoso.vault.local");
    // Where `logvault serve` serves its keys: its default listener, as the home was never served.
    assert_eq!(v["vaultUri"], "https://127.0.0.1:8443/vaults/contoso/");
    assert_eq!(v["region"], "local");
    assert_eq!(v["softDelete"], true);
    assert_eq!(v["purgeProtection"], true);

    let k = json(
        home,
        &["key", "create", "--vault", "contoso", "--name", "cmk"],
    );
    let v1 = k["version"].as_str().unwrap().to_owned();
    assert_eq!(k["name"], "cmk");
    assert_eq!(k["enabled"], true);
    assert_eq!(
        k["kid"],
        format!("https://contoso.vault.local/keys/cmk/{v1}").as_str()
    );
    let r = json(
        home,
        &["key", "rotate", "--vault", "contoso", "--name", "cmk"],
    );
    let v2 = r["version"].as_str().unwrap().to_owned();
    assert_ne!(v1, v2);

    json(
        home,
        &[
            "key",
            "disable",
            "--vault",
            "contoso",
            "--name",
            "cmk",
            "--version",
            &v1,
        ],
    );
    let show = json(
        home,
        &["key", "show", "--vault", "contoso", "--name", "cmk"],
    );
    let versions = show["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], v1.as_str(), "oldest first");
    assert_eq!(versions[0]["enabled"], false);
    assert_eq!(versions[1]["enabled"], true);
    assert!(versions[0]["created"].is_string());
    assert_eq!(show["enabled"], true);

    let rsa = json(
        home,
        &[
            "key", "create", "--vault", "contoso", "--name", "rsa", "--kty", "RSA", "--size",
            "3072",
        ],
    );
    assert_eq!(
        (rsa["kty"].as_str(), rsa["size"].as_u64()),
        (Some("RSA"), Some(3072))
    );

    let id = json(home, &["identity", "create", "--name", "cluster-id"]);
    assert_eq!(
        id["id"],
        "/subscriptions/local/resourceGroups/local/providers/Microsoft.ManagedIdentity/userAssignedIdentities/cluster-id"
    );
    let principal = id["principalId"].as_str().unwrap().to_owned();
    assert_eq!(id["tenantId"], "local");
    assert_eq!(id["name"], "cluster-id");

    let with_policy = json(
        home,
        &[
            "vault",
            "set-policy",
            "--name",
            "contoso",
            "--object-id",
            &principal,
            "--key-permissions",
            "get",
            "wrapKey",
            "unwrapKey",
        ],
    );
    assert_eq!(
        with_policy["accessPolicies"][0]["objectId"],
        principal.as_str()
    );
    assert_eq!(
        with_policy["accessPolicies"][0]["keyPermissions"],
        serde_json::json!(["get", "wrapKey", "unwrapKey"])
    );
    let role = json(
        home,
        &[
            "role",
            "assignment",
            "create",
            "--assignee",
            &principal,
            "--role",
            "Key Vault Crypto Service Encryption User",
            "--vault",
            "contoso",
        ],
    );
    assert_eq!(role["principalId"], principal.as_str());
    assert_eq!(
        role["roleDefinitionName"],
        "Key Vault Crypto Service Encryption User"
    );
    json(
        home,
        &[
            "role",
            "assignment",
            "delete",
            "--assignee",
            "cluster-id",
            "--role",
            "Key Vault Crypto Service Encryption User",
            "--vault",
            "contoso",
        ],
    );
    let without = json(
        home,
        &[
            "vault",
            "delete-policy",
            "--name",
            "contoso",
            "--object-id",
            &principal,
        ],
    );
    assert_eq!(without["accessPolicies"], serde_json::json!([]));
    assert_eq!(without["roleAssignments"], serde_json::json!([]));

    let listed = json(home, &["vault", "list"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["contoso", "logvault-service"],
        "every home has the service vault"
    );
    assert_eq!(
        json(home, &["vault", "audit", "--name", "contoso"]),
        serde_json::json!([])
    );

    // Outage mode set by one process is seen by the next.
    json(
        home,
        &["vault", "outage", "--name", "contoso", "--mode", "refused"],
    );
    assert_eq!(
        json(home, &["vault", "show", "--name", "contoso"])["outage"],
        "refused"
    );
    json(
        home,
        &["vault", "outage", "--name", "contoso", "--mode", "none"],
    );

    // Table output is for people: not JSON.
    let out = logvault(home, &["key", "list", "--vault", "contoso"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("NAME"), "{text}");
    assert!(text.contains("cmk") && text.contains("rsa"), "{text}");
}

#[test]
fn errors_are_one_line_with_an_http_like_code() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    json(home, &["vault", "create", "--name", "contoso"]);
    json(
        home,
        &["key", "create", "--vault", "contoso", "--name", "cmk"],
    );
    fails(
        home,
        &["vault", "create", "--name", "contoso"],
        "409",
        "vault contoso already exists",
    );
    fails(
        home,
        &["vault", "show", "--name", "nokv"],
        "404",
        "vault nokv not found",
    );
    fails(
        home,
        &["key", "show", "--vault", "contoso", "--name", "nokey"],
        "404",
        "key nokey",
    );
    fails(
        home,
        &["vault", "create", "--name", "1bad"],
        "400",
        "invalid vault name",
    );
    fails(
        home,
        &[
            "key", "create", "--vault", "contoso", "--name", "k", "--kty", "oct", "--size", "128",
        ],
        "400",
        "256 bits",
    );
    fails(
        home,
        &[
            "key",
            "disable",
            "--vault",
            "logvault-service",
            "--name",
            "service-key",
        ],
        "400",
        "reserved",
    );
    fails(
        home,
        &[
            "key",
            "enable",
            "--vault",
            "contoso",
            "--name",
            "cmk",
            "--version",
            "nope",
        ],
        "404",
        "version nope",
    );
    fails(
        home,
        &[
            "vault",
            "set-policy",
            "--name",
            "contoso",
            "--object-id",
            "ghost",
            "--key-permissions",
            "get",
        ],
        "400",
        "not a known identity",
    );
    json(
        home,
        &["key", "delete", "--vault", "contoso", "--name", "cmk"],
    );
    fails(
        home,
        &["key", "create", "--vault", "contoso", "--name", "cmk"],
        "409",
        "recover or purge",
    );
    json(
        home,
        &[
            "vault",
            "update",
            "--name",
            "contoso",
            "--purge-protection",
            "true",
        ],
    );
    fails(
        home,
        &["key", "purge", "--vault", "contoso", "--name", "cmk"],
        "409",
        "purge protection",
    );
    json(
        home,
        &["key", "recover", "--vault", "contoso", "--name", "cmk"],
    );

    // A damaged vault file is reported, naming it.
    let file = home.join("vault/vaults/contoso/vault.json");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.truncate(bytes.len() - 7);
    std::fs::write(&file, &bytes).unwrap();
    fails(
        home,
        &["vault", "show", "--name", "contoso"],
        "500",
        "vault.json",
    );
}

#[test]
fn now_moves_the_retention_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let at = |t: &str, args: &[&str]| {
        let mut all = vec!["--now", t];
        all.extend_from_slice(args);
        json(home, &all)
    };
    at(
        "2030-01-01T00:00:00Z",
        &["vault", "create", "--name", "contoso"],
    );
    at(
        "2030-01-01T00:00:00Z",
        &["key", "create", "--vault", "contoso", "--name", "cmk"],
    );
    let deleted = at(
        "2030-01-01T00:00:00Z",
        &["key", "delete", "--vault", "contoso", "--name", "cmk"],
    );
    // Fourteen days after the delete, which ran a moment after the `--now` it started at.
    let purge =
        chrono::DateTime::parse_from_rfc3339(deleted["scheduledPurgeDate"].as_str().unwrap())
            .unwrap();
    let due = chrono::DateTime::parse_from_rfc3339("2030-01-15T00:00:00Z").unwrap();
    assert!(
        purge >= due && purge - due < chrono::Duration::seconds(20),
        "{deleted}"
    );
    // `--now` sets where the clock starts; it moves on from there while the command runs.
    let listed = at(
        "2030-01-14T23:59:30Z",
        &["key", "list", "--vault", "contoso"],
    );
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let listed = at(
        "2030-01-15T00:01:00Z",
        &["key", "list", "--vault", "contoso"],
    );
    assert_eq!(
        listed,
        serde_json::json!([]),
        "purged when the retention period ends"
    );
}

#[test]
fn concurrent_processes_never_lose_a_rotation() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    json(home, &["vault", "create", "--name", "contoso"]);
    json(
        home,
        &["key", "create", "--vault", "contoso", "--name", "cmk"],
    );
    const PROCESSES: usize = 4;
    const EACH: usize = 4;
    let handles: Vec<_> = (0..PROCESSES)
        .map(|_| {
            let home = home.to_owned();
            std::thread::spawn(move || {
                for _ in 0..EACH {
                    let out = logvault(
                        &home,
                        &["key", "rotate", "--vault", "contoso", "--name", "cmk"],
                    );
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let show = json(
        home,
        &["key", "show", "--vault", "contoso", "--name", "cmk"],
    );
    assert_eq!(
        show["versions"].as_array().unwrap().len(),
        1 + PROCESSES * EACH
    );
}

/// Regression: `--now` stopped the clock, so a command that waits for an operation due two
/// seconds later (`cluster create` without `--no-wait`) never returned.
#[test]
fn a_command_run_with_now_waits_for_its_operation_and_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let cluster = json(
        home,
        &[
            "--now",
            "2030-01-01T00:00:00Z",
            "cluster",
            "create",
            "--name",
            "contoso-cluster",
        ],
    );
    assert_eq!(cluster["properties"]["provisioningState"], "Succeeded");
    let created = cluster["properties"]["createdDate"].as_str().unwrap_or("");
    assert!(created.starts_with("2030-01-01T00:00"), "{cluster}");
}
