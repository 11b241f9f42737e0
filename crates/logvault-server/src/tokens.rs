//! Bearer tokens: signed by the home's token key, listed in `HOME/server/tokens.json`,
//! revocable.
//!
//! A token is a JWT (`header.claims.signature`, base64url) signed with HMAC-SHA256 (`HS256`)
//! under a key derived from the service account's key for this purpose only
//! ([`logvault::Engine::purpose_key`]): nothing secret is stored, and any process on the home
//! derives the same key. The claims carry the token's id (`jti`), principal (`sub`), roles,
//! optional workspace (`ws`), and issue and expiry times. The store keeps what was issued
//! (never the token itself) and what was revoked; a token whose id is not in the store, or is
//! revoked there, is refused even though its signature is good.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use logvault::crypto::MacKey;
use serde::{Deserialize, Serialize};

use crate::ServerError;
use crate::roles::Role;
use crate::state::StateFile;

/// The purpose the token key is derived for.
pub(crate) const TOKEN_KEY_PURPOSE: &str = "server/tokens/v1";
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT","kid":"logvault-tokens-v1"}"#;

/// A token as the store keeps it (the token's text is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    /// The token's id (`jti`).
    pub id: String,
    /// Who it is for.
    pub principal: String,
    /// Its roles (Azure's names).
    pub roles: Vec<Role>,
    /// The only workspace it may touch, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// When it was issued.
    pub issued_on: DateTime<Utc>,
    /// When it expires.
    pub expires_on: DateTime<Utc>,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_on: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct TokenDoc {
    version: u32,
    tokens: Vec<TokenRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    jti: String,
    sub: String,
    roles: Vec<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ws: Option<String>,
    iat: i64,
    exp: i64,
    iss: String,
}

/// A token just issued: its text (shown once) and its record.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The bearer token.
    pub token: String,
    /// What the store keeps.
    pub record: TokenRecord,
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's id (safe to log: it is not the token).
    pub token_id: String,
    /// The principal.
    pub name: String,
    /// Its roles.
    pub roles: Vec<Role>,
    /// The only workspace it may touch, if any.
    pub workspace: Option<String>,
}

/// Why a token is refused (answered 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of this shape.
    #[error("the bearer token is malformed")]
    Malformed,
    /// The signature does not verify under this home's token key.
    #[error("the bearer token's signature is not valid for this server")]
    BadSignature,
    /// Expired.
    #[error("the bearer token {id} expired at {at}")]
    Expired {
        /// The token's id.
        id: String,
        /// When.
        at: String,
    },
    /// Revoked.
    #[error("the bearer token {id} was revoked at {at}")]
    Revoked {
        /// The token's id.
        id: String,
        /// When.
        at: String,
    },
    /// Not in this home's token store.
    #[error("the bearer token {id} was not issued by this home")]
    Unknown {
        /// The token's id.
        id: String,
    },
    /// The store cannot be read.
    #[error("the token store cannot be read: {0}")]
    Store(String),
}

/// Issues, lists, revokes and verifies tokens of one home.
#[derive(Debug)]
pub struct TokenService {
    key: MacKey,
    store: StateFile<TokenDoc>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TokenService {
    /// The tokens of the home at `home` (its `server/tokens.json`), signed with `key`.
    pub fn new(home: &Path, key: MacKey) -> Self {
        Self {
            key,
            store: StateFile::new("token store", home.join("server").join("tokens.json")),
        }
    }

    /// The tokens of `engine`'s home, with the home's token key.
    ///
    /// # Errors
    /// When the token key cannot be derived (the service key).
    pub async fn open(engine: &logvault::Engine) -> Result<Self, ServerError> {
        let key = MacKey::new(engine.purpose_key(TOKEN_KEY_PURPOSE).await?);
        Ok(Self::new(engine.home().root(), key))
    }

    /// Issues a token for `principal` with `roles` (at least one), limited to `workspace` if
    /// given, valid from `now` for `valid`.
    ///
    /// # Errors
    /// 400 for an empty principal, no role, or a validity that is not positive; store errors.
    pub fn issue(
        &self,
        principal: &str,
        roles: &[Role],
        workspace: Option<&str>,
        now: DateTime<Utc>,
        valid: Duration,
    ) -> Result<IssuedToken, ServerError> {
        if principal.trim().is_empty() {
            return Err(ServerError::refused(400, "a token needs a principal"));
        }
        if roles.is_empty() {
            return Err(ServerError::refused(400, "a token needs at least one role"));
        }
        if valid <= Duration::zero() {
            return Err(ServerError::refused(
                400,
                "a token must be valid for some time",
            ));
        }
        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let record = TokenRecord {
            id: uuid::Uuid::new_v4().simple().to_string(),
            principal: principal.to_owned(),
            roles,
            workspace: workspace.map(str::to_owned),
            issued_on: now,
            expires_on: now + valid,
            revoked_on: None,
        };
        let claims = Claims {
            jti: record.id.clone(),
            sub: record.principal.clone(),
            roles: record.roles.clone(),
            ws: record.workspace.clone(),
            iat: record.issued_on.timestamp(),
            exp: record.expires_on.timestamp(),
            iss: "logvault".into(),
        };
        let claims = serde_json::to_vec(&claims)
            .map_err(|e| ServerError::state("token claims", Path::new("-"), e))?;
        let signed = format!("{}.{}", b64(HEADER.as_bytes()), b64(&claims));
        let tag = self
            .key
            .sign(signed.as_bytes())
            .map_err(|e| ServerError::Tls(format!("token signature: {e}")))?;
        let token = format!("{signed}.{}", b64(&tag));
        self.store.update(|doc| {
            doc.version = 1;
            doc.tokens.push(record.clone());
            Ok(())
        })?;
        Ok(IssuedToken { token, record })
    }

    /// The tokens issued, oldest first.
    ///
    /// # Errors
    /// Store errors.
    pub fn list(&self) -> Result<Vec<TokenRecord>, ServerError> {
        Ok(self.store.load()?.tokens)
    }

    /// Revokes the token `id` at `now` (a running server refuses it from its next request).
    ///
    /// # Errors
    /// 404 if no such token was issued; store errors. Revoking twice keeps the first time.
    pub fn revoke(&self, id: &str, now: DateTime<Utc>) -> Result<TokenRecord, ServerError> {
        self.store.update(|doc| {
            let Some(record) = doc.tokens.iter_mut().find(|t| t.id == id) else {
                return Err(ServerError::refused(404, format!("token {id} not found")));
            };
            record.revoked_on.get_or_insert(now);
            Ok(record.clone())
        })
    }

    /// Verifies `token` at `now`: its signature, its expiry, and that the store lists it
    /// unrevoked.
    ///
    /// # Errors
    /// [`TokenError`] saying why it is refused.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Principal, TokenError> {
        let mut parts = token.trim().split('.');
        let (Some(header), Some(claims), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        let signed_len = header.len() + 1 + claims.len();
        if !self
            .key
            .verify(&token.trim().as_bytes()[..signed_len], &tag)
        {
            return Err(TokenError::BadSignature);
        }
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(claims)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(TokenError::Malformed)?;
        if now.timestamp() >= claims.exp {
            return Err(TokenError::Expired {
                id: claims.jti,
                at: DateTime::from_timestamp(claims.exp, 0)
                    .map(logvault::core::display_time)
                    .unwrap_or_default(),
            });
        }
        let doc = self
            .store
            .load()
            .map_err(|e| TokenError::Store(e.to_string()))?;
        let Some(record) = doc.tokens.iter().find(|t| t.id == claims.jti) else {
            return Err(TokenError::Unknown { id: claims.jti });
        };
        if let Some(at) = record.revoked_on {
            return Err(TokenError::Revoked {
                id: claims.jti,
                at: logvault::core::display_time(at),
            });
        }
        Ok(Principal {
            token_id: claims.jti,
            name: claims.sub,
            roles: claims.roles,
            workspace: claims.ws,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use logvault::crypto::Key256;

    fn service(dir: &Path) -> TokenService {
        TokenService::new(dir, MacKey::new(Key256::generate().unwrap()))
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_token_verifies_until_it_expires_or_is_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = service(dir.path());
        let now = t("2026-03-01T00:00:00Z");
        let issued = tokens
            .issue(
                "alice",
                &[Role::Reader],
                Some("ws1"),
                now,
                Duration::hours(1),
            )
            .unwrap();
        let p = tokens.verify(&issued.token, now).unwrap();
        assert_eq!(p.name, "alice");
        assert_eq!(p.roles, vec![Role::Reader]);
        assert_eq!(p.workspace.as_deref(), Some("ws1"));
        assert!(matches!(
            tokens.verify(&issued.token, now + Duration::hours(1)),
            Err(TokenError::Expired { .. })
        ));
        tokens.revoke(&issued.record.id, now).unwrap();
        assert!(matches!(
            tokens.verify(&issued.token, now),
            Err(TokenError::Revoked { .. })
        ));
        assert_eq!(tokens.list().unwrap()[0].revoked_on, Some(now));
        // The store never holds the token's text, nor its signature.
        let stored = std::fs::read_to_string(dir.path().join("server/tokens.json")).unwrap();
        assert!(!stored.contains(issued.token.rsplit('.').next().unwrap()));
    }

    #[test]
    fn forged_altered_or_foreign_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = service(dir.path());
        let now = t("2026-03-01T00:00:00Z");
        let issued = tokens
            .issue("bob", &[Role::Publisher], None, now, Duration::hours(1))
            .unwrap();
        // Claims changed to the Owner role, signature kept.
        let parts: Vec<&str> = issued.token.split('.').collect();
        let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let forged = claims.replace("Monitoring Metrics Publisher", "Owner");
        assert_ne!(forged, claims);
        let token = format!("{}.{}.{}", parts[0], b64(forged.as_bytes()), parts[2]);
        assert_eq!(tokens.verify(&token, now), Err(TokenError::BadSignature));
        // Signed by another home.
        let other = service(tempfile::tempdir().unwrap().path());
        let foreign = other
            .issue("bob", &[Role::Owner], None, now, Duration::hours(1))
            .unwrap();
        assert_eq!(
            tokens.verify(&foreign.token, now),
            Err(TokenError::BadSignature)
        );
        assert_eq!(tokens.verify("abc", now), Err(TokenError::Malformed));
        assert_eq!(tokens.verify("a.b.c!", now), Err(TokenError::Malformed));
        // Right key, but the store lost it (reset): refused.
        std::fs::remove_file(dir.path().join("server/tokens.json")).unwrap();
        assert!(matches!(
            tokens.verify(&issued.token, now),
            Err(TokenError::Unknown { .. })
        ));
    }

    #[test]
    fn issuing_checks_its_input() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = service(dir.path());
        let now = t("2026-03-01T00:00:00Z");
        assert!(
            tokens
                .issue(" ", &[Role::Owner], None, now, Duration::hours(1))
                .is_err()
        );
        assert!(
            tokens
                .issue("a", &[], None, now, Duration::hours(1))
                .is_err()
        );
        assert!(
            tokens
                .issue("a", &[Role::Owner], None, now, Duration::zero())
                .is_err()
        );
        assert_eq!(tokens.revoke("nope", now).unwrap_err().code(), Some(404));
    }
}
