//! HTTPS on portico-serve's listener (`--tls-cert FILE --tls-key FILE`): the certificate chain
//! and private key read from PEM files with rustls's own PEM parser, a rustls server on the
//! `ring` provider (as [`crate::UpstreamClient`]'s), HTTP/2 and HTTP/1.1 offered by ALPN, and
//! the handshake of each connection done on that connection's task, so that one client's
//! failed or stalled handshake holds up nobody else.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::StartError;

/// How long a client may take over its handshake: a connection that never finishes one would
/// otherwise hold a task and a socket (and a graceful shutdown) for good.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The acceptor for the certificate chain in `cert` and the private key in `key` (PEM); an
/// error names the file at fault and why.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, StartError> {
    let chain = read_chain(cert)?;
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        pem_error(
            key,
            e,
            "no private key in it (a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block)",
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // Cannot fail with ring's provider, which has the suites of every safe version.
        .map_err(|e| tls_error(cert, format!("rustls cannot be set up: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => tls_error(
                key,
                format!("it does not match the certificate in {}", cert.display()),
            ),
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                tls_error(cert, e.to_string())
            }
            e => tls_error(key, e.to_string()),
        })?;
    // h2 first: a client that speaks both gets HTTP/2, as from API Gateway.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Every certificate in `path`, the server's own first.
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, StartError> {
    const NONE: &str = "no certificate in it (a CERTIFICATE block)";
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(path, e, NONE))?;
    if chain.is_empty() {
        return Err(tls_error(path, NONE.to_owned()));
    }
    Ok(chain)
}

fn pem_error(path: &Path, error: pem::Error, none_found: &str) -> StartError {
    let reason = match error {
        pem::Error::Io(e) => format!("cannot read it: {e}"),
        pem::Error::NoItemsFound => none_found.to_owned(),
        e => format!("not valid PEM: {e}"),
    };
    tls_error(path, reason)
}

fn tls_error(path: &Path, reason: String) -> StartError {
    StartError::Tls {
        file: PathBuf::from(path),
        reason,
    }
}

/// The TLS stream once the client's handshake succeeded; `None` (logged at debug: the client's
/// mistake, not the server's) when it failed or took too long, or when `stopping` changed
/// first (the server stops, and this client has sent no request yet).
pub(crate) async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: std::net::SocketAddr,
    mut stopping: tokio::sync::watch::Receiver<()>,
) -> Option<TlsStream<TcpStream>> {
    let accepted = tokio::select! {
        accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => accepted,
        _ = stopping.changed() => {
            tracing::debug!(%peer, "TLS handshake abandoned: the server stops");
            return None;
        }
    };
    match accepted {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, %peer, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}
