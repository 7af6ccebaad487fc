//! Output backpressure: a peer that pipelines requests without reading the answers doesn't
//! make the server queue without bound; `on_data` pauses while a megabyte or more waits to be
//! sent and resumes, losing nothing, once the queue drains.

mod util;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use fio_reactor::{Protocol, Uuid};
use util::{client, listen_local, reactor, start_bounded};

/// Requests the client pipelines before reading anything.
const REQUESTS: usize = 12;

/// The answer to each request: far above the send queue's soft limit.
const ANSWER: usize = 4 << 20;

/// Answers each 4-byte request with [`ANSWER`] bytes, one request per call, and notes how many
/// answers were still queued each time `on_data` ran.
struct Downloads {
    queued_at_entry: Arc<Mutex<Vec<usize>>>,
    answered: Arc<AtomicUsize>,
}

impl Protocol for Downloads {
    fn on_data(&mut self, uuid: Uuid) {
        let mut request = [0u8; 4];
        // The peer's end of stream (`Err(Eof)`) needs nothing here: the reactor closes.
        let Ok(count) = fio_reactor::read(uuid, &mut request) else {
            return;
        };
        if count == 0 {
            return;
        }
        assert_eq!(count, 4, "requests arrive whole on loopback");
        self.queued_at_entry
            .lock()
            .unwrap()
            .push(fio_reactor::pending(uuid).unwrap());
        let index = self.answered.fetch_add(1, Ordering::SeqCst);
        fio_reactor::write2(uuid, vec![index as u8; ANSWER], false).unwrap();
    }
}

#[test]
fn on_data_waits_while_answers_pile_up_and_nothing_is_lost() {
    let reactor = reactor(1);
    let queued_at_entry = Arc::new(Mutex::new(Vec::new()));
    let answered = Arc::new(AtomicUsize::new(0));
    let (seen, count) = (Arc::clone(&queued_at_entry), Arc::clone(&answered));
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let protocol = Downloads {
            queued_at_entry: Arc::clone(&seen),
            answered: Arc::clone(&count),
        };
        fio_reactor::attach(uuid, protocol).unwrap();
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut stream = client(addr);
        for _ in 0..REQUESTS {
            stream.write_all(b"GET!").unwrap();
        }
        let mut answer = vec![0u8; ANSWER];
        let mut intact = 0;
        for index in 0..REQUESTS {
            stream.read_exact(&mut answer).unwrap();
            if answer.iter().all(|&byte| byte == index as u8) {
                intact += 1;
            }
        }
        stopper.stop();
        intact
    });
    start_bounded(&reactor).unwrap();
    assert_eq!(
        client.join().unwrap(),
        REQUESTS,
        "every answer whole, in order"
    );
    assert_eq!(answered.load(Ordering::SeqCst), REQUESTS);
    let queued = queued_at_entry.lock().unwrap().clone();
    assert!(
        queued.iter().all(|&chunks| chunks == 0),
        "on_data ran with answers still queued: {queued:?}"
    );
}
