//! Reaching a protocol from outside its callbacks: `defer_io_task` (never concurrently with
//! a callback, `None` once the connection is gone) and `protocol_try_lock`.

mod util;

use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use fio_reactor::{Error, Protocol, Uuid};
use util::{IO_TIMEOUT, client, listen_local, reactor, start_bounded};

/// Counts tasks run on it; notes whether one ever ran while `on_data` did.
struct Counter {
    tasks: u32,
    in_data: Arc<AtomicBool>,
    overlapped: Arc<AtomicBool>,
    fallbacks: Arc<AtomicUsize>,
    lock_results: Arc<Mutex<Vec<String>>>,
}

impl Counter {
    fn task(uuid: Uuid, protocol: Option<&mut dyn Protocol>, line: &'static str) {
        let counter = protocol
            .and_then(|protocol| protocol.downcast_mut::<Counter>())
            .expect("the task finds its Counter while the connection is open");
        if counter.in_data.load(Ordering::SeqCst) {
            counter.overlapped.store(true, Ordering::SeqCst);
        }
        counter.tasks += 1;
        fio_reactor::write(uuid, format!("{line} {}\n", counter.tasks).as_bytes()).unwrap();
    }
}

impl Protocol for Counter {
    fn on_data(&mut self, uuid: Uuid) {
        self.in_data.store(true, Ordering::SeqCst);
        let mut buf = [0u8; 64];
        let mut quit = false;
        while let Ok(count @ 1..) = fio_reactor::read(uuid, &mut buf) {
            quit |= buf[..count].contains(&b'q');
        }
        let locked = fio_reactor::protocol_try_lock(uuid);
        self.lock_results
            .lock()
            .unwrap()
            .push(format!("in on_data: {:?}", locked.err()));
        if quit {
            fio_reactor::close(uuid).unwrap();
        } else {
            // Queued from inside the callback: runs after it returns, never inside it.
            fio_reactor::defer_io_task(uuid, |uuid, protocol| {
                Counter::task(uuid, protocol, "data")
            })
            .unwrap();
        }
        self.in_data.store(false, Ordering::SeqCst);
    }

    fn on_close(&mut self, uuid: Uuid) {
        // The connection is gone: the task runs at once, with no protocol.
        let fallbacks = Arc::clone(&self.fallbacks);
        let queued = fio_reactor::defer_io_task(uuid, move |_uuid, protocol| {
            assert!(protocol.is_none());
            fallbacks.fetch_add(1, Ordering::SeqCst);
        });
        assert!(matches!(queued, Err(Error::InvalidUuid(_))));
    }
}

#[test]
fn io_tasks_run_between_callbacks_and_fall_back_once_the_connection_is_gone() {
    // One thread, so the deferred lock below runs on the connection's owner.
    let reactor = reactor(1);
    let overlapped = Arc::new(AtomicBool::new(false));
    let fallbacks = Arc::new(AtomicUsize::new(0));
    let lock_results = Arc::new(Mutex::new(Vec::new()));
    let (opened, uuids) = mpsc::channel();
    let opened = Mutex::new(opened);
    let (seen, counted, locks) = (
        Arc::clone(&overlapped),
        Arc::clone(&fallbacks),
        Arc::clone(&lock_results),
    );
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let counter = Counter {
            tasks: 0,
            in_data: Arc::new(AtomicBool::new(false)),
            overlapped: Arc::clone(&seen),
            fallbacks: Arc::clone(&counted),
            lock_results: Arc::clone(&locks),
        };
        fio_reactor::attach(uuid, counter).unwrap();
        // On the owning thread but outside the connection's callbacks: the lock works, and
        // a second lock (or a task) waits for it.
        let locks = Arc::clone(&locks);
        fio_reactor::defer(move || {
            let mut results = locks.lock().unwrap();
            match fio_reactor::protocol_try_lock(uuid) {
                Ok(mut guard) => {
                    assert_eq!(guard.uuid(), uuid);
                    let counter = guard.downcast_mut::<Counter>().expect("a Counter");
                    counter.tasks += 100;
                    let again = fio_reactor::protocol_try_lock(uuid);
                    results.push(format!("locked twice: {:?}", again.err()));
                    results.push("locked".to_owned());
                }
                Err(error) => results.push(format!("lock failed: {error}")),
            }
        });
        opened.lock().unwrap().send(uuid).unwrap();
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut stream = client(addr);
        let uuid = uuids.recv_timeout(IO_TIMEOUT).unwrap();
        // From a thread that isn't the owner: the lock is refused, the task is routed.
        let foreign = fio_reactor::protocol_try_lock(uuid).err();
        fio_reactor::defer_io_task(uuid, |uuid, protocol| {
            Counter::task(uuid, protocol, "foreign")
        })
        .unwrap();
        let mut lines = BufReader::new(stream.try_clone().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        stream.write_all(b"x").unwrap();
        let second = lines.next().unwrap().unwrap();
        stream.write_all(b"q").unwrap();
        assert!(lines.next().is_none(), "closed after q");
        stopper.stop();
        (foreign, [first, second])
    });
    start_bounded(&reactor).unwrap();
    let (foreign, lines) = client.join().unwrap();
    assert!(matches!(foreign, Some(Error::ForeignThread(_))));
    // The deferred lock ran before the routed task or after it: either way 100 is in the count.
    assert!(lines[0].starts_with("foreign "), "{lines:?}");
    assert_eq!(lines[1], "data 102");
    assert!(
        !overlapped.load(Ordering::SeqCst),
        "a task ran inside on_data"
    );
    assert_eq!(fallbacks.load(Ordering::SeqCst), 1);
    let results = lock_results.lock().unwrap();
    assert!(results.contains(&"locked".to_owned()), "{results:?}");
    assert!(
        results
            .iter()
            .any(|line| line.starts_with("locked twice: Some(Locked(")),
        "{results:?}"
    );
    assert_eq!(
        results
            .iter()
            .filter(|line| line.starts_with("in on_data: Some(Locked("))
            .count(),
        2,
        "{results:?}"
    );
}

#[test]
fn a_task_for_a_stale_uuid_runs_its_fallback_at_once() {
    let ran = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&ran);
    let result = fio_reactor::defer_io_task(Uuid::from_parts(0, 0), move |_, protocol| {
        seen.store(protocol.is_none(), Ordering::SeqCst);
    });
    assert!(matches!(result, Err(Error::InvalidUuid(_))));
    assert!(ran.load(Ordering::SeqCst));
    assert!(matches!(
        fio_reactor::protocol_try_lock(Uuid::from_parts(0, 0)),
        Err(Error::InvalidUuid(_))
    ));
}
