//! The browser's session: the one-time sign-in link, signing in with a pasted token, signing
//! out, and the cookie and CSRF header that [`crate::http::auth`] accepts in place of a bearer
//! token.

use std::sync::Mutex;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use serde::Deserialize;
use serde_json::json;

use crate::http::Shared;
use crate::http::errors::{ApiError, Flavor};
use crate::roles::Role;
use crate::tokens::Principal;

/// The cookie that carries the session's token.
pub(crate) const COOKIE: &str = "logvault_session";
/// The header every cookie-authorized call carries: the session's id, which only a page of
/// this origin can read.
pub(crate) const CSRF_HEADER: &str = "x-logvault-csrf";
/// Who a token issued by the sign-in link is for.
pub(crate) const WEB_PRINCIPAL: &str = "web sign-in";
/// How long a session of the sign-in link lasts.
const SESSION_HOURS: i64 = 12;

/// The server's one-time sign-in secret.
#[derive(Debug)]
pub(crate) struct SignIn {
    secret: Mutex<Option<String>>,
    secure: bool,
}

impl SignIn {
    /// A new secret; `secure` when the server speaks HTTPS (the cookie is `Secure` then).
    pub(crate) fn new(secure: bool) -> Self {
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        Self {
            secret: Mutex::new(Some(secret)),
            secure,
        }
    }

    /// The link's path and query (`/signin?code=...`), while the secret is unspent.
    pub(crate) fn path(&self) -> Option<String> {
        self.lock().as_ref().map(|s| format!("/signin?code={s}"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.secret
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Spends the secret if `code` is it; `false` for any other code or a spent secret.
    fn spend(&self, code: &str) -> bool {
        let mut secret = self.lock();
        match secret.as_deref() {
            Some(s) if same(s.as_bytes(), code.as_bytes()) => {
                *secret = None;
                true
            }
            _ => false,
        }
    }

    fn cookie(&self, token: &str, max_age: i64) -> String {
        format!(
            "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
            if self.secure { "; Secure" } else { "" }
        )
    }
}

/// Compares two secrets in time independent of where they differ.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The session token of a request's cookie, if it has one.
pub(crate) fn cookie_session(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Whether a cookie-authorized request carries the session's CSRF value.
pub(crate) fn csrf_ok(headers: &HeaderMap, principal: &Principal) -> bool {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| same(v.as_bytes(), principal.token_id.as_bytes()))
}

fn page(status: StatusCode, text: &str) -> Response {
    let text = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>logvault sign-in\
         </title></head><body><main><h1>logvault</h1><p role=\"alert\">{text}</p>\
         <p><a href=\"/\">Sign in with a token</a></p></main></body></html>"
    );
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct LinkQuery {
    code: Option<String>,
}

/// `GET /signin?code=SECRET`: the one-time link `logvault serve` prints.
pub(crate) async fn sign_in_link(
    State(state): State<Shared>,
    Query(query): Query<LinkQuery>,
) -> Response {
    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "This sign-in link has no code: open the link logvault serve printed.",
        );
    };
    if !state.web.spend(&code) {
        return page(
            StatusCode::UNAUTHORIZED,
            "This sign-in link is not valid or was used already: a link signs in once. Restart \
             logvault serve for a new link, or sign in with a token from logvault token create.",
        );
    }
    let issued = state.tokens.issue(
        WEB_PRINCIPAL,
        &[Role::Owner],
        None,
        state.engine.clock().now(),
        Duration::hours(SESSION_HOURS),
    );
    match issued {
        Ok(issued) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            response
                .headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/"));
            with_cookie(
                response,
                &state.web.cookie(&issued.token, SESSION_HOURS * 3600),
            )
        }
        Err(e) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("No session could be made: {e}"),
        ),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenBody {
    token: String,
}

/// `POST /signin` `{"token"}`: signs in with a token from `logvault token create`. Needs the
/// CSRF header (any value: a form of another site cannot send it).
pub(crate) async fn sign_in_token(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<TokenBody>,
) -> Result<Response, ApiError> {
    if headers.get(CSRF_HEADER).is_none() {
        return Err(csrf_refusal());
    }
    let now = state.engine.clock().now();
    let principal = state.tokens.verify(body.token.trim(), now).map_err(|e| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            e.to_string(),
        )
    })?;
    crate::http::note_principal(&principal.token_id);
    let expires = state
        .tokens
        .list()
        .ok()
        .and_then(|l| l.into_iter().find(|t| t.id == principal.token_id))
        .map_or(SESSION_HOURS * 3600, |t| (t.expires_on - now).num_seconds());
    Ok(with_cookie(
        StatusCode::NO_CONTENT.into_response(),
        &state.web.cookie(body.token.trim(), expires.max(0)),
    ))
}

pub(crate) fn csrf_refusal() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "CsrfCheckFailed",
        format!("a call authorized by the session cookie must carry the {CSRF_HEADER} header"),
    )
}

/// `POST /signout`: ends the session (a token the sign-in link issued is revoked too).
pub(crate) async fn sign_out(
    State(state): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = crate::http::auth::authenticate(&state, &headers, Flavor::Azure)?;
    if principal.name == WEB_PRINCIPAL
        && let Err(e) = state
            .tokens
            .revoke(&principal.token_id, state.engine.clock().now())
    {
        tracing::warn!(error = %e, "revoking the web session's token failed");
    }
    Ok(with_cookie(
        StatusCode::NO_CONTENT.into_response(),
        &state.web.cookie("", 0),
    ))
}

/// `GET /web/api/session`: who the cookie's session is, and the CSRF value the page sends
/// with every call. 401 without a valid session.
pub(crate) async fn current(
    State(state): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(token) = cookie_session(&headers) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "AuthorizationRequiredError",
            "not signed in: open the sign-in link logvault serve printed, or sign in with a token",
        ));
    };
    let principal = state
        .tokens
        .verify(&token, state.engine.clock().now())
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                e.to_string(),
            )
        })?;
    crate::http::note_principal(&principal.token_id);
    let mut response = Json(json!({
        "principal": principal.name,
        "roles": principal.roles.iter().map(|r| r.name()).collect::<Vec<_>>(),
        "workspace": principal.workspace,
        "csrf": principal.token_id,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_signs_in_once() {
        let s = SignIn::new(true);
        let path = s.path().unwrap_or_default();
        let code = path.trim_start_matches("/signin?code=").to_owned();
        assert_eq!(code.len(), 64);
        assert!(!s.spend("wrong"));
        assert!(!s.spend(&code[..63]));
        assert!(s.spend(&code));
        assert!(!s.spend(&code), "a spent secret signs in again");
        assert_eq!(s.path(), None);
        let cookie = s.cookie("t", 10);
        for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
            assert!(cookie.contains(part), "{part} not in {cookie}");
        }
        assert!(!SignIn::new(false).cookie("t", 1).contains("Secure"));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        assert_eq!(cookie_session(&h), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; logvault_session=abc.def; b=2"),
        );
        assert_eq!(cookie_session(&h).as_deref(), Some("abc.def"));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("logvault_session="),
        );
        assert_eq!(cookie_session(&h), None);
    }
}
