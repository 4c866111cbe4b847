//! TLS for `wss://` addresses: rustls with ring, trusting the Mozilla
//! roots (webpki-roots) and the root certificates the caller adds (a
//! private CA, or a test's own self-signed certificate).
//!
//! The rustls configuration is built here, with its crypto provider named,
//! rather than left to the WebSocket library's defaults: so the client
//! works the same whichever other rustls providers the application links.

use std::fmt;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_tungstenite::Connector;

/// A root certificate to trust besides the Mozilla roots, held as DER.
#[derive(Clone, PartialEq, Eq)]
pub struct RootCertificate {
    der: Vec<u8>,
}

impl RootCertificate {
    /// Every certificate of a PEM file (`-----BEGIN CERTIFICATE-----`
    /// blocks); an error when there is none or one does not decode.
    pub fn from_pem(pem: &[u8]) -> Result<Vec<RootCertificate>, TlsError> {
        let certificates = CertificateDer::pem_slice_iter(pem)
            .map(|certificate| {
                certificate
                    .map(|der| RootCertificate {
                        der: der.as_ref().to_vec(),
                    })
                    .map_err(|error| TlsError::new("unreadable PEM certificate", error))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if certificates.is_empty() {
            return Err(TlsError {
                message: "no certificate in the PEM data".to_owned(),
                source: None,
            });
        }
        Ok(certificates)
    }

    /// A certificate in DER (checked when a connection is opened).
    pub fn from_der(der: impl Into<Vec<u8>>) -> RootCertificate {
        RootCertificate { der: der.into() }
    }

    /// The certificate's DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

impl fmt::Debug for RootCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RootCertificate({} bytes of DER)", self.der.len())
    }
}

/// A TLS setting that cannot be used: a certificate that does not decode,
/// or a configuration rustls refuses. The TLS library's own error is kept
/// as the [`source`](std::error::Error::source).
#[derive(Debug)]
pub struct TlsError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl TlsError {
    fn new(message: &str, source: impl std::error::Error + Send + Sync + 'static) -> TlsError {
        TlsError {
            message: message.to_owned(),
            source: Some(Box::new(source)),
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

/// The connector for `wss://`: the Mozilla roots plus `extra`.
pub(crate) fn connector(extra: &[RootCertificate]) -> Result<Connector, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for root in extra {
        roots
            .add(CertificateDer::from(root.der.clone()))
            .map_err(|error| TlsError::new("unusable root certificate", error))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| TlsError::new("TLS configuration refused", error))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}
