//! HTTPS: the TLS side of `--tls-listen` (rustls). The certificate is the operator's
//! (`--tls-cert`/`--tls-key`, PEM) or one Gatehouse generates once into `<data-dir>/tls/`
//! (ECDSA P-256, self-signed, for `localhost`, 127.0.0.1 and the listening address) and reuses
//! after; clients trust it like any private CA (its path and SHA-256 fingerprint are printed).
//! `connector` is the client side (the benchmark): trusting such a certificate.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The certificate in use: where it is and its fingerprint.
pub struct Identity {
    pub cert_path: PathBuf,
    pub fingerprint: String,
    pub acceptor: TlsAcceptor,
}

/// Loads the operator's certificate and key, or the generated pair in `data_dir` (made on
/// first use, for `listen_ip` besides localhost).
pub fn identity(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
    listen_ip: IpAddr,
) -> anyhow::Result<Identity> {
    let (cert_path, key_path) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf()),
        (None, None) => generated(data_dir, listen_ip)?,
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .with_context(|| format!("reading {}", cert_path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", cert_path.display()))?;
    let first = certs.first().with_context(|| format!("{} holds no certificate", cert_path.display()))?;
    let fingerprint = hex::encode_upper(Sha256::digest(first.as_ref()))
        .as_bytes()
        .chunks(2)
        .map(|p| std::str::from_utf8(p).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(":");
    let key = PrivateKeyDer::from_pem_file(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not go together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Identity { cert_path, fingerprint, acceptor: TlsAcceptor::from(Arc::new(config)) })
}

/// A TLS client that trusts the certificates in `ca` (PEM) and nothing else.
pub fn connector(ca: &Path) -> anyhow::Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).with_context(|| format!("reading {}", ca.display()))? {
        roots.add(cert.with_context(|| format!("parsing {}", ca.display()))?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// `<data_dir>/tls/{cert,key}.pem`, made now if they are not there yet.
fn generated(data_dir: &Path, listen_ip: IpAddr) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = data_dir.join("tls");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if !listen_ip.is_unspecified() && !names.contains(&listen_ip.to_string()) {
        names.push(listen_ip.to_string());
    }
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "Gatehouse");
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    let cert = params.self_signed(&key)?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, cert.pem()).with_context(|| format!("writing {}", cert_path.display()))?;
    Ok((cert_path, key_path))
}

fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(data)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_identity_is_made_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("gh-tls-{}", uuid::Uuid::new_v4()));
        let a = identity(None, None, &dir, "127.0.0.1".parse().unwrap()).unwrap();
        let b = identity(None, None, &dir, "127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint.len(), 32 * 3 - 1);
        assert!(identity(Some(&a.cert_path), None, &dir, "127.0.0.1".parse().unwrap()).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
