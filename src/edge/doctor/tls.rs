//! TLS for `doctor`: a rustls client configuration whose certificate verifier is rustls' own
//! (web PKI roots plus the scenario's CA) wrapped to record what it saw: the server's leaf
//! certificate, the verifier's verdict and which TLS version's signature was checked. The
//! handshake still fails when the verdict is a refusal: doctor reports why, and never sends a
//! password over a connection that was not verified. The leaf is parsed with x509-parser for its
//! subject, names and expiry. Not here: what the facts mean (`core::doctor::judge::tls`).
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};
use x509_parser::extensions::GeneralName;

use crate::core::doctor::judge::{TlsSeen, Verdict};
use crate::edge::tls::{root_store, TlsError};

/// What the verifier recorded during one handshake.
#[derive(Debug, Default)]
struct Seen {
    leaf: Option<Vec<u8>>,
    verdict: Option<Result<(), Error>>,
    /// Which signature check ran: `true` for TLS 1.3, `false` for 1.2.
    tls13: Option<bool>,
}

/// rustls' verifier, recording as it goes.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    seen: Arc<Mutex<Seen>>,
}

impl Recording {
    fn note(&self, f: impl FnOnce(&mut Seen)) {
        f(&mut self.seen.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let r = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        self.note(|s| {
            s.leaf = Some(end_entity.to_vec());
            s.verdict = Some(r.as_ref().map(|_| ()).map_err(Clone::clone));
        });
        r
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.note(|s| s.tls13 = Some(false));
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.note(|s| s.tls13 = Some(true));
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A client configuration for one handshake, and what its verifier will have seen.
pub struct Recorder {
    pub config: Arc<rustls::ClientConfig>,
    seen: Arc<Mutex<Seen>>,
}

impl Recorder {
    /// Trusting the web PKI roots and `extra_ca`, as the probe's own connections do.
    pub fn new(extra_ca: &[CertificateDer<'static>]) -> Result<Recorder, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = Arc::new(root_store(extra_ca)?);
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| TlsError::Setup(Error::General(e.to_string())))?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let verifier = Arc::new(Recording {
            inner,
            seen: seen.clone(),
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Recorder {
            config: Arc::new(config),
            seen,
        })
    }

    /// What the handshake showed of the certificate, or `None` when it ended before the server
    /// sent one (connection, protocol or version failure).
    pub fn seen(&self, host: &str) -> Option<TlsSeen> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let leaf = seen.leaf.as_deref()?;
        let verdict = match seen.verdict.as_ref()? {
            Ok(()) => Verdict::Valid,
            Err(e) => verdict_of(e),
        };
        let protocol = match (&verdict, seen.tls13) {
            (Verdict::Valid, Some(true)) => Some("TLSv1.3".to_owned()),
            (Verdict::Valid, Some(false)) => Some("TLSv1.2".to_owned()),
            _ => None,
        };
        let leaf = parse_leaf(leaf);
        Some(TlsSeen {
            host: host.to_owned(),
            protocol,
            subject: leaf.subject,
            names: leaf.names,
            not_after: leaf.not_after,
            verdict,
        })
    }
}

fn verdict_of(e: &Error) -> Verdict {
    match e {
        Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => Verdict::Expired,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                Verdict::NotYetValid
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Verdict::WrongName
            }
            other => Verdict::Untrusted(format!("{other:?}")),
        },
        other => Verdict::Untrusted(other.to_string()),
    }
}

/// The facts doctor shows of a leaf certificate.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Leaf {
    pub subject: Option<String>,
    pub names: Vec<String>,
    pub not_after: Option<DateTime<Utc>>,
}

/// Subject, subjectAltNames (DNS names and IP addresses) and expiry of a DER certificate; what
/// cannot be parsed is left out.
pub fn parse_leaf(der: &[u8]) -> Leaf {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Leaf::default();
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push((*d).to_owned()),
                GeneralName::IPAddress(b) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                        names.push(std::net::Ipv4Addr::from(v4).to_string());
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                        names.push(std::net::Ipv6Addr::from(v6).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Leaf {
        subject: Some(cert.subject().to_string()),
        names,
        not_after: DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verifiers_errors_map_to_verdicts() {
        let cert = |c| Error::InvalidCertificate(c);
        assert_eq!(
            verdict_of(&cert(CertificateError::Expired)),
            Verdict::Expired
        );
        assert_eq!(
            verdict_of(&cert(CertificateError::NotValidForName)),
            Verdict::WrongName
        );
        assert_eq!(
            verdict_of(&cert(CertificateError::NotValidYet)),
            Verdict::NotYetValid
        );
        assert_eq!(
            verdict_of(&cert(CertificateError::UnknownIssuer)),
            Verdict::Untrusted("UnknownIssuer".into())
        );
    }

    #[test]
    fn garbage_is_no_certificate_and_a_recorder_without_a_handshake_saw_nothing() {
        assert_eq!(parse_leaf(b"not DER"), Leaf::default());
        let r = Recorder::new(&[]).unwrap();
        assert!(r.seen("mx.example").is_none());
    }
}
