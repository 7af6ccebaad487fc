//! [`TlsBuilder`] (facil.io's `fio_tls_new`, `cert_add`, `alpn_add`, `trust`) and the [`Tls`]
//! provider it builds, which `listen` and `connect` take.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fio_reactor::{RwHook, Uuid};
use rustls::client::UnbufferedClientConnection;
use rustls::crypto::CryptoProvider;
use rustls::server::{
    ClientHello, ResolvesServerCert, UnbufferedServerConnection, WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, DnsName, ServerName};

use crate::hook::{Session, TlsHook};
use crate::{Error, Identity};

/// What runs when a connection selects an ALPN protocol, with the connection's uuid. It runs
/// as a deferred task right after the handshake, outside the read/write hook, so it may call
/// the reactor (attach the protocol's handler, typically). Like any deferred task it runs on
/// one of the reactor's threads, usually the connection's owner, another one when an idle
/// thread steals it (see fio-reactor's "Threads and callbacks").
pub type AlpnCallback = Arc<dyn Fn(Uuid) + Send + Sync>;

/// The ALPN callbacks by protocol name.
pub(crate) type AlpnTable = HashMap<Vec<u8>, AlpnCallback>;

/// Builds a [`Tls`] the way facil.io's `fio_tls_*` calls fill a `fio_tls_s`: certificates per
/// server name, ALPN protocols with callbacks, trusted certificates.
///
/// # Examples
/// A server for `localhost` with a development certificate, speaking `http/1.1`:
/// ```
/// let identity = fio_tls::Identity::self_signed(&["localhost"])?;
/// let tls = fio_tls::TlsBuilder::new()
///     .cert_add(Some("localhost"), identity)
///     .alpn_add("http/1.1", |_uuid| {})
///     .build()?;
/// assert!(tls.is_server());
/// # Ok::<(), fio_tls::Error>(())
/// ```
#[derive(Default)]
pub struct TlsBuilder {
    certs: Vec<(Option<String>, Identity)>,
    alpn: Vec<(Vec<u8>, Option<AlpnCallback>)>,
    trust: Vec<CertificateDer<'static>>,
    client_identity: Option<Identity>,
    handshake_timeout: Option<Option<Duration>>,
}

/// How long a handshake may take by default before the connection is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `identity` to clients asking for `server_name` by SNI (facil.io's
    /// `fio_tls_cert_add`). `None` makes it the default: served to clients that send no
    /// name, or a name no certificate was added for. Without a default, a client without
    /// SNI gets the first certificate added, and one asking for an unknown name is refused
    /// with an `unrecognized_name` alert.
    ///
    /// The same identity is presented by this provider's clients when a server asks for a
    /// client certificate, unless [`client_cert`](Self::client_cert) names another.
    pub fn cert_add(mut self, server_name: Option<&str>, identity: Identity) -> Self {
        self.certs.push((server_name.map(str::to_owned), identity));
        self
    }

    /// How long a connection's handshake may take before the connection is closed
    /// (default [`HANDSHAKE_TIMEOUT`]; `None`: no limit, only the connection's own timeout).
    /// A peer that stops in the middle of a handshake holds no connection longer.
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = Some(timeout);
        self
    }

    /// The certificate this provider's clients present to servers that ask for one.
    pub fn client_cert(mut self, identity: Identity) -> Self {
        self.client_identity = Some(identity);
        self
    }

    /// Offers (client) or accepts (server) the ALPN protocol `name`, in order of preference
    /// (facil.io's `fio_tls_alpn_add`); `on_selected` runs once a connection selected it.
    pub fn alpn_add(
        mut self,
        name: impl AsRef<[u8]>,
        on_selected: impl Fn(Uuid) + Send + Sync + 'static,
    ) -> Self {
        self.alpn
            .push((name.as_ref().to_vec(), Some(Arc::new(on_selected))));
        self
    }

    /// Trusts `cert` (facil.io's `fio_tls_trust`): clients accept servers whose chain ends
    /// in a trusted certificate, and a server with trusted certificates requires clients to
    /// present a certificate that chains to one of them.
    pub fn trust(mut self, cert: CertificateDer<'static>) -> Self {
        self.trust.push(cert);
        self
    }

    /// Trusts every certificate of the PEM file `path` (see [`trust`](Self::trust)).
    ///
    /// # Errors
    /// [`Error::Pem`] when the file can't be read or parsed, [`Error::NoCertificate`] when it
    /// holds none.
    pub fn trust_pem_file(mut self, path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let pem = |source| Error::Pem {
            path: path.to_owned(),
            source,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(pem)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem)?;
        if certs.is_empty() {
            return Err(Error::NoCertificate(path.to_owned()));
        }
        self.trust.extend(certs);
        Ok(self)
    }

    /// Builds the provider on rustls with the *ring* crypto provider: a server side when a
    /// certificate was added, a client side when a certificate is trusted.
    ///
    /// # Errors
    /// [`Error::Empty`] when there is neither; [`Error::Rustls`] when a key doesn't load or
    /// match its certificate; [`Error::BadServerName`] for an invalid SNI name;
    /// [`Error::Verifier`] when the trusted certificates make no verifier.
    pub fn build(self) -> Result<Arc<Tls>, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let protocols: Vec<Vec<u8>> = self.alpn.iter().map(|(name, _)| name.clone()).collect();
        let mut roots = RootCertStore::empty();
        for cert in &self.trust {
            roots.add(cert.clone())?;
        }
        let roots = Arc::new(roots);
        let server = if self.certs.is_empty() {
            None
        } else {
            let resolver = SniResolver::new(&self.certs, &provider)?;
            let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()?;
            let builder = if roots.is_empty() {
                builder.with_no_client_auth()
            } else {
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::clone(&roots),
                    Arc::clone(&provider),
                )
                .build()?;
                builder.with_client_cert_verifier(verifier)
            };
            let mut config = builder.with_cert_resolver(Arc::new(resolver));
            config.alpn_protocols = protocols.clone();
            Some(Arc::new(config))
        };
        let client = if roots.is_empty() {
            None
        } else {
            let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(Arc::clone(&roots));
            let identity = self
                .client_identity
                .as_ref()
                .or(self.certs.first().map(|(_, identity)| identity));
            let mut config = match identity {
                Some(identity) => builder.with_client_auth_cert(
                    identity.chain().to_vec(),
                    identity.duplicate().into_key(),
                )?,
                None => builder.with_no_client_auth(),
            };
            config.alpn_protocols = protocols;
            Some(Arc::new(config))
        };
        if server.is_none() && client.is_none() {
            return Err(Error::Empty);
        }
        let alpn = self
            .alpn
            .into_iter()
            .filter_map(|(name, callback)| Some((name, callback?)))
            .collect();
        Ok(Arc::new(Tls {
            server,
            client,
            alpn: Arc::new(alpn),
            handshake_timeout: self.handshake_timeout.unwrap_or(Some(HANDSHAKE_TIMEOUT)),
        }))
    }
}

impl fmt::Debug for TlsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsBuilder")
            .field("certs", &self.certs)
            .field(
                "alpn",
                &self.alpn.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .field("trusted", &self.trust.len())
            .finish_non_exhaustive()
    }
}

/// TLS for `listen` and `connect` (facil.io's `fio_tls_s`): gives each connection a
/// read/write hook that runs rustls over the connection's buffers. Build it with
/// [`TlsBuilder`], or from rustls configurations with [`server`](Self::server),
/// [`client`](Self::client) or [`new`](Self::new).
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// let identity = fio_tls::Identity::self_signed(&["localhost"])?;
/// let config = rustls::ServerConfig::builder_with_provider(Arc::new(
///     rustls::crypto::ring::default_provider(),
/// ))
/// .with_safe_default_protocol_versions()?
/// .with_no_client_auth()
/// .with_single_cert(identity.chain().to_vec(), identity.into_key())?;
/// let tls = fio_tls::Tls::server(Arc::new(config));
/// let args = fio_reactor::ListenArgs::new("tls://127.0.0.1:0", |_| {}).tls(tls);
/// assert!(args.has_tls());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Tls {
    server: Option<Arc<ServerConfig>>,
    client: Option<Arc<ClientConfig>>,
    alpn: Arc<AlpnTable>,
    handshake_timeout: Option<Duration>,
}

impl Tls {
    /// A provider from rustls configurations: `server` for listeners, `client` for
    /// connections made with `connect`. The configurations' ALPN protocols are used as they
    /// are, without callbacks; handshakes time out after [`HANDSHAKE_TIMEOUT`].
    pub fn new(server: Option<Arc<ServerConfig>>, client: Option<Arc<ClientConfig>>) -> Arc<Self> {
        Arc::new(Self {
            server,
            client,
            alpn: Arc::new(HashMap::new()),
            handshake_timeout: Some(HANDSHAKE_TIMEOUT),
        })
    }

    /// Wraps `connection` in a hook for `uuid`, with the handshake timer.
    fn hook(&self, uuid: Uuid, session: Session) -> Box<dyn RwHook> {
        let mut hook = TlsHook::new(uuid, session, Arc::clone(&self.alpn));
        if let Some(timeout) = self.handshake_timeout {
            crate::deadline::watch(uuid, timeout);
            hook.watched();
        }
        Box::new(hook)
    }

    /// A server-only provider from a rustls server configuration.
    pub fn server(config: Arc<ServerConfig>) -> Arc<Self> {
        Self::new(Some(config), None)
    }

    /// A client-only provider from a rustls client configuration.
    pub fn client(config: Arc<ClientConfig>) -> Arc<Self> {
        Self::new(None, Some(config))
    }

    /// The rustls server configuration, when this provider has a server side.
    pub fn server_config(&self) -> Option<Arc<ServerConfig>> {
        self.server.clone()
    }

    /// The rustls client configuration, when this provider has a client side.
    pub fn client_config(&self) -> Option<Arc<ClientConfig>> {
        self.client.clone()
    }

    /// Whether this provider can secure accepted connections.
    pub fn is_server(&self) -> bool {
        self.server.is_some()
    }

    /// Whether this provider can secure connections made with `connect`.
    pub fn is_client(&self) -> bool {
        self.client.is_some()
    }
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("server", &self.server.is_some())
            .field("client", &self.client.is_some())
            .field("alpn_callbacks", &self.alpn.len())
            .finish()
    }
}

impl fio_reactor::Tls for Tls {
    fn server_hook(&self, uuid: Uuid) -> io::Result<Box<dyn RwHook>> {
        let config = self.server.as_ref().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "this TLS provider has no certificate",
            )
        })?;
        let connection =
            UnbufferedServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
        Ok(self.hook(uuid, Session::Server(connection)))
    }

    fn client_hook(&self, uuid: Uuid, server_name: &str) -> io::Result<Box<dyn RwHook>> {
        let config = self.client.as_ref().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "this TLS provider trusts no certificate",
            )
        })?;
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        let connection =
            UnbufferedClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
        Ok(self.hook(uuid, Session::Client(connection)))
    }
}

/// Picks the certificate by SNI (see [`TlsBuilder::cert_add`]).
#[derive(Debug)]
struct SniResolver {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    /// Added with no name: for every client.
    default: Option<Arc<CertifiedKey>>,
    /// The first added: for clients that send no name.
    first: Arc<CertifiedKey>,
}

impl SniResolver {
    fn new(certs: &[(Option<String>, Identity)], provider: &CryptoProvider) -> Result<Self, Error> {
        let mut by_name = HashMap::new();
        let mut default = None;
        let mut first = None;
        for (name, identity) in certs {
            let certified = identity.certified(provider)?;
            first.get_or_insert_with(|| Arc::clone(&certified));
            match name {
                Some(name) => {
                    let checked = DnsName::try_from(name.as_str())
                        .map_err(|_| Error::BadServerName(name.clone()))?;
                    by_name.insert(checked.as_ref().to_ascii_lowercase(), certified);
                }
                None => default = Some(certified),
            }
        }
        let first = first.ok_or(Error::Empty)?;
        Ok(Self {
            by_name,
            default,
            first,
        })
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match hello.server_name() {
            Some(name) => self
                .by_name
                .get(&name.to_ascii_lowercase())
                .or(self.default.as_ref())
                .cloned(),
            None => Some(Arc::clone(self.default.as_ref().unwrap_or(&self.first))),
        }
    }
}
