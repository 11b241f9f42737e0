//! The client against a scripted vault on loopback HTTP: what it sends (the challenge first,
//! then the token, and how often), how it retries, and how each answer is classified. The
//! client against `logvault serve` itself is in `crates/logvault-server/tests/it/remote_vault.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)] // test code

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use logvault_core::SystemClock;
use logvault_crypto::SecretBytes;
use logvault_keyvault_client::{
    AccessToken, ClientError, ClientSecret, ClientSecretCredential, CredentialConfig,
    KeyVaultClient, RemoteVaultConfig, TokenCredential, TokenRequest,
};
use logvault_kms::{KeyRef, KeyVault, PrincipalId, VaultErrorKind, WrappedKey};
use serde_json::{Value, json};
use zeroize::Zeroizing;

const CHALLENGE: &str = "Bearer authorization=\"https://login.example/tenant-x\", \
                         resource=\"https://vault.azure.net\"";

/// One request as the fake saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    auth: Option<String>,
    body: String,
}

/// An answer to give: status, extra headers, body.
type Scripted = (u16, Vec<(&'static str, String)>, Value);

#[derive(Default)]
struct Fake {
    seen: Mutex<Vec<Seen>>,
    script: Mutex<VecDeque<Scripted>>,
}

async fn handle(
    State(fake): State<Arc<Fake>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    fake.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: uri.to_string(),
        auth: auth.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if uri.path().ends_with("/oauth2/v2.0/token") {
        let form = String::from_utf8_lossy(&body).into_owned();
        return if form.contains("client_secret=right") {
            axum::Json(json!({"access_token": "entra-token", "expires_in": 3600})).into_response()
        } else {
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": "invalid_client", "error_description": "bad"})),
            )
                .into_response()
        };
    }
    if auth.is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", CHALLENGE)],
            axum::Json(json!({"error": {"code": "Unauthorized", "message": "no token"}})),
        )
            .into_response();
    }
    let (status, extra, body) =
        fake.script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or((200, vec![], json!({})));
    let mut response = (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    for (name, value) in extra {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// A fake vault on a free loopback port: its state and URL.
async fn fake() -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake::default());
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (fake, url)
}

/// Hands out `t1`, `t2`, ... and counts the requests.
#[derive(Debug, Default)]
struct Counting(AtomicUsize);

#[async_trait]
impl TokenCredential for Counting {
    async fn token(&self, _: &TokenRequest<'_>) -> Result<AccessToken, ClientError> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(AccessToken::new(Zeroizing::new(format!("t{n}")), None))
    }
}

fn config(url: &str, retries: u32) -> RemoteVaultConfig {
    RemoteVaultConfig {
        url: url.to_owned(),
        ca_file: None,
        credential: CredentialConfig::Token {
            token_env: Some("UNUSED".into()),
            token_file: None,
        },
        verify_challenge_resource: false,
        region: "local".into(),
        tenant: None,
        timeout_secs: 1,
        connect_timeout_secs: 1,
        retries,
    }
}

fn client(url: &str, retries: u32) -> (KeyVaultClient, Arc<Counting>) {
    let credential = Arc::new(Counting::default());
    let client = KeyVaultClient::with_credential(
        &config(url, retries),
        credential.clone(),
        Arc::new(SystemClock),
    )
    .unwrap();
    (client, credential)
}

fn p() -> PrincipalId {
    PrincipalId("principal-1".into())
}

fn key(version: Option<&str>) -> KeyRef {
    KeyRef {
        vault: "kv1".into(),
        name: "k1".into(),
        version: version.map(str::to_owned),
    }
}

fn wrapped(value: &[u8]) -> WrappedKey {
    WrappedKey {
        vault: "kv1".into(),
        key: "k1".into(),
        version: "v1".into(),
        alg: "RSA-OAEP-256".into(),
        value: value.to_vec(),
    }
}

fn plaintext() -> SecretBytes {
    SecretBytes::from_base64url("c2VjcmV0").unwrap()
}

fn seen(fake: &Fake) -> Vec<Seen> {
    fake.seen.lock().unwrap().clone()
}

fn script(fake: &Fake, answers: Vec<Scripted>) {
    fake.script.lock().unwrap().extend(answers);
}

#[tokio::test]
async fn the_challenge_comes_first_then_503s_are_retried_and_token_and_challenge_kept() {
    let (fake, url) = fake().await;
    let (client, credential) = client(&url, 3);
    script(
        &fake,
        vec![
            (
                503,
                vec![("retry-after", "0".into())],
                json!({"error": {"code": "ServiceUnavailable", "message": "busy"}}),
            ),
            (503, vec![("retry-after", "0".into())], json!({})),
            (
                200,
                vec![],
                json!({"kid": format!("{url}keys/k1/v1"), "value": "AQID"}),
            ),
        ],
    );
    let w = client
        .wrap_key(&p(), &key(Some("v1")), &plaintext())
        .await
        .unwrap();
    assert_eq!(
        (w.version.as_str(), w.value.as_slice()),
        ("v1", &[1u8, 2, 3][..])
    );
    let log = seen(&fake);
    assert_eq!(log.len(), 4, "{log:?}");
    // The first request: no token, no body (the challenge); then three with token and body.
    assert_eq!((log[0].auth.as_deref(), log[0].body.as_str()), (None, ""));
    for s in &log[1..] {
        assert_eq!(s.method, "POST");
        assert_eq!(s.path, "/vaults/kv1/keys/k1/v1/wrapkey?api-version=7.5");
        assert_eq!(s.auth.as_deref(), Some("Bearer t1"));
        let body: Value = serde_json::from_str(&s.body).unwrap();
        assert_eq!(body, json!({"alg": "RSA-OAEP-256", "value": "c2VjcmV0"}));
    }
    // The next call: no new challenge, the same token.
    script(&fake, vec![(200, vec![], json!({"value": "c2VjcmV0"}))]);
    let back = client.unwrap_key(&p(), &wrapped(&[1, 2, 3])).await.unwrap();
    assert_eq!(back.to_base64url(), "c2VjcmV0");
    let log = seen(&fake);
    assert_eq!(log.len(), 5);
    assert_eq!(log[4].auth.as_deref(), Some("Bearer t1"));
    assert_eq!(
        log[4].path,
        "/vaults/kv1/keys/k1/v1/unwrapkey?api-version=7.5"
    );
    assert_eq!(credential.0.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn still_failing_after_the_retries_is_an_outage() {
    let (fake, url) = fake().await;
    let (client, _) = client(&url, 2);
    let busy = (
        503,
        vec![("retry-after", "0".to_owned())],
        json!({"error": {"code": "ServiceUnavailable", "message": "vault kv1 is unreachable"}}),
    );
    script(&fake, vec![busy.clone(), busy.clone(), busy]);
    let err = client.unwrap_key(&p(), &wrapped(&[1])).await.unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Transient, "{err}");
    assert!(!err.is_revocation());
    assert!(
        err.to_string().contains("503") && err.to_string().contains("kv1"),
        "{err}"
    );
    assert_eq!(
        seen(&fake).len(),
        1 + 3,
        "the challenge, then 1 + 2 retries"
    );
}

#[tokio::test]
async fn refusals_are_classified_as_key_vault_says_them() {
    let (fake, url) = fake().await;
    let (client, _) = client(&url, 0);
    let cases = [
        (
            403,
            json!({"error": {"code": "Forbidden", "message": "Operation unwrapKey is not allowed on a disabled key.", "innerError": {"code": "KeyDisabled"}}}),
            VaultErrorKind::Disabled,
        ),
        (
            403,
            json!({"error": {"code": "Forbidden", "message": "The user does not have keys unwrap key permission"}}),
            VaultErrorKind::Forbidden,
        ),
        (
            404,
            json!({"error": {"code": "KeyNotFound", "message": "A key with (name/id) k1 was not found"}}),
            VaultErrorKind::NotFound,
        ),
        (
            404,
            json!({"error": {"code": "VaultNotFound", "message": "no vault"}}),
            VaultErrorKind::NotFound,
        ),
        (
            400,
            json!({"error": {"code": "BadParameter", "message": "bad"}}),
            VaultErrorKind::BadRequest,
        ),
        (
            409,
            json!({"error": {"code": "Conflict", "message": "c"}}),
            VaultErrorKind::Conflict,
        ),
        (
            500,
            json!({"error": {"code": "InternalError", "message": "boom"}}),
            VaultErrorKind::Transient,
        ),
        (302, json!({}), VaultErrorKind::Internal),
    ];
    for (status, body, kind) in cases {
        script(&fake, vec![(status, vec![], body.clone())]);
        let err = client.unwrap_key(&p(), &wrapped(&[1])).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{status} {body}: {err}");
        assert_eq!(err.is_revocation(), matches!(status, 403 | 404), "{err}");
        assert!(err.to_string().contains("kv1"), "{err}");
    }
}

#[tokio::test]
async fn a_refused_token_is_renewed_once_and_a_second_refusal_is_revocation() {
    let (fake, url) = fake().await;
    let (client, credential) = client(&url, 0);
    let refused = || {
        (
            401,
            vec![("www-authenticate", CHALLENGE.to_owned())],
            json!({"error": {"code": "Unauthorized", "message": "token expired"}}),
        )
    };
    script(
        &fake,
        vec![refused(), (200, vec![], json!({"value": "AQID"}))],
    );
    client.unwrap_key(&p(), &wrapped(&[1])).await.unwrap();
    assert_eq!(
        seen(&fake).last().unwrap().auth.as_deref(),
        Some("Bearer t2")
    );
    script(&fake, vec![refused(), refused()]);
    let err = client.unwrap_key(&p(), &wrapped(&[1])).await.unwrap_err();
    assert!(err.is_revocation(), "{err}");
    assert!(err.to_string().contains("principal-1"), "{err}");
    // The cached t2 refused, a new t3 refused: three tokens in all, none asked for again.
    assert_eq!(credential.0.load(Ordering::SeqCst), 3);
    let log = seen(&fake);
    let last: Vec<_> = log[log.len() - 2..]
        .iter()
        .map(|s| s.auth.clone().unwrap())
        .collect();
    assert_eq!(last, ["Bearer t2", "Bearer t3"]);
}

#[tokio::test]
async fn get_key_reads_the_latest_bundle_and_every_page_of_versions_on_the_vault_s_host() {
    let (fake, url) = fake().await;
    let (client, _) = client(&url, 0);
    let item = |v: &str, created: i64, enabled: bool| json!({"kid": format!("{url}keys/k1/{v}"), "attributes": {"enabled": enabled, "created": created}});
    script(
        &fake,
        vec![
            (
                200,
                vec![],
                json!({"key": {"kid": format!("{url}keys/k1/v3"), "kty": "RSA", "n": "AAAA"}, "attributes": {"enabled": true, "created": 30, "recoveryLevel": "Recoverable"}}),
            ),
            (
                200,
                vec![],
                json!({"value": [item("v3", 30, true)], "nextLink": format!("{url}vaults/kv1/keys/k1/versions?api-version=7.5&$skiptoken=1")}),
            ),
            (
                200,
                vec![],
                json!({"value": [item("v1", 10, true), item("v2", 20, false)]}),
            ),
        ],
    );
    let props = client.get_key(&p(), &key(None)).await.unwrap();
    let versions: Vec<(&str, bool)> = props
        .versions
        .iter()
        .map(|v| (v.version.as_str(), v.enabled))
        .collect();
    assert_eq!(versions, [("v1", true), ("v2", false), ("v3", true)]);
    assert_eq!(props.version, "v3");
    assert_eq!(
        seen(&fake).last().unwrap().path,
        "/vaults/kv1/keys/k1/versions?api-version=7.5&$skiptoken=1"
    );
    // A version the vault does not list is not found.
    script(
        &fake,
        vec![
            (
                200,
                vec![],
                json!({"key": {"kid": format!("{url}keys/k1/v3"), "kty": "RSA"}, "attributes": {"enabled": true}}),
            ),
            (200, vec![], json!({"value": [item("v3", 30, true)]})),
        ],
    );
    let err = client.get_key(&p(), &key(Some("v9"))).await.unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::NotFound, "{err}");
    // A next page on another host is not followed (the token would go there).
    script(
        &fake,
        vec![
            (
                200,
                vec![],
                json!({"key": {"kid": format!("{url}keys/k1/v3"), "kty": "RSA"}, "attributes": {"enabled": true}}),
            ),
            (
                200,
                vec![],
                json!({"value": [], "nextLink": "https://elsewhere.example/keys/k1/versions"}),
            ),
        ],
    );
    let before = seen(&fake).len();
    let err = client.get_key(&p(), &key(None)).await.unwrap_err();
    assert!(err.to_string().contains("elsewhere.example"), "{err}");
    assert_eq!(seen(&fake).len(), before + 2);
    // The vault's properties: recoverability from the bundle, tenant from the challenge.
    script(
        &fake,
        vec![(
            200,
            vec![],
            json!({"key": {"kid": format!("{url}keys/k1/v3"), "kty": "RSA"}, "attributes": {"recoveryLevel": "Recoverable"}}),
        )],
    );
    let vp = client.vault_properties(&p(), &key(None)).await.unwrap();
    assert!(vp.is_recoverable());
    assert_eq!(
        (vp.tenant.as_str(), vp.region.as_str(), vp.uri.as_str()),
        ("tenant-x", "local", format!("{url}vaults/kv1/").as_str())
    );
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_outages() {
    // A listener that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let (client_a, _) = client(&url, 1);
    let started = std::time::Instant::now();
    let err = client_a.get_key(&p(), &key(None)).await.unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Transient, "{err}");
    assert!(
        err.to_string().contains("timed out") && err.to_string().contains("2 attempts"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // A port nobody listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let (client_b, _) = client(&url, 0);
    let err = client_b.unwrap_key(&p(), &wrapped(&[1])).await.unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Transient, "{err}");
    assert!(err.to_string().contains("connection refused"), "{err}");
}

#[tokio::test]
async fn the_challenge_s_resource_must_match_the_vault_unless_told_otherwise() {
    let (fake, url) = fake().await;
    let mut c = config(&url, 0);
    c.verify_challenge_resource = true;
    let client =
        KeyVaultClient::with_credential(&c, Arc::new(Counting::default()), Arc::new(SystemClock))
            .unwrap();
    let err = client.unwrap_key(&p(), &wrapped(&[1])).await.unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Internal, "{err}");
    assert!(err.to_string().contains("verifyChallengeResource"), "{err}");
    // Only the challenge was sent: no token, no key bytes.
    assert_eq!(seen(&fake).len(), 1);
}

#[tokio::test]
async fn client_credentials_get_an_entra_token_for_the_challenge_s_scope_and_tenant() {
    let (fake, url) = fake().await;
    let credential = |secret: &str| {
        Arc::new(
            ClientSecretCredential::new(
                &url,
                None,
                "app-1",
                ClientSecret::Given(Zeroizing::new(secret.to_owned())),
                Duration::from_secs(2),
                Arc::new(SystemClock),
            )
            .unwrap(),
        )
    };
    let client = KeyVaultClient::with_credential(
        &config(&url, 0),
        credential("right"),
        Arc::new(SystemClock),
    )
    .unwrap();
    script(&fake, vec![(200, vec![], json!({"value": "AQID"}))]);
    client.unwrap_key(&p(), &wrapped(&[1])).await.unwrap();
    let log = seen(&fake);
    let token_request = log
        .iter()
        .find(|s| s.path.ends_with("/oauth2/v2.0/token"))
        .unwrap();
    assert_eq!(token_request.path, "/tenant-x/oauth2/v2.0/token");
    for pair in [
        "grant_type=client_credentials",
        "client_id=app-1",
        "scope=https%3A%2F%2Fvault.azure.net%2F.default",
    ] {
        assert!(
            token_request.body.contains(pair),
            "{pair} in {}",
            token_request.body
        );
    }
    assert_eq!(
        log.last().unwrap().auth.as_deref(),
        Some("Bearer entra-token")
    );
    // A secret the identity provider refuses: no token, and that is revocation.
    let client = KeyVaultClient::with_credential(
        &config(&url, 0),
        credential("wrong"),
        Arc::new(SystemClock),
    )
    .unwrap();
    let err = client.unwrap_key(&p(), &wrapped(&[1])).await.unwrap_err();
    assert!(err.is_revocation(), "{err}");
    assert!(
        err.to_string().contains("invalid_client") && !err.to_string().contains("wrong"),
        "{err}"
    );
}
