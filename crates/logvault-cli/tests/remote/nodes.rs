//! Three `logvault serve` nodes on one storage (Azurite) with the vault served by the first,
//! joined as docs/deploy.md says: the service vault copied, `config.json` naming the storage,
//! the vault and the node's part.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::Failed;
use serde_json::json;

use crate::Backend;

const WS: &str = "ws-nodes";
const VAULT: &str = "kv-nodes";
const KEY: &str = "cmk";
const CLUSTER: &str = "cluster-nodes";

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(what().into()) }
}

/// A running `logvault serve` of one node.
struct Node {
    name: &'static str,
    home: PathBuf,
    child: Option<Child>,
    url: String,
    /// An `Owner` token of this node's server.
    token: String,
}

impl Node {
    fn start(b: &Backend, name: &'static str, home: &Path) -> Result<Self, Failed> {
        let token = b.json(
            home,
            &[
                "token",
                "create",
                "--principal",
                "nodes-test",
                "--role",
                "Owner",
            ],
        )?["token"]
            .as_str()
            .ok_or("token create gave no token")?
            .to_owned();
        let mut node = Self {
            name,
            home: home.to_owned(),
            child: None,
            url: String::new(),
            token,
        };
        node.spawn(b)?;
        Ok(node)
    }

    fn spawn(&mut self, b: &Backend) -> Result<(), Failed> {
        let mut c = b.command(
            &self.home,
            &[
                "-o",
                "json",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--http",
                "--alert-interval",
                "off",
                "--flush-interval",
                "1s",
            ],
        );
        c.env_remove("LOGVAULT_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(self.home.join("serve.log"))?);
        let mut child = c.spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
        let started: serde_json::Value = serde_json::from_str(&line).map_err(|e| {
            format!(
                "{}: serve printed {line:?} ({e}): {}",
                self.name,
                self.log()
            )
        })?;
        self.url = started["url"]
            .as_str()
            .ok_or_else(|| format!("{}: serve printed {started}", self.name))?
            .to_owned();
        self.child = Some(child);
        Ok(())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.home.join("serve.log")).unwrap_or_default()
    }

    /// Sends `signal` (`TERM`, `KILL`) and waits for the process.
    fn signal(&mut self, signal: &str) -> Result<(), Failed> {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status()?;
            child.wait()?;
        }
        Ok(())
    }
}

/// What a client needs of a node, to send from another thread.
#[derive(Clone)]
struct Target {
    name: &'static str,
    url: String,
    token: String,
}

impl Node {
    fn target(&self) -> Target {
        Target {
            name: self.name,
            url: self.url.clone(),
            token: self.token.clone(),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A blocking HTTP client for the tests' few calls.
struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Result<Self, Failed> {
        Ok(Self {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()?,
        })
    }

    fn send(&self, req: reqwest::RequestBuilder) -> (u16, String) {
        self.rt.block_on(async {
            match req.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    (status, r.text().await.unwrap_or_default())
                }
                Err(e) => (0, e.to_string()),
            }
        })
    }

    /// `_bulk` of rows `from..to` of table `App` to `node`.
    fn ingest(&self, node: &Node, from: u64, to: u64) -> (u16, String) {
        self.ingest_to(&node.target(), from, to)
    }

    /// `_bulk` of rows `from..to` of table `App` to the server `node` names.
    fn ingest_to(&self, node: &Target, from: u64, to: u64) -> (u16, String) {
        // Rows of now: the servers' retention (30 days) purges older ones.
        let now = chrono::Utc::now().to_rfc3339();
        let mut body = String::new();
        for seq in from..to {
            body.push_str("{\"index\":{}}\n");
            body.push_str(
                &json!({"TimeGenerated": now, "Seq": seq, "Node": node.name}).to_string(),
            );
            body.push('\n');
        }
        self.send(
            self.client
                .post(format!("{}/_bulk", node.url))
                .bearer_auth(&node.token)
                .header("x-logvault-workspace", WS)
                .header("x-logvault-table", "App")
                .header("content-type", "application/x-ndjson")
                .body(body),
        )
    }

    /// A KQL query on `node`: its status and body.
    fn query(&self, node: &Node, q: &str) -> (u16, String) {
        self.send(
            self.client
                .post(format!("{}/v1/workspaces/{WS}/query", node.url))
                .bearer_auth(&node.token)
                .json(&json!({ "query": q })),
        )
    }

    /// `[count, sum, duplicated Seq values]` of `App` as `node` sees it.
    fn counts(&self, node: &Node) -> Result<[u64; 3], String> {
        let (status, body) = self.query(
            node,
            "App | summarize c = count() by Seq | summarize n = sum(c), s = sum(Seq), \
             dup = countif(c > 1)",
        );
        if status != 200 {
            return Err(format!("{}: query answered {status}: {body}", node.name));
        }
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        let row = &v["tables"][0]["rows"][0];
        let get = |i: usize| row[i].as_u64().unwrap_or(0);
        Ok([get(0), get(1), get(2)])
    }

    fn metrics(&self, node: &Node) -> String {
        self.send(
            self.client
                .get(format!("{}/metrics", node.url))
                .bearer_auth(&node.token),
        )
        .1
    }
}

/// Polls `f` every 200 ms until it holds or `within` passes; the last value it saw.
fn wait_until<T>(within: Duration, mut f: impl FnMut() -> (bool, T)) -> (bool, T) {
    let until = Instant::now() + within;
    loop {
        let (ok, seen) = f();
        if ok || Instant::now() >= until {
            return (ok, seen);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn expect_ack((status, body): (u16, String), what: &str) -> Result<(), Failed> {
    check(status == 200 && body.contains("\"errors\":false"), || {
        format!("{what}: {status} {body}")
    })
}

/// The first node: the primary, serving the vault, with a workspace under a customer key.
fn primary(b: &Backend, home: &Path, url: &str) -> Result<String, Failed> {
    b.json(home, &["init", "--storage-url", url])?;
    let path = home.join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    config["timings"]["keyCheckMinSecs"] = 1.into();
    config["timings"]["keyCheckMaxSecs"] = 1.into();
    config["timings"]["asyncOperationSecs"] = 0.into();
    config["node"] = json!({"name": "node-1", "refreshSecs": 1, "leaseSecs": 6});
    std::fs::write(&path, serde_json::to_vec_pretty(&config)?)?;
    b.json(home, &["workspace", "create", "--name", WS])?;
    b.json(
        home,
        &[
            "vault",
            "create",
            "--name",
            VAULT,
            "--purge-protection",
            "true",
        ],
    )?;
    // RSA: a remote vault wraps with RSA-OAEP-256, as Key Vault does.
    b.json(
        home,
        &[
            "key", "create", "--vault", VAULT, "--name", KEY, "--kty", "RSA", "--size", "2048",
        ],
    )?;
    let cluster = b.json(home, &["cluster", "create", "--name", CLUSTER])?;
    let principal = cluster["identity"]["principalId"]
        .as_str()
        .ok_or_else(|| format!("cluster create answered {cluster}"))?
        .to_owned();
    // The identity the other nodes act as at the vault.
    let peers = b.json(home, &["identity", "create", "--name", "node-peers"])?;
    let peers = peers["principalId"]
        .as_str()
        .ok_or_else(|| format!("identity create answered {peers}"))?
        .to_owned();
    for object in [principal.as_str(), "node-peers"] {
        b.json(
            home,
            &[
                "vault",
                "set-policy",
                "--name",
                VAULT,
                "--object-id",
                object,
                "--key-permissions",
                "get",
                "wrapKey",
                "unwrapKey",
            ],
        )?;
    }
    b.json(
        home,
        &[
            "cluster",
            "update",
            "--name",
            CLUSTER,
            "--key-vault-uri",
            &format!("https://{VAULT}.vault.local"),
            "--key-name",
            KEY,
        ],
    )?;
    b.json(
        home,
        &["workspace", "link", "--name", WS, "--cluster", CLUSTER],
    )?;
    let token = b.json(
        home,
        &[
            "token",
            "create",
            "--principal",
            &peers,
            "--role",
            "Key Vault Crypto Service Encryption User",
        ],
    )?;
    Ok(token["token"]
        .as_str()
        .ok_or_else(|| format!("token create answered {token}"))?
        .to_owned())
}

/// A node joining: the service vault copied from the first node's home, its token, its
/// `config.json` (docs/deploy.md).
fn join(
    first: &Path,
    home: &Path,
    name: &str,
    url: &str,
    vault_url: &str,
    vault_token: &str,
) -> Result<(), Failed> {
    use std::os::unix::fs::PermissionsExt;
    let vault = home.join("vault");
    std::fs::create_dir_all(vault.join("vaults/logvault-service"))?;
    std::fs::set_permissions(&vault, std::fs::Permissions::from_mode(0o700))?;
    std::fs::copy(first.join("vault/master.key"), vault.join("master.key"))?;
    let from = first.join("vault/vaults/logvault-service");
    for entry in std::fs::read_dir(&from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(
                entry.path(),
                vault
                    .join("vaults/logvault-service")
                    .join(entry.file_name()),
            )?;
        }
    }
    std::fs::write(home.join("vault.token"), vault_token)?;
    let config = json!({
        "version": 1,
        "storageUrl": url,
        "timings": {"keyCheckMinSecs": 1, "keyCheckMaxSecs": 1},
        "vault": {
            "url": vault_url,
            "credential": {"type": "token", "tokenFile": "vault.token"},
            "verifyChallengeResource": false,
            "retries": 1,
            "timeoutSecs": 3,
            "connectTimeoutSecs": 2
        },
        "node": {"name": name, "follows": "node-1", "refreshSecs": 1, "leaseSecs": 6}
    });
    std::fs::write(
        home.join("config.json"),
        serde_json::to_vec_pretty(&config)?,
    )?;
    Ok(())
}

/// Ingest on nodes 1 and 2, query on node 3: every row once. A follower refuses control
/// changes. The key disabled at the vault: every node refuses within the check interval, and
/// serves again after the restore. `kill -9` of an ingesting node and its restart: no
/// acknowledged row lost. The vault's server stopped: the others keep serving from their
/// cached account keys and report the key degraded.
pub fn three_nodes_share_storage_and_vault(b: &Backend) -> Result<(), Failed> {
    let tmp = tempfile::tempdir()?;
    let homes: Vec<PathBuf> = (1..=3)
        .map(|i| tmp.path().join(format!("node{i}")))
        .collect();
    let url = b.fresh_url("nodes");
    let vault_token = primary(b, &homes[0], &url)?;
    let mut n1 = Node::start(b, "node-1", &homes[0])?;
    for (i, name) in [(1, "node-2"), (2, "node-3")] {
        join(&homes[0], &homes[i], name, &url, &n1.url, &vault_token)?;
    }
    let n2 = Node::start(b, "node-2", &homes[1])?;
    let n3 = Node::start(b, "node-3", &homes[2])?;
    let mut n2 = n2;
    let http = Http::new()?;

    // Node 2 has the workspace once it copied the primary's control plane.
    let (ok, last) = wait_until(Duration::from_secs(10), || {
        let r = http.query(&n2, "print x = 1");
        (r.0 == 200, r)
    });
    check(ok, || {
        format!("node 2 never took rows: {last:?}\n{}", n2.log())
    })?;
    // Ingest on node 1 and node 2 at once (two processes racing on one catalog), query on
    // node 3.
    let senders: Vec<_> = [(n1.target(), 0), (n2.target(), 300)]
        .into_iter()
        .map(|(target, from)| {
            std::thread::spawn(move || -> Result<(), String> {
                let http = Http::new().map_err(|e| format!("{e:?}"))?;
                for batch in 0..3 {
                    let start = from + batch * 100;
                    let (status, body) = http.ingest_to(&target, start, start + 100);
                    if status != 200 || !body.contains("\"errors\":false") {
                        return Err(format!("ingest on {}: {status} {body}", target.name));
                    }
                }
                Ok(())
            })
        })
        .collect();
    for s in senders {
        s.join().map_err(|_| "a sender panicked")??;
    }
    let sum = |n: u64| n * (n - 1) / 2;
    let (ok, seen) = wait_until(Duration::from_secs(15), || {
        let c = http.counts(&n3);
        (c == Ok([600, sum(600), 0]), c)
    });
    check(ok, || {
        format!("node 3 sees {seen:?}, expected 600 rows once")
    })?;

    // A follower refuses a control change, naming the primary.
    let out = b.run(
        &homes[2],
        &["workspace", "create", "--name", "ws-other"],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    check(!out.status.success() && err.contains("node-1"), || {
        format!("a follower's workspace create: {err}")
    })?;

    // Compaction on two nodes at once: one at a time (the other told who holds the lease),
    // nothing lost.
    let compact = |home: PathBuf| {
        let b = b.clone();
        std::thread::spawn(move || b.run(&home, &["table", "compact", "--workspace", WS], None))
    };
    let (c2, c3) = (compact(homes[1].clone()), compact(homes[2].clone()));
    let outs = [
        c2.join().map_err(|_| "compact panicked")?,
        c3.join().map_err(|_| "compact panicked")?,
    ];
    for o in &outs {
        let err = String::from_utf8_lossy(&o.stderr);
        check(o.status.success() || err.contains("held by node"), || {
            format!("compact: {err}")
        })?;
    }
    check(outs.iter().any(|o| o.status.success()), || {
        "neither node compacted".into()
    })?;
    let got = http.counts(&n3);
    check(got == Ok([600, sum(600), 0]), || {
        format!("after compaction node 3 sees {got:?}")
    })?;

    // The key disabled at the vault: every node refuses queries and ingestion within the
    // interval; enabled again, every node serves again.
    b.json(
        &homes[0],
        &["key", "disable", "--vault", VAULT, "--name", KEY],
    )?;
    for n in [&n1, &n2, &n3] {
        let (ok, seen) = wait_until(Duration::from_secs(10), || {
            let (status, body) = http.query(n, "App | count");
            (status != 200 && body.contains("revoked"), (status, body))
        });
        check(ok, || {
            format!("{} still answers under a disabled key: {seen:?}", n.name)
        })?;
    }
    let (status, body) = http.ingest(&n2, 600, 610);
    check(status != 200 || !body.contains("\"errors\":false"), || {
        format!("node 2 took rows under a disabled key: {status} {body}")
    })?;
    b.json(
        &homes[0],
        &["key", "enable", "--vault", VAULT, "--name", KEY],
    )?;
    for n in [&n1, &n2, &n3] {
        let (ok, seen) = wait_until(Duration::from_secs(15), || {
            let c = http.counts(n);
            (c == Ok([600, sum(600), 0]), c)
        });
        check(ok, || format!("{} after the restore: {seen:?}", n.name))?;
    }

    // kill -9 of node 2 right after it acknowledged rows; restarted, nothing acknowledged is
    // lost (its own log replays what was not yet in a segment).
    expect_ack(http.ingest(&n2, 600, 700), "ingest before the kill")?;
    n2.signal("KILL")?;
    n2.spawn(b)?;
    let (ok, seen) = wait_until(Duration::from_secs(15), || {
        let c = http.counts(&n3);
        (c == Ok([700, sum(700), 0]), c)
    });
    check(ok, || {
        format!(
            "after node 2's kill -9 and restart node 3 sees {seen:?}\n{}",
            n2.log()
        )
    })?;

    // The vault's server stopped: nodes 2 and 3 keep serving from their cached account keys
    // and report the key degraded.
    n1.signal("TERM")?;
    for n in [&n2, &n3] {
        let gauge = format!("logvault_key_state{{cluster=\"{CLUSTER}\"}} -1");
        let (ok, seen) = wait_until(Duration::from_secs(15), || {
            let m = http.metrics(n);
            (m.contains(&gauge), m)
        });
        check(ok, || {
            format!(
                "{} does not report the key degraded: {seen}\n{}",
                n.name,
                n.log()
            )
        })?;
        let got = http.counts(n);
        check(got == Ok([700, sum(700), 0]), || {
            format!("{} with the vault down: {got:?}", n.name)
        })?;
    }
    Ok(())
}
