//! The Key Vault client (`logvault-keyvault-client`) against `logvault serve`: over TLS with the
//! home's certificate, the 401 challenge, a token for an identity of the serving home whose
//! access policy the server checks. Key get, wrap and unwrap; a disabled version, a missing
//! permission and a revoked token are revocation; the vault's outage (503) is retried and, while
//! it lasts, an outage; a stopped server is an outage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use logvault::crypto::SecretBytes;
use logvault::keyvault_client::{
    KeyVaultClient, RemoteVaultConfig, StaticTokenCredential, TokenCredential,
};
use logvault::kms::local::{AuditOperation, AuditOutcome, CreateVaultOptions, OutageMode};
use logvault::kms::{IdentityOptions, KeyRef, KeyType, KeyVault, PrincipalId, VaultErrorKind};
use logvault_core::SystemClock;
use logvault_server::Role;
use zeroize::Zeroizing;

use crate::common::{Options, Served, serve};

pub const REMOTE_VAULT: &str = "kv-remote";
pub const REMOTE_KEY: &str = "cmk-remote";
const GRANT: [&str; 3] = ["get", "wrapKey", "unwrapKey"];

/// What the serving home gives another home: a vault with an RSA key, an identity granted it,
/// and a token for that identity.
pub struct Remote {
    pub principal: PrincipalId,
    pub token: String,
    pub token_id: String,
}

/// Sets up the serving home: vault, key, identity, access policy, token.
pub fn remote_setup(s: &Served) -> Remote {
    let vault = s.engine.vault();
    vault
        .create_vault(
            REMOTE_VAULT,
            &CreateVaultOptions {
                purge_protection: true,
                ..Default::default()
            },
        )
        .unwrap();
    vault
        .create_key(REMOTE_VAULT, REMOTE_KEY, KeyType::Rsa, Some(2048))
        .unwrap();
    let identity = vault
        .identities()
        .create_user_assigned("home-b", &IdentityOptions::default())
        .unwrap();
    let principal = identity.principal_id;
    vault
        .set_policy(REMOTE_VAULT, &principal, &GRANT.map(String::from))
        .unwrap();
    let issued = s
        .tokens
        .issue(
            &principal.0,
            &[Role::CryptoServiceEncryptionUser],
            None,
            s.now(),
            chrono::Duration::hours(1),
        )
        .unwrap();
    Remote {
        principal,
        token: issued.token,
        token_id: issued.record.id,
    }
}

/// The configuration of a client of `s`: its URL, its certificate, no challenge check.
pub fn remote_config(s: &Served) -> RemoteVaultConfig {
    let cert = s.server().cert().unwrap().clone();
    RemoteVaultConfig::logvault_serve(s.url.clone(), cert, "UNUSED")
}

fn client(s: &Served, token: &str) -> KeyVaultClient {
    let credential: Arc<dyn TokenCredential> =
        Arc::new(StaticTokenCredential::new(Zeroizing::new(token.to_owned())));
    KeyVaultClient::with_credential(&remote_config(s), credential, Arc::new(SystemClock)).unwrap()
}

/// The key as a cluster names it: the served vault URI, no version.
fn key_ref(s: &Served) -> KeyRef {
    KeyRef::from_uri(
        &format!("{}/vaults/{REMOTE_VAULT}", s.url),
        REMOTE_KEY,
        None,
    )
    .unwrap()
}

/// A cluster's principal in the client's home: not the serving home's (the token speaks).
fn cluster_principal() -> PrincipalId {
    PrincipalId("principal-of-a-cluster-of-home-b".into())
}

fn secret() -> SecretBytes {
    // 32 bytes, as an account key.
    SecretBytes::from_base64url("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reads_the_key_and_wraps_and_unwraps_through_logvault_serve() {
    let s = serve(Options::default()).await;
    let remote = remote_setup(&s);
    let client = client(&s, &remote.token);
    let p = cluster_principal();
    let key = key_ref(&s);

    let props = client.get_key(&p, &key).await.unwrap();
    let local = s
        .engine
        .vault()
        .key_properties(REMOTE_VAULT, REMOTE_KEY)
        .unwrap();
    assert_eq!(props.version, local.version);
    assert_eq!(
        (props.kty, props.size, props.enabled),
        (KeyType::Rsa, 2048, true)
    );
    let vp = client.vault_properties(&p, &key).await.unwrap();
    assert!(vp.is_recoverable(), "{vp:?}");
    assert_eq!(
        (vp.name.as_str(), vp.tenant.as_str()),
        (REMOTE_VAULT, "local")
    );

    let wrapped = client.wrap_key(&p, &key, &secret()).await.unwrap();
    assert_eq!(wrapped.version, local.version);
    assert_eq!(wrapped.value.len(), 256, "RSA-2048 OAEP output");
    let back = client.unwrap_key(&p, &wrapped).await.unwrap();
    assert_eq!(back.to_base64url(), secret().to_base64url());
    // The serving vault audited the calls under the token's identity, through its access
    // policy (the trait's checked path), not the cluster's principal of the other home.
    let audit = s.engine.vault().audit_log(REMOTE_VAULT).unwrap();
    for op in [
        AuditOperation::Get,
        AuditOperation::WrapKey,
        AuditOperation::UnwrapKey,
    ] {
        assert!(
            audit.iter().any(|e| e.operation == op
                && e.principal == remote.principal.0
                && e.outcome == AuditOutcome::Success),
            "{op:?} in {audit:?}"
        );
    }
    assert!(!audit.iter().any(|e| e.principal == p.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_version_a_missing_permission_and_a_revoked_token_are_revocation() {
    let s = serve(Options::default()).await;
    let remote = remote_setup(&s);
    let client = client(&s, &remote.token);
    let p = cluster_principal();
    let key = key_ref(&s);
    let wrapped = client.wrap_key(&p, &key, &secret()).await.unwrap();
    let vault = s.engine.vault();

    // A disabled version: Key Vault's 403 KeyDisabled.
    vault
        .set_key_enabled(REMOTE_VAULT, REMOTE_KEY, Some(&wrapped.version), false)
        .unwrap();
    let err = client.unwrap_key(&p, &wrapped).await.unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Disabled, "{err}");
    assert!(err.is_revocation());
    let props = client.get_key(&p, &key).await.unwrap();
    assert!(!props.versions[0].enabled, "{props:?}");
    vault
        .set_key_enabled(REMOTE_VAULT, REMOTE_KEY, Some(&wrapped.version), true)
        .unwrap();
    client.unwrap_key(&p, &wrapped).await.unwrap();

    // The identity loses unwrapKey: 403 for unwrap, get and wrap still allowed.
    vault
        .set_policy(
            REMOTE_VAULT,
            &remote.principal,
            &["get".into(), "wrapKey".into()],
        )
        .unwrap();
    let err = client.unwrap_key(&p, &wrapped).await.unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Forbidden, "{err}");
    assert!(
        err.is_revocation() && err.to_string().contains("unwrapKey"),
        "{err}"
    );
    client.get_key(&p, &key).await.unwrap();
    // No policy at all: even get is refused, though the token's role allows reading keys.
    vault
        .delete_policy(REMOTE_VAULT, &remote.principal)
        .unwrap();
    let err = client.get_key(&p, &key).await.unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Forbidden, "{err}");
    vault
        .set_policy(REMOTE_VAULT, &remote.principal, &GRANT.map(String::from))
        .unwrap();
    client.unwrap_key(&p, &wrapped).await.unwrap();

    // The token revoked at the server: 401, renewed once (the same token), then revocation.
    s.tokens.revoke(&remote.token_id, s.now()).unwrap();
    let err = client.unwrap_key(&p, &wrapped).await.unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Forbidden, "{err}");
    assert!(err.to_string().contains("401"), "{err}");

    // A principal id that is no identity of the serving home (one deleted, or another home's):
    // the vault refuses it, whatever the token's role.
    let stranger = s
        .tokens
        .issue(
            &uuid::Uuid::new_v4().to_string(),
            &[Role::CryptoServiceEncryptionUser],
            None,
            s.now(),
            chrono::Duration::hours(1),
        )
        .unwrap()
        .token;
    let err = self::client(&s, &stranger)
        .get_key(&p, &key)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Forbidden, "{err}");

    // A token for someone who is not an identity of the serving home is governed by its roles
    // only, as before: a Log Analytics reader may not read keys.
    let reader = s.token(&[Role::Reader], None);
    let err = self::client(&s, &reader)
        .get_key(&p, &key)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Forbidden, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vault_s_503_is_retried_and_a_stopped_server_is_an_outage() {
    let mut s = serve(Options::default()).await;
    let remote = remote_setup(&s);
    let client = client(&s, &remote.token);
    let p = cluster_principal();
    let key = key_ref(&s);
    let wrapped = client.wrap_key(&p, &key, &secret()).await.unwrap();
    let vault = s.engine.vault().clone();

    // An outage for as long as the retries last: the server answers 503, the client says outage.
    vault.set_outage(REMOTE_VAULT, OutageMode::Refused).unwrap();
    let err = client.unwrap_key(&p, &wrapped).await.unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Transient, "{err}");
    assert!(!err.is_revocation());
    assert!(err.to_string().contains("503"), "{err}");

    // An outage shorter than the retries: the call succeeds, after failed attempts the vault
    // audited.
    let failures_before = unwrap_failures(&s, &remote.principal);
    let clear = {
        let vault = vault.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            vault.set_outage(REMOTE_VAULT, OutageMode::None).unwrap();
        })
    };
    let started = Instant::now();
    let back = client.unwrap_key(&p, &wrapped).await.unwrap();
    assert_eq!(back.to_base64url(), secret().to_base64url());
    assert!(started.elapsed() >= Duration::from_millis(400));
    clear.await.unwrap();
    assert!(
        unwrap_failures(&s, &remote.principal) > failures_before,
        "the first attempt met the outage"
    );

    // The server stopped: connections refused, an outage, not a revocation.
    s.shutdown().await;
    let err = client.unwrap_key(&p, &wrapped).await.unwrap_err();
    assert_eq!(err.kind(), VaultErrorKind::Transient, "{err}");
    assert!(err.to_string().contains("connection refused"), "{err}");
}

/// How many unwraps by `principal` the serving vault audited as failed.
fn unwrap_failures(s: &Served, principal: &PrincipalId) -> usize {
    s.engine
        .vault()
        .audit_log(REMOTE_VAULT)
        .unwrap()
        .iter()
        .filter(|e| {
            e.operation == AuditOperation::UnwrapKey
                && e.principal == principal.0
                && e.outcome == AuditOutcome::Failure
        })
        .count()
}
