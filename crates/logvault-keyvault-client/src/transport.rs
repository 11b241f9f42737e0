//! HTTP to the vault: the TLS client, bounded retries with backoff, the challenge and token
//! flow of Azure's `ChallengeAuthPolicy`, and transport failures described as outages.
//!
//! A request to a vault whose challenge is not known yet goes first without token or body; the
//! 401's `WWW-Authenticate` gives the scope and tenant (kept per origin), the credential a token
//! (kept per principal and scope until five minutes before its expiry), and the request is sent
//! with both. A 401 to a token drops it and asks the credential once more; a second 401 is
//! [`VaultError::Unauthenticated`]. Timeouts, refused connections, failed name resolution and
//! the statuses 408, 429, 500, 502, 503 and 504 are retried with exponential backoff and jitter
//! (or the answer's `Retry-After`); what is still failing after the last retry is an outage
//! ([`VaultError::Transient`]) for the caller to report. Redirects are never followed (a token
//! must not travel to another host).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use chrono::TimeDelta;
use logvault_core::SharedClock;
use logvault_kms::{PrincipalId, VaultError};
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode};
use url::Url;
use zeroize::Zeroizing;

use crate::ClientError;
use crate::challenge::Challenge;
use crate::credential::{AccessToken, TokenCredential, TokenRequest};

/// The most of an answer that is read (a key bundle is a few kilobytes).
const MAX_BODY: usize = 1 << 20;
/// A cached token is renewed this long before it expires.
const REFRESH_MARGIN: TimeDelta = TimeDelta::minutes(5);

/// Which certificates the client trusts.
#[derive(Debug, Clone)]
pub(crate) enum Tls {
    /// The system's roots (and the built-in web roots).
    SystemRoots,
    /// Only these (a CA file, such as a `logvault serve` home's `tls/cert.pem`).
    Only(Vec<reqwest::Certificate>),
}

/// An HTTP client with logvault's settings: the given trust, timeouts, no redirects.
pub(crate) fn http_client(
    tls: &Tls,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(
            "logvault-keyvault-client/",
            env!("CARGO_PKG_VERSION")
        ));
    if let Tls::Only(certs) = tls {
        builder = builder.tls_built_in_root_certs(false);
        for cert in certs {
            builder = builder.add_root_certificate(cert.clone());
        }
    }
    builder.build().map_err(|e| ClientError::Http {
        reason: e.to_string(),
    })
}

/// An answer's body, at most [`MAX_BODY`] bytes, in a buffer zeroized on drop (an unwrap's
/// answer holds key bytes); whether it was cut.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
) -> Result<(Zeroizing<Vec<u8>>, bool), reqwest::Error> {
    let hint = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(4096)
        .min(MAX_BODY);
    let mut body = Zeroizing::new(Vec::with_capacity(hint));
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        if body.len() + chunk.len() > body.capacity() {
            // Grow by hand so that the smaller buffer is zeroized, not left behind.
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                (body.capacity() * 2)
                    .max(body.len() + chunk.len())
                    .min(MAX_BODY),
            ));
            bigger.extend_from_slice(&body);
            body = bigger;
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// What a transport failure was, for an outage's reason: `timed out`, `connection refused`,
/// `name resolution failure`, `could not connect` (TLS included), with the causes.
pub(crate) fn transport_reason(e: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let (mut refused, mut dns) = (false, false);
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        let text = s.to_string();
        dns |= text.contains("dns error") || text.contains("failed to lookup address");
        if !causes.iter().any(|c: &String| c.contains(&text)) {
            causes.push(text);
        }
        source = s.source();
    }
    let what = if e.is_timeout() {
        "timed out"
    } else if refused {
        "connection refused"
    } else if dns {
        "name resolution failure"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    format!("{what}: {}", causes.join(": "))
}

/// How many times a failed request is tried again, and how long to wait in between.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub(crate) retries: u32,
    /// The first wait; each later one doubles, up to `max_delay`.
    pub(crate) base_delay: Duration,
    /// The longest wait, also the cap on an answer's `Retry-After`.
    pub(crate) max_delay: Duration,
}

impl RetryPolicy {
    /// The wait before retry `attempt` (0 for the first retry): the answer's `Retry-After` if
    /// it gave one, else exponential, with ±20% jitter; never above `max_delay`.
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(self.max_delay);
        }
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.max_delay);
        // 80%..120%, from 0..=400 per mille of randomness.
        let per_mille = 800 + getrandom::u32().map_or(200, |r| r % 401);
        (exp * per_mille / 1000).min(self.max_delay)
    }
}

fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// One request to a vault: where, what, and for whom (errors name the vault and principal).
pub(crate) struct Request<'a> {
    pub(crate) method: Method,
    pub(crate) url: Url,
    /// A JSON body; its buffer is zeroized when the last copy is dropped.
    pub(crate) body: Option<Bytes>,
    pub(crate) vault: &'a str,
    pub(crate) principal: &'a PrincipalId,
}

/// A vault's answer.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Zeroizing<Vec<u8>>,
    retry_after: Option<Duration>,
    challenge: Option<String>,
}

/// The HTTP pipeline every call of a client goes through.
pub(crate) struct Pipeline {
    http: reqwest::Client,
    retry: RetryPolicy,
    credential: Arc<dyn TokenCredential>,
    verify_resource: bool,
    clock: SharedClock,
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<(PrincipalId, String), AccessToken>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("retry", &self.retry)
            .field("credential", &self.credential)
            .field("verify_resource", &self.verify_resource)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    pub(crate) fn new(
        http: reqwest::Client,
        retry: RetryPolicy,
        credential: Arc<dyn TokenCredential>,
        verify_resource: bool,
        clock: SharedClock,
    ) -> Self {
        Self {
            http,
            retry,
            credential,
            verify_resource,
            clock,
            challenges: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant the challenge of `url`'s origin named, once one was read.
    pub(crate) fn challenge_tenant(&self, url: &Url) -> Option<String> {
        let origin = url.origin().ascii_serialization();
        self.challenges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&origin)
            .and_then(|c| c.tenant.clone())
    }

    /// Sends `request` with a token, learning the challenge first when needed. Any answer but a
    /// refused token comes back for the caller to read (after retries, a 5xx is still an
    /// answer); transport failures after the last retry are [`VaultError::Transient`].
    pub(crate) async fn send(&self, request: &Request<'_>) -> Result<Answer, VaultError> {
        let origin = request.url.origin().ascii_serialization();
        let known = self
            .challenges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&origin)
            .cloned();
        let mut challenge = match known {
            Some(c) => c,
            None => {
                let first = self.exchange(request, None, false).await?;
                if first.status != StatusCode::UNAUTHORIZED {
                    if first.status.is_success() && request.body.is_some() {
                        return Err(VaultError::Internal {
                            vault: request.vault.to_owned(),
                            reason: format!(
                                "{} answered {} to a request without token or body: not a key \
                                 vault",
                                request.url, first.status
                            ),
                        });
                    }
                    return Ok(first);
                }
                self.learn(request, &origin, &first)?
            }
        };
        let mut renewed = false;
        loop {
            let token = self.token(request, &challenge, renewed).await?;
            let answer = self.exchange(request, Some(&token), true).await?;
            if answer.status != StatusCode::UNAUTHORIZED {
                return Ok(answer);
            }
            self.forget_token(request.principal, &challenge.scope);
            if renewed {
                return Err(VaultError::Unauthenticated {
                    vault: request.vault.to_owned(),
                    principal: request.principal.0.clone(),
                    reason: format!(
                        "{} answered 401 to a new token: {}",
                        request.url,
                        crate::wire::error_message(&answer.body)
                    ),
                });
            }
            // An expired or revoked token, or a vault that moved: read the challenge again and
            // ask the credential for a new token, once.
            if answer.challenge.is_some() {
                challenge = self.learn(request, &origin, &answer)?;
            }
            renewed = true;
        }
    }

    /// Reads a 401's challenge and keeps it for `origin`.
    fn learn(
        &self,
        request: &Request<'_>,
        origin: &str,
        answer: &Answer,
    ) -> Result<Challenge, VaultError> {
        let challenge = answer
            .challenge
            .as_deref()
            .and_then(Challenge::parse)
            .ok_or_else(|| VaultError::Unauthenticated {
                vault: request.vault.to_owned(),
                principal: request.principal.0.clone(),
                reason: format!(
                    "{} answered 401 without a Bearer challenge naming a resource",
                    request.url
                ),
            })?;
        if self.verify_resource {
            challenge
                .verify_resource(&request.url)
                .map_err(|reason| VaultError::Internal {
                    vault: request.vault.to_owned(),
                    reason,
                })?;
        }
        self.challenges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(origin.to_owned(), challenge.clone());
        Ok(challenge)
    }

    async fn token(
        &self,
        request: &Request<'_>,
        challenge: &Challenge,
        renew: bool,
    ) -> Result<AccessToken, VaultError> {
        let key = (request.principal.clone(), challenge.scope.clone());
        if !renew {
            let now = self.clock.now();
            let cached = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(token) = cached.get(&key)
                && token.expires_on().is_none_or(|e| e - REFRESH_MARGIN > now)
            {
                return Ok(token.duplicate());
            }
        }
        let token = self
            .credential
            .token(&TokenRequest {
                principal: request.principal,
                scope: &challenge.scope,
                tenant: challenge.tenant.as_deref(),
            })
            .await
            .map_err(|e| e.into_vault_error(request.vault))?;
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, token.duplicate());
        Ok(token)
    }

    fn forget_token(&self, principal: &PrincipalId, scope: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(principal.clone(), scope.to_owned()));
    }

    /// One exchange with retries: transport failures and retryable statuses are tried again.
    async fn exchange(
        &self,
        request: &Request<'_>,
        token: Option<&AccessToken>,
        with_body: bool,
    ) -> Result<Answer, VaultError> {
        let mut attempt = 0u32;
        loop {
            let result = self.once(request, token, with_body).await;
            let retry_after = match result {
                Ok(answer) if !retryable(answer.status) => return Ok(answer),
                Ok(ref answer) => answer.retry_after,
                Err(_) => None,
            };
            if attempt >= self.retry.retries {
                return result.map_err(|e| VaultError::Transient {
                    vault: request.vault.to_owned(),
                    reason: format!("{} (after {} attempts)", transport_reason(&e), attempt + 1),
                });
            }
            let wait = self.retry.delay(attempt, retry_after);
            tracing::debug!(
                vault = request.vault,
                attempt = attempt + 1,
                status = result.as_ref().ok().map(|a| a.status.as_u16()),
                error = result.as_ref().err().map(transport_reason),
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "retrying a key vault request"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn once(
        &self,
        request: &Request<'_>,
        token: Option<&AccessToken>,
        with_body: bool,
    ) -> Result<Answer, reqwest::Error> {
        let mut builder = self
            .http
            .request(request.method.clone(), request.url.clone())
            .header(ACCEPT, "application/json");
        if let Some(token) = token {
            let text = Zeroizing::new(format!("Bearer {}", token.secret()));
            if let Ok(mut value) = HeaderValue::from_str(&text) {
                value.set_sensitive(true);
                builder = builder.header(AUTHORIZATION, value);
            }
        }
        if let (true, Some(body)) = (with_body, &request.body) {
            builder = builder
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let response = builder.send().await?;
        let status = response.status();
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header(RETRY_AFTER)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let challenge = header(WWW_AUTHENTICATE);
        let (body, _) = read_capped(response).await?;
        Ok(Answer {
            status,
            body,
            retry_after,
            challenge,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after_within_the_cap() {
        let policy = RetryPolicy {
            retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for (attempt, expected) in [(0u32, 100u64), (1, 200), (2, 400)] {
            let d = policy.delay(attempt, None).as_millis() as u64;
            assert!(
                (expected * 8 / 10..=expected * 12 / 10).contains(&d),
                "attempt {attempt}: {d} ms"
            );
        }
        // At the cap the jitter can only shorten the wait: 80%..=100% of `max_delay`.
        for _ in 0..200 {
            let d = policy.delay(9, None).as_millis() as u64;
            assert!((800..=1000).contains(&d), "capped attempt: {d} ms");
        }
        assert_eq!(
            policy.delay(0, Some(Duration::from_millis(300))),
            Duration::from_millis(300)
        );
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(120))),
            Duration::from_secs(1)
        );
        for status in [408u16, 429, 500, 502, 503, 504] {
            assert!(retryable(StatusCode::from_u16(status).unwrap()), "{status}");
        }
        for status in [400u16, 401, 403, 404, 409, 501] {
            assert!(
                !retryable(StatusCode::from_u16(status).unwrap()),
                "{status}"
            );
        }
    }
}
