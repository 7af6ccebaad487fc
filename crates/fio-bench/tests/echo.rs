//! The echo baseline returns every byte in order, on many connections at once.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every exchange must finish well within this; a hang fails the test instead of blocking.
const DEADLINE: Duration = Duration::from_secs(20);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_megabyte_comes_back_unchanged_while_still_being_sent() {
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(fio_bench::serve_echo(listener));
        let sent: Vec<u8> = (0..1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
        let stream = TcpStream::connect(address).await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let to_send = sent.clone();
        // Writing and reading concurrently: the server's buffers cannot hold a megabyte.
        let writer_task = tokio::spawn(async move { writer.write_all(&to_send).await });
        let mut received = vec![0; sent.len()];
        tokio::time::timeout(DEADLINE, reader.read_exact(&mut received))
            .await
            .expect("echoed within the deadline")
            .unwrap();
        writer_task.await.unwrap().unwrap();
        assert!(received == sent, "the echo differs from what was sent");
        server.abort();
    });
}

#[test]
fn sixty_four_connections_each_get_their_own_bytes() {
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(fio_bench::serve_echo(listener));
        let mut clients = Vec::new();
        for id in 0..64u8 {
            clients.push(tokio::spawn(async move {
                let mut stream = TcpStream::connect(address).await?;
                let message = [id; 100];
                let mut reply = [0; 100];
                for _ in 0..10 {
                    stream.write_all(&message).await?;
                    stream.read_exact(&mut reply).await?;
                    assert_eq!(reply, message);
                }
                Ok::<(), std::io::Error>(())
            }));
        }
        for client in clients {
            tokio::time::timeout(DEADLINE, client)
                .await
                .expect("served within the deadline")
                .unwrap()
                .unwrap();
        }
        server.abort();
    });
}
