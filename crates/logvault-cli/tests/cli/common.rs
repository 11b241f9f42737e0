//! Running the binary as a user does: shared by the test modules of this binary.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The binary under test: the one cargo built for this test run, or `LOGVAULT_BIN` when set
/// (for example a release build, to soak the binary as deployed: docs/reliability.md).
pub(crate) fn bin() -> std::path::PathBuf {
    std::env::var_os("LOGVAULT_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_BIN_EXE_logvault")))
}

/// `logvault --home HOME ARGS` with `stdin` on its standard input.
pub(crate) fn logvault(home: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(crate::common::bin())
        .arg("--home")
        .arg(home)
        .env_remove("LOGVAULT_HOME")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A command run with `-o json` that must succeed: its JSON document.
pub(crate) fn json(home: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    let out = logvault(home, &all, "");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A command that must fail: its standard error.
pub(crate) fn fails(home: &Path, args: &[&str]) -> String {
    let out = logvault(home, args, "");
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}
