//! The HTTP baseline answers each request once, pipelined or split across writes.

use std::time::Duration;

use fio_bench::HTTP_RESPONSE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every exchange must finish well within this; a hang fails the test instead of blocking.
const DEADLINE: Duration = Duration::from_secs(20);

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn expect_replies(stream: &mut TcpStream, count: usize) {
    let mut replies = vec![0; count * HTTP_RESPONSE.len()];
    tokio::time::timeout(DEADLINE, stream.read_exact(&mut replies))
        .await
        .expect("answered within the deadline")
        .unwrap();
    assert!(replies == HTTP_RESPONSE.repeat(count));
}

#[test]
fn sixteen_pipelined_requests_get_sixteen_responses_per_round() {
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(fio_bench::serve_http(listener));
        let mut stream = TcpStream::connect(address).await.unwrap();
        for _ in 0..100 {
            stream.write_all(&REQUEST.repeat(16)).await.unwrap();
            expect_replies(&mut stream, 16).await;
        }
        server.abort();
    });
}

#[test]
fn a_request_split_at_every_byte_is_answered_once() {
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(fio_bench::serve_http(listener));
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.set_nodelay(true).unwrap();
        for cut in 1..REQUEST.len() {
            stream.write_all(&REQUEST[..cut]).await.unwrap();
            stream.flush().await.unwrap();
            stream.write_all(&REQUEST[cut..]).await.unwrap();
            expect_replies(&mut stream, 1).await;
        }
        // Nothing more may arrive: a request answered twice would show up here.
        stream.write_all(REQUEST).await.unwrap();
        expect_replies(&mut stream, 1).await;
        server.abort();
    });
}
