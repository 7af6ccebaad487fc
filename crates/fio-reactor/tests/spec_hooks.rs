//! `fio_rw_hook_replace_unsafe` calls no cleanup: [`HookIo::replace_with`] hands the old hook
//! to the new one; [`HookIo::replace`] (the Rust convenience) cleans it up at once.

mod util;

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use fio_reactor::{HookIo, Protocol, RwHook, Uuid};
use util::{client, listen_local, reactor, start_bounded};

/// Counts cleanups (drops) of each kind of hook.
#[derive(Default)]
struct Cleanups {
    first: AtomicUsize,
    second: AtomicUsize,
    /// `first`'s cleanups when the protocol had read through the replaced hook.
    first_after_replacing: AtomicUsize,
}

/// The hook set in `on_open`; replaces itself on its first read.
struct First {
    cleanups: Arc<Cleanups>,
    keep_me: bool,
}

impl RwHook for First {
    fn read(&mut self, io: &mut HookIo<'_>, buf: &mut [u8]) -> io::Result<usize> {
        let cleanups = Arc::clone(&self.cleanups);
        if self.keep_me {
            io.replace_with(move |old| {
                Box::new(Second {
                    inner: Some(old),
                    cleanups,
                })
            });
        } else {
            io.replace(Second {
                inner: None,
                cleanups,
            });
        }
        io.receive(buf)
    }
}

impl Drop for First {
    fn drop(&mut self) {
        self.cleanups.first.fetch_add(1, Ordering::SeqCst);
    }
}

/// The replacement: upper-cases what is read; may hold the hook it replaced.
struct Second {
    inner: Option<Box<dyn RwHook>>,
    cleanups: Arc<Cleanups>,
}

impl RwHook for Second {
    fn read(&mut self, io: &mut HookIo<'_>, buf: &mut [u8]) -> io::Result<usize> {
        let count = io.receive(buf)?;
        buf[..count].make_ascii_uppercase();
        Ok(count)
    }
}

impl Drop for Second {
    fn drop(&mut self) {
        self.cleanups.second.fetch_add(1, Ordering::SeqCst);
        // The replaced hook, if kept, goes with it (its cleanup runs now, once).
        drop(self.inner.take());
    }
}

/// Reads one byte (through `First`, which replaces itself), then the rest (through
/// `Second`); echoes it all and closes once it has `"hello"`.
struct Reader {
    got: Vec<u8>,
    cleanups: Arc<Cleanups>,
}

impl Protocol for Reader {
    fn on_data(&mut self, uuid: Uuid) {
        let mut one = [0u8; 1];
        if self.got.is_empty() && fio_reactor::read(uuid, &mut one).unwrap_or(0) == 1 {
            self.got.push(one[0]);
            let first = self.cleanups.first.load(Ordering::SeqCst);
            self.cleanups
                .first_after_replacing
                .store(first, Ordering::SeqCst);
        }
        let mut buf = [0u8; 64];
        while let Ok(count @ 1..) = fio_reactor::read(uuid, &mut buf) {
            self.got.extend_from_slice(&buf[..count]);
        }
        if self.got.len() >= 5 {
            fio_reactor::write(uuid, &self.got).unwrap();
            fio_reactor::close(uuid).unwrap();
        }
    }

    fn on_close(&mut self, _uuid: Uuid) {
        fio_reactor::stop();
    }
}

/// Runs one connection; returns what came back and the cleanup counts.
fn run(keep_me: bool) -> (Vec<u8>, Arc<Cleanups>) {
    let reactor = reactor(1);
    let cleanups = Arc::new(Cleanups::default());
    let counted = Arc::clone(&cleanups);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::rw_hook_set(
            uuid,
            First {
                cleanups: Arc::clone(&counted),
                keep_me,
            },
        )
        .unwrap();
        fio_reactor::attach(
            uuid,
            Reader {
                got: Vec::new(),
                cleanups: Arc::clone(&counted),
            },
        )
        .unwrap();
    });
    let peer = std::thread::spawn(move || {
        let mut stream = client(addr);
        stream.write_all(b"hello").unwrap();
        let mut back = Vec::new();
        stream.read_to_end(&mut back).unwrap();
        back
    });
    start_bounded(&reactor).unwrap();
    (peer.join().unwrap(), cleanups)
}

#[test]
fn replace_with_hands_the_old_hook_over_without_cleaning_it_up() {
    let (back, cleanups) = run(true);
    assert_eq!(
        back, b"hELLO",
        "the first byte came through First, the rest Second"
    );
    assert_eq!(
        cleanups.first_after_replacing.load(Ordering::SeqCst),
        0,
        "no cleanup when replaced"
    );
    // The connection is gone: Second's cleanup ran, and with it the First it kept, once.
    assert_eq!(cleanups.second.load(Ordering::SeqCst), 1);
    assert_eq!(cleanups.first.load(Ordering::SeqCst), 1);
}

#[test]
fn replace_cleans_the_old_hook_up_at_once() {
    let (back, cleanups) = run(false);
    assert_eq!(back, b"hELLO");
    assert_eq!(cleanups.first_after_replacing.load(Ordering::SeqCst), 1);
    assert_eq!(cleanups.second.load(Ordering::SeqCst), 1);
    assert_eq!(cleanups.first.load(Ordering::SeqCst), 1);
}
