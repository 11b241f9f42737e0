//! `logvault token`, `logvault dcr` and `logvault serve` as scripts run them: JSON fields of the
//! contract, refusals with their codes, and a server that starts, answers, and stops on SIGTERM
//! with exit 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn logvault(home: &Path, args: &[&str]) -> Output {
    Command::new(crate::common::bin())
        .arg("--home")
        .arg(home)
        .env_remove("LOGVAULT_HOME")
        .args(args)
        .output()
        .unwrap()
}

fn json(home: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    let out = logvault(home, &all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn refused(home: &Path, args: &[&str]) -> String {
    let out = logvault(home, args);
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn tokens_and_rules_are_created_listed_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    json(home, &["workspace", "create", "--name", "ws-srv"]);
    let token = json(
        home,
        &[
            "token",
            "create",
            "--principal",
            "shipper",
            "--role",
            "Monitoring Metrics Publisher",
            "--workspace",
            "ws-srv",
            "--hours",
            "2",
        ],
    );
    assert_eq!(token["principal"], "shipper");
    assert_eq!(
        token["roles"],
        serde_json::json!(["Monitoring Metrics Publisher"])
    );
    assert_eq!(token["token"].as_str().unwrap().split('.').count(), 3);
    assert!(token["expiresOn"].is_string());
    let id = token["id"].as_str().unwrap().to_owned();
    let list = json(home, &["token", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("token").is_none());
    assert!(
        !std::fs::read_to_string(home.join("server/tokens.json"))
            .unwrap()
            .contains(token["token"].as_str().unwrap())
    );
    let revoked = json(home, &["token", "revoke", "--id", &id]);
    assert!(revoked["revokedOn"].is_string());
    assert!(refused(home, &["token", "revoke", "--id", "nope"]).starts_with("error: 404"));
    assert!(
        refused(
            home,
            &["token", "create", "--principal", "p", "--role", "Admin"]
        )
        .contains("Owner")
    );
    assert!(
        refused(
            home,
            &[
                "token",
                "create",
                "--principal",
                "p",
                "--workspace",
                "ws-none"
            ]
        )
        .contains("404")
    );

    let rule = json(
        home,
        &[
            "dcr",
            "create",
            "--name",
            "app",
            "--workspace",
            "ws-srv",
            "--stream",
            "Custom-AppEvents",
            "--table",
            "AppEvents",
            "--transform",
            "source | where Level != 'debug'",
        ],
    );
    let immutable = rule["immutableId"].as_str().unwrap().to_owned();
    assert!(immutable.starts_with("dcr-"));
    assert_eq!(
        rule["dataFlows"][0]["transformKql"],
        "source | where Level != 'debug'"
    );
    assert_eq!(
        json(home, &["dcr", "show", "--name", &immutable])["name"],
        "app"
    );
    assert_eq!(json(home, &["dcr", "list"]).as_array().unwrap().len(), 1);
    assert!(
        refused(
            home,
            &[
                "dcr",
                "create",
                "--name",
                "app",
                "--workspace",
                "ws-srv",
                "--stream",
                "Custom-A",
                "--table",
                "A"
            ]
        )
        .starts_with("error: 409")
    );
    assert!(
        refused(
            home,
            &[
                "dcr",
                "create",
                "--name",
                "b",
                "--workspace",
                "ws-srv",
                "--stream",
                "Custom-A",
                "--table",
                "A",
                "--transform",
                "Other | take 1"
            ]
        )
        .starts_with("error: 400")
    );
    assert!(
        refused(
            home,
            &[
                "dcr",
                "create",
                "--name",
                "bad",
                "--workspace",
                "ws-srv",
                "--stream",
                "NoPrefix",
                "--table",
                "A"
            ]
        )
        .starts_with("error: 400")
    );
    json(home, &["dcr", "delete", "--name", "app"]);
    assert!(refused(home, &["dcr", "show", "--name", "app"]).starts_with("error: 404"));
}

/// One HTTP/1.1 request over plain TCP: the status line and the body.
fn http(addr: &str, request: &str) -> (String, String) {
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).unwrap();
    let status = reply.lines().next().unwrap_or_default().to_owned();
    let body = reply
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

#[test]
fn serve_starts_prints_its_url_answers_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    json(home, &["workspace", "create", "--name", "ws-srv"]);
    let token = json(home, &["token", "create", "--principal", "me"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut child = Command::new(crate::common::bin())
        .arg("--home")
        .arg(home)
        .env_remove("LOGVAULT_HOME")
        .args(["-o", "json", "serve", "--listen", "127.0.0.1:0", "--http"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let started: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(started["pid"], child.id());
    assert!(started["cert"].is_null());
    let url = started["url"].as_str().unwrap();
    let addr = url.strip_prefix("http://").unwrap().to_owned();
    let (status, body) = http(
        &addr,
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, r#"{"status":"ok"}"#);
    let (status, _) = http(
        &addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(status.contains("401"), "{status}");
    let (status, body) = http(
        &addr,
        &format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("logvault_http_requests_total"), "{body}");
    // The web page's one-time sign-in link: a session once, refused after.
    let link = started["signInUrl"].as_str().unwrap();
    let path = link
        .strip_prefix(&format!("{url}/signin?code="))
        .map(|code| format!("/signin?code={code}"))
        .unwrap_or_else(|| panic!("{link} is not a sign-in link of {url}"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (status, _) = http(&addr, &request);
    assert!(status.contains("303"), "{status}");
    let (status, _) = http(&addr, &request);
    assert!(status.contains("401"), "the link signed in twice: {status}");
    let (status, body) = http(
        &addr,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("logvault"), "{body}");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    // Request log lines name the route and the token's id, never the token.
    assert!(stderr.contains("/metrics"), "{stderr}");
    assert!(!stderr.contains(&token), "{stderr}");
}
