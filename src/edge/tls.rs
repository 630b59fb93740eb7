//! TLS client configuration shared by the edges: the public web PKI roots plus, when a scenario
//! names one, a private CA (the lab has its own). Verification is never switched off here.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::CertificateDer;

/// Why a CA file or the TLS client configuration could not be had; CA errors name the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read CA file {}: {source}", path.display())]
    ReadCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CA file {} is not valid PEM: {source}", path.display())]
    Pem {
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("CA file {} holds no certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("CA certificate rejected: {0}")]
    CaRejected(#[source] rustls::Error),
    #[error("TLS setup: {0}")]
    Setup(#[source] rustls::Error),
}

/// Read the PEM certificates of a CA file.
pub fn read_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_ca_pem(path)?;
    parse_ca(&bytes, path)
}

/// The raw bytes of a CA file, size-capped like every file a configuration names.
pub fn read_ca_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    crate::config::files::read_capped(path, crate::config::files::MAX_CONFIG_FILE_BYTES).map_err(
        |source| TlsError::ReadCa {
            path: path.to_path_buf(),
            source,
        },
    )
}

/// The PEM certificates in `bytes` (read from `path`, named in errors); at least one.
pub fn parse_ca(bytes: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The web PKI roots and the given extra CA certificates.
pub fn root_store(extra_ca: &[CertificateDer<'static>]) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for c in extra_ca {
        roots.add(c.clone()).map_err(TlsError::CaRejected)?;
    }
    Ok(roots)
}

/// A rustls client config trusting the web PKI roots and the given extra CA certificates.
pub fn client_config(
    extra_ca: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let roots = root_store(extra_ca)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_errors_name_the_file_and_keep_their_source() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = read_ca(&missing).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("cannot read CA file {}: ", missing.display())),
            "{e}"
        );
        assert!(std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()));

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        assert_eq!(
            read_ca(&empty).unwrap_err().to_string(),
            format!("CA file {} holds no certificate", empty.display())
        );
    }
}
