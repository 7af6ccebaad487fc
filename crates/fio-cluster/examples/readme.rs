//! The README example: an accept-and-close server served by 4 forked workers of 2 threads.

use fio_reactor::{ListenArgs, StartArgs};

fn main() -> Result<(), fio_reactor::Error> {
    // Bound in the root before `start`; every worker accepts on it.
    fio_reactor::listen(ListenArgs::new("tcp://0.0.0.0:3000", |uuid| {
        let _ = fio_reactor::close(uuid);
    }))?;
    // Returns in the root once SIGINT/SIGTERM stopped every worker.
    fio_cluster::start(StartArgs {
        threads: 2,
        workers: 4,
        ..Default::default()
    })
}
