//! `logvault serve` as a process, for the tests that watch a whole server: a home with a
//! workspace under the service key and one linked to a cluster whose customer key is in a local
//! vault (key checks every second), the server started on loopback with its standard error in
//! a file, and stopped with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use crate::common::json;

/// The workspace under the service key.
pub(crate) const WS: &str = "ws-srv";
/// The workspace linked to the cluster with the customer key.
pub(crate) const WS_CMK: &str = "ws-cmk";
pub(crate) const VAULT: &str = "kv-srv";
pub(crate) const KEY: &str = "cmk";
pub(crate) const CLUSTER: &str = "cluster-srv";

/// Makes the home: key checks every second, the two workspaces, the vault, key and cluster,
/// and the link.
pub(crate) fn cmk_home(home: &Path) {
    json(home, &["status"]);
    let config_path = home.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["timings"]["keyCheckMinSecs"] = 1.into();
    config["timings"]["keyCheckMaxSecs"] = 1.into();
    config["timings"]["asyncOperationSecs"] = 0.into();
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    for ws in [WS, WS_CMK] {
        json(home, &["workspace", "create", "--name", ws]);
    }
    json(
        home,
        &[
            "vault",
            "create",
            "--name",
            VAULT,
            "--purge-protection",
            "true",
        ],
    );
    json(home, &["key", "create", "--vault", VAULT, "--name", KEY]);
    let cluster = json(home, &["cluster", "create", "--name", CLUSTER]);
    let principal = cluster["identity"]["principalId"].as_str().unwrap();
    json(
        home,
        &[
            "vault",
            "set-policy",
            "--name",
            VAULT,
            "--object-id",
            principal,
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
            CLUSTER,
            "--key-vault-uri",
            &format!("https://{VAULT}.vault.local"),
            "--key-name",
            KEY,
        ],
    );
    json(
        home,
        &["workspace", "link", "--name", WS_CMK, "--cluster", CLUSTER],
    );
}

/// A token for `principal` with `role`, for every workspace.
pub(crate) fn token(home: &Path, principal: &str, role: &str) -> String {
    json(
        home,
        &["token", "create", "--principal", principal, "--role", role],
    )["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A data collection rule taking `Custom-<table>` into `table` of `ws`: its immutable id.
pub(crate) fn rule(home: &Path, name: &str, ws: &str, table: &str) -> String {
    json(
        home,
        &[
            "dcr",
            "create",
            "--name",
            name,
            "--workspace",
            ws,
            "--stream",
            &format!("Custom-{table}"),
            "--table",
            table,
        ],
    )["immutableId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A running `logvault serve`.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// The syslog listener's address.
    pub(crate) syslog: String,
    /// The server's process id.
    pub(crate) pid: u32,
    /// The web page's one-time sign-in link.
    pub(crate) sign_in: String,
    /// Where its standard error goes.
    pub(crate) stderr: PathBuf,
}

/// Starts `logvault serve` on plain HTTP on loopback with a syslog listener for [`WS`], its
/// standard error written to `stderr`, with `env` and `args` added.
pub(crate) fn start(home: &Path, stderr: &Path, env: &[(&str, &str)], args: &[&str]) -> Server {
    let mut command = Command::new(crate::common::bin());
    command
        .arg("--home")
        .arg(home)
        .env_remove("LOGVAULT_HOME")
        .env_remove("LOGVAULT_LOG")
        .args(args)
        .args(["-o", "json", "serve", "--listen", "127.0.0.1:0", "--http"])
        .args(["--syslog-listen", "127.0.0.1:0", "--syslog-workspace", WS])
        .args(["--alert-interval", "off"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr).unwrap());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let started: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        panic!(
            "serve printed {line:?} ({e}): {}",
            std::fs::read_to_string(stderr).unwrap_or_default()
        )
    });
    Server {
        pid: child.id(),
        child,
        url: started["url"].as_str().unwrap().to_owned(),
        syslog: started["syslog"].as_str().unwrap().to_owned(),
        sign_in: started["signInUrl"].as_str().unwrap_or_default().to_owned(),
        stderr: stderr.to_owned(),
    }
}

impl Server {
    /// Stops it with SIGTERM: how it exited.
    pub(crate) fn stop(mut self) -> ExitStatus {
        let kill = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        self.child.wait().unwrap()
    }

    /// Its standard error so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap()
    }
}

/// Polls `check` every 200 ms until it holds or `within` passes (the caller's assertions then
/// say what is wrong).
pub(crate) async fn wait_for<F, Fut>(within: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = std::time::Instant::now() + within;
    while std::time::Instant::now() < until {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
