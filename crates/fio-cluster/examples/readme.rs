//! The README example: an accept-and-close server served by 4 forked workers of 2 threads.

use fio_reactor::{Concurrency, ListenArgs, StartArgs};

fn main() -> Result<(), fio_reactor::Error> {
    // Bound in the root before `start`; every worker accepts on it.
    fio_reactor::listen(ListenArgs::new("tcp://0.0.0.0:3000", |uuid| {
        // Fails only if the connection is already gone.
        fio_reactor::close(uuid).ok();
    }))?;
    let (two, four) = (Concurrency::exactly(2), Concurrency::exactly(4));
    let args = StartArgs::new()
        .threads(two.expect("2 > 0"))
        .workers(four.expect("4 > 0"));
    // Returns in the root once SIGINT/SIGTERM stopped every worker.
    fio_cluster::start(args)
}
