//! The real clients against a running server: Azure's Python SDKs (ingestion and query),
//! OpenTelemetry's Python SDK with the OTLP/HTTP exporters (protobuf, and JSON in its own
//! venv), and rsyslog from Debian (`omfwd` RFC 5424 over TCP, `omelasticsearch` to `_bulk`).
//!
//! `.ci/run` installs them (a venv under ~/.cache, rsyslog from apt) and sets
//! `LOGVAULT_REQUIRE_CLIENTS=1`: then a missing client fails the test. Run otherwise, a test
//! whose client is missing says SKIPPED and why on stderr (uncaptured), never passes silently.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use logvault_server::Role;
use serde_json::json;

use crate::common::{Options, WS, serve};

/// Where `.ci/run` makes the clients' virtual environments.
fn venv(name: &str) -> PathBuf {
    let var = format!("LOGVAULT_VENV_{}", name.to_ascii_uppercase());
    if let Some(dir) = std::env::var_os(var) {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/nonexistent"));
    cache.join("logvault-clients").join(name)
}

/// The python of venv `name` if it has `module`; else fails (under `.ci/run`) or says SKIPPED.
pub fn python_with(name: &str, module: &str, test: &str) -> Option<PathBuf> {
    let python = venv(name).join("bin").join("python");
    let ok = python.exists()
        && Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    missing(
        test,
        &format!("{} has no python with {module}", venv(name).display()),
    );
    None
}

fn missing(test: &str, why: &str) {
    if std::env::var_os("LOGVAULT_REQUIRE_CLIENTS").is_some() {
        panic!("{test}: {why} (.ci/run installs the real clients; see docs/server.md)");
    }
    // Straight to stderr, past the test harness's capture: a skip is never silent.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {why}; run .ci/run (it installs the real clients) to run it"
    );
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

pub fn run_python(python: &Path, script_name: &str, env: &[(&str, String)]) -> String {
    let out = Command::new(python)
        .arg(script(script_name))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script_name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_python_sdks_upload_through_a_transform_then_query_and_batch() {
    let Some(python) = python_with(
        "sdk",
        "azure.monitor.query, azure.monitor.ingestion",
        "azure_python_sdks",
    ) else {
        return;
    };
    let limits = logvault_server::Limits {
        max_result_rows: 1000,
        ..Default::default()
    };
    let s = serve(Options {
        limits: Some(limits),
        ..Default::default()
    })
    .await;
    let rule = s.rule(
        "rule-sdk",
        WS,
        "AppEvents",
        Some("source | where Level != 'debug' | extend Slow = Latency > 250"),
    );
    let env = vec![
        ("LV_URL", s.url.clone()),
        ("LV_CERT", s.server().cert().unwrap().display().to_string()),
        ("LV_RULE", rule),
        ("LV_STREAM", "Custom-AppEvents".to_owned()),
        ("LV_WORKSPACE_ID", s.customer_id(WS)),
        ("LV_PUBLISHER", s.token(&[Role::Publisher], Some(WS))),
        ("LV_READER", s.token(&[Role::Reader], Some(WS))),
        ("LV_ROW_LIMIT", "1000".to_owned()),
    ];
    let stdout = tokio::task::spawn_blocking(move || run_python(&python, "azure_sdk.py", &env))
        .await
        .unwrap();
    assert!(stdout.contains("AZURE SDK OK"), "{stdout}");
    // The SDK chunks and gzips; the server counted what it acknowledged.
    let ingested = s.metric(
        "logvault_rows_ingested_total",
        &[("protocol", "logs-ingestion-api")],
    );
    assert_eq!(ingested as i64, s.count(WS, "AppEvents").await);
}

async fn otel(venv_name: &str, module: &str, encoding: &str) {
    let test = format!("otel_{encoding}");
    let Some(python) = python_with(venv_name, module, &test) else {
        return;
    };
    let s = serve(Options::default()).await;
    let n = 150;
    let env = vec![
        ("LV_URL", s.url.clone()),
        ("LV_CERT", s.server().cert().unwrap().display().to_string()),
        ("LV_TOKEN", s.token(&[Role::Publisher], Some(WS))),
        ("LV_WORKSPACE", WS.to_owned()),
        ("LV_TABLE", "AppLogs".to_owned()),
        ("LV_OTLP_ENCODING", encoding.to_owned()),
        ("LV_COUNT", n.to_string()),
    ];
    let stdout = tokio::task::spawn_blocking(move || run_python(&python, "otel_logging.py", &env))
        .await
        .unwrap();
    assert!(stdout.contains("OTEL OK"), "{stdout}");
    // Every record arrived, with its log and resource attributes.
    let rows = s
        .rows(
            WS,
            "AppLogs | summarize n = count(), orders = dcount(toint(Attributes.order_id)), \
             eu = countif(tostring(Attributes.region) == 'eu'), \
             warn = countif(SeverityText == 'WARN' or SeverityText == 'WARNING'), \
             svc = countif(ServiceName == 'checkout' and tostring(ResourceAttributes['deployment.environment']) == 'ci'), \
             scope = countif(ScopeName == 'shop.orders')",
        )
        .await;
    let warn = (0..n).filter(|i| i % 3 == 0).count();
    assert_eq!(
        rows,
        vec![vec![
            json!(n),
            json!(n),
            json!(n / 2),
            json!(warn),
            json!(n),
            json!(n)
        ]]
    );
    let rows = s
        .rows(
            WS,
            "AppLogs | where toint(Attributes.order_id) == 42 | project Body",
        )
        .await;
    assert_eq!(rows, vec![vec![json!("order 42 placed")]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opentelemetry_logging_handler_over_otlp_json() {
    otel(
        "otlpjson",
        "opentelemetry.exporter.otlp.json.http._log_exporter",
        "json",
    )
    .await;
}

/// rsyslogd from Debian, run unprivileged in the foreground with a config of its own: it reads
/// a file of messages (imfile) and forwards them with `omfwd` (RFC 5424, octet-counted, TCP) and
/// `omelasticsearch` (to `_bulk` over HTTPS with the token as the basic password).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_forwards_over_tcp_and_posts_to_bulk() {
    let rsyslogd = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let Some(rsyslogd) = rsyslogd else {
        missing(
            "rsyslog",
            "rsyslogd is not installed (apt-get install rsyslog rsyslog-elasticsearch)",
        );
        return;
    };
    let plugins = Path::new("/usr/lib/x86_64-linux-gnu/rsyslog");
    if !plugins.join("omelasticsearch.so").exists() {
        missing(
            "rsyslog",
            "omelasticsearch is not installed (apt-get install rsyslog-elasticsearch)",
        );
        return;
    }
    let s = serve(Options {
        syslog: true,
        ..Default::default()
    })
    .await;
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("input.log");
    let n = 40;
    let lines: String = (0..n).map(|i| format!("line {i} from the app\n")).collect();
    std::fs::write(&input, lines).unwrap();
    let syslog = s.server().syslog().unwrap();
    let port = s.url.rsplit(':').next().unwrap().to_owned();
    let token = s.token(&[Role::Publisher], Some(WS));
    let conf = format!(
        r#"global(workDirectory="{work}")
module(load="imfile")
module(load="omelasticsearch")
template(name="doc" type="list" option.jsonf="on") {{
  property(outname="TimeGenerated" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="HostName" name="hostname" format="jsonf")
  property(outname="Message" name="msg" format="jsonf")
}}
input(type="imfile" File="{input}" Tag="app:" Severity="info" Facility="local0")
action(type="omfwd" Target="{host}" Port="{sport}" Protocol="tcp" TCP_Framing="octet-counted" Template="RSYSLOG_SyslogProtocol23Format")
action(type="omelasticsearch" server="127.0.0.1" serverport="{port}" usehttps="on" tls.cacert="{cert}"
       uid="rsyslog" pwd="{token}" searchIndex="rsyslog" template="doc" bulkmode="on"
       errorFile="{work}/es-errors.json")
"#,
        work = work.path().display(),
        input = input.display(),
        host = syslog.ip(),
        sport = syslog.port(),
        cert = s.server().cert().unwrap().display(),
    );
    let conf_path = work.path().join("rsyslog.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut child = Command::new(&rsyslogd)
        .args(["-n", "-f"])
        .arg(&conf_path)
        .arg("-i")
        .arg(work.path().join("rsyslogd.pid"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Poll (without panicking, so that rsyslogd is always stopped) for up to a minute.
    let mut delivered = false;
    for _ in 0..600 {
        if s.count(WS, "Syslog").await >= n && s.count(WS, "rsyslog").await >= n {
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let errors = std::fs::read_to_string(work.path().join("es-errors.json")).unwrap_or_default();
    assert!(
        delivered,
        "rsyslog did not deliver ({} over TCP, {} through _bulk): {}\n{errors}",
        s.count(WS, "Syslog").await,
        s.count(WS, "rsyslog").await,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(s.count(WS, "Syslog").await, n);
    assert_eq!(s.count(WS, "rsyslog").await, n);
    let rows = s
        .rows(
            WS,
            "Syslog | where SyslogMessage has 'line 7 from' | project ProcessName",
        )
        .await;
    assert_eq!(rows, vec![vec![json!("app")]]);
    let rows = s
        .rows(WS, "rsyslog | where Message has 'line 7 from' | count")
        .await;
    assert_eq!(rows, vec![vec![json!(1)]]);
}
