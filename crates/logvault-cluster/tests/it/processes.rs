//! The `logvault-cluster` binary as a cluster of processes on loopback: a scheduler, two
//! executors and a query API server over one local-files home, each a process of its own on
//! free ports. The server answers every query distributed as it answers it locally. The
//! processes are killed at the end, whatever the outcome.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::common::{Api, KQL, SQL, home};

/// The processes started, killed when dropped (a failed assertion included).
pub struct Processes {
    children: Vec<(String, Child)>,
    logs: std::path::PathBuf,
    /// Environment variables every process gets (the storage's credentials).
    env: Vec<(String, String)>,
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Processes {
    pub fn new(logs: &Path, env: Vec<(String, String)>) -> Self {
        Self {
            children: Vec::new(),
            logs: logs.to_owned(),
            env,
        }
    }

    /// Starts `logvault-cluster args` as `name` (its stderr in a file) and returns the JSON
    /// line it prints once it is up.
    fn start(&mut self, name: &str, args: &[&str]) -> Result<Value> {
        let log = std::fs::File::create(self.logs.join(format!("{name}.log")))?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_logvault-cluster"))
            .args(args)
            .env("LOGVAULT_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("{name} did not start"))?;
        let stdout = child.stdout.take().context("stdout")?;
        self.children.push((name.to_owned(), child));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(read.map(|_| line));
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .with_context(|| format!("{name} printed nothing in 60 s:\n{}", self.log(name)))??;
        serde_json::from_str(&line)
            .with_context(|| format!("{name} printed {line:?}:\n{}", self.log(name)))
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Every process's log, for a failure's message.
    pub fn logs(&self) -> String {
        self.children
            .iter()
            .map(|(name, _)| format!("--- {name}\n{}", self.log(name)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A loopback port free now (the executor binds it a moment later).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn text<'a>(v: &'a Value, field: &str) -> Result<&'a str> {
    v[field]
        .as_str()
        .with_context(|| format!("no {field} in {v}"))
}

/// Starts a scheduler, two executors (with `executor_args` besides their own) and a query API
/// server over `home`, and waits until the cluster answers; a client of the server.
pub async fn start_cluster(
    p: &mut Processes,
    home: &Path,
    token: String,
    executor_args: &[&str],
) -> Result<Api> {
    let home = home.to_str().context("home path")?;
    let scheduler = p.start("scheduler", &["scheduler", "--bind", "127.0.0.1:0"])?;
    let scheduler = text(&scheduler, "scheduler")?.to_owned();
    for name in ["executor-1", "executor-2"] {
        let port = free_port()?.to_string();
        let mut args = vec![
            "executor",
            "--home",
            home,
            "--scheduler",
            &scheduler,
            "--name",
            name,
            "--flight-port",
            &port,
            "--concurrency",
            "2",
        ];
        args.extend_from_slice(executor_args);
        p.start(name, &args)?;
    }
    let server = p.start(
        "serve",
        &[
            "serve",
            "--home",
            home,
            "--listen",
            "127.0.0.1:0",
            "--http",
            "--scheduler",
            &scheduler,
        ],
    )?;
    let api = Api {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?,
        url: text(&server, "url")?.to_owned(),
        token,
    };
    // The executors register with the scheduler as they start: the first query waits for
    // them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match api.same_answer("sql", SQL[0]).await {
            Ok(()) => break,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(e.context("the cluster did not answer in 60 s"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    Ok(api)
}

/// Every query of the suite answers the same distributed as locally, and both executor
/// processes ran tasks.
pub async fn same_answers(p: &Processes, api: &Api) -> Result<()> {
    for q in SQL {
        api.same_answer("sql", q).await?;
    }
    for q in KQL {
        api.same_answer("kql", q).await?;
    }
    // The answers came from the executor processes: each took tasks from the scheduler.
    for name in ["executor-1", "executor-2"] {
        let tasks = p.log(name).matches("Received task").count();
        if tasks == 0 {
            bail!("{name} ran no task:\n{}", p.log(name));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_and_two_executor_processes_answer_as_one_node() -> Result<()> {
    let h = home(false).await?;
    let token = h.owner_token().await?;
    let logs = tempfile::tempdir()?;
    let mut p = Processes::new(logs.path(), Vec::new());
    let outcome = async {
        let api = start_cluster(&mut p, h.dir.path(), token, &[]).await?;
        same_answers(&p, &api).await
    }
    .await;
    if let Err(e) = outcome {
        bail!("{e:#}\n{}", p.logs());
    }
    Ok(())
}
