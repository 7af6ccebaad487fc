//! Objects linked to a connection's lifetime: set, replace, unset (no cleanup), remove
//! (cleanup), and cleanup on close before the protocol's `on_close`.

mod util;

use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use fio_reactor::{Error, Protocol, Uuid};
use util::{IO_TIMEOUT, client, listen_local, reactor, read_to_end, start_bounded};

/// Records its name in the shared log when dropped (its cleanup).
struct Logged {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Logged {
    fn drop(&mut self) {
        self.log.lock().unwrap().push(format!("drop {}", self.name));
    }
}

/// Logs its `on_close`.
struct Quiet {
    log: Arc<Mutex<Vec<String>>>,
}

impl Protocol for Quiet {
    fn on_close(&mut self, _uuid: Uuid) {
        self.log.lock().unwrap().push("on_close".to_owned());
    }
}

fn logged(name: &'static str, log: &Arc<Mutex<Vec<String>>>) -> Logged {
    Logged {
        name,
        log: Arc::clone(log),
    }
}

#[test]
fn linked_objects_follow_the_connection() {
    let reactor = reactor(1);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (opened, uuids) = mpsc::channel();
    let opened = Mutex::new(opened);
    let protocol_log = Arc::clone(&log);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::attach(
            uuid,
            Quiet {
                log: Arc::clone(&protocol_log),
            },
        )
        .unwrap();
        opened.lock().unwrap().send(uuid).unwrap();
    });
    let stopper = reactor.clone();
    let client_log = Arc::clone(&log);
    let client = thread::spawn(move || {
        let log = client_log;
        let mut stream = client(addr);
        let uuid = uuids.recv_timeout(IO_TIMEOUT).unwrap();
        let note = |line: &str| log.lock().unwrap().push(line.to_owned());
        // From this (foreign) thread, synchronously.
        fio_reactor::uuid_env_set(uuid, "kept", 0, logged("kept", &log)).unwrap();
        fio_reactor::uuid_env_set(uuid, "kept", 1, logged("kept/1", &log)).unwrap();
        let closure_log = Arc::clone(&log);
        fio_reactor::uuid_env_set_with(uuid, "closure", 0, 7u32, move |value| {
            closure_log
                .lock()
                .unwrap()
                .push(format!("on_close closure {value}"));
        })
        .unwrap();
        note("replacing");
        fio_reactor::uuid_env_set(uuid, "kept", 1, logged("kept/1 again", &log)).unwrap();
        note("unsetting");
        fio_reactor::uuid_env_set(uuid, "taken", 0, logged("taken", &log)).unwrap();
        let wrong = fio_reactor::uuid_env_unset::<String>(uuid, "taken", 0);
        assert!(matches!(wrong, Err(Error::EnvNotFound { kind: 0, .. })));
        let taken = fio_reactor::uuid_env_unset::<Logged>(uuid, "taken", 0).unwrap();
        assert_eq!(taken.name, "taken");
        assert!(matches!(
            fio_reactor::uuid_env_unset::<Logged>(uuid, "taken", 0),
            Err(Error::EnvNotFound { .. })
        ));
        note("removing");
        fio_reactor::uuid_env_set(uuid, "removed", 0, logged("removed", &log)).unwrap();
        fio_reactor::uuid_env_remove(uuid, "removed", 0).unwrap();
        assert!(matches!(
            fio_reactor::uuid_env_remove(uuid, "removed", 0),
            Err(Error::EnvNotFound { .. })
        ));
        note("closing");
        fio_reactor::close(uuid).unwrap();
        let _ = read_to_end(&mut stream);
        // on_close may still be on its way: the reactor stops after it, and the checks below
        // run once `start` returned.
        stopper.stop();
        (uuid, taken)
    });
    start_bounded(&reactor).unwrap();
    let (uuid, taken) = client.join().unwrap();
    let log_after_close = log.lock().unwrap().clone();
    assert_eq!(
        log_after_close,
        [
            "replacing",
            "drop kept/1",
            "unsetting",
            "removing",
            "drop removed",
            "closing",
            // Cleanups in the order the keys were first linked, then the protocol's on_close.
            "drop kept",
            "drop kept/1 again",
            "on_close closure 7",
            "on_close",
        ]
    );
    // The closed connection's uuid is stale now: linking cleans up at once.
    assert!(matches!(
        fio_reactor::uuid_env_set(uuid, "late", 0, logged("late", &log)),
        Err(Error::InvalidUuid(_))
    ));
    assert_eq!(log.lock().unwrap().last().unwrap(), "drop late");
    assert!(matches!(
        fio_reactor::uuid_env_unset::<Logged>(uuid, "kept", 0),
        Err(Error::InvalidUuid(_))
    ));
    drop(taken);
    assert_eq!(log.lock().unwrap().last().unwrap(), "drop taken");
}
