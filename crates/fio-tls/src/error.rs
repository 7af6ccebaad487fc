//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong while building a [`Tls`](crate::Tls) or an [`Identity`](crate::Identity).
/// Connection-time failures (a bad record, a failed handshake) are not returned here: they
/// close the connection, after the alert TLS calls for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A PEM file or buffer could not be read or parsed.
    #[error("reading PEM from {path}: {source}")]
    Pem {
        /// The file, or `<memory>` for a buffer.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// A PEM source held no certificate.
    #[error("no certificate in {0}")]
    NoCertificate(PathBuf),
    /// rustls refused a certificate, key or configuration.
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built from the trusted certificates.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// Generating the self-signed certificate failed.
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A server name (for SNI) is not a valid DNS name.
    #[error("{0:?} is not a valid DNS name")]
    BadServerName(String),
    /// A client was configured without anything to verify servers with: add a trusted
    /// certificate ([`TlsBuilder::trust`](crate::TlsBuilder::trust)).
    #[error("a TLS client needs at least one trusted certificate")]
    NoTrust,
    /// The builder has neither a certificate (server side) nor trust (client side).
    #[error("nothing to build: add a certificate (server) or a trusted certificate (client)")]
    Empty,
}
