//! Mutual TLS on the peer port (rustls): the PEM files, the server and client configurations built from
//! them, reloading them, and the identity rule.
//!
//! **Identity.** A node's peer certificate must be signed by the peer CA and name `node-<id>` as a DNS
//! subject alternative name (it may name more: host names, IPs). The dialer verifies the acceptor's
//! certificate against the server name `node-<receiver>`; the acceptor checks, once the hello names the
//! sender, that the client certificate names `node-<sender>` (else the handshake is refused with
//! [`Reject::Identity`](super::handshake::Reject)). So with peer TLS a node can speak only as the id its
//! certificate names, and since a connection only ever updates its sender's own entry of the member table,
//! it can change no other member's addresses.
//!
//! **Reload.** [`PeerTls::reload`] reads the files again; new connections use the new configuration, open
//! ones keep theirs. A file that does not load leaves the previous configuration in place.

use std::fs;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::server::AllowAnyAuthenticatedClient;
use rustls::{Certificate, ClientConfig, PrivateKey, RootCertStore, ServerConfig};

/// Where a node's peer TLS material lives (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// This node's certificate chain (leaf first); the leaf names `node-<id>`.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The CA certificate(s) every peer's certificate must chain to.
    pub ca: PathBuf,
}

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("read {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{what} {}: {reason}", path.display())]
    Invalid {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(what: &'static str, path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::Invalid {
        what,
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The certificates of a PEM file, in order; at least one.
pub fn load_certs(what: &'static str, path: &Path) -> Result<Vec<Certificate>, TlsError> {
    let pem = read(what, path)?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(pem.as_slice()))
        .map_err(|e| invalid(what, path, format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(what, path, "no CERTIFICATE block"));
    }
    Ok(certs.into_iter().map(Certificate).collect())
}

/// The one private key of a PEM file.
pub fn load_key(what: &'static str, path: &Path) -> Result<PrivateKey, TlsError> {
    let pem = read(what, path)?;
    let items = rustls_pemfile::read_all(&mut BufReader::new(pem.as_slice()))
        .map_err(|e| invalid(what, path, format!("not PEM: {e}")))?;
    let mut keys = items.into_iter().filter_map(|item| match item {
        rustls_pemfile::Item::RSAKey(k)
        | rustls_pemfile::Item::PKCS8Key(k)
        | rustls_pemfile::Item::ECKey(k) => Some(k),
        _ => None,
    });
    match (keys.next(), keys.next()) {
        (Some(key), None) => Ok(PrivateKey(key)),
        (None, _) => Err(invalid(what, path, "no PRIVATE KEY block")),
        (Some(_), Some(_)) => Err(invalid(what, path, "more than one private key")),
    }
}

/// A trust store of the CA certificates in a PEM file.
pub fn load_roots(what: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(what, path)? {
        roots
            .add(&cert)
            .map_err(|e| invalid(what, path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The DNS name a node's peer certificate must carry.
pub fn node_name(id: u64) -> String {
    format!("node-{id}")
}

/// Whether the DER certificate `leaf` names `name` (a DNS name or an IP address) in its subject
/// alternative names. Its chain is not checked here (the TLS handshake did that).
pub fn names(leaf: &[u8], name: &str) -> bool {
    let Ok(cert) = webpki::EndEntityCert::try_from(leaf) else {
        return false;
    };
    let Ok(subject) = webpki::SubjectNameRef::try_from_ascii_str(name) else {
        return false;
    };
    cert.verify_is_valid_for_subject_name(subject).is_ok()
}

struct Configs {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

fn configs(node_id: u64, files: &TlsFiles) -> Result<Configs, TlsError> {
    let certs = load_certs("peer certificate", &files.cert)?;
    let key = load_key("peer key", &files.key)?;
    let roots = load_roots("peer CA", &files.ca)?;
    if !names(&certs[0].0, &node_name(node_id)) {
        return Err(invalid(
            "peer certificate",
            &files.cert,
            format!(
                "does not name this node: its subject alternative names must include DNS:{}",
                node_name(node_id)
            ),
        ));
    }
    let config_error = |e: rustls::Error| TlsError::Config(e.to_string());
    let server = ServerConfig::builder()
        .with_safe_defaults()
        .with_client_cert_verifier(AllowAnyAuthenticatedClient::new(roots.clone()).boxed())
        .with_single_cert(certs.clone(), key.clone())
        .map_err(config_error)?;
    let client = ClientConfig::builder()
        .with_safe_defaults()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(config_error)?;
    Ok(Configs {
        server: Arc::new(server),
        client: Arc::new(client),
    })
}

/// The peer port's TLS: the current configurations, replaced by [`PeerTls::reload`].
pub(crate) struct PeerTls {
    node_id: u64,
    files: TlsFiles,
    current: RwLock<Configs>,
}

impl PeerTls {
    pub(crate) fn load(node_id: u64, files: TlsFiles) -> Result<PeerTls, TlsError> {
        let current = RwLock::new(configs(node_id, &files)?);
        Ok(PeerTls {
            node_id,
            files,
            current,
        })
    }

    /// Read the files again; on failure the previous configuration stays.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let fresh = configs(self.node_id, &self.files)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        tokio_rustls::TlsAcceptor::from(current.server.clone())
    }

    pub(crate) fn connector(&self) -> tokio_rustls::TlsConnector {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        tokio_rustls::TlsConnector::from(current.client.clone())
    }
}
