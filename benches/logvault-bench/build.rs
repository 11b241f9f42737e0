//! Records the commit the harness is built from as `LOGVAULT_BENCH_COMMIT`, so that its results
//! name the commit wherever it runs (asking `git` in the working directory at run time gave
//! "unknown" for a run started outside the clone). Empty when `git` or the repository is missing
//! (a source tarball): the harness then asks at run time as before.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

fn main() {
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_default();
    println!("cargo:rustc-env=LOGVAULT_BENCH_COMMIT={commit}");
    // Run again when HEAD moves: a checkout (HEAD itself), a commit on the branch (its ref).
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!(
            "cargo:rerun-if-changed={}",
            Path::new(&dir).join("HEAD").display()
        );
    }
    if let Some(common) = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]) {
        let common = Path::new(&common);
        println!(
            "cargo:rerun-if-changed={}",
            common.join("refs/heads").display()
        );
        println!(
            "cargo:rerun-if-changed={}",
            common.join("packed-refs").display()
        );
    }
    println!("cargo:rerun-if-changed=build.rs");
}
