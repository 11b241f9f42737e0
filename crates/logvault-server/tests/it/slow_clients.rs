//! Slow clients (slowloris): connections that send their headers or bodies a byte at a time, or
//! nothing at all, over HTTP/1.1 and HTTP/2, are closed by the server's header and request
//! timeouts (`Limits::header_timeout`, `Limits::request_timeout`, small here); meanwhile a
//! normal client is answered; the server's open connections stay within their bound and fall
//! back to none once the slow clients are cut.

use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{Options, Served, WS, records, serve};

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a slow connection may stay open at most before the test calls it a failure: far
/// above the timeouts, so that only a connection the timeouts never cut fails.
const CUT_WITHIN: Duration = Duration::from_secs(20);
/// Requests in flight; connections are bounded at twice this.
const IN_FLIGHT: usize = 16;

async fn slow_server(tls: bool) -> Served {
    serve(Options {
        plain_http: !tls,
        limits: Some(logvault_server::Limits {
            header_timeout: HEADER_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            max_in_flight: IN_FLIGHT,
            ..Default::default()
        }),
        ..Options::default()
    })
    .await
}

fn port(s: &Served) -> u16 {
    s.url.rsplit(':').next().unwrap().parse().unwrap()
}

/// The server's established connections on `port`, from the kernel's table (the server's end:
/// local port `port`).
fn server_connections(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local_port = cols[1].rsplit(':').next().unwrap();
            u16::from_str_radix(local_port, 16).unwrap() == port && cols[3] == "01"
        })
        .count()
}

/// What happened to one slow connection.
#[derive(Debug)]
struct Cut {
    /// What the server answered before closing, if anything (its status line).
    answer: Option<String>,
    /// How long the connection stayed open.
    after: Duration,
}

/// Opens a connection, sends `head` at once, then `trickle` a byte every `every`, and waits
/// until the server closes it (or `CUT_WITHIN` passes: then `None`).
async fn slow(port: u16, head: Vec<u8>, trickle: Vec<u8>, every: Duration) -> Option<Cut> {
    let started = Instant::now();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.write_all(&head).await.unwrap();
    let (mut read, mut write) = tcp.into_split();
    let writer = tokio::spawn(async move {
        for b in trickle.iter().cycle() {
            tokio::time::sleep(every).await;
            if write.write_all(&[*b]).await.is_err() {
                return;
            }
        }
        // Nothing to send: the connection stays open (dropping the half would close it).
        std::future::pending::<()>().await;
        drop(write);
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let outcome = tokio::time::timeout(CUT_WITHIN, async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    writer.abort();
    outcome.ok()?;
    let answer = (!answer.is_empty()).then(|| {
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    });
    Some(Cut {
        answer,
        after: started.elapsed(),
    })
}

/// The HTTP/2 connection preface and an empty SETTINGS frame (prior knowledge, as `h2c`).
fn h2_preface() -> Vec<u8> {
    let mut v = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    v.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_bodies_are_cut_and_a_normal_client_is_answered_meanwhile() {
    let s = slow_server(false).await;
    let port = port(&s);
    let rule = s.rule("rule-slow", WS, "AppEvents", None);
    let publisher = s.token(&[logvault_server::Role::Publisher], Some(WS));
    let tick = Duration::from_millis(100);
    let mut slow_clients = Vec::new();
    let mut spawn = |what: &'static str, head: Vec<u8>, trickle: &[u8]| {
        let trickle = trickle.to_vec();
        slow_clients.push((
            what,
            tokio::spawn(async move { slow(port, head, trickle, tick).await }),
        ));
    };
    for _ in 0..6 {
        // Headers a byte at a time, never ending.
        spawn(
            "headers",
            b"GET /health HTTP/1.1\r\nHost: x\r\n".to_vec(),
            b"X-Slow: aaaaaaaa\r\n",
        );
        // Nothing at all after connecting.
        spawn("silent", Vec::new(), b"");
    }
    for _ in 0..3 {
        // An ingestion body a byte at a time (the handler reads it): 408 at the request
        // timeout.
        let head = format!(
            "POST /dataCollectionRules/{rule}/streams/Custom-AppEvents HTTP/1.1\r\nHost: x\r\n\
             Authorization: Bearer {publisher}\r\nContent-Type: application/json\r\n\
             Content-Length: 100000\r\n\r\n["
        );
        spawn("ingestion body", head.into_bytes(), b" ");
        // A management body a byte at a time, without a token: axum's extractor reads it before
        // the handler (and its token check) runs.
        let head = "PUT /subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/\
             clusters/c1?api-version=2021-06-01 HTTP/1.1\r\nHost: x\r\n\
             Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{";
        spawn("management body", head.as_bytes().to_vec(), b" ");
        // An idle HTTP/1.1 keep-alive connection after one request.
        spawn(
            "idle keep-alive",
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            b"",
        );
        // HTTP/2: the preface, then nothing; and a HEADERS frame a byte at a time.
        spawn("h2 idle", h2_preface(), b"");
        let mut headers = h2_preface();
        headers.extend_from_slice(&[0, 0x07, 0xd0, 1, 4, 0, 0, 0, 1]);
        spawn("h2 headers", headers, b"\x82");
    }
    let opened = slow_clients.len();

    // A normal client meanwhile: health, an upload and a query.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = server_connections(port);
    let health = s
        .client
        .get(format!("{}/health", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // Counted at the health check's answer: the upload and the query after it (a log fsync, a
    // segment stored) may outlast the header timeout on a loaded machine.
    let still_open = slow_clients
        .iter()
        .filter(|(_, t)| !t.is_finished())
        .count();
    let r = s
        .upload(&rule, "Custom-AppEvents", &publisher, &records(5, "normal"))
        .await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    assert_eq!(s.count(WS, "AppEvents").await, 5);
    assert!(
        still_open > opened / 2,
        "the normal client was answered only after the slow ones were cut ({still_open} of \
         {opened} still open)"
    );

    // Every slow connection is cut; a late body is answered 408 first.
    let mut summary = Vec::new();
    for (what, task) in slow_clients {
        let cut = task
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("a {what} connection was still open after {CUT_WITHIN:?}"));
        if what.ends_with("body") {
            assert!(
                cut.answer.as_deref().is_some_and(|a| a.contains(" 408")),
                "{what}: {cut:?}"
            );
        }
        summary.push(format!("{what} {:.1}s", cut.after.as_secs_f64()));
    }
    eprintln!(
        "slow clients: {during} server connections with {opened} slow clients; cut: {}",
        summary.join(", ")
    );
    assert!(
        during >= opened - 2 && during <= 2 * IN_FLIGHT,
        "{during} server connections with {opened} slow clients"
    );
    // Only the normal client's pooled connection may be left, and the header timeout closes
    // an idle one too.
    crate::common::eventually("the server's connections to close", || async {
        server_connections(port) == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_bound_are_closed_at_once_and_the_count_stays_bounded() {
    // Over TLS: a connection that never starts its handshake is cut by the header timeout.
    let s = slow_server(true).await;
    let port = port(&s);
    let bound = 2 * IN_FLIGHT;
    let mut held = Vec::new();
    for _ in 0..bound + 20 {
        held.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    // Those past the bound are closed at once: well before the header timeout closes the
    // others (the count is polled, not read once after a fixed wait: on a loaded machine the
    // accept loop took more than 300 ms to close the last two of twenty).
    let connected = Instant::now();
    let mut open = server_connections(port);
    while open > bound && connected.elapsed() < HEADER_TIMEOUT / 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        open = server_connections(port);
    }
    assert!(
        open <= bound && open >= bound - 2,
        "{open} server connections {:?} after connecting, bound {bound}",
        connected.elapsed()
    );
    // The others are closed by the timeout.
    let started = Instant::now();
    let readers: Vec<_> = held
        .into_iter()
        .map(|mut tcp| {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                let n = tokio::time::timeout(CUT_WITHIN, tcp.read(&mut buf))
                    .await
                    .expect("a silent connection was never closed");
                assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
                started.elapsed()
            })
        })
        .collect();
    let mut closed_at = Vec::new();
    for r in readers {
        closed_at.push(r.await.unwrap());
    }
    let early = closed_at
        .iter()
        .filter(|d| **d < HEADER_TIMEOUT / 2)
        .count();
    assert!(
        early >= 20,
        "only {early} connections past the bound were closed at once: {closed_at:?}"
    );
    assert_eq!(server_connections(port), 0);

    // And the server answers again.
    let health = s
        .client
        .get(format!("{}/health", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

/// A TLS client of the test server that trusts its certificate and offers `alpn`.
fn tls_connector(s: &Served, alpn: Option<&[u8]>) -> tokio_rustls::TlsConnector {
    let pem = std::fs::read_to_string(s.server().cert().unwrap()).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(der))
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.map(<[u8]>::to_vec).into_iter().collect();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// Regression: a connection that sent nothing was held forever: hyper-util's protocol
/// detection (HTTP/1.1 or HTTP/2) waits for the first bytes with no timeout, so hyper's header
/// timeout never started, over plain HTTP and after a TLS handshake alike; and HTTP/2 has no
/// header timeout at all (a connection with only its preface, or a HEADERS frame a byte at a
/// time, stayed). A thousand such connections used every connection slot. Now a connection
/// with no request being answered for the header timeout is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_by_the_header_timeout_not_held_forever() {
    let plain = slow_server(false).await;
    let tick = Duration::from_millis(100);
    let mut h2_headers = h2_preface();
    h2_headers.extend_from_slice(&[0, 0x07, 0xd0, 1, 4, 0, 0, 0, 1]);
    let cases = [
        ("nothing", Vec::new(), Vec::new()),
        ("an HTTP/2 preface", h2_preface(), Vec::new()),
        (
            "an HTTP/2 HEADERS frame a byte at a time",
            h2_headers,
            b"\x82".to_vec(),
        ),
    ];
    let cuts = futures::future::join_all(
        cases
            .iter()
            .map(|(_, head, trickle)| slow(port(&plain), head.clone(), trickle.clone(), tick)),
    )
    .await;
    for ((what, _, _), cut) in cases.iter().zip(cuts) {
        let cut = cut.unwrap_or_else(|| panic!("a connection sending {what} was never closed"));
        assert!(cut.after >= HEADER_TIMEOUT / 2, "{what}: {cut:?}");
    }
    // Over TLS: the handshake done, then nothing, whichever protocol ALPN chose.
    let s = slow_server(true).await;
    let silent = [None, Some(&b"h2"[..]), Some(&b"http/1.1"[..])].map(|alpn| {
        let connector = tls_connector(&s, alpn);
        let port = port(&s);
        async move {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
            let mut tls = connector.connect(name, tcp).await.unwrap();
            let mut buf = [0u8; 64];
            let n = tokio::time::timeout(CUT_WITHIN, tls.read(&mut buf))
                .await
                .unwrap_or_else(|_| {
                    panic!("a silent TLS connection (ALPN {alpn:?}) was never closed")
                });
            assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
        }
    });
    futures::future::join_all(silent).await;
}

/// Regression: the request timeout bounded only the bodies the ingestion and query handlers
/// read themselves; a management or Key Vault body (read by axum's extractor before the
/// handler and its token check) could arrive a byte at a time for as long as the client
/// liked, holding a connection and a request slot without any token. Now every body is bounded:
/// 408, and the connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_management_body_sent_a_byte_at_a_time_is_answered_408_at_the_request_timeout() {
    let s = slow_server(false).await;
    let requests = [
        "PUT /subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/\
         clusters/c1?api-version=2021-06-01",
        "POST /vaults/kv/keys/k/create?api-version=7.4",
    ];
    let cuts = futures::future::join_all(requests.map(|request| {
        let head = format!(
            "{request} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 100000\r\n\r\n{{"
        );
        slow(
            port(&s),
            head.into_bytes(),
            b" ".to_vec(),
            Duration::from_millis(100),
        )
    }))
    .await;
    for (request, cut) in requests.iter().zip(cuts) {
        let cut = cut.unwrap_or_else(|| panic!("{request}: the body was waited for forever"));
        let answer = cut.answer.unwrap_or_default();
        assert!(answer.starts_with("HTTP/1.1 408"), "{request}: {answer}");
        assert!(
            cut.after >= REQUEST_TIMEOUT / 2,
            "{request}: {:?}",
            cut.after
        );
    }
}
