//! The server's TLS identity: a self-signed certificate whose private key never rests in clear.
//!
//! [`SelfSignedCert::generate`] makes an ECDSA P-256 key and a self-signed end-entity
//! certificate for the given names (`localhost`, `127.0.0.1`). The certificate is public; the
//! private key leaves this crate only sealed ([`SelfSignedCert::seal_key`], AES-256-GCM under a
//! purpose key of the caller's) or as the rustls key a TLS listener needs
//! ([`open_private_key`]), the one place its bytes go outside this crate besides parquet's
//! encryption properties.

use std::net::IpAddr;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::secret::Scratch;
use crate::{CryptoError, Key256, SecretBytes, aead};

fn tls_error(what: &str, e: impl std::fmt::Display) -> CryptoError {
    CryptoError::InvalidKey {
        reason: format!("tls {what}: {e}"),
    }
}

/// A calendar day (year, month, day), UTC.
pub type Day = (i32, u8, u8);

/// A self-signed server certificate and its private key (held as secret bytes).
#[derive(Debug)]
pub struct SelfSignedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    key: SecretBytes,
}

impl SelfSignedCert {
    /// A new key pair and a certificate for `dns` names and `ips`, valid from `not_before` to
    /// `not_after`, usable only as a server's end-entity certificate.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if a name is not valid in a certificate or generation fails.
    pub fn generate(
        common_name: &str,
        dns: &[String],
        ips: &[IpAddr],
        not_before: Day,
        not_after: Day,
    ) -> Result<Self, CryptoError> {
        let key_pair = KeyPair::generate().map_err(|e| tls_error("key generation", e))?;
        let mut params =
            CertificateParams::new(dns.to_vec()).map_err(|e| tls_error("certificate names", e))?;
        params
            .subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, common_name);
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let cert = params
            .self_signed(&key_pair)
            .map_err(|e| tls_error("self-signing", e))?;
        let der = Scratch::new(key_pair.serialize_der());
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key: SecretBytes::new(der.to_vec()),
        })
    }

    /// The private key sealed under `key` (AES-256-GCM, bound to `aad`), to rest on disk.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if no nonce can be drawn.
    pub fn seal_key(&self, key: &Key256, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        aead::seal_secret(key, aad, &self.key)
    }

    /// The certificate and private key as rustls takes them.
    pub fn rustls_identity(&self) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        (
            CertificateDer::from(self.cert_der.clone()),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.expose().to_vec())),
        )
    }
}

/// The private key of a certificate, opened from what [`SelfSignedCert::seal_key`] sealed, as
/// rustls takes it.
///
/// # Errors
/// [`CryptoError::Integrity`] naming `context` if the sealed key does not open under `key` and
/// `aad`.
pub fn open_private_key(
    key: &Key256,
    aad: &[u8],
    sealed: &[u8],
    context: &str,
) -> Result<PrivateKeyDer<'static>, CryptoError> {
    let der = aead::open_secret(key, aad, sealed, context)?;
    // The key must parse as one rcgen can sign with: a damaged or foreign blob is refused here
    // rather than at the first handshake.
    let pkcs8 = PrivatePkcs8KeyDer::from(der.expose().to_vec());
    KeyPair::try_from(&pkcs8).map_err(|e| tls_error("sealed private key", e))?;
    Ok(PrivateKeyDer::Pkcs8(pkcs8))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_sealed_key_opens_only_under_its_key_and_never_shows() {
        let cert = SelfSignedCert::generate(
            "logvault",
            &["localhost".into()],
            &[IpAddr::from([127, 0, 0, 1])],
            (2026, 1, 1),
            (2027, 1, 1),
        )
        .unwrap();
        assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let sealing = Key256::generate().unwrap();
        let sealed = cert.seal_key(&sealing, b"tls").unwrap();
        assert!(!cert.key.occurs_in(&sealed));
        assert!(!cert.key.occurs_in(cert.cert_pem.as_bytes()));
        let opened = open_private_key(&sealing, b"tls", &sealed, "key").unwrap();
        assert_eq!(opened.secret_der(), cert.key.expose());
        let other = Key256::generate().unwrap();
        assert!(open_private_key(&other, b"tls", &sealed, "key").is_err());
        assert!(open_private_key(&sealing, b"other", &sealed, "key").is_err());
        assert!(format!("{cert:?}").contains("REDACTED"));
    }
}
