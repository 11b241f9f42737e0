//! The web page (`GET /`): static HTML, CSS and JavaScript embedded in the binary (no build
//! step, no external request), the browser's sign-in, and the few endpoints the page needs
//! beside the query API every client uses.
//!
//! Sign-in: the server makes one sign-in secret at start; [`crate::RunningServer::sign_in_url`]
//! is `URL/signin?code=SECRET`. Opening it once (and only once: the secret is spent) issues a
//! token for principal `web sign-in` (role `Owner`, 12 hours) and puts it in an `HttpOnly`,
//! `SameSite=Strict` cookie; pasting a token from `logvault token create` does the same with
//! that token. A cookie alone authorizes nothing that changes or reads data: every call
//! authorized by the cookie must also carry `x-logvault-csrf` with the session's id, which only
//! a page of this origin can read (`GET /web/api/session`). Bearer tokens work as everywhere.
//!
//! - [`session`]: sign-in, sign-out, the session cookie and its CSRF check.
//! - [`api`]: workspaces, their schema (for completion), saved searches, ingestion per hour.
//! - [`status`]: `GET /status`, keys and health per workspace and cluster (scripts use it too).

mod api;
mod session;
mod status;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::http::routes::{Access, Routes};
use crate::roles::Permission;

pub(crate) use session::{SignIn, cookie_session, csrf_ok, csrf_refusal};

/// Why the page's files need no token.
const ASSET: &str = "the web page's static files, embedded in the binary: they hold no data";

/// The page's routes (merged into the server's table).
pub(crate) fn routes() -> Routes {
    use Access::{AnyToken, Needs, Public, SessionCookie};
    Routes::new()
        .get("/", Public(ASSET), index)
        .get("/web/app.js", Public(ASSET), app_js)
        .get("/web/chart.js", Public(ASSET), chart_js)
        .get("/web/editor.js", Public(ASSET), editor_js)
        .get("/web/app.css", Public(ASSET), app_css)
        .get(
            "/signin",
            Public("the one-time sign-in link: its code is the credential (401 once spent)"),
            session::sign_in_link,
        )
        .post(
            "/signin",
            Public("signs in with the token in its body, verified there (401 for a bad one)"),
            session::sign_in_token,
        )
        .post(
            "/signout",
            AnyToken("ends the caller's own session and does nothing else"),
            session::sign_out,
        )
        .get(
            "/web/api/session",
            SessionCookie("tells the session who it is and its CSRF value, nothing more"),
            session::current,
        )
        .get("/status", Needs(Permission::Metrics), status::status)
        .get(
            "/web/api/workspaces",
            AnyToken("lists only the workspaces the token's roles and workspace may query"),
            api::workspaces,
        )
        .get(
            "/web/api/workspaces/{workspace}/schema",
            Needs(Permission::Query),
            api::schema,
        )
        .get(
            "/web/api/workspaces/{workspace}/ingestion",
            Needs(Permission::Query),
            api::ingestion,
        )
        .get(
            "/web/api/workspaces/{workspace}/savedSearches",
            Needs(Permission::Query),
            api::saved_searches,
        )
        .put(
            "/web/api/workspaces/{workspace}/savedSearches/{id}",
            Needs(Permission::Manage),
            api::save_search,
        )
}

const INDEX: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
const CHART_JS: &str = include_str!("../../web/chart.js");
const EDITOR_JS: &str = include_str!("../../web/editor.js");
const APP_CSS: &str = include_str!("../../web/app.css");

/// The page may load only what this server serves; no framing (clickjacking), no referrer
/// (the sign-in link's secret stays out of any `Referer`).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn chart_js() -> Response {
    asset("text/javascript; charset=utf-8", CHART_JS)
}

async fn editor_js() -> Response {
    asset("text/javascript; charset=utf-8", EDITOR_JS)
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_only_its_own_assets() {
        for needle in [
            "/web/app.js",
            "/web/chart.js",
            "/web/editor.js",
            "/web/app.css",
        ] {
            assert!(INDEX.contains(needle), "{needle}");
        }
        for text in [INDEX, APP_JS, CHART_JS, EDITOR_JS, APP_CSS] {
            // The SVG namespace is a name, not a request.
            let text = text.replace("http://www.w3.org/2000/svg", "");
            assert!(!text.contains("http://"), "an external http:// reference");
            assert!(!text.contains("https://"), "an external https:// reference");
        }
    }
}
