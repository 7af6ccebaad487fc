//! fio-ring is usable on its own: its README example and its `checksum` example build as the
//! binaries of a fresh crate whose only dependency is fio-ring (`cargo check --offline`, in
//! its own target directory under `target/`, so it stays warm between runs).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The ```rust block of a README.
fn readme_example(readme: &str) -> &str {
    let start = readme.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let body = &readme[start..];
    &body[..body.find("```").expect("unterminated code block")]
}

#[test]
fn fio_ring_examples_build_in_a_crate_depending_on_fio_ring_alone() {
    let root = root();
    let ring = root.join("crates/fio-ring");
    let dir = root.join("target/standalone-ring");
    fs::create_dir_all(dir.join("src/bin")).unwrap();
    let manifest = format!(
        "[package]\nname = \"standalone-ring\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
         publish = false\n\n[dependencies]\nfio-ring = {{ path = {:?} }}\n\n\
         # Not a member of the fio workspace.\n[workspace]\n",
        ring.display().to_string()
    );
    fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    // The workspace's lock file pins the same versions, so `--offline` finds them.
    fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let readme = fs::read_to_string(ring.join("README.md")).unwrap();
    fs::write(dir.join("src/bin/readme.rs"), readme_example(&readme)).unwrap();
    fs::copy(
        ring.join("examples/checksum.rs"),
        dir.join("src/bin/checksum.rs"),
    )
    .unwrap();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["check", "--offline", "--quiet", "--bins"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "fio-ring's examples don't build with fio-ring alone:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
