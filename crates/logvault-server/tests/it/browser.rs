//! The web page in a real browser: `tests/clients/browser.py` drives Debian's Chromium with
//! playwright (venv `browser`, installed by `.ci/run`, no browser download) against a server
//! whose workspace is linked to a customer key: sign-in, a query and its table (sorted, copied
//! as CSV, a dynamic value expanded, a partial result, a long query cancelled), completion, a
//! time chart, an error at its position, saved queries, keys and ingestion, and the key disabled and
//! enabled with the `logvault` CLI (banner and refused query, then both clear), sign-out.
//!
//! Set `LOGVAULT_SCREENSHOTS=DIR` to keep the screenshots of the main views (docs/images).

use std::path::PathBuf;

use chrono::Duration;
use logvault_server::Role;

use crate::clients::{missing, python_with, run_python};
use crate::common::{KEY, Options, VAULT, WS, eventually, records, serve, timings};

const CHROMIUM: &str = "/usr/bin/chromium";

/// The `logvault` binary `cargo test --workspace` builds beside this test's binary.
fn logvault_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("logvault");
    bin.exists().then_some(bin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_in_chromium_queries_charts_and_shows_the_key() {
    let test = "web_page_in_chromium";
    let Some(python) = python_with("browser", "playwright.sync_api", test) else {
        return;
    };
    if !std::path::Path::new(CHROMIUM).exists() {
        missing(
            test,
            &format!("{CHROMIUM} is missing (apt-get install chromium)"),
        );
        return;
    }
    let Some(cli) = logvault_binary() else {
        missing(
            test,
            "the logvault binary is not beside the test binary (cargo test --workspace builds it)",
        );
        return;
    };
    let row_limit = 30;
    let s = serve(Options {
        limits: Some(logvault_server::Limits {
            max_result_rows: row_limit,
            // One query at a time: a cancelled query that went on running would refuse the
            // next one (429), so the page's cancel is seen to reach the server.
            max_queries: 1,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    s.link_to_customer_key(WS).await;
    let rule = s.rule("rule-web", WS, "AppEvents", None);
    let publisher = s.token(&[Role::Publisher], Some(WS));
    let n = 40; // more than the row limit: a partial result
    let response = s
        .upload(&rule, "Custom-AppEvents", &publisher, &records(n, "web"))
        .await;
    assert_eq!(response.status().as_u16(), 204);
    eventually("the rows stored", || async {
        s.count(WS, "AppEvents").await == n as i64
    })
    .await;
    // What the page must show, as the query API answers it.
    let expected = s
        .rows(
            WS,
            "AppEvents | summarize n = count() by Level | order by Level asc",
        )
        .await;
    assert_eq!(expected.len(), 4, "{expected:?}");
    let sign_in = s.server().sign_in_url().expect("a sign-in link");

    // The key monitor checks when the (test) clock says a check is due: move it on meanwhile.
    let clock = s.clock.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            clock.advance(Duration::seconds(timings().key_check_max_secs + 1));
        }
    });
    let mut env = vec![
        ("LV_URL", s.url.clone()),
        ("LV_SIGNIN_URL", sign_in),
        ("LV_CLI", cli.display().to_string()),
        ("LV_HOME", s.dir.path().display().to_string()),
        ("LV_WS", WS.to_owned()),
        ("LV_VAULT", VAULT.to_owned()),
        ("LV_KEY", KEY.to_owned()),
        ("LV_EXPECT", serde_json::to_string(&expected).unwrap()),
        ("LV_ROW_LIMIT", row_limit.to_string()),
    ];
    if let Some(dir) = std::env::var_os("LOGVAULT_SCREENSHOTS") {
        env.push(("LV_SCREENSHOTS", PathBuf::from(dir).display().to_string()));
    }
    let started = std::time::Instant::now();
    let stdout = tokio::task::spawn_blocking(move || run_python(&python, "browser.py", &env))
        .await
        .unwrap();
    ticker.abort();
    eprintln!(
        "{stdout}(browser.py ran {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    assert!(stdout.contains("BROWSER OK"), "{stdout}");
    // The page's session was revoked at sign-out.
    let tokens = s.tokens.list().unwrap();
    let web: Vec<_> = tokens
        .iter()
        .filter(|t| t.principal == "web sign-in")
        .collect();
    assert_eq!(web.len(), 1, "{tokens:?}");
    assert!(web[0].revoked_on.is_some(), "{tokens:?}");
}
