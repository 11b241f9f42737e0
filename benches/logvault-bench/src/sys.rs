//! The machine a run is on, and what the process used: peak memory and CPU time (Linux `/proc`).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, fixed at 100 by the Linux ABI
/// on the architectures this runs on).
const USER_HZ: f64 = 100.0;

/// A description of the machine and build, printed with every report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Cores available to this process.
    pub cores: usize,
    /// Total memory in GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// `rustc --version`.
    pub rustc: String,
    /// The build profile of the harness (`release` or `debug`).
    pub profile: String,
    /// The commit of the source tree, if known.
    pub commit: String,
    /// When the run started (UTC, RFC 3339).
    pub date: String,
    /// `/proc/loadavg` when the run started: other work on the machine skews the figures.
    #[serde(default)]
    pub load_at_start: String,
    /// `/proc/loadavg` when the run ended.
    #[serde(default)]
    pub load_at_end: String,
}

/// The 1, 5 and 15-minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

impl Machine {
    /// Describes this machine now.
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|rest| rest.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        Self {
            cpu_model,
            cores: std::thread::available_parallelism()
                .map(std::num::NonZero::get)
                .unwrap_or(1),
            memory_gib: (memory_kib / (1024.0 * 1024.0) * 10.0).round() / 10.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            rustc: command_line("rustc", &["--version"]),
            profile: if cfg!(debug_assertions) {
                "debug".into()
            } else {
                "release".into()
            },
            // The commit the harness was built from (build.rs), else the working directory's.
            commit: match env!("LOGVAULT_BENCH_COMMIT") {
                "" => command_line("git", &["rev-parse", "--short", "HEAD"]),
                built => built.to_owned(),
            },
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            load_at_start: load_average(),
            load_at_end: String::new(),
        }
    }
}

/// The first line a command prints, or `unknown`.
fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The process's peak resident set size in bytes (`VmHWM`), if readable.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kib(&status, "VmHWM:").map(|kib| kib * 1024)
}

/// Resets the peak resident set size to the current one (writes `5` to
/// `/proc/self/clear_refs`); whether it could.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system, all threads) the process used so far, in seconds.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat_cpu(&stat)
}

fn parse_stat_cpu(stat: &str) -> Option<f64> {
    // utime is field 14 and stime 15.
    stat_ticks_seconds(stat, 14)
}

/// The sum of fields `field` and `field + 1` of a `/proc/PID/stat` line (clock ticks), in
/// seconds. Fields are counted from 1; the command name (field 2) may hold spaces, so counting
/// starts after its last ')', at the state (field 3).
fn stat_ticks_seconds(stat: &str, field: usize) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(field.checked_sub(3)?);
    let first: f64 = fields.next()?.parse().ok()?;
    let second: f64 = fields.next()?.parse().ok()?;
    Some((first + second) / USER_HZ)
}

/// The longest thread name the kernel keeps (`comm`, `TASK_COMM_LEN` less its NUL).
const THREAD_NAME_BYTES: usize = 15;

/// CPU time (user + system) so far of each live thread of this process whose name starts with
/// `prefix` (cut as the kernel cuts a thread's name), by thread id, in seconds
/// (`/proc/self/task/*/stat`). A thread that has ended is not there: subtract two readings
/// thread by thread ([`threads_cpu_since`]).
pub fn threads_cpu_seconds(prefix: &str) -> Option<HashMap<u64, f64>> {
    let prefix = prefix.get(..THREAD_NAME_BYTES).unwrap_or(prefix);
    let mut times = HashMap::new();
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        // A thread may end between the listing and the read.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if thread_name(&stat).is_some_and(|name| name.starts_with(prefix))
            && let Some(secs) = parse_stat_cpu(&stat)
        {
            times.insert(tid, secs);
        }
    }
    Some(times)
}

/// The CPU time the threads of `now` used since `before` (a thread absent from `before`
/// started since, from nothing), in seconds.
pub fn threads_cpu_since(before: &HashMap<u64, f64>, now: &HashMap<u64, f64>) -> f64 {
    // Folded from 0.0: a sum of no thread would be -0.0.
    now.iter().fold(0.0, |sum, (tid, secs)| {
        sum + (secs - before.get(tid).copied().unwrap_or(0.0)).max(0.0)
    })
}

/// The thread's name (`comm`, at most 15 bytes) in a `/proc/.../stat` line: between the first
/// '(' and the last ')'.
fn thread_name(stat: &str) -> Option<&str> {
    stat.get(stat.find('(')? + 1..stat.rfind(')')?)
}

/// CPU time (user + system) of the children this process has waited for, in seconds
/// (`cutime` + `cstime`): the difference around waiting for one child is that child's CPU time.
pub fn children_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat_children_cpu(&stat)
}

fn parse_stat_children_cpu(stat: &str) -> Option<f64> {
    // cutime is field 16 and cstime 17.
    stat_ticks_seconds(stat, 16)
}

/// The peak resident set size (`VmHWM`) of process `pid` so far, in bytes, while it runs
/// (a process that has exited has none).
pub fn process_peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, "VmHWM:").map(|kib| kib * 1024)
}

/// Total size in bytes of the files under `dir` (0 if it does not exist).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "1234 (my (odd) prog) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
        assert_eq!(parse_stat_cpu(stat), Some(3.0));
        assert_eq!(parse_stat_children_cpu(stat), Some(0.0));
        let waited = "1234 (p) S 1 2 3 4 5 6 7 8 9 10 250 50 120 30 20 0";
        assert_eq!(parse_stat_children_cpu(waited), Some(1.5));
        assert_eq!(parse_stat_children_cpu("1234 (p) S 1 2"), None);
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t1024 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(2048));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
        assert_eq!(thread_name(stat), Some("my (odd) prog"));
        assert_eq!(thread_name("1234 no name"), None);
        let before = HashMap::from([(1, 2.0), (2, 5.0)]);
        let now = HashMap::from([(1, 3.5), (3, 0.25)]);
        // Thread 2 ended (not counted), thread 3 started since.
        assert_eq!(threads_cpu_since(&before, &now), 1.75);
        let none = threads_cpu_since(&before, &HashMap::new());
        assert!(none == 0.0 && none.is_sign_positive());
    }

    #[test]
    fn reads_this_process() {
        assert!(peak_rss_bytes().unwrap() > 0);
        assert!(cpu_seconds().is_some());
        assert!(children_cpu_seconds().is_some());
        // A thread of its own, named, that spins until it is seen to have used CPU time
        // (bounded: a thread never seen fails the test).
        let spinner = std::thread::Builder::new()
            .name("bench-spinner-with-a-long-name".into())
            .spawn(|| {
                let start = std::time::Instant::now();
                let mut x = 0u64;
                let mine = loop {
                    for _ in 0..1_000_000 {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                    // Asked for by its whole name, longer than the kernel keeps.
                    let mine = threads_cpu_seconds("bench-spinner-with-a-long-name").unwrap();
                    if mine.values().any(|s| *s > 0.0)
                        || start.elapsed() > std::time::Duration::from_secs(20)
                    {
                        break mine;
                    }
                };
                assert_eq!(mine.len(), 1, "{mine:?}");
                assert!(mine.values().all(|s| *s > 0.0), "{mine:?}");
                assert!(threads_cpu_seconds("no-such-thread").unwrap().is_empty());
            })
            .unwrap();
        spinner.join().unwrap();
        assert!(process_peak_rss_bytes(std::process::id()).unwrap() > 0);
        let m = Machine::describe();
        assert!(m.cores >= 1);
        assert!(m.memory_gib > 0.0);
    }

    #[test]
    fn sizes_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/x"), [0u8; 10]).unwrap();
        std::fs::write(dir.path().join("y"), [0u8; 5]).unwrap();
        assert_eq!(dir_size(dir.path()), 15);
        assert_eq!(dir_size(&dir.path().join("missing")), 0);
    }
}
