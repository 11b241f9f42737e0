//! Authentication and authorization of every call: a bearer token (or, for shippers that only
//! know basic auth, the token as the password), its roles against the call's permission, and
//! its workspace against the call's workspace. The web page's session cookie stands for a token
//! when the request also carries the session's CSRF header ([`crate::web`]).
//!
//! No token: 401 with a `WWW-Authenticate: Bearer` challenge. A token that does not verify
//! (malformed, foreign, expired, revoked): 401 with `error="invalid_token"`. A valid token whose
//! roles or workspace do not allow the call: 403. As Azure answers them.

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::http::AppState;
use crate::http::errors::{ApiError, Flavor};
use crate::roles::Permission;
use crate::tokens::Principal;

const CHALLENGE: &str = "Bearer realm=\"logvault\", \
    authorization_uri=\"https://login.microsoftonline.com/local/oauth2/authorize\", \
    resource=\"https://api.loganalytics.io\"";

/// The token a request carries: `Authorization: Bearer T`, or `Basic base64(user:T)`.
fn token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(rest.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_, password) = text.split_once(':')?;
        return Some(password.to_owned());
    }
    None
}

/// Who may make this call: the verified principal, if its roles allow `permission` and its
/// token is for `workspace` (or for every workspace).
pub(crate) fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    permission: Permission,
    workspace: Option<&str>,
    flavor: Flavor,
) -> Result<Principal, ApiError> {
    let principal = authenticate(state, headers, flavor)?;
    check(&principal, permission, workspace, flavor)?;
    Ok(principal)
}

/// The principal of a request's valid token (401 without one); nothing about what it may do.
pub(crate) fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    flavor: Flavor,
) -> Result<Principal, ApiError> {
    // The web page's session: its cookie, with the CSRF header (checked once verified).
    let (token, from_cookie) = match token(headers) {
        Some(t) => (Some(t), false),
        None => (crate::web::cookie_session(headers), true),
    };
    let Some(token) = token else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "AuthorizationRequiredError",
            "Valid authentication was not provided: send a bearer token from `logvault token create`",
        )
        .with_header(header::WWW_AUTHENTICATE, CHALLENGE)
        .flavor(flavor));
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
            .with_header(
                header::WWW_AUTHENTICATE,
                format!(
                    "{CHALLENGE}, error=\"invalid_token\", error_description=\"{}\"",
                    e.to_string().replace('"', "'")
                ),
            )
            .flavor(flavor)
        })?;
    crate::http::note_principal(&principal.token_id);
    if from_cookie && !crate::web::csrf_ok(headers, &principal) {
        return Err(crate::web::csrf_refusal().flavor(flavor));
    }
    Ok(principal)
}

/// Whether `principal` may do what needs `permission` on `workspace` (403 if not).
pub(crate) fn check(
    principal: &Principal,
    permission: Permission,
    workspace: Option<&str>,
    flavor: Flavor,
) -> Result<(), ApiError> {
    if !principal.roles.iter().any(|r| r.allows(permission)) {
        let roles: Vec<&str> = principal.roles.iter().map(|r| r.name()).collect();
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "InsufficientAccessError",
            format!(
                "The provided credentials have insufficient access to perform the requested \
                 operation: principal {} has roles [{}], none of which allows {}",
                principal.name,
                roles.join(", "),
                permission.describe()
            ),
        )
        .flavor(flavor));
    }
    if let Some(allowed) = &principal.workspace {
        let ok = match workspace {
            Some(ws) => ws == allowed,
            // A call not about one workspace (metrics) needs a token for every workspace.
            None => false,
        };
        if !ok {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "InsufficientAccessError",
                format!(
                    "The provided credentials have insufficient access to perform the requested \
                     operation: the token of principal {} is for workspace {allowed} only",
                    principal.name
                ),
            )
            .flavor(flavor));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_carry_the_token() {
        let mut h = HeaderMap::new();
        assert_eq!(token(&h), None);
        h.insert(
            header::AUTHORIZATION,
            "Bearer abc.def.ghi"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(token(&h).as_deref(), Some("abc.def.ghi"));
        let basic = format!("Basic {}", STANDARD.encode("elastic:abc.def.ghi"));
        h.insert(
            header::AUTHORIZATION,
            basic.parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(token(&h).as_deref(), Some("abc.def.ghi"));
        h.insert(
            header::AUTHORIZATION,
            "Digest x".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(token(&h), None);
    }
}
