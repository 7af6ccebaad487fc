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
    let mut child = Command::new(program)
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
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (server, port)
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
fn a_bad_command_line_fails_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_tokio_echo"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("unknown argument"), "{message}");
}
