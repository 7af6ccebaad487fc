//! The owner path: `read` and `write` from a connection's own `on_data` skip the lookup of its
//! entry while it has no hook, nothing waits in its outbox and it isn't closing. Whatever
//! changes one of those during the callback must send the calls after it the long way: behind
//! a file, through a new hook, refused once closing.

mod util;

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use fio_reactor::{Error, HookIo, Protocol, RwHook, Uuid};
use util::{listen_local, reactor, run_exchange};

/// Larger than the socket buffers, so the file is still being sent when the tail is written.
const FILE_LEN: usize = 1 << 20;

fn pattern() -> Vec<u8> {
    (0..FILE_LEN).map(|n| (n % 251) as u8).collect()
}

/// A temporary file holding [`pattern`], removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new() -> Self {
        let name = format!("fio-owner-path-{}", std::process::id());
        let path = std::env::temp_dir().join(name);
        File::create(&path).unwrap().write_all(&pattern()).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What the protocol does on its first `on_data`, after reading the client's bytes.
#[derive(Clone, Copy)]
enum Scenario {
    /// Writes a head, sends the file, writes a tail, closes.
    File,
    /// Writes a head, installs [`Upper`], writes a tail, closes.
    Hook,
}

/// Upper-cases what the protocol writes; reads pass through.
struct Upper;

impl RwHook for Upper {
    fn write_borrowed(&mut self, io: &mut HookIo<'_>, data: &[u8]) -> io::Result<()> {
        io.send_copy(&data.to_ascii_uppercase())
    }
}

struct Server {
    scenario: Scenario,
    file: Option<File>,
    done: bool,
}

impl Protocol for Server {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        while fio_reactor::read(uuid, &mut buf).unwrap_or(0) > 0 {}
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        fio_reactor::write(uuid, b"head:").unwrap();
        match self.scenario {
            Scenario::File => {
                let file = self.file.take().expect("the file");
                fio_reactor::sendfile(uuid, file, 0, 0).unwrap();
            }
            Scenario::Hook => fio_reactor::rw_hook_set(uuid, Upper).unwrap(),
        }
        fio_reactor::write(uuid, b":tail").unwrap();
        fio_reactor::close(uuid).unwrap();
        let late = fio_reactor::write(uuid, b"late");
        assert!(matches!(late, Err(Error::Closing(_))), "{late:?}");
    }
}

/// Runs `scenario` against one client; returns what the client received.
fn run(scenario: Scenario, file: Option<File>) -> Vec<u8> {
    let reactor = reactor(1);
    let file = std::sync::Mutex::new(file);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let server = Server {
            scenario,
            file: file.lock().unwrap().take(),
            done: false,
        };
        fio_reactor::attach(uuid, server).unwrap();
    });
    run_exchange(&reactor, addr, b"go")
}

#[test]
fn a_write_after_a_file_in_the_same_on_data_waits_behind_it() {
    let temp = TempFile::new();
    let received = run(Scenario::File, Some(File::open(&temp.0).unwrap()));
    let mut expected = b"head:".to_vec();
    expected.extend_from_slice(&pattern());
    expected.extend_from_slice(b":tail");
    assert_eq!(received.len(), expected.len());
    assert!(received == expected, "the tail overtook the file");
}

#[test]
fn a_write_after_a_hook_is_set_in_the_same_on_data_goes_through_it() {
    let received = run(Scenario::Hook, None);
    assert_eq!(String::from_utf8_lossy(&received), "head::TAIL");
}
