//! The TLS slot of `listen` and `connect`: a provider's hook is installed on every new
//! connection before `on_open`, a refusing provider closes the connection unopened, and a
//! `tls://` URL without a provider is an error. The "cipher" is a XOR, so the test sees the
//! hook work without a TLS library (fio-tls tests real handshakes).

mod util;

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use fio_reactor::{Chunk, ConnectArgs, HookIo, ListenArgs, RwHook, Tls, Uuid};
use util::{Echo, Pinger, client, reactor, start_bounded};

/// XORs every byte both ways.
struct XorHook(u8);

impl RwHook for XorHook {
    fn read(&mut self, io: &mut HookIo<'_>, buf: &mut [u8]) -> io::Result<usize> {
        let count = io.receive(buf)?;
        buf[..count].iter_mut().for_each(|byte| *byte ^= self.0);
        Ok(count)
    }

    fn write(&mut self, io: &mut HookIo<'_>, data: Chunk) -> io::Result<()> {
        io.send(
            data.bytes()
                .iter()
                .map(|byte| byte ^ self.0)
                .collect::<Vec<u8>>(),
        )
    }
}

/// Gives every connection a [`XorHook`]; refuses servers when `refuse` is set. Counts calls
/// and records the server names clients asked for.
struct XorTls {
    key: u8,
    refuse: bool,
    servers: AtomicUsize,
    names: Mutex<Vec<String>>,
}

impl XorTls {
    fn new(key: u8, refuse: bool) -> Arc<Self> {
        Arc::new(Self {
            key,
            refuse,
            servers: AtomicUsize::new(0),
            names: Mutex::new(Vec::new()),
        })
    }
}

impl Tls for XorTls {
    fn server_hook(&self, _uuid: Uuid) -> io::Result<Box<dyn RwHook>> {
        self.servers.fetch_add(1, Ordering::SeqCst);
        if self.refuse {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "refused"));
        }
        Ok(Box::new(XorHook(self.key)))
    }

    fn client_hook(&self, _uuid: Uuid, server_name: &str) -> io::Result<Box<dyn RwHook>> {
        self.names.lock().unwrap().push(server_name.to_owned());
        Ok(Box::new(XorHook(self.key)))
    }
}

fn echo() -> Echo {
    Echo {
        closes: Arc::new(AtomicUsize::new(0)),
    }
}

#[test]
fn a_listener_secures_every_connection_before_on_open() {
    let reactor = reactor(1);
    let tls = XorTls::new(0x21, false);
    let opened = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&opened);
    let listener = reactor
        .listen(
            ListenArgs::new("tls://127.0.0.1:0", move |uuid| {
                counted.fetch_add(1, Ordering::SeqCst);
                fio_reactor::attach(uuid, echo()).unwrap();
                // Written in on_open: it goes through the hook too.
                fio_reactor::write(uuid, b"hi").unwrap();
            })
            .tls(tls.clone()),
        )
        .unwrap();
    let addr = fio_reactor::local_addr(listener)
        .and_then(|addr| addr.as_inet())
        .unwrap();
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut stream = client(addr);
        let mut greeting = [0u8; 2];
        stream.read_exact(&mut greeting).unwrap();
        stream.write_all(&[b'a' ^ 0x21, b'b' ^ 0x21]).unwrap();
        let mut echoed = [0u8; 2];
        stream.read_exact(&mut echoed).unwrap();
        stopper.stop();
        (greeting, echoed)
    });
    start_bounded(&reactor).unwrap();
    let (greeting, echoed) = client.join().unwrap();
    assert_eq!(greeting, [b'h' ^ 0x21, b'i' ^ 0x21], "the wire is ciphered");
    assert_eq!(
        echoed,
        [b'a' ^ 0x21, b'b' ^ 0x21],
        "the protocol saw plaintext"
    );
    assert_eq!(tls.servers.load(Ordering::SeqCst), 1);
    assert_eq!(opened.load(Ordering::SeqCst), 1);
}

#[test]
fn a_refusing_provider_closes_the_connection_without_on_open() {
    let reactor = reactor(1);
    let tls = XorTls::new(0x21, true);
    let opened = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&opened);
    let listener = reactor
        .listen(
            ListenArgs::new("tcp://127.0.0.1:0", move |uuid| {
                counted.fetch_add(1, Ordering::SeqCst);
                fio_reactor::attach(uuid, echo()).unwrap();
            })
            .tls(tls.clone()),
        )
        .unwrap();
    let addr = fio_reactor::local_addr(listener)
        .and_then(|addr| addr.as_inet())
        .unwrap();
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut stream = client(addr);
        let _ = stream.write_all(b"anyone?");
        let received = util::read_to_end(&mut stream);
        stopper.stop();
        received
    });
    start_bounded(&reactor).unwrap();
    assert!(client.join().unwrap().is_empty());
    assert_eq!(tls.servers.load(Ordering::SeqCst), 1);
    assert_eq!(opened.load(Ordering::SeqCst), 0);
}

#[test]
fn a_secured_client_talks_to_a_secured_server_and_names_it() {
    let reactor = reactor(1);
    let tls = XorTls::new(0x77, false);
    let listener = reactor
        .listen(
            ListenArgs::new("tls://127.0.0.1:0", |uuid| {
                fio_reactor::attach(uuid, echo()).unwrap();
            })
            .tls(tls.clone()),
        )
        .unwrap();
    let addr = fio_reactor::local_addr(listener)
        .and_then(|addr| addr.as_inet())
        .unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&got);
    reactor
        .connect(
            ConnectArgs::new(format!("tls://{addr}"), move |uuid| {
                fio_reactor::attach(
                    uuid,
                    Pinger {
                        got: Arc::clone(&into),
                        expected: 4,
                    },
                )
                .unwrap();
                fio_reactor::write(uuid, b"ping").unwrap();
            })
            .tls(tls.clone()),
        )
        .unwrap();
    start_bounded(&reactor).unwrap();
    assert_eq!(&*got.lock().unwrap(), b"ping");
    assert_eq!(*tls.names.lock().unwrap(), vec!["127.0.0.1".to_owned()]);
}

#[test]
fn a_tls_url_without_a_provider_is_refused() {
    let reactor = reactor(1);
    let listen = reactor.listen(ListenArgs::new("tls://127.0.0.1:0", |_| {}));
    assert!(matches!(
        listen,
        Err(fio_reactor::Error::TlsRequired { .. })
    ));
    let connect = reactor.connect(ConnectArgs::new("tls://127.0.0.1:9", |_| {}));
    assert!(matches!(
        connect,
        Err(fio_reactor::Error::TlsRequired { .. })
    ));
}
