//! TLS for the HTTP server from a certificate and key in PEM files — typically a `kubernetes.io/tls` Secret
//! (e.g. written by cert-manager) mounted as a volume; the controller never reads Secrets through the API.
//! The files are read again when they change (a renewed certificate is served without a restart). Does
//! file I/O.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::SystemTime,
};

use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tokio_rustls::TlsAcceptor;

/// Where the certificate chain and its private key are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain (leaf first), e.g. `/etc/driftwatch/tls/tls.crt`.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1), e.g. `/etc/driftwatch/tls/tls.key`.
    pub key: PathBuf,
}

/// Why the certificate cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path}: {message}")]
    Certificate { path: String, message: String },
    #[error("{path} holds no certificate")]
    NoCertificate { path: String },
    #[error("cannot read the TLS private key {path}: {message}")]
    Key { path: String, message: String },
    #[error("the TLS key {path} does not fit the certificate: {message}")]
    Mismatch { path: String, message: String },
    #[error("cannot set up TLS: {0}")]
    Config(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks the certificate chain and key.
pub fn load(files: &TlsFiles) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_path = files.cert.display().to_string();
    let key_path = files.key.display().to_string();
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificate {
            path: cert_path.clone(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: cert_path });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Key {
        path: key_path.clone(),
        message: e.to_string(),
    })?;
    let certified = CertifiedKey::from_der(certs, key, &provider()).map_err(|e| TlsError::Mismatch {
        path: key_path,
        message: e.to_string(),
    })?;
    Ok(Arc::new(certified))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Modification times of the certificate and key files.
type Stamp = Option<(SystemTime, SystemTime)>;

/// Serves the certificate last read from the files, reading them again when their modification times
/// change. A renewal that cannot be read keeps the previous certificate (and logs why).
pub struct ReloadingCertificate {
    files: TlsFiles,
    current: RwLock<(Stamp, Arc<CertifiedKey>)>,
}

impl ReloadingCertificate {
    /// Reads the files once; fails when they cannot be served.
    pub fn new(files: TlsFiles) -> Result<Self, TlsError> {
        let stamp = modified(&files.cert).zip(modified(&files.key));
        let key = load(&files)?;
        Ok(Self {
            files,
            current: RwLock::new((stamp, key)),
        })
    }

    /// The certificate to serve now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let stamp = modified(&self.files.cert).zip(modified(&self.files.key));
        if let Ok(guard) = self.current.read()
            && (stamp.is_none() || guard.0 == stamp)
        {
            return guard.1.clone();
        }
        let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
        if guard.0 != stamp {
            match load(&self.files) {
                Ok(key) => {
                    tracing::info!(cert = %self.files.cert.display(), "serving a renewed TLS certificate");
                    *guard = (stamp, key);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the renewed TLS certificate; keeping the previous one");
                    guard.0 = stamp;
                }
            }
        }
        guard.1.clone()
    }
}

impl fmt::Debug for ReloadingCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCertificate")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// A TLS acceptor (TLS 1.2 and 1.3, HTTP/1.1) serving the files' certificate.
pub fn acceptor(files: TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let resolver = Arc::new(ReloadingCertificate::new(files)?);
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
