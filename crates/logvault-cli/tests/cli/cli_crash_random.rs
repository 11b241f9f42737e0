//! The crash-consistency harnesses (issue 25): the CLI SIGKILLed at random points of every
//! writing command, many times, with the invariants checked after each kill.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;

use crate::cli_crash::{Input, logvault, payload, run_ok};

/// One of the two ways a file is ingested, drawn.
fn draw_input(rng: &mut Rng) -> Input {
    if rng.below(2) == 0 {
        Input::Stdin
    } else {
        Input::Load
    }
}

/// A small xorshift generator: the harness's random kill points, reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Kill delays that follow the machine's speed: an operation's delay is `floor` plus a draw
/// below a bound that starts at a guess and shrinks to the time the operation took whenever it
/// finished before its kill, so that later runs of it are killed part-way on a fast machine or
/// build too. (With fixed ranges, a run on a faster machine once killed no command at all and
/// failed with "no command was killed".)
#[derive(Default)]
struct KillDelays {
    bounds: std::collections::BTreeMap<&'static str, u64>,
}

impl KillDelays {
    /// [`run_and_kill`] with a delay drawn for `op`; learns from a run that was not killed.
    fn run_and_kill(
        &mut self,
        rng: &mut Rng,
        home: &Path,
        op: &'static str,
        args: &[&str],
        stdin: Option<&Path>,
        (floor, guess): (u64, u64),
    ) -> (u64, bool) {
        let bound = *self.bounds.entry(op).or_insert(guess);
        let delay = floor + rng.below(bound);
        let started = std::time::Instant::now();
        let (acked, killed) = run_and_kill(home, args, stdin, delay);
        if !killed {
            let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let bound = self.bounds.entry(op).or_insert(guess);
            *bound = (*bound).min(took.saturating_sub(floor).max(1));
        }
        (acked, killed)
    }
}

/// Runs `logvault args` (with `stdin` as its input) and SIGKILLs it after `delay_ms` (or lets
/// it finish first); returns the highest `acked N` it printed and whether it was killed.
fn run_and_kill(home: &Path, args: &[&str], stdin: Option<&Path>, delay_ms: u64) -> (u64, bool) {
    let mut child = logvault(home)
        .args(args)
        .stdin(stdin.map_or_else(Stdio::null, |f| {
            Stdio::from(std::fs::File::open(f).unwrap())
        }))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acked = 0;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("acked ") {
                acked = n.trim().parse().unwrap_or(acked);
            }
        }
        acked
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(delay_ms);
    let mut killed = false;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() >= deadline {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            killed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    (reader.join().unwrap(), killed)
}

fn verify_json(home: &Path, ws: &str) -> serde_json::Value {
    let out = logvault(home)
        .args(["-o", "json", "table", "verify", "--workspace", ws])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify printed no report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(
        out.status.success(),
        report["damaged"] == 0,
        "verify's exit status and report disagree: {report}"
    );
    report
}

/// The crash-consistency harness (issue 25): the CLI is SIGKILLed at random points of ingests,
/// compactions, retention purges, retention changes (catalog updates) and key rotations, many
/// times; after each kill the next command recovers, and then: every acknowledged row is stored
/// exactly once, no segment the catalog lists is missing or damaged (`table verify`), orphans
/// are not counted, the catalog reads.
///
/// `LOGVAULT_CRASH_KILLS` sets the number of kills (default 16 in CI; figures of longer runs in
/// `docs/reliability.md`), `LOGVAULT_CRASH_SEED` the seed.
#[test]
fn sigkill_at_random_points_of_every_writing_command_keeps_the_store_consistent() {
    let kills: u64 = std::env::var("LOGVAULT_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let seed: u64 = std::env::var("LOGVAULT_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng(seed | 1);
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let ws = "ws-crash";
    run_ok(&home, &["workspace", "create", "--name", ws]);
    // An old table that retention purges (its rows are a day older than the others).
    let old = tmp.path().join("old.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&old).unwrap());
        for i in 0..3000u64 {
            writeln!(
                f,
                r#"{{"TimeGenerated":"2026-01-{:02}T00:00:{:02}Z","Seq":{i}}}"#,
                1 + i % 20,
                i % 60
            )
            .unwrap();
        }
    }
    run_ok(
        &home,
        &[
            "ingest",
            "--workspace",
            ws,
            "--table",
            "Old",
            old.to_str().unwrap(),
        ],
    );
    // A first, whole ingest into Events, so the table exists whatever the first round is.
    let first = tmp.path().join("first.jsonl");
    payload(&first, 0, 1000);
    run_ok(
        &home,
        &[
            "ingest",
            "--workspace",
            ws,
            "--table",
            "Events",
            first.to_str().unwrap(),
        ],
    );
    let mut next_seq = 1000u64;
    let mut acknowledged: Vec<(u64, u64)> = vec![(0, 1000)]; // [from, from + acked)
    // [from, from + rows) of every ingest killed or not: what it stored is a prefix of it.
    let mut ingested: Vec<(u64, u64)> = Vec::new();
    let (mut killed_total, mut by_op) =
        (0u64, std::collections::BTreeMap::<&str, (u64, u64)>::new());
    let mut delays = KillDelays::default();
    for round in 0..kills {
        let op = [
            "ingest",
            "ingest",
            "compact",
            "purge",
            "retention",
            "ingest",
        ][(rng.below(6)) as usize];
        let (acked, killed) = match op {
            "ingest" => {
                // An ingest of this size takes about 0.3-1.2 s in the dev profile: the kill
                // lands before, during or after its acknowledgements.
                let rows = 50_000 + rng.below(150_000);
                let file = tmp.path().join(format!("in-{round}.jsonl"));
                payload(&file, next_seq, rows);
                let input = draw_input(&mut rng);
                let (args, stdin) = input.command(ws, &file);
                let (acked, killed) = delays.run_and_kill(
                    &mut rng,
                    &home,
                    "ingest",
                    &args.iter().map(String::as_str).collect::<Vec<_>>(),
                    stdin.as_deref(),
                    (30, 600),
                );
                acknowledged.push((next_seq, acked));
                ingested.push((next_seq, rows));
                next_seq += rows;
                (acked, killed)
            }
            "compact" => delays.run_and_kill(
                &mut rng,
                &home,
                "compact",
                &[
                    "table",
                    "compact",
                    "--workspace",
                    ws,
                    "--small-rows",
                    "1000000",
                ],
                None,
                (20, 300),
            ),
            "purge" => delays.run_and_kill(
                &mut rng,
                &home,
                "purge",
                &["--now", "2026-03-10T00:00:00Z", "table", "purge"],
                None,
                (50, 600),
            ),
            _ => {
                let days = ["1", "30", "60", "3000"][rng.below(4) as usize];
                delays.run_and_kill(
                    &mut rng,
                    &home,
                    "retention",
                    &[
                        "table",
                        "set-retention",
                        "--workspace",
                        ws,
                        "--table",
                        "Old",
                        "--days",
                        days,
                    ],
                    None,
                    (10, 200),
                )
            }
        };
        let _ = acked;
        let e = by_op.entry(op).or_default();
        e.0 += 1;
        e.1 += u64::from(killed);
        killed_total += u64::from(killed);
        // Recovery: the next command replays what the kill left; then the invariants.
        let report = verify_json(&home, ws);
        assert_eq!(report["damaged"], 0, "round {round} ({op}): {report}");
        let query = logvault(&home)
            .args([
                "-o",
                "json",
                "query",
                "--workspace",
                ws,
                "SELECT Seq FROM Events",
            ])
            .output()
            .unwrap();
        let rows: serde_json::Value = if query.status.success() {
            serde_json::from_slice(&query.stdout).unwrap()
        } else {
            // Before anything was acknowledged (the first ingests killed early, or other
            // commands first), the table does not exist yet.
            let err = String::from_utf8_lossy(&query.stderr);
            assert!(
                err.contains("table Events not found")
                    && acknowledged.iter().all(|(_, acked)| *acked == 0),
                "round {round} ({op}): {err}"
            );
            serde_json::json!([])
        };
        let mut seen = std::collections::HashMap::<u64, u32>::new();
        for r in rows.as_array().unwrap() {
            *seen.entry(r["Seq"].as_u64().unwrap()).or_default() += 1;
        }
        let dup = seen.iter().find(|(_, n)| **n > 1);
        assert!(
            dup.is_none(),
            "round {round} ({op}): row {dup:?} stored twice"
        );
        for (from, acked) in &acknowledged {
            for s in *from..*from + *acked {
                assert!(
                    seen.contains_key(&s),
                    "round {round} ({op}): acknowledged row {s} lost"
                );
            }
        }
        for (from, rows) in &ingested {
            let stored = (*from..*from + *rows)
                .filter(|s| seen.contains_key(s))
                .count() as u64;
            assert!(
                (*from..*from + stored).all(|s| seen.contains_key(&s)),
                "round {round} ({op}): the {stored} rows stored of the ingest from {from} are not a prefix of it"
            );
        }
        let tables: serde_json::Value = serde_json::from_str(&run_ok(
            &home,
            &["-o", "json", "table", "list", "--workspace", ws],
        ))
        .unwrap();
        let events = tables
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "Events");
        if let Some(t) = events {
            // The catalog counts stored rows only: orphans of a killed write are not counted.
            assert_eq!(
                t["rows"].as_u64().unwrap(),
                seen.len() as u64,
                "round {round}: catalog count"
            );
        }
    }
    eprintln!(
        "crash harness: {kills} rounds, {killed_total} killed mid-command, per command (runs, kills) {by_op:?}"
    );
    assert!(
        killed_total > 0,
        "no command was killed: the delays are too long"
    );
}

/// Key rotation in the crash harness (issue 25): a workspace linked to a cluster under a
/// customer key; the CLI is SIGKILLed at random points of ingests, of `key rotate` (the vault's
/// state replaced), and of `cluster update` pinning the latest key version or going back to
/// autorotation (the account key re-wrapped under another version: a new key record); key
/// checks fall due every second, so commands also re-wrap after a rotation. After each kill:
/// every acknowledged row once and readable (so decrypted under the account key of whatever
/// record is the latest), the scrub clean.
///
/// `LOGVAULT_CRASH_KILLS` sets the number of rounds (default 12), `LOGVAULT_CRASH_SEED` the seed.
#[test]
fn sigkill_during_key_rotations_keeps_every_acknowledged_row_readable() {
    let kills: u64 = std::env::var("LOGVAULT_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let seed: u64 = std::env::var("LOGVAULT_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x2545_f491_4f6c_dd1d);
    let mut rng = Rng(seed | 1);
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let (ws, vault, cluster) = ("ws-rot", "kv-rot", "cluster-rot");
    run_ok(&home, &["status"]);
    let config_path = home.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["timings"]["keyCheckMinSecs"] = 1.into();
    config["timings"]["keyCheckMaxSecs"] = 1.into();
    config["timings"]["asyncOperationSecs"] = 0.into();
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    run_ok(&home, &["workspace", "create", "--name", ws]);
    run_ok(
        &home,
        &[
            "vault",
            "create",
            "--name",
            vault,
            "--purge-protection",
            "true",
        ],
    );
    run_ok(&home, &["key", "create", "--vault", vault, "--name", "cmk"]);
    let created: serde_json::Value = serde_json::from_str(&run_ok(
        &home,
        &["-o", "json", "cluster", "create", "--name", cluster],
    ))
    .unwrap();
    let principal = created["identity"]["principalId"]
        .as_str()
        .unwrap()
        .to_owned();
    run_ok(
        &home,
        &[
            "vault",
            "set-policy",
            "--name",
            vault,
            "--object-id",
            &principal,
            "--key-permissions",
            "get",
            "wrapKey",
            "unwrapKey",
        ],
    );
    let uri = format!("https://{vault}.vault.local");
    let key_args = |version: Option<&str>| {
        let mut a: Vec<String> = [
            "cluster",
            "update",
            "--name",
            cluster,
            "--key-vault-uri",
            &uri,
            "--key-name",
            "cmk",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if let Some(v) = version {
            a.extend(["--key-version".to_owned(), v.to_owned()]);
        }
        a
    };
    let args = key_args(None);
    run_ok(&home, &args.iter().map(String::as_str).collect::<Vec<_>>());
    run_ok(
        &home,
        &["workspace", "link", "--name", ws, "--cluster", cluster],
    );
    let first = tmp.path().join("first.jsonl");
    payload(&first, 0, 1000);
    run_ok(
        &home,
        &[
            "ingest",
            "--workspace",
            ws,
            "--table",
            "Events",
            first.to_str().unwrap(),
        ],
    );
    let key_records = || {
        let dir = home.join("storage").join(format!("cluster-{cluster}"));
        let mut n = 0;
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.to_string_lossy().contains("/keys/aek/") {
                    n += 1;
                }
            }
        }
        n
    };
    let records_before = key_records();
    let mut next_seq = 1000u64;
    let mut acknowledged: Vec<(u64, u64)> = vec![(0, 1000)];
    let mut by_op = std::collections::BTreeMap::<&str, (u64, u64)>::new();
    let mut delays = KillDelays::default();
    for round in 0..kills {
        let op = ["ingest", "rotate", "pin", "ingest", "rotate", "auto"][rng.below(6) as usize];
        let (_, killed) = match op {
            "ingest" => {
                let rows = 20_000 + rng.below(60_000);
                let file = tmp.path().join(format!("in-{round}.jsonl"));
                payload(&file, next_seq, rows);
                let input = draw_input(&mut rng);
                let (args, stdin) = input.command(ws, &file);
                let (acked, killed) = delays.run_and_kill(
                    &mut rng,
                    &home,
                    "ingest",
                    &args.iter().map(String::as_str).collect::<Vec<_>>(),
                    stdin.as_deref(),
                    (30, 500),
                );
                acknowledged.push((next_seq, acked));
                next_seq += rows;
                (acked, killed)
            }
            "rotate" => delays.run_and_kill(
                &mut rng,
                &home,
                "rotate",
                &["key", "rotate", "--vault", vault, "--name", "cmk"],
                None,
                (5, 150),
            ),
            "pin" => {
                let show: serde_json::Value = serde_json::from_str(&run_ok(
                    &home,
                    &[
                        "-o", "json", "key", "show", "--vault", vault, "--name", "cmk",
                    ],
                ))
                .unwrap();
                let version = show["versions"]
                    .as_array()
                    .and_then(|v| v.last())
                    .and_then(|v| v["version"].as_str().or_else(|| v.as_str()))
                    .unwrap_or_else(|| panic!("no key version in {show}"))
                    .to_owned();
                let args = key_args(Some(&version));
                delays.run_and_kill(
                    &mut rng,
                    &home,
                    "pin",
                    &args.iter().map(String::as_str).collect::<Vec<_>>(),
                    None,
                    (5, 300),
                )
            }
            _ => {
                let args = key_args(None);
                delays.run_and_kill(
                    &mut rng,
                    &home,
                    "auto",
                    &args.iter().map(String::as_str).collect::<Vec<_>>(),
                    None,
                    (5, 300),
                )
            }
        };
        let e = by_op.entry(op).or_default();
        e.0 += 1;
        e.1 += u64::from(killed);
        // A second apart: the next command's key check is due (re-wrap after a rotation).
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let report = verify_json(&home, ws);
        assert_eq!(report["damaged"], 0, "round {round} ({op}): {report}");
        let out = run_ok(
            &home,
            &[
                "-o",
                "json",
                "query",
                "--workspace",
                ws,
                "SELECT Seq FROM Events",
            ],
        );
        let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
        let mut seen = std::collections::HashMap::<u64, u32>::new();
        for r in rows.as_array().unwrap() {
            *seen.entry(r["Seq"].as_u64().unwrap()).or_default() += 1;
        }
        let dup = seen.iter().find(|(_, n)| **n > 1);
        assert!(
            dup.is_none(),
            "round {round} ({op}): row {dup:?} stored twice"
        );
        for (from, acked) in &acknowledged {
            for s in *from..*from + *acked {
                assert!(
                    seen.contains_key(&s),
                    "round {round} ({op}): acknowledged row {s} lost"
                );
            }
        }
    }
    let rewraps = key_records() - records_before;
    eprintln!(
        "crash harness (key rotation): {kills} rounds, per command (runs, kills) {by_op:?}, \
         {rewraps} new account key records (re-wraps)"
    );
    assert!(
        by_op.values().map(|(_, k)| k).sum::<u64>() > 0,
        "no command was killed: the delays are too long"
    );
    assert!(
        rewraps > 0,
        "no re-wrap happened: the rotations were not exercised"
    );
}
