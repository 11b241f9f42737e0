//! Every route the server serves, from the table its router is built from
//! (`logvault_server::routes()`), so that a new route cannot be left out: each refuses a
//! missing, malformed, expired and revoked token with 401 (carried as a bearer token, as basic
//! auth's password, or as the web session's cookie), and a token of every role its declared
//! permission does not allow with 403, while the roles it allows get past the check. The few
//! public routes are named in the table with why; they answer without a token. Every other
//! method of a served path is 405, every other path 404.

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::Duration;
use futures::StreamExt;
use logvault_server::{Access, Role, Route, routes};
use serde_json::{Value, json};

use crate::common::{Options, Served, WS, serve};

/// A value for every path parameter the routes use.
fn params(rule: &str) -> BTreeMap<&'static str, String> {
    [
        ("workspace", WS),
        ("sub", "00000000-0000-0000-0000-000000000000"),
        ("rg", "rg-routes"),
        ("name", "routes-none"),
        ("rule", rule),
        ("stream", "Custom-AppEvents"),
        ("index", "appevents"),
        ("id", "routes-none"),
        ("table", "AppEvents"),
        ("kind", "CustomLogs"),
        ("loc", "local"),
        ("op", "op-none"),
        ("vault", "kv-none"),
        ("service", "cluster"),
        ("version", "0123456789abcdef"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect()
}

/// `route`'s path with its parameters filled in.
fn concrete(path: &str, params: &BTreeMap<&'static str, String>) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').unwrap() + open;
        let name = &rest[open + 1..close];
        let value = params
            .get(name)
            .unwrap_or_else(|| panic!("{path}: the test has no value for parameter {{{name}}}"));
        out.push_str(value);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// How a request carries its token.
#[derive(Debug, Clone, Copy)]
enum Carrier {
    Bearer,
    /// Basic auth with the token as the password (what shippers send to `_bulk`).
    Basic,
    /// The web session's cookie, with the session's CSRF header (the token's id).
    Cookie,
}

/// A token and its id.
#[derive(Clone)]
struct Token {
    text: String,
    id: String,
}

struct Probe<'a> {
    s: &'a Served,
    params: BTreeMap<&'static str, String>,
}

impl Probe<'_> {
    /// Sends `route` with `token` as `carrier` says, with an empty body or (`valid`) one that
    /// gets the request to its permission check.
    async fn send(
        &self,
        route: &Route,
        method: &str,
        token: Option<(&Token, Carrier)>,
        valid: bool,
    ) -> (u16, String, String) {
        let mut url = format!("{}{}", self.s.url, concrete(&route.path, &self.params));
        let mut body = String::new();
        if valid {
            if route.path.ends_with("/query") && method == "POST" {
                body = json!({"query": "AppEvents | count"}).to_string();
            } else if route.path.ends_with("/query") {
                url.push_str("?query=AppEvents%20%7C%20count");
            } else if matches!(route.access, Access::NeedsEach(_)) {
                body = json!({"requests": [{"id": "1", "workspace": WS, "method": "POST",
                    "path": "/query", "body": {"query": "AppEvents | count"}}]})
                .to_string();
            }
        }
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .s
            .client
            .request(method, url)
            .header("content-type", "application/json")
            .header("x-logvault-workspace", WS)
            .body(body);
        match token {
            None => {}
            Some((t, Carrier::Bearer)) => request = request.bearer_auth(&t.text),
            Some((t, Carrier::Basic)) => {
                let basic =
                    base64::engine::general_purpose::STANDARD.encode(format!("elastic:{}", t.text));
                request = request.header("authorization", format!("Basic {basic}"));
            }
            Some((t, Carrier::Cookie)) => {
                request = request
                    .header("cookie", format!("theme=dark; logvault_session={}", t.text))
                    .header("x-logvault-csrf", &t.id);
            }
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, challenge, response.text().await.unwrap_or_default())
    }
}

fn issue(s: &Served, roles: &[Role], from: chrono::DateTime<chrono::Utc>, hours: i64) -> Token {
    let issued = s
        .tokens
        .issue("routes", roles, None, from, Duration::hours(hours))
        .unwrap();
    Token {
        text: issued.token,
        id: issued.record.id,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_missing_expired_revoked_and_wrong_role_tokens() {
    let s = serve(Options {
        plain_http: true,
        ..Options::default()
    })
    .await;
    let rule = s.rule("rule-routes", WS, "AppEvents", None);
    let probe = Probe {
        s: &s,
        params: params(&rule),
    };
    let all = routes();
    assert!(all.len() > 90, "{} routes", all.len());

    // The public routes are few, and each says why.
    let public: Vec<String> = all
        .iter()
        .filter_map(|r| match r.access {
            Access::Public(why) => {
                assert!(why.len() > 20, "{} {}: no reason given", r.method, r.path);
                Some(format!("{} {}", r.method, r.path))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        public,
        [
            "GET /health",
            "GET /",
            "GET /web/app.js",
            "GET /web/chart.js",
            "GET /web/editor.js",
            "GET /web/app.css",
            "GET /signin",
            "POST /signin",
        ],
        "a route was made public (or one stopped being): say so here and in docs/server.md"
    );

    let now = s.now();
    let expired = issue(&s, &[Role::Owner], now - Duration::hours(3), 1);
    let revoked = issue(&s, &[Role::Owner], now, 1);
    s.tokens.revoke(&revoked.id, now).unwrap();
    let malformed = Token {
        text: "not.a.token".into(),
        id: "none".into(),
    };
    let by_role: Vec<(Role, Token)> = Role::ALL
        .into_iter()
        .map(|r| (r, issue(&s, &[r], now, 1)))
        .collect();

    let mut cases = Vec::new();
    for route in &all {
        let methods: Vec<&str> = if route.method == "GET" {
            vec!["GET", "HEAD"]
        } else {
            vec![route.method]
        };
        for method in methods {
            if let Access::Public(_) = route.access {
                cases.push((route.clone(), method, None, Expect::Open));
                continue;
            }
            cases.push((route.clone(), method, None, Expect::Unauthenticated("")));
            for carrier in [Carrier::Bearer, Carrier::Basic, Carrier::Cookie] {
                for (token, why) in [(&expired, "expired"), (&revoked, "revoked")] {
                    cases.push((
                        route.clone(),
                        method,
                        Some((token.clone(), carrier)),
                        Expect::Unauthenticated(why),
                    ));
                }
            }
            cases.push((
                route.clone(),
                method,
                Some((malformed.clone(), Carrier::Bearer)),
                Expect::Unauthenticated("malformed"),
            ));
            for (role, token) in &by_role {
                let allowed = match route.access {
                    Access::Needs(p) | Access::NeedsEach(p) => role.allows(p),
                    Access::AnyToken(_) | Access::SessionCookie(_) => true,
                    Access::Public(_) => unreachable!(),
                };
                // The session's own route reads the cookie only.
                let carrier = match route.access {
                    Access::SessionCookie(_) => Carrier::Cookie,
                    _ => Carrier::Bearer,
                };
                let expect = if allowed {
                    Expect::Allowed(*role)
                } else {
                    Expect::Forbidden(*role)
                };
                cases.push((
                    route.clone(),
                    method,
                    Some((token.clone(), carrier)),
                    expect,
                ));
            }
        }
    }
    let total = cases.len();
    let failures: Vec<String> = futures::stream::iter(cases)
        .map(|(route, method, token, expect)| {
            let probe = &probe;
            async move {
                let valid = matches!(expect, Expect::Allowed(_) | Expect::Forbidden(_));
                let token = token.as_ref().map(|(t, c)| (t, *c));
                let (status, challenge, body) = probe.send(&route, method, token, valid).await;
                let what = format!(
                    "{method} {} {expect:?} {:?}",
                    route.path,
                    token.map(|t| t.1)
                );
                expect
                    .check(
                        &route,
                        method,
                        token.map(|t| t.1),
                        status,
                        &challenge,
                        &body,
                    )
                    .err()
                    .map(|e| format!("{what}: {e}"))
            }
        })
        .buffer_unordered(8)
        .filter_map(|f| async move { f })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} of {total} requests were answered wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("routes: {} routes, {total} requests", all.len());

    // Every other method of a served path: 405; a path not served: 404.
    let mut methods: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in &all {
        methods.entry(r.path.as_str()).or_default().push(r.method);
    }
    for (path, served) in &methods {
        for other in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if served.contains(&other) {
                continue;
            }
            let route = Route {
                method: other,
                path: (*path).to_owned(),
                access: Access::Public("-"),
            };
            let (status, _, _) = probe.send(&route, other, None, false).await;
            assert_eq!(
                status, 405,
                "{other} {path}: not in the table, yet answered"
            );
        }
    }
    let route = Route {
        method: "GET",
        path: "/v2/unknown".into(),
        access: Access::Public("-"),
    };
    assert_eq!(probe.send(&route, "GET", None, false).await.0, 404);
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A public route: answered without a token.
    Open,
    /// 401; the body says why (empty: no token).
    Unauthenticated(&'static str),
    /// 403 for this role.
    Forbidden(Role),
    /// Past the check for this role.
    Allowed(Role),
}

impl Expect {
    fn check(
        self,
        route: &Route,
        method: &str,
        carrier: Option<Carrier>,
        status: u16,
        challenge: &str,
        body: &str,
    ) -> Result<(), String> {
        let head = method == "HEAD";
        match self {
            Expect::Open => {
                if matches!(status, 401 | 403 | 404 | 405) || status >= 500 {
                    return Err(format!("a public route answered {status}: {body}"));
                }
            }
            Expect::Unauthenticated(why) => {
                if status != 401 {
                    return Err(format!("{status} instead of 401: {body}"));
                }
                // A client is told how to authenticate (the session's route answers the page).
                let session = matches!(route.access, Access::SessionCookie(_));
                if !session && !challenge.starts_with("Bearer ") {
                    return Err(format!("no Bearer challenge: {challenge:?}"));
                }
                // The session's route does not look at a bearer token: it says none came.
                let unseen = session && !matches!(carrier, Some(Carrier::Cookie));
                if !(why.is_empty() || head || unseen || body.contains(why)) {
                    return Err(format!(
                        "the refusal does not say the token is {why}: {body}"
                    ));
                }
            }
            Expect::Forbidden(role) => {
                if let Access::NeedsEach(_) = route.access {
                    let v: Value =
                        serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?;
                    let inner = &v["responses"][0]["status"];
                    if status != 200 || inner != 403 {
                        return Err(format!("{role}: {status} with {inner} inside: {body}"));
                    }
                } else if status != 403 {
                    return Err(format!("{role}: {status} instead of 403: {body}"));
                }
            }
            Expect::Allowed(role) => {
                let inner = serde_json::from_str::<Value>(body)
                    .ok()
                    .and_then(|v| v["responses"][0]["status"].as_u64());
                if matches!(status, 401 | 403) || matches!(inner, Some(401 | 403)) {
                    return Err(format!("{role} is allowed, yet {status}: {body}"));
                }
                if status >= 500 {
                    return Err(format!("{role}: {status}: {body}"));
                }
            }
        }
        Ok(())
    }
}

/// Regression: the query API read and judged a request's body (and a GET's query) before its
/// token: without a token, a body that was not JSON got 400 (not 401), and the server read a
/// body of up to `max_body_bytes` for anyone. Now the token comes first: a request without
/// one is refused at once, its body never waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_without_a_valid_token_is_refused_before_its_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = serve(Options {
        plain_http: true,
        ..Options::default()
    })
    .await;
    let post = format!("{}/v1/workspaces/{WS}/query", s.url);
    let r = s.client.post(&post).body("not json").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .client
        .get(&post)
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a GET without a query");
    let r = s
        .client
        .post(format!("{}/v1/$batch", s.url))
        .body("{\"requests\": []}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "an empty batch");
    // Headers announcing a body that never comes: answered without waiting for it.
    let addr = s.url.strip_prefix("http://").unwrap();
    for path in [
        format!("/v1/workspaces/{WS}/query"),
        "/v1/$batch".to_owned(),
    ] {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(
            format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: 1000\r\n\r\n{{"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut answer = [0u8; 64];
        let n = tokio::time::timeout(std::time::Duration::from_secs(20), tcp.read(&mut answer))
            .await
            .expect("the server waited for the body")
            .unwrap();
        let status = String::from_utf8_lossy(&answer[..n]).into_owned();
        assert!(status.starts_with("HTTP/1.1 401"), "{path}: {status}");
    }
}
