//! The home's TLS identity: `HOME/tls/cert.pem` (a self-signed certificate for `localhost` and
//! `127.0.0.1`, public: clients are given it to trust) and `HOME/tls/key.json` (its private
//! key, sealed under a purpose key of the service account's key; format version 1). Made at
//! first use and again when it is within 30 days of expiry.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Datelike, Duration, Utc};
use logvault::crypto::tls::{SelfSignedCert, open_private_key};
use rustls::ServerConfig;
use serde::{Deserialize, Serialize};

use crate::ServerError;

const PURPOSE: &str = "server/tls/v1";
const AAD: &[u8] = b"logvault server tls private key v1";
/// How long a new certificate is valid (browsers' limit for public certificates).
const VALID_DAYS: i64 = 397;
/// How long before expiry a certificate is made anew.
const RENEW_DAYS: i64 = 30;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SealedKeyFile {
    version: u32,
    not_after: DateTime<Utc>,
    /// The PKCS#8 private key sealed with AES-256-GCM (base64).
    sealed_key: String,
}

/// The paths of the home's TLS files.
pub fn cert_path(home: &Path) -> PathBuf {
    home.join("tls").join("cert.pem")
}

fn key_path(home: &Path) -> PathBuf {
    home.join("tls").join("key.json")
}

fn day(t: DateTime<Utc>) -> (i32, u8, u8) {
    // Month and day always fit in a u8.
    (t.year(), t.month() as u8, t.day() as u8)
}

/// The rustls configuration of the home's identity, making the identity first if needed.
///
/// # Errors
/// When the identity cannot be made, stored or opened.
pub(crate) async fn server_config(
    engine: &logvault::Engine,
) -> Result<Arc<ServerConfig>, ServerError> {
    let home = engine.home().root().to_owned();
    let sealing = engine.purpose_key(PURPOSE).await?;
    let now = engine.clock().now();
    let (cert_path, key_path) = (cert_path(&home), key_path(&home));
    let existing = read_identity(&cert_path, &key_path, &sealing, now);
    let (cert_der, key) = match existing {
        Ok(Some(identity)) => identity,
        Ok(None) => make_identity(&cert_path, &key_path, &sealing, now)?,
        Err(reason) => {
            tracing::warn!(%reason, "the home's TLS identity cannot be used; making a new one");
            make_identity(&cert_path, &key_path, &sealing, now)?
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

type Identity = (
    rustls_pki_types::CertificateDer<'static>,
    rustls_pki_types::PrivateKeyDer<'static>,
);

/// The stored identity, `None` if there is none or it is due for renewal, `Err` if it is
/// damaged.
fn read_identity(
    cert_path: &Path,
    key_path: &Path,
    sealing: &logvault::crypto::Key256,
    now: DateTime<Utc>,
) -> Result<Option<Identity>, String> {
    let (Ok(pem), Ok(key_json)) = (std::fs::read(cert_path), std::fs::read(key_path)) else {
        return Ok(None);
    };
    let file: SealedKeyFile =
        serde_json::from_slice(&key_json).map_err(|e| format!("{}: {e}", key_path.display()))?;
    if file.version != 1 {
        return Err(format!(
            "{}: unknown format version {}",
            key_path.display(),
            file.version
        ));
    }
    if file.not_after - now < Duration::days(RENEW_DAYS) {
        return Ok(None);
    }
    let sealed = STANDARD
        .decode(&file.sealed_key)
        .map_err(|e| format!("{}: {e}", key_path.display()))?;
    let key = open_private_key(sealing, AAD, &sealed, &key_path.display().to_string())
        .map_err(|e| e.to_string())?;
    let cert = pem_to_der(&pem)
        .ok_or_else(|| format!("{}: not a PEM certificate", cert_path.display()))?;
    Ok(Some((cert, key)))
}

fn pem_to_der(pem: &[u8]) -> Option<rustls_pki_types::CertificateDer<'static>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
        .collect();
    STANDARD.decode(body.trim()).ok().map(Into::into)
}

fn make_identity(
    cert_path: &Path,
    key_path: &Path,
    sealing: &logvault::crypto::Key256,
    now: DateTime<Utc>,
) -> Result<Identity, ServerError> {
    let not_after = now + Duration::days(VALID_DAYS);
    let cert = SelfSignedCert::generate(
        "logvault",
        &["localhost".to_owned()],
        &[
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
        ],
        day(now - Duration::days(1)),
        day(not_after),
    )
    .map_err(|e| ServerError::Tls(e.to_string()))?;
    let sealed = cert
        .seal_key(sealing, AAD)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let file = SealedKeyFile {
        version: 1,
        not_after,
        sealed_key: STANDARD.encode(sealed),
    };
    let json =
        serde_json::to_vec_pretty(&file).map_err(|e| ServerError::state("tls key", key_path, e))?;
    // The key first: a certificate is never left without its key.
    logvault::core::fsutil::write_atomic(key_path, &json)
        .map_err(|e| ServerError::state("tls key", key_path, e))?;
    logvault::core::fsutil::write_atomic(cert_path, cert.cert_pem.as_bytes())
        .map_err(|e| ServerError::state("tls certificate", cert_path, e))?;
    Ok(cert.rustls_identity())
}
