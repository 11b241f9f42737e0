//! The cases, each run over every backend.

use std::path::Path;
use std::time::Duration;

use libtest_mimic::Failed;

use crate::{Backend, Case};

pub const ALL: &[(&str, Case)] = &[
    (
        "customer_key_data_rests_remotely_and_follows_the_key",
        customer_key_data_rests_remotely_and_follows_the_key,
    ),
    (
        "racing_processes_on_one_catalog_lose_nothing",
        racing_processes_on_one_catalog_lose_nothing,
    ),
    (
        "a_home_keeps_its_storage_and_refuses_another",
        a_home_keeps_its_storage_and_refuses_another,
    ),
    (
        "a_segment_larger_than_a_part_goes_up_in_parts",
        a_segment_larger_than_a_part_goes_up_in_parts,
    ),
];

/// Cases run over Azurite only (several processes each; once is enough for CI's time).
pub const AZURITE_ONLY: &[(&str, Case)] = &[(
    "three_nodes_share_storage_and_vault",
    crate::nodes::three_nodes_share_storage_and_vault,
)];

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(what().into()) }
}

/// `rows` JSON lines with `Seq` values `from..from + rows`.
fn rows(from: u64, rows: u64) -> Vec<u8> {
    let mut out = String::new();
    for i in from..from + rows {
        out.push_str(&format!(
            "{{\"TimeGenerated\":\"2026-03-01T{:02}:{:02}:00Z\",\"Seq\":{i},\"Level\":\"{}\"}}\n",
            (i / 60) % 24,
            i % 60,
            if i % 7 == 0 { "error" } else { "info" }
        ));
    }
    out.into_bytes()
}

fn ingest(b: &Backend, home: &Path, ws: &str, data: &[u8]) -> Result<u64, Failed> {
    let out = b.run(
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
        Some(data),
    );
    check(out.status.success(), || {
        format!(
            "{}: ingest: {}",
            b.name,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    v["accepted"]
        .as_u64()
        .ok_or_else(|| format!("{}: ingest answered {v}", b.name).into())
}

/// `count(*)`, `count(DISTINCT Seq)` and `sum(Seq)` of the workspace's `App` table.
fn counts(b: &Backend, home: &Path, ws: &str) -> Result<(u64, u64, u64), Failed> {
    let v = b.json(
        home,
        &[
            "query",
            "--workspace",
            ws,
            "SELECT count(*) AS n, count(DISTINCT \"Seq\") AS d, sum(\"Seq\") AS s FROM App",
        ],
    )?;
    let get = |k: &str| {
        v[0][k]
            .as_u64()
            .ok_or_else(|| Failed::from(format!("{}: query answered {v}", b.name)))
    };
    Ok((get("n")?, get("d")?, get("s")?))
}

fn init(b: &Backend, home: &Path, test: &str) -> Result<String, Failed> {
    let url = b.fresh_url(test);
    let v = b.json(home, &["init", "--storage-url", &url])?;
    check(v["storageUrl"] == url.as_str(), || {
        format!("{}: init answered {v}", b.name)
    })?;
    // Key checks every second or two, as a long-running server's monitor would run them.
    let path = home.join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    config["timings"]["keyCheckMinSecs"] = 1.into();
    config["timings"]["keyCheckMaxSecs"] = 2.into();
    config["timings"]["asyncOperationSecs"] = 1.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&config)?)?;
    Ok(url)
}

/// Files under `dir`, recursively.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// Service-key rows, then customer-key rows after the link, read together; the key disabled
/// at the vault stops queries and ingestion, enabled again brings both back. Nothing rests in
/// the home's local storage directory: the data is in the bucket.
fn customer_key_data_rests_remotely_and_follows_the_key(b: &Backend) -> Result<(), Failed> {
    let tmp = tempfile::tempdir()?;
    let home = tmp.path();
    init(b, home, "cmk")?;
    b.json(home, &["workspace", "create", "--name", "ws-remote"])?;
    check(ingest(b, home, "ws-remote", &rows(0, 500))? == 500, || {
        "service-key ingest".into()
    })?;
    b.json(
        home,
        &[
            "vault",
            "create",
            "--name",
            "kv-remote",
            "--purge-protection",
            "true",
        ],
    )?;
    b.json(
        home,
        &["key", "create", "--vault", "kv-remote", "--name", "cmk"],
    )?;
    let cluster = b.json(home, &["cluster", "create", "--name", "cluster-remote"])?;
    let principal = cluster["identity"]["principalId"]
        .as_str()
        .ok_or_else(|| format!("{}: cluster create answered {cluster}", b.name))?
        .to_owned();
    b.json(
        home,
        &[
            "vault",
            "set-policy",
            "--name",
            "kv-remote",
            "--object-id",
            &principal,
            "--key-permissions",
            "get",
            "wrapKey",
            "unwrapKey",
        ],
    )?;
    b.json(
        home,
        &[
            "cluster",
            "update",
            "--name",
            "cluster-remote",
            "--key-vault-uri",
            "https://kv-remote.vault.local",
            "--key-name",
            "cmk",
        ],
    )?;
    b.json(
        home,
        &[
            "workspace",
            "link",
            "--name",
            "ws-remote",
            "--cluster",
            "cluster-remote",
        ],
    )?;
    check(
        ingest(b, home, "ws-remote", &rows(500, 500))? == 500,
        || "customer-key ingest".into(),
    )?;
    let expected = (1000, 1000, (0..1000).sum::<u64>());
    let got = counts(b, home, "ws-remote")?;
    check(got == expected, || {
        format!("{}: counts {got:?}, expected {expected:?}", b.name)
    })?;
    let local = files(&home.join("storage"));
    check(local.is_empty(), || {
        format!("{}: data rests locally: {local:?}", b.name)
    })?;
    let verify = b.run(home, &["table", "verify", "--workspace", "ws-remote"], None);
    check(verify.status.success(), || {
        format!(
            "{}: verify: {}{}",
            b.name,
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        )
    })?;

    // Revoked: queries refused with the key named, new rows dropped (counted), nothing read
    // from the hot cache's tiers either.
    b.json(
        home,
        &["key", "disable", "--vault", "kv-remote", "--name", "cmk"],
    )?;
    std::thread::sleep(Duration::from_millis(2500));
    let q = b.run(
        home,
        &[
            "query",
            "--workspace",
            "ws-remote",
            "SELECT count(*) FROM App",
        ],
        None,
    );
    let err = String::from_utf8_lossy(&q.stderr);
    check(!q.status.success() && err.contains("cmk"), || {
        format!("{}: query under a disabled key: {err}", b.name)
    })?;
    let dropped = b.run(
        home,
        &[
            "-o",
            "json",
            "ingest",
            "--workspace",
            "ws-remote",
            "--table",
            "App",
            "--format",
            "json",
        ],
        Some(&rows(1000, 10)),
    );
    let v: serde_json::Value = serde_json::from_slice(&dropped.stdout).unwrap_or_default();
    check(v["accepted"] == 0 && v["dropped"] == 10, || {
        format!(
            "{}: ingest under a disabled key: {v} {}",
            b.name,
            String::from_utf8_lossy(&dropped.stderr)
        )
    })?;

    b.json(
        home,
        &["key", "enable", "--vault", "kv-remote", "--name", "cmk"],
    )?;
    std::thread::sleep(Duration::from_millis(2500));
    let got = counts(b, home, "ws-remote")?;
    check(got == expected, || {
        format!(
            "{}: after the restore: {got:?}, expected {expected:?}",
            b.name
        )
    })
}

/// One process ingests batch after batch while another changes the table's retention and
/// compacts it: every change is a new catalog version written with a create-if-absent put, so
/// the loser of each race re-reads and retries. Nothing is lost: every row once, the last
/// retention set, the catalog and segments intact.
fn racing_processes_on_one_catalog_lose_nothing(b: &Backend) -> Result<(), Failed> {
    let tmp = tempfile::tempdir()?;
    let home = tmp.path().to_owned();
    init(b, &home, "race")?;
    b.json(&home, &["workspace", "create", "--name", "ws-race"])?;
    ingest(b, &home, "ws-race", &rows(0, 100))?;
    let other = {
        let b = b.clone();
        let home = home.clone();
        std::thread::spawn(move || -> Result<(), String> {
            for days in 31..=42 {
                let days = days.to_string();
                let args = [
                    "table",
                    "set-retention",
                    "--workspace",
                    "ws-race",
                    "--table",
                    "App",
                    "--days",
                    days.as_str(),
                ];
                let out = b.run(&home, &args, None);
                if !out.status.success() {
                    return Err(format!(
                        "{args:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                if days == "36" {
                    let out = b.run(&home, &["table", "compact", "--workspace", "ws-race"], None);
                    if !out.status.success() {
                        return Err(format!("compact: {}", String::from_utf8_lossy(&out.stderr)));
                    }
                }
            }
            Ok(())
        })
    };
    let mut total = 100;
    for batch in 1..=8 {
        total += ingest(b, &home, "ws-race", &rows(batch * 100, 100))?;
    }
    other
        .join()
        .map_err(|_| "the retention process panicked")?
        .map_err(|e| format!("{}: {e}", b.name))?;
    let got = counts(b, &home, "ws-race")?;
    let expected = (total, total, (0..total).sum::<u64>());
    check(total == 900 && got == expected, || {
        format!("{}: counts {got:?}, expected {expected:?}", b.name)
    })?;
    let tables = b.json(&home, &["table", "list", "--workspace", "ws-race"])?;
    let app = tables
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "App"))
        .ok_or_else(|| format!("{}: table list: {tables}", b.name))?;
    check(app["retentionDays"] == 42, || {
        format!("{}: the last retention set was lost: {app}", b.name)
    })?;
    let verify = b.run(&home, &["table", "verify", "--workspace", "ws-race"], None);
    check(verify.status.success(), || {
        format!(
            "{}: verify: {}",
            b.name,
            String::from_utf8_lossy(&verify.stderr)
        )
    })
}

/// `storageUrl` is kept in the home's configuration and used by every later command; a command
/// that names another storage for an existing home is refused, not silently pointed elsewhere.
fn a_home_keeps_its_storage_and_refuses_another(b: &Backend) -> Result<(), Failed> {
    let tmp = tempfile::tempdir()?;
    let home = tmp.path();
    let url = init(b, home, "keep")?;
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join("config.json"))?)?;
    check(config["storageUrl"] == url.as_str(), || {
        format!("{}: config.json: {config}", b.name)
    })?;
    // Another storage for this home: refused, naming both.
    let other = format!("{url}-elsewhere");
    let out = b.run(home, &["init", "--storage-url", &other], None);
    let err = String::from_utf8_lossy(&out.stderr);
    check(
        !out.status.success() && err.contains(&url) && err.contains(&other),
        || format!("{}: init with another storage: {err}", b.name),
    )?;
    // A second home on a storage URL another home created: its account is sealed with that
    // home's service key, which this one does not have: refused, not overwritten.
    let tmp2 = tempfile::tempdir()?;
    let out = b.run(tmp2.path(), &["init", "--storage-url", &url], None);
    let err2 = String::from_utf8_lossy(&out.stderr);
    check(!out.status.success(), || {
        format!(
            "{}: a second home took over storage of the first: {err2}",
            b.name
        )
    })?;
    // The first home still works.
    b.json(home, &["workspace", "create", "--name", "ws-keep"])?;
    check(ingest(b, home, "ws-keep", &rows(0, 10))? == 10, || {
        "ingest".into()
    })?;
    let got = counts(b, home, "ws-keep")?;
    check(got == (10, 10, 45), || format!("{}: {got:?}", b.name))
}

/// A segment whose file is larger than one part (5 MiB) is uploaded in parts as it is written
/// (S3's multipart upload, Azure's blocks) and committed whole: every row reads back, once.
fn a_segment_larger_than_a_part_goes_up_in_parts(b: &Backend) -> Result<(), Failed> {
    let tmp = tempfile::tempdir()?;
    let home = tmp.path();
    init(b, home, "parts")?;
    b.json(home, &["workspace", "create", "--name", "ws-parts"])?;
    // 64 hex digits of a xorshift per row: about 32 bytes a row that zstd cannot shrink, so
    // 250,000 rows (one day, one segment) make a file of about 10 MB.
    let n: u64 = 250_000;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut data = String::with_capacity(n as usize * 140);
    for i in 0..n {
        let mut noise = String::with_capacity(64);
        for _ in 0..4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            noise.push_str(&format!("{x:016x}"));
        }
        data.push_str(&format!(
            "{{\"TimeGenerated\":\"2026-03-01T{:02}:{:02}:{:02}Z\",\"Seq\":{i},\"Noise\":\"{noise}\"}}\n",
            (i / 3600) % 24,
            (i / 60) % 60,
            i % 60
        ));
    }
    check(ingest(b, home, "ws-parts", data.as_bytes())? == n, || {
        format!("{}: ingest", b.name)
    })?;
    let got = counts(b, home, "ws-parts")?;
    check(got == (n, n, n * (n - 1) / 2), || {
        format!("{}: {got:?}", b.name)
    })?;
    // The scrub authenticates every segment; the largest is over a part, so it went in parts.
    let v = b.json(home, &["table", "verify", "--workspace", "ws-parts"])?;
    let largest = v["tables"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["segments"].as_array().into_iter().flatten())
        .filter_map(|s| s["bytes"].as_u64())
        .max()
        .unwrap_or(0);
    check(
        v["damaged"] == 0 && v["orphans"] == 0 && largest > 5 << 20,
        || format!("{}: verify answered {v}", b.name),
    )
}
