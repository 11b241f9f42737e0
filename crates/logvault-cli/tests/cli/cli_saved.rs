//! `logvault saved-search`, `storage-account`, `workspace linked-storage` and
//! `workspace query-history` (R-H1..R-H3), run as a user runs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{fails, json, logvault};

const ROWS: &str = r#"{"TimeGenerated":"2026-01-01T10:00:00Z","Level":"Error","Seq":1}
{"TimeGenerated":"2026-01-01T10:30:00Z","Level":"Info","Seq":2}
{"TimeGenerated":"2026-01-01T11:15:00Z","Level":"Error","Seq":3}
"#;

fn home_with_data() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    json(home, &["workspace", "create", "--name", "ws-saved"]);
    let out = logvault(
        home,
        &[
            "ingest",
            "--workspace",
            "ws-saved",
            "--table",
            "App",
            "--format",
            "json",
        ],
        ROWS,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tmp
}

#[test]
fn a_saved_function_is_called_by_alias_and_exported() {
    let tmp = home_with_data();
    let home = tmp.path();
    let saved = json(
        home,
        &[
            "saved-search",
            "create",
            "--workspace",
            "ws-saved",
            "--id",
            "errors",
            "--display-name",
            "Errors",
            "--category",
            "Ops",
            "--query",
            "App | where Level == lvl",
            "--function-alias",
            "Errors",
            "--function-parameters",
            "lvl:string='Error'",
        ],
    );
    assert_eq!(saved["functionAlias"], "Errors");
    assert_eq!(saved["functionParameters"][0]["type"], "string");
    let rows = json(
        home,
        &[
            "query",
            "--workspace",
            "ws-saved",
            "--kql",
            "Errors() | count",
        ],
    );
    assert_eq!(rows[0]["Count"], 2, "{rows}");
    let rows = json(
        home,
        &[
            "query",
            "--workspace",
            "ws-saved",
            "--kql",
            "Errors('Info') | count",
        ],
    );
    assert_eq!(rows[0]["Count"], 1, "{rows}");
    let list = json(home, &["saved-search", "list", "--workspace", "ws-saved"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let file = home.join("export.json");
    let out = logvault(
        home,
        &[
            "saved-search",
            "export",
            "--workspace",
            "ws-saved",
            "--file",
            file.to_str().unwrap(),
        ],
        "",
    );
    assert!(out.status.success());
    let exported: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(exported[0]["id"], "errors");
    json(
        home,
        &[
            "saved-search",
            "delete",
            "--workspace",
            "ws-saved",
            "--id",
            "errors",
        ],
    );
    let err = fails(
        home,
        &[
            "saved-search",
            "show",
            "--workspace",
            "ws-saved",
            "--id",
            "errors",
        ],
    );
    assert!(err.starts_with("error: 404"), "{err}");
}

#[test]
fn linking_for_query_warns_refuses_without_yes_and_exports_first() {
    let tmp = home_with_data();
    let home = tmp.path();
    json(
        home,
        &[
            "saved-search",
            "create",
            "--workspace",
            "ws-saved",
            "--id",
            "q1",
            "--display-name",
            "Q1",
            "--category",
            "Ops",
            "--query",
            "App | take 1",
        ],
    );
    json(
        home,
        &[
            "query",
            "--workspace",
            "ws-saved",
            "--kql",
            "App | count",
            "--record-history",
        ],
    );
    let history = json(home, &["workspace", "query-history", "--name", "ws-saved"]);
    assert_eq!(history[0]["query"], "App | count");
    json(home, &["storage-account", "create", "--name", "byosone"]);
    // Another region's account cannot be linked.
    json(
        home,
        &[
            "storage-account",
            "create",
            "--name",
            "byosfar",
            "--region",
            "westus",
        ],
    );
    let err = fails(
        home,
        &[
            "workspace",
            "linked-storage",
            "create",
            "--workspace",
            "ws-saved",
            "--type",
            "Query",
            "--storage-accounts",
            "byosfar",
            "--yes",
        ],
    );
    assert!(err.starts_with("error: 400"), "{err}");
    // Without --yes: a warning and a refusal, nothing removed.
    let link = [
        "workspace",
        "linked-storage",
        "create",
        "--workspace",
        "ws-saved",
        "--type",
        "Query",
        "--storage-accounts",
        "/subscriptions/local/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/byosone",
    ];
    let err = fails(home, &link);
    assert!(
        err.contains("warning: linking workspace ws-saved for Query removes"),
        "{err}"
    );
    assert!(err.contains("--yes"), "{err}");
    let list = json(home, &["saved-search", "list", "--workspace", "ws-saved"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    // With the export and --yes: the file holds them, the workspace no longer does.
    let file = home.join("before-link.json");
    let mut with = link.to_vec();
    with.extend(["--export-saved-searches", file.to_str().unwrap(), "--yes"]);
    let links = json(home, &with);
    assert_eq!(links[0]["dataSourceType"], "Query");
    assert!(
        links[0]["storageAccountIds"][0]
            .as_str()
            .unwrap()
            .ends_with("/byosone")
    );
    let exported: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(exported[0]["id"], "q1");
    let list = json(home, &["saved-search", "list", "--workspace", "ws-saved"]);
    assert!(list.as_array().unwrap().is_empty());
    // No history while linked.
    let err = fails(home, &["workspace", "query-history", "--name", "ws-saved"]);
    assert!(err.starts_with("error: 409"), "{err}");
    let links = json(
        home,
        &[
            "workspace",
            "linked-storage",
            "list",
            "--workspace",
            "ws-saved",
        ],
    );
    assert_eq!(links.as_array().unwrap().len(), 1);
    json(
        home,
        &[
            "workspace",
            "linked-storage",
            "delete",
            "--workspace",
            "ws-saved",
            "--type",
            "Query",
        ],
    );
    json(home, &["storage-account", "delete", "--name", "byosone"]);
    let accounts = json(home, &["storage-account", "list"]);
    assert_eq!(accounts.as_array().unwrap().len(), 1);
}
