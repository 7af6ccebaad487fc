//! The tokio http baseline of the load benchmark: `tokio_http --port N [--threads N]`.
//!
//! See [`fio_bench::serve_http`] for what it answers; it runs until killed.

use std::process::ExitCode;

fn main() -> ExitCode {
    let served = fio_bench::ServerArgs::parse(std::env::args().skip(1))
        .and_then(|args| fio_bench::run_server(&args, fio_bench::serve_http));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut message = error.to_string();
            let mut cause = std::error::Error::source(&error);
            while let Some(inner) = cause {
                message.push_str(&format!(": {inner}"));
                cause = inner.source();
            }
            eprintln!("tokio_http: {message}");
            ExitCode::FAILURE
        }
    }
}
