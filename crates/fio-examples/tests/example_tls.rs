//! The examples with `--tls` and `--cert`/`--key`, as the real clients see them: `openssl
//! s_client` talks to `echo` (and sees the certificate whose fingerprint was logged), `curl
//! --insecure` gets `http_hello`'s page.

#[path = "../examples/echo.rs"]
#[allow(dead_code, reason = "only its command line is used here")]
mod echo;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Lines the server prints at most before it listens.
const MAX_LINES: usize = 100;

/// A child process killed (and reaped) on drop.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `program`'s path; a failure (not a skip) when it is missing: `.ci/run` installs it.
fn require(program: &str) -> String {
    ["/usr/bin", "/usr/local/bin", "/bin"]
        .iter()
        .map(|dir| format!("{dir}/{program}"))
        .find(|path| std::path::Path::new(path).exists())
        .unwrap_or_else(|| panic!("{program} is not installed (.ci/run installs it)"))
}

/// The built example `name` (cargo builds the examples before their tests).
fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .join("examples")
        .join(name)
}

/// Starts example `name` with `args` on 127.0.0.1:0; returns it, its port, and the logged
/// certificate fingerprint (if any).
fn server(name: &str, args: &[&str]) -> (Kid, u16, Option<String>) {
    let mut child = Command::new(example(name))
        .args(["--url", "tcp://127.0.0.1:0", "--threads", "1"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the example");
    let stderr = child.stderr.take().expect("piped stderr");
    let kid = Kid(child);
    let mut lines = BufReader::new(stderr).lines();
    let (mut port, mut fingerprint, mut log) = (None, None, Vec::new());
    while port.is_none() {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.split("SHA-256 fingerprint ").nth(1) {
            fingerprint = Some(rest.trim().to_owned());
        }
        if let Some(address) = line.split("listening on 127.0.0.1:").nth(1) {
            port = address
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok());
        }
        log.push(line);
        assert!(log.len() < MAX_LINES, "{log:#?}");
    }
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    let port = port.unwrap_or_else(|| panic!("no listening line: {log:#?}"));
    (kid, port, fingerprint)
}

/// Reads `stream` until `needle` shows up or 20 seconds pass.
fn read_until(stream: &mut impl Read, needle: &str) -> String {
    let end = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end && !String::from_utf8_lossy(&out).contains(needle) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(count) => out.extend_from_slice(&buf[..count]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn echo_with_tls_talks_to_openssl_s_client_and_logs_its_fingerprint() {
    let (_server, port, fingerprint) = server("echo", &["--tls"]);
    let fingerprint = fingerprint.expect("the fingerprint is logged");
    let connect = format!("127.0.0.1:{port}");
    let mut client = Kid(Command::new(require("openssl"))
        .args(["s_client", "-connect", &connect, "-servername", "localhost"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run openssl"));
    let mut stdin = client.0.stdin.take().unwrap();
    let mut stdout = client.0.stdout.take().unwrap();
    let welcome = read_until(&mut stdout, "Echo Service: Welcome");
    assert!(welcome.contains("Echo Service: Welcome"), "{welcome}");
    stdin.write_all(b"hello\n").unwrap();
    stdin.flush().unwrap();
    let echoed = read_until(&mut stdout, "Echo: hello");
    assert!(echoed.contains("Echo: hello"), "{echoed}");
    // The certificate s_client printed is the one whose fingerprint was logged.
    let pem_start = welcome
        .find("-----BEGIN CERTIFICATE-----")
        .expect("s_client shows the cert");
    let pem_end = welcome.find("-----END CERTIFICATE-----").unwrap() + 25;
    let mut x509 = Command::new(require("openssl"))
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    x509.stdin
        .take()
        .unwrap()
        .write_all(&welcome.as_bytes()[pem_start..pem_end])
        .unwrap();
    let printed = String::from_utf8(x509.wait_with_output().unwrap().stdout).unwrap();
    assert!(printed.contains(&fingerprint), "{printed} vs {fingerprint}");
}

#[test]
fn http_hello_with_cert_and_key_files_serves_curl() {
    let identity = fio_tls::Identity::self_signed(&["localhost"]).unwrap();
    let dir = std::env::temp_dir().join(format!("fio-examples-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, identity.cert_pem()).unwrap();
    std::fs::write(&key, identity.key_pem()).unwrap();
    let (_server, port, _) = server(
        "http_hello",
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    let url = format!("https://localhost:{port}/");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let output = Command::new(require("curl"))
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args([
            "--cacert",
            cert.to_str().unwrap(),
            "--resolve",
            &resolve,
            &url,
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.stdout.is_empty());

    let insecure = Command::new(require("curl"))
        .args(["--insecure", "--silent", "--max-time", "20", &url])
        .args(["--resolve", &resolve])
        .output()
        .unwrap();
    assert_eq!(insecure.stdout, output.stdout);
}

#[test]
fn the_tls_command_line() {
    use fio_examples::support::{Options, TlsSource};
    let parse = |args: &[&str]| Options::parse(args.iter().map(|arg| arg.to_string()));
    assert_eq!(parse(&[]).unwrap().unwrap().tls, TlsSource::Off);
    assert_eq!(
        parse(&["--tls"]).unwrap().unwrap().tls,
        TlsSource::SelfSigned
    );
    assert_eq!(
        parse(&["--cert", "c.pem", "--key=k.pem"])
            .unwrap()
            .unwrap()
            .tls,
        TlsSource::Files {
            cert: "c.pem".to_owned(),
            key: "k.pem".to_owned()
        }
    );
    assert!(
        parse(&["--cert", "c.pem"]).is_err(),
        "a certificate needs its key"
    );
    assert!(parse(&["--key"]).is_err());
}
