//! The README example: a TLS echo server on a self-signed certificate, and fio's own TLS
//! client that says hello to it, prints the echo and stops.

use fio_reactor::{Concurrency, ConnectArgs, ListenArgs, Protocol, StartArgs, Uuid};
use fio_tls::{Identity, TlsBuilder};

/// Echoes what it reads (the server).
struct Echo;

impl Protocol for Echo {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 4096];
        while let Ok(count @ 1..) = fio_reactor::read(uuid, &mut buf) {
            let _ = fio_reactor::write(uuid, &buf[..count]);
        }
    }
}

/// Prints what comes back, then stops (the client).
struct Hello;

impl Protocol for Hello {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 4096];
        if let Ok(count @ 1..) = fio_reactor::read(uuid, &mut buf) {
            println!(
                "echoed over TLS: {}",
                String::from_utf8_lossy(&buf[..count])
            );
            fio_reactor::stop();
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let identity = Identity::self_signed(&["localhost", "127.0.0.1"])?;
    println!("server certificate SHA-256 {}", identity.fingerprint());
    // The client trusts exactly this certificate.
    let client = TlsBuilder::new()
        .trust(identity.chain()[0].clone())
        .build()?;
    let server = TlsBuilder::new().cert_add(None, identity).build()?;

    let listener = fio_reactor::listen(
        ListenArgs::new("tls://127.0.0.1:0", |uuid| {
            let _ = fio_reactor::attach(uuid, Echo);
        })
        .tls(server),
    )?;
    let addr = fio_reactor::local_addr(listener)
        .and_then(|addr| addr.as_inet())
        .ok_or("no address")?;
    fio_reactor::connect(
        ConnectArgs::new(format!("tls://{addr}"), |uuid| {
            let _ = fio_reactor::attach(uuid, Hello);
            // Written before the handshake ends: it waits in the TLS session.
            let _ = fio_reactor::write(uuid, b"hello");
        })
        .tls(client),
    )?;
    fio_reactor::start(StartArgs::new().threads(Concurrency::ONE))?;
    Ok(())
}
