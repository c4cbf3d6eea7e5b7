//! TLS for node links (rustls, ring provider): mutual authentication with
//! certificates from one CA, on top of the cookie handshake.
//!
//! Every node presents a certificate signed by the cluster's CA and checks
//! the peer's against it, both as server and as client; the certificate
//! must name `server_name` (a name all node certificates share, since a
//! node connects by address before it knows the peer's node name). A peer
//! without TLS, or with a certificate from another CA, is refused during
//! the TLS handshake, with a log line and a counter on each side.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::fmt;
use std::sync::Arc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// TLS settings for a node's links.
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) connector: TlsConnector,
    pub(crate) server_name: ServerName<'static>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// The TLS settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM input does not parse.
    #[error("bad PEM in {0}: {1}")]
    Pem(&'static str, String),
    /// rustls refused the configuration.
    #[error("tls configuration: {0}")]
    Config(String),
}

impl TlsConfig {
    /// Builds the settings from PEM text: the cluster CA's certificate,
    /// this node's certificate chain and private key, and the name every
    /// node certificate carries.
    ///
    /// # Errors
    /// [`TlsError`] for unparsable PEM or a configuration rustls refuses.
    pub fn from_pem(
        ca: &str,
        cert_chain: &str,
        key: &str,
        server_name: &str,
    ) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(ca.as_bytes()) {
            let ca = ca.map_err(|e| TlsError::Pem("ca", e.to_string()))?;
            roots.add(ca).map_err(|e| TlsError::Config(e.to_string()))?;
        }
        let roots = Arc::new(roots);
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_chain.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| TlsError::Pem("certificate", e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
            .map_err(|e| TlsError::Pem("key", e.to_string()))?;
        let client_verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(TlsConfig {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            server_name,
        })
    }
}
