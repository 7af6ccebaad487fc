//! The tokio baselines of fio's loopback load benchmark (`cargo xtask bench load`).
//!
//! Layer: a leaf that depends on tokio (and, for the `bare_uring` binary, io-uring and libc);
//! `xtask bench` runs its binaries `tokio_echo`, `tokio_http` and `bare_uring echo|http` (the
//! bare io-uring loop, the floor) and compares every fio server with them in the same run.
//!
//! Both are the plainest correct servers tokio's current-thread runtime allows: one task per
//! connection, `TCP_NODELAY`, a 64 KiB read buffer, one `write_all` per read. The HTTP server
//! answers every complete request it read at once ([`RequestCounter`]), so 16-deep pipelined
//! loads cost it one write per read, as they would cost any batching server. Every fio
//! contender in the benchmark must answer byte for byte as these do ([`HTTP_RESPONSE`]).
//!
//! # Example
//!
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
//! runtime.block_on(async {
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let address = listener.local_addr()?;
//!     let server = tokio::spawn(fio_bench::serve_http(listener));
//!     let mut client = tokio::net::TcpStream::connect(address).await?;
//!     // Two pipelined requests, the second split across two writes.
//!     client.write_all(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r").await?;
//!     client.write_all(b"\n").await?;
//!     let mut replies = vec![0; 2 * fio_bench::HTTP_RESPONSE.len()];
//!     client.read_exact(&mut replies).await?;
//!     assert_eq!(replies, fio_bench::HTTP_RESPONSE.repeat(2));
//!     server.abort();
//!     Ok::<(), std::io::Error>(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![doc(test(attr(deny(warnings))))]

mod args;
mod echo;
mod error;
mod http;

pub use args::{ServerArgs, run_server};
pub use echo::serve_echo;
pub use error::Error;
pub use http::{HTTP_RESPONSE, RequestCounter, serve_http};
