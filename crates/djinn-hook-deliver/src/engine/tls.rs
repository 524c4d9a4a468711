//! The evented engine's TLS client settings: the trust decisions of the [`Deliverer`]'s two
//! agents, one verifying against the webpki roots and one (for webhooks with `ssl` off)
//! verifying nothing.
//!
//! [`Deliverer`]: crate::Deliverer

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The two client configurations, built once per engine.
#[derive(Debug)]
pub(crate) struct TlsConfigs {
    pub(crate) verified: Arc<ClientConfig>,
    pub(crate) unverified: Arc<ClientConfig>,
}

impl TlsConfigs {
    /// As ureq builds its own: the process's default crypto provider if one was installed,
    /// else ring; every protocol version rustls offers; SNI on; no client certificate.
    pub(crate) fn new() -> TlsConfigs {
        let provider = CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let builder = || {
            ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_protocol_versions(rustls::ALL_VERSIONS)
                .expect("the provider supports every rustls version")
        };
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let verified = builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let schemes = provider
            .signature_verification_algorithms
            .supported_schemes();
        let unverified = builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { schemes }))
            .with_no_client_auth();
        TlsConfigs {
            verified: Arc::new(verified),
            unverified: Arc::new(unverified),
        }
    }
}

/// Accepts whatever certificate the receiver shows, as ureq's agent with verification
/// disabled does: the webhook said `ssl` off, and the attempt records that nothing was
/// verified.
#[derive(Debug)]
struct AcceptAnyCertificate {
    schemes: Vec<SignatureScheme>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}
