//! What `TlsBuilder` configures, seen from real handshakes: certificates per SNI name, a
//! refused unknown name, ALPN with its callback, client certificates, PEM files, and rustls
//! configurations wrapped as they are.

mod util;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use fio_tls::rustls;
use fio_tls::{Identity, Tls, TlsBuilder};
use util::*;

/// A rustls client trusting `trusted`, offering `alpn`, optionally with a client cert.
fn client_config(
    trusted: &[&Identity],
    alpn: &[&[u8]],
    cert: Option<&Identity>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for identity in trusted {
        roots.add(identity.chain()[0].clone()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match cert {
        Some(identity) => builder
            .with_client_auth_cert(identity.chain().to_vec(), identity.duplicate_for_test())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|name| name.to_vec()).collect();
    Arc::new(config)
}

trait DuplicateKey {
    fn duplicate_for_test(&self) -> rustls::pki_types::PrivateKeyDer<'static>;
}

impl DuplicateKey for Identity {
    fn duplicate_for_test(&self) -> rustls::pki_types::PrivateKeyDer<'static> {
        let pem = self.key_pem();
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
    }
}

/// Connects with `config` for `name`, sends `ping`, returns the echo (or the error) and the
/// ALPN protocol agreed.
fn exchange(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
    name: &str,
) -> (Result<Vec<u8>, std::io::Error>, Option<Vec<u8>>) {
    let conn = rustls::ClientConnection::new(
        config,
        rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap(),
    )
    .unwrap();
    let mut stream = rustls::StreamOwned::new(conn, tcp(addr));
    let result = stream.write_all(b"ping").and_then(|()| {
        let mut echoed = [0u8; 4];
        stream.read_exact(&mut echoed).map(|()| echoed.to_vec())
    });
    let alpn = stream.conn.alpn_protocol().map(<[u8]>::to_vec);
    (result, alpn)
}

#[test]
fn each_server_name_gets_its_certificate_and_an_unknown_one_is_refused() {
    let alpha = Identity::self_signed(&["alpha.test"]).unwrap();
    let beta = Identity::self_signed(&["beta.test"]).unwrap();
    let trusts_both = client_config(&[&alpha, &beta], &[], None);
    let tls = TlsBuilder::new()
        .cert_add(
            Some("alpha.test"),
            Identity::from_pem(alpha.cert_pem().as_bytes(), alpha.key_pem().as_bytes()).unwrap(),
        )
        .cert_add(
            Some("beta.test"),
            Identity::from_pem(beta.cert_pem().as_bytes(), beta.key_pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let (alpha_ok, beta_ok, unknown) = serve(tls, move |addr| {
        (
            exchange(addr, Arc::clone(&trusts_both), "alpha.test").0,
            exchange(addr, Arc::clone(&trusts_both), "beta.test").0,
            exchange(addr, trusts_both, "gamma.test").0,
        )
    });
    assert_eq!(alpha_ok.unwrap(), b"ping");
    assert_eq!(beta_ok.unwrap(), b"ping");
    let refused = unknown.unwrap_err().to_string();
    assert!(
        refused.contains("alert"),
        "refused with an alert: {refused}"
    );
}

#[test]
fn the_selected_alpn_protocol_runs_its_callback() {
    let selected = Arc::new(Mutex::new(Vec::new()));
    let (h2, http1) = (Arc::clone(&selected), Arc::clone(&selected));
    let tls = TlsBuilder::new()
        .cert_add(None, identity())
        .alpn_add("h2", move |_| h2.lock().unwrap().push("h2"))
        .alpn_add("http/1.1", move |_| http1.lock().unwrap().push("http/1.1"))
        .build()
        .unwrap();
    let config = client_config(&[&identity()], &[b"http/1.1"], None);
    let (echoed, alpn) = serve(tls, move |addr| exchange(addr, config, "localhost"));
    assert_eq!(echoed.unwrap(), b"ping");
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(*selected.lock().unwrap(), vec!["http/1.1"]);
}

#[test]
fn a_server_that_trusts_a_ca_requires_client_certificates() {
    let client_identity = Identity::self_signed(&["client.test"]).unwrap();
    let tls = TlsBuilder::new()
        .cert_add(None, identity())
        .trust(client_identity.chain()[0].clone())
        .build()
        .unwrap();
    let with_cert = client_config(&[&identity()], &[], Some(&client_identity));
    let without = client_config(&[&identity()], &[], None);
    let (accepted, refused) = serve(tls, move |addr| {
        (
            exchange(addr, with_cert, "localhost").0,
            exchange(addr, without, "localhost").0,
        )
    });
    assert_eq!(accepted.unwrap(), b"ping");
    assert!(refused.is_err(), "no client certificate, no session");
}

#[test]
fn identities_load_from_pem_files_and_wrapped_configs_serve() {
    let dir = std::env::temp_dir().join(format!("fio-tls-pem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let generated = identity();
    std::fs::write(dir.join("cert.pem"), generated.cert_pem()).unwrap();
    std::fs::write(dir.join("key.pem"), generated.key_pem()).unwrap();
    let loaded = Identity::from_pem_files(dir.join("cert.pem"), dir.join("key.pem")).unwrap();
    assert_eq!(loaded.fingerprint(), generated.fingerprint());
    let trusted = TlsBuilder::new()
        .trust_pem_file(dir.join("cert.pem"))
        .unwrap();
    assert!(trusted.build().unwrap().is_client());
    assert!(matches!(
        Identity::from_pem_files(dir.join("missing.pem"), dir.join("key.pem")),
        Err(fio_tls::Error::Pem { .. })
    ));
    assert!(matches!(
        Identity::from_pem_files(dir.join("key.pem"), dir.join("key.pem")),
        Err(fio_tls::Error::NoCertificate(_))
    ));
    let _ = std::fs::remove_dir_all(&dir);

    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(loaded.chain().to_vec(), loaded.into_key())
    .unwrap();
    let client = client_config(&[&generated], &[], None);
    let (echoed, _) = serve(Tls::server(Arc::new(config)), move |addr| {
        exchange(addr, client, "localhost")
    });
    assert_eq!(echoed.unwrap(), b"ping");
}

#[test]
fn an_empty_builder_is_an_error() {
    assert!(matches!(
        TlsBuilder::new().build(),
        Err(fio_tls::Error::Empty)
    ));
    assert!(matches!(
        TlsBuilder::new()
            .cert_add(Some("not a name!"), identity())
            .build(),
        Err(fio_tls::Error::BadServerName(_))
    ));
}

/// Collects what it reads; stops the reactor at 4 bytes.
struct Collect(Arc<Mutex<Vec<u8>>>);

impl fio_reactor::Protocol for Collect {
    fn on_data(&mut self, uuid: fio_reactor::Uuid) {
        let mut buf = [0u8; 64];
        while let Ok(count @ 1..) = fio_reactor::read(uuid, &mut buf) {
            let mut got = self.0.lock().unwrap();
            got.extend_from_slice(&buf[..count]);
            if got.len() >= 4 {
                fio_reactor::stop();
            }
        }
    }
}

#[test]
fn fio_s_client_names_the_host_presents_its_certificate_and_gets_its_alpn_callback() {
    let client_identity = Identity::self_signed(&["client.test"]).unwrap();
    let selected = Arc::new(Mutex::new(Vec::new()));
    let (on_server, on_client) = (Arc::clone(&selected), Arc::clone(&selected));
    let server = TlsBuilder::new()
        .cert_add(Some("localhost"), identity())
        .trust(client_identity.chain()[0].clone())
        .alpn_add("h2", |_| {})
        .alpn_add("http/1.1", move |_| {
            on_server.lock().unwrap().push("server")
        })
        .build()
        .unwrap();
    let client = TlsBuilder::new()
        .trust(identity().chain()[0].clone())
        .client_cert(client_identity)
        .alpn_add("http/1.1", move |_| {
            on_client.lock().unwrap().push("client")
        })
        .build()
        .unwrap();
    let reactor = reactor(1);
    // Listening on the name too: the connect below reaches whichever address it resolves to
    // first.
    let listener = reactor
        .listen(fio_reactor::ListenArgs::new("tls://localhost:0", echo_on_open).tls(server))
        .unwrap();
    let addr = fio_reactor::local_addr(listener)
        .and_then(|addr| addr.as_inet())
        .unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&got);
    reactor
        .connect(
            fio_reactor::ConnectArgs::new(
                format!("tls://localhost:{}", addr.port()),
                move |uuid| {
                    fio_reactor::attach(uuid, Collect(Arc::clone(&into))).unwrap();
                    fio_reactor::write(uuid, b"ping").unwrap();
                },
            )
            .tls(client),
        )
        .unwrap();
    start_bounded(&reactor).unwrap();
    assert_eq!(&*got.lock().unwrap(), b"ping");
    let mut selected = selected.lock().unwrap().clone();
    selected.sort_unstable();
    assert_eq!(selected, ["client", "server"]);
}
