//! The two binaries start from the benchmark's command line and serve on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills the server however the test ends, so no process outlives it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program --port 0 --threads 1` and returns it with the port it printed.
fn start(program: &str) -> (Server, u16) {
    try_start(program, &[]).unwrap_or_else(|line| panic!("unexpected first line {line:?}"))
}

/// Starts `bare_uring <mode>`, or reports the skip (`fio_test::skip`, a failure where the run
/// requires io_uring) and returns None when io_uring is refused here.
fn start_bare(mode: &str) -> Option<(Server, u16)> {
    match try_start(env!("CARGO_BIN_EXE_bare_uring"), &[mode]) {
        Ok(started) => Some(started),
        Err(line) if line.contains("io_uring unavailable") => {
            fio_test::skip(fio_test::Feature::Uring, line.trim());
            None
        }
        Err(line) => panic!("unexpected first line {line:?}"),
    }
}

/// Starts `program <first> --port 0 --threads 1`: the server and the port it printed, or the
/// first line it printed instead of the port.
fn try_start(program: &str, first: &[&str]) -> Result<(Server, u16), String> {
    let mut child = Command::new(program)
        .args(first)
        .args(["--port", "0", "--threads", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let mut line = String::new();
    // The server prints this line once it listens, or exits (EOF) if it cannot.
    BufReader::new(stderr).read_line(&mut line).unwrap();
    let port = line
        .trim()
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|port| port.parse().ok())
        .ok_or(line)?;
    Ok((server, port))
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

#[test]
fn tokio_echo_echoes() {
    let (_server, port) = start(env!("CARGO_BIN_EXE_tokio_echo"));
    let mut stream = connect(port);
    stream.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut reply = [0; 14];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"*1\r\n$4\r\nPING\r\n");
}

#[test]
fn tokio_http_answers_hello() {
    let (_server, port) = start(env!("CARGO_BIN_EXE_tokio_http"));
    let mut stream = connect(port);
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut reply = vec![0; fio_bench::HTTP_RESPONSE.len()];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(reply, fio_bench::HTTP_RESPONSE);
}

#[test]
fn bare_uring_echoes_in_order_across_many_connections() {
    let Some((_server, port)) = start_bare("echo") else {
        return;
    };
    let mut streams: Vec<TcpStream> = (0..8).map(|_| connect(port)).collect();
    for round in 0..50u32 {
        for (index, stream) in streams.iter_mut().enumerate() {
            // Up to 16 pipelined pings, and now and then more than one provided buffer's worth.
            let size = if round % 10 == 9 { 10_000 } else { 14 * 16 };
            let message: Vec<u8> = (0..size)
                .map(|i| (i + index + round as usize) as u8)
                .collect();
            stream.write_all(&message).unwrap();
            let mut reply = vec![0; size];
            stream.read_exact(&mut reply).unwrap();
            assert_eq!(reply, message, "connection {index}, round {round}");
        }
    }
}

#[test]
fn bare_uring_answers_pipelined_and_split_requests() {
    let Some((_server, port)) = start_bare("http") else {
        return;
    };
    let mut stream = connect(port);
    stream
        .write_all(&b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".repeat(16))
        .unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\n\r").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    stream.write_all(b"\n").unwrap();
    let mut reply = vec![0; 17 * fio_bench::HTTP_RESPONSE.len()];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(reply, fio_bench::HTTP_RESPONSE.repeat(17));
    // A closed client leaves the server serving others.
    drop(stream);
    let mut other = connect(port);
    other.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut reply = vec![0; fio_bench::HTTP_RESPONSE.len()];
    other.read_exact(&mut reply).unwrap();
    assert_eq!(reply, fio_bench::HTTP_RESPONSE);
}

#[test]
fn a_bad_command_line_fails_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_tokio_echo"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("unknown argument"), "{message}");
}
