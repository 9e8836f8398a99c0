//! Test certificates, generated per test with `rcgen` (nothing is checked in): a CA, leaf certificates
//! it signs for given subject alternative names (DNS names or IPs), written as PEM files, and rustls
//! client configurations that trust a CA and optionally present a certificate.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa};

/// A certificate authority.
pub struct Ca {
    cert: Certificate,
    /// Its certificate, PEM.
    pub pem: String,
}

/// A leaf certificate and its key, PEM.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new());
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = Certificate::from_params(params).expect("CA parameters are valid");
        let pem = cert.serialize_pem().expect("self-signed CA serializes");
        Ca { cert, pem }
    }

    /// A leaf for `names` (each a DNS name or an IP address), usable as server and as client.
    pub fn issue(&self, names: &[&str]) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        let cert = Certificate::from_params(params).expect("leaf parameters are valid");
        Leaf {
            cert_pem: cert
                .serialize_pem_with_signer(&self.cert)
                .expect("leaf signed by the CA"),
            key_pem: cert.serialize_private_key_pem(),
        }
    }

    /// Write the CA certificate to `dir/<stem>.pem`.
    pub fn write(&self, dir: &Path, stem: &str) -> PathBuf {
        let path = dir.join(format!("{stem}.pem"));
        std::fs::write(&path, &self.pem).expect("write CA file");
        path
    }
}

impl Leaf {
    /// Write (or overwrite) `dir/<stem>.crt` and `dir/<stem>.key`; returns their paths.
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, &self.cert_pem).expect("write certificate file");
        std::fs::write(&key, &self.key_pem).expect("write key file");
        (cert, key)
    }

    /// The leaf certificate, DER.
    pub fn der(&self) -> Vec<u8> {
        der_of(&self.cert_pem)
    }
}

/// The first certificate of a PEM text, DER.
pub fn der_of(pem: &str) -> Vec<u8> {
    rustls_pemfile::certs(&mut BufReader::new(pem.as_bytes()))
        .expect("PEM")
        .into_iter()
        .next()
        .expect("one certificate")
}

/// A rustls client configuration trusting `ca` and presenting `identity`, if any.
pub fn client_config(ca: &Ca, identity: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(&rustls::Certificate(der_of(&ca.pem)))
        .expect("CA certificate");
    let builder = rustls::ClientConfig::builder()
        .with_safe_defaults()
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(leaf) => {
            let key =
                rustls_pemfile::pkcs8_private_keys(&mut BufReader::new(leaf.key_pem.as_bytes()))
                    .expect("PEM key")
                    .into_iter()
                    .next()
                    .expect("one key");
            builder
                .with_client_auth_cert(
                    vec![rustls::Certificate(leaf.der())],
                    rustls::PrivateKey(key),
                )
                .expect("client certificate")
        }
    };
    Arc::new(config)
}
