//! Disk full and read-only storage (issue 25) for the write-ahead log (`HOME/wal`) and the
//! local store (`HOME/storage`), each on a small tmpfs mounted for the test: writes refused with
//! a clear error, nothing acknowledged that is not durable, and recovery once space is back.
//!
//! Mounting needs root (`mount -t tmpfs`). Where it is not possible the tests fail saying why,
//! unless `LOGVAULT_SKIP_PRIVILEGED=1`, with which they print SKIPPED and the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use logvault::ingest::Format;
use logvault::{Engine, EngineError, IngestOptions};

use crate::common::{Home, WS, home};

const TABLE: &str = "AppLogs";

/// A tmpfs mounted at a directory for the length of a test.
struct Tmpfs {
    at: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `kib` KiB at `at` (created if needed); `None` (after printing SKIPPED)
    /// when it cannot and `LOGVAULT_SKIP_PRIVILEGED=1`.
    #[allow(clippy::print_stderr)] // a skipped test says so
    fn mount(at: &Path, kib: u64) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output();
        let why = match out {
            Ok(o) if o.status.success() => {
                return Some(Self { at: at.to_owned() });
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
            Err(e) => e.to_string(),
        };
        let reason = format!(
            "cannot mount a tmpfs at {} (needs root): {why}",
            at.display()
        );
        if std::env::var("LOGVAULT_SKIP_PRIVILEGED").as_deref() == Ok("1") {
            eprintln!("SKIPPED disk-full and read-only tests: {reason}");
            return None;
        }
        panic!("{reason}; set LOGVAULT_SKIP_PRIVILEGED=1 to skip these tests");
    }

    fn remount(&self, options: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "remount {options}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Fills what space is left with a file (removed by `drain`).
    fn fill(&self) {
        let _ = std::fs::write(self.at.join("filler"), vec![0u8; 64 << 20]);
    }

    fn drain(&self) {
        let _ = std::fs::remove_file(self.at.join("filler"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).output();
    }
}

async fn ingest(engine: &Engine, tag: &str, start: i64, n: usize) -> Result<u64, EngineError> {
    let payload = Home::lines(tag, start, n).join("\n");
    engine
        .ingest(
            WS,
            TABLE,
            std::io::Cursor::new(payload),
            &IngestOptions::new(Format::JsonLines),
            None,
        )
        .await
        .map(|r| r.accepted)
}

/// How many rows of each tag the table holds, checking no row is there twice.
async fn tags(h: &Home, engine: &Engine) -> BTreeMap<String, usize> {
    let got = h
        .column(
            engine,
            WS,
            &format!("SELECT concat(Tag, '-', CAST(Seq AS VARCHAR)) FROM {TABLE}"),
        )
        .await
        .unwrap();
    let unique: std::collections::BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "a row is there twice: {got:?}");
    let mut out = BTreeMap::new();
    for row in &got {
        let tag = row.rsplit_once('-').unwrap().0.to_owned();
        *out.entry(tag).or_insert(0) += 1;
    }
    out
}

fn assert_says(e: &EngineError, words: &[&str]) {
    let text = e.to_string();
    for w in words {
        assert!(text.contains(w), "the error does not say {w:?}: {text}");
    }
}

/// The write-ahead log's file system full, then read-only: ingestion refused naming the
/// workspace, the file and the cause; every acknowledged row there once; back to normal when
/// space (or write access) is back.
#[tokio::test]
async fn a_full_or_read_only_log_directory_refuses_ingestion_and_acknowledges_nothing_more() {
    let h = home().await;
    h.workspace(WS);
    let Some(fs) = Tmpfs::mount(&h.dir.path().join("wal"), 512) else {
        return;
    };
    assert_eq!(ingest(&h.engine, "a", 0, 20).await.unwrap(), 20);

    // Full.
    fs.fill();
    let e = ingest(&h.engine, "full", 100, 50).await.unwrap_err();
    assert_says(&e, &[WS, "No space left on device"]);
    let got = tags(&h, &h.engine).await;
    assert_eq!(got.get("a"), Some(&20), "{got:?}");
    assert!(
        !got.contains_key("full"),
        "refused rows are not there: {got:?}"
    );
    fs.drain();
    assert_eq!(ingest(&h.engine, "b", 200, 30).await.unwrap(), 30);

    // Read-only.
    fs.remount("ro");
    let e = ingest(&h.engine, "ro", 300, 10).await.unwrap_err();
    assert_says(&e, &[WS, "Read-only file system"]);
    // Reads go on.
    let got = tags(&h, &h.engine).await;
    assert_eq!(
        (got.get("a"), got.get("b")),
        (Some(&20), Some(&30)),
        "{got:?}"
    );
    fs.remount("rw");
    assert_eq!(ingest(&h.engine, "c", 400, 5).await.unwrap(), 5);
    let got = tags(&h, &h.reopen().await).await;
    assert_eq!(
        got,
        BTreeMap::from([("a".into(), 20), ("b".into(), 30), ("c".into(), 5)])
    );
}

/// The local store's file system full, then read-only: the ingest fails naming the segment or
/// catalog, its rows stay in the log (acknowledged there, not lost) and are stored once, by the
/// next use after space is back; nothing partial is listed.
#[tokio::test]
async fn a_full_or_read_only_store_refuses_the_write_and_stores_the_logged_rows_once_space_is_back()
{
    let h = home().await;
    h.workspace(WS);
    assert_eq!(ingest(&h.engine, "a", 0, 20).await.unwrap(), 20);
    let storage = h.dir.path().join("storage");
    // Move the store's files onto a small tmpfs at the same place.
    let saved = h.dir.path().join("storage.saved");
    std::fs::rename(&storage, &saved).unwrap();
    let Some(fs) = Tmpfs::mount(&storage, 2048) else {
        return;
    };
    let cp = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", saved.display()))
        .arg(&storage)
        .status()
        .unwrap();
    assert!(cp.success());
    let engine = h.reopen().await;
    assert_eq!(tags(&h, &engine).await.get("a"), Some(&20));

    fs.fill();
    let e = ingest(&engine, "full", 100, 40).await.unwrap_err();
    assert_says(&e, &["No space left on device"]);
    assert!(
        e.to_string().contains("segment") || e.to_string().contains("catalog"),
        "{e}"
    );
    assert!(
        engine
            .verify(WS, None, &mut |_| {})
            .await
            .unwrap()
            .is_clean()
    );
    fs.drain();
    // Space is back: the next use stores what the log holds, once.
    let got = tags(&h, &engine).await;
    assert_eq!(
        (got.get("a"), got.get("full")),
        (Some(&20), Some(&40)),
        "{got:?}"
    );

    fs.remount("ro");
    let e = ingest(&engine, "ro", 200, 10).await.unwrap_err();
    assert_says(&e, &["Read-only file system"]);
    fs.remount("rw");
    let got = tags(&h, &h.reopen().await).await;
    assert_eq!(
        got,
        BTreeMap::from([("a".into(), 20), ("full".into(), 40), ("ro".into(), 10)])
    );
    assert!(
        engine
            .verify(WS, None, &mut |_| {})
            .await
            .unwrap()
            .is_clean()
    );
}
