//! TLS on the client port (rustls; see `docs/tls.md`): the server configuration the HTTP layer accepts
//! connections with, and the client configuration this node uses towards the other nodes' client ports
//! (forwarding to the leader, `--join https://`).
//!
//! **Scheme.** Client addresses in the member table are `host:port`, without a scheme: a node whose own
//! client port runs TLS speaks https to every other node's client port, so every node of a site runs the
//! client port the same way. It verifies their certificates against `trusted_ca_file` (default
//! `client_ca`), for the host of the address it dials, and presents its own client-port certificate
//! (which therefore must allow client authentication too, or carry no extended key usage) — so mutual
//! TLS (`client_ca`) also covers forwarded requests.
//!
//! **Reload.** [`ClientPortTls::reload`] reads the files again: new connections use the new server
//! configuration (certificate, key and CA), and forwarding presents the new certificate. A file that
//! does not load leaves everything as it was.

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use raft_node::transport::tls::{load_certs, load_key, load_roots, TlsError};
use rustls::client::ResolvesClientCert;
use rustls::server::AllowAnyAuthenticatedClient;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SignatureScheme};

/// The client port's TLS files (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    /// Clients must present a certificate signed by this CA (mutual TLS); `None`: any client.
    pub ca: Option<std::path::PathBuf>,
}

/// This node's client-port certificate, as presented when it is the client (forwarding, joining).
struct Identity(RwLock<Arc<CertifiedKey>>);

impl ResolvesClientCert for Identity {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The client port's TLS: the current server configuration, and this node's identity as a client.
pub struct ClientPortTls {
    files: ClientTlsFiles,
    server: RwLock<Arc<ServerConfig>>,
    identity: Arc<Identity>,
}

fn loaded(files: &ClientTlsFiles) -> Result<(Arc<ServerConfig>, Arc<CertifiedKey>), TlsError> {
    let certs = load_certs("client-port certificate", &files.cert)?;
    let key = load_key("client-port key", &files.key)?;
    let builder = ServerConfig::builder().with_safe_defaults();
    let builder = match &files.ca {
        Some(ca) => builder.with_client_cert_verifier(
            AllowAnyAuthenticatedClient::new(load_roots("client CA", ca)?).boxed(),
        ),
        None => builder.with_no_client_auth(),
    };
    let signing = rustls::sign::any_supported_type(&key).map_err(|e| TlsError::Invalid {
        what: "client-port key",
        path: files.key.clone(),
        reason: e.to_string(),
    })?;
    let server = builder
        .with_single_cert(certs.clone(), key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok((
        Arc::new(server),
        Arc::new(CertifiedKey::new(certs, signing)),
    ))
}

impl ClientPortTls {
    pub fn load(files: &ClientTlsFiles) -> Result<ClientPortTls, TlsError> {
        let (server, identity) = loaded(files)?;
        Ok(ClientPortTls {
            files: files.clone(),
            server: RwLock::new(server),
            identity: Arc::new(Identity(RwLock::new(identity))),
        })
    }

    /// Read the files again; on failure the configuration in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let (server, identity) = loaded(&self.files)?;
        *self.server.write().unwrap_or_else(PoisonError::into_inner) = server;
        *self
            .identity
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = identity;
        Ok(())
    }

    /// The acceptor for a new connection (the configuration in force now).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(
            self.server
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The client configuration towards other nodes' client ports: trusting `trusted_ca`, presenting this
/// node's client-port certificate when it has one.
pub fn client_config(
    trusted_ca: &Path,
    own: Option<&ClientPortTls>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = trusting("trusted CA", trusted_ca)?;
    Ok(Arc::new(match own {
        Some(tls) => builder.with_client_cert_resolver(tls.identity.clone()),
        None => builder.with_no_client_auth(),
    }))
}

/// A client configuration that trusts the CA certificates in `ca` (PEM), still to be given its client
/// identity.
fn trusting(
    what: &'static str,
    ca: &Path,
) -> Result<
    rustls::ConfigBuilder<ClientConfig, rustls::client::WantsTransparencyPolicyOrClientCert>,
    TlsError,
> {
    let roots: RootCertStore = load_roots(what, ca)?;
    Ok(ClientConfig::builder()
        .with_safe_defaults()
        .with_root_certificates(roots))
}

/// The client configuration of the command-line client (`src/client/`, flags `--cacert`, `--cert`,
/// `--key`): trusting the CA certificates in `ca`, and presenting the certificate chain and key of
/// `identity` (for a client port with mutual TLS) when given.
pub fn tool_client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = trusting("CA certificate", ca)?;
    Ok(Arc::new(match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                load_certs("client certificate", cert)?,
                load_key("client key", key)?,
            )
            .map_err(|e| TlsError::Config(e.to_string()))?,
    }))
}

/// The hyper client towards other nodes' client ports: https with `tls` (http URLs still work),
/// plain http only without it.
pub fn https_client(
    tls: Option<&Arc<ClientConfig>>,
    connect_timeout: std::time::Duration,
    pool_idle_timeout: std::time::Duration,
) -> hyper::Client<hyper_rustls::HttpsConnector<hyper::client::HttpConnector>> {
    let mut connector = hyper::client::HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    connector.enforce_http(false);
    let config = match tls {
        Some(tls) => (**tls).clone(),
        // Never used for a handshake: without a CA only http:// URLs are dialed (the configuration
        // refuses https without one).
        None => ClientConfig::builder()
            .with_safe_defaults()
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth(),
    };
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    hyper::Client::builder()
        .pool_idle_timeout(pool_idle_timeout)
        .build(https)
}

/// What the HTTP layer needs for TLS: the acceptor side, and the client side for forwarding.
#[derive(Clone)]
pub struct HttpTls {
    pub server: Arc<ClientPortTls>,
    pub client: Arc<ClientConfig>,
}
