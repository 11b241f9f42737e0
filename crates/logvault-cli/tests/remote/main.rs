//! The `logvault` binary on remote object storage: Azure Blob (Azurite) and S3 (moto's server),
//! the emulators `.ci/run` installs and starts (`.ci/emulators`).
//!
//! Each test runs once per backend. Without the emulators (`LOGVAULT_TEST_AZURITE`,
//! `LOGVAULT_TEST_S3` unset) the tests are reported as ignored, with the reason printed, so a
//! plain `cargo test --workspace` says what it did not run; under `.ci/run`
//! (`LOGVAULT_REQUIRE_EMULATORS=1`) a missing emulator fails the run instead.
//! A custom harness (libtest-mimic): libtest cannot decide at run time that a test is ignored.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_docs
)] // test code

mod cases;
mod nodes;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use libtest_mimic::{Arguments, Failed, Trial};

/// One emulated backend: how to point `logvault` at it.
#[derive(Debug, Clone)]
pub struct Backend {
    pub name: &'static str,
    /// `az://logvault` or `s3://logvault`: a test appends a prefix of its own.
    pub url: String,
    /// Environment variables of the backend's standard configuration.
    pub env: Vec<(String, String)>,
}

impl Backend {
    /// The backend named by `var` (`ENDPOINT|CONTAINER`), if `.ci/emulators` set it.
    fn from_env(name: &'static str, var: &str) -> Option<Self> {
        let value = std::env::var(var).ok()?;
        let (endpoint, container) = value.split_once('|')?;
        let env = match name {
            "azurite" => vec![
                ("AZURE_STORAGE_USE_EMULATOR", "true"),
                ("AZURITE_BLOB_STORAGE_URL", endpoint),
            ],
            _ => vec![
                ("AWS_ENDPOINT", endpoint),
                ("AWS_ALLOW_HTTP", "true"),
                ("AWS_ACCESS_KEY_ID", "logvault-test"),
                ("AWS_SECRET_ACCESS_KEY", "logvault-test"),
                ("AWS_REGION", "us-east-1"),
            ],
        };
        let scheme = if name == "azurite" { "az" } else { "s3" };
        Some(Self {
            name,
            url: format!("{scheme}://{container}"),
            env: env
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        })
    }

    /// A storage URL no other test (or earlier run against a long-lived emulator) uses.
    pub fn fresh_url(&self, test: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("{}/{test}-{}-{nanos}", self.url, std::process::id())
    }

    /// `logvault --home HOME ARGS` with the backend's environment.
    pub fn command(&self, home: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_logvault"));
        c.arg("--home").arg(home).env_remove("LOGVAULT_HOME");
        for var in ["AWS_", "AZURE_", "AZURITE_"] {
            for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with(var)) {
                c.env_remove(k);
            }
        }
        c.envs(self.env.iter().map(|(k, v)| (k, v))).args(args);
        c
    }

    pub fn run(&self, home: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut c = self.command(home, args);
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(input) = stdin {
            use std::io::Write;
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs a command with `-o json` that must succeed; its JSON output.
    pub fn json(&self, home: &Path, args: &[&str]) -> Result<serde_json::Value, Failed> {
        let mut all = vec!["-o", "json"];
        all.extend_from_slice(args);
        let out = self.run(home, &all, None);
        if !out.status.success() {
            return Err(format!(
                "{}: logvault {args:?} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("{}: {args:?}: not JSON: {e}", self.name).into())
    }
}

type Case = fn(&Backend) -> Result<(), Failed>;

#[allow(clippy::print_stdout)] // a harness reports what it did not run, on stdout as libtest does
fn main() {
    let args = Arguments::from_args();
    let required = std::env::var("LOGVAULT_REQUIRE_EMULATORS").is_ok_and(|v| v == "1");
    let backends = [
        ("azurite", "LOGVAULT_TEST_AZURITE"),
        ("s3", "LOGVAULT_TEST_S3"),
    ];
    let mut trials = Vec::new();
    for (name, var) in backends {
        let backend = Backend::from_env(name, var);
        if backend.is_none() {
            println!(
                "remote storage tests over {name}: NOT RUN, {var} is not set (the emulators \
                 are started by .ci/run; see docs/development.md)"
            );
        }
        let only_here: &[(&str, Case)] = if name == "azurite" {
            cases::AZURITE_ONLY
        } else {
            &[]
        };
        for (case, f) in cases::ALL.iter().chain(only_here) {
            let test_name = format!("{case}::{name}");
            let trial = match (&backend, required) {
                (Some(b), _) => {
                    let b = b.clone();
                    let f: Case = *f;
                    Trial::test(test_name, move || f(&b))
                }
                (None, true) => Trial::test(test_name, move || {
                    Err(format!("{var} is not set, but .ci/run requires the emulators").into())
                }),
                (None, false) => Trial::test(test_name, move || {
                    Err(format!("{var} is not set: start the emulators (.ci/emulators)").into())
                })
                .with_ignored_flag(true),
            };
            trials.push(trial);
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
