//! Tidy: the repository rules, enforced by `cargo test` (rust-analyzer's pattern).
//!
//! - every Rust source file opens with a `//!` module doc;
//! - only fio-sys, fio-buffer and fio-ring may contain `unsafe`; every other library says
//!   `#![forbid(unsafe_code)]`, and no other file holds `unsafe` code unless [`UNSAFE_FILES`]
//!   lists it with its reason;
//! - a crate README's Rust example is its `examples/readme.rs`, so the README compiles;
//! - no `todo!`, `unimplemented!` or `dbg!` is left in the tree;
//! - the root README opens with the two commands a newcomer types.

use std::fs;
use std::path::{Path, PathBuf};

/// The crates allowed to hold `unsafe` code.
const UNSAFE_CRATES: [&str; 3] = ["fio-sys", "fio-buffer", "fio-ring"];

/// Files outside [`UNSAFE_CRATES`] allowed to hold `unsafe` code, each with its reason.
const UNSAFE_FILES: [(&str, &str); 1] = [(
    "crates/fio-bench/src/bin/bare_uring.rs",
    "the load benchmark's bare io-uring loop baseline is written on the io-uring crate itself, \
     whose push and buffer-ring registration are unsafe; fio-bench's library stays \
     forbid(unsafe_code)",
)];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n == "target" || n == "corpus")
            {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn crates() -> Vec<PathBuf> {
    let mut dirs: Vec<_> = fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_source_file_has_a_module_doc() {
    let mut files = Vec::new();
    for dir in crates() {
        rust_files(&dir.join("src"), &mut files);
        rust_files(&dir.join("examples"), &mut files);
    }
    rust_files(&root().join("xtask"), &mut files);
    let missing: Vec<_> = files
        .iter()
        .filter(|f| {
            !fs::read_to_string(f)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` module doc: {missing:#?}"
    );
}

#[test]
fn unsafe_lives_only_in_the_three_low_crates() {
    for dir in crates() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if UNSAFE_CRATES.contains(&name.as_str()) {
            continue;
        }
        let lib = fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(
            lib.contains("#![forbid(unsafe_code)]"),
            "{name}/src/lib.rs must forbid unsafe_code"
        );
    }
}

#[test]
fn unsafe_code_elsewhere_is_only_in_the_listed_files() {
    let mut files = Vec::new();
    for dir in crates() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !UNSAFE_CRATES.contains(&name.as_str()) {
            rust_files(&dir, &mut files);
        }
    }
    rust_files(&root().join("xtask"), &mut files);
    let root = root();
    let found: Vec<String> = files
        .iter()
        .filter(|file| {
            let text = fs::read_to_string(file).unwrap();
            // Spelled in pieces so this file does not match itself.
            ["{", "fn", "impl", "extern"]
                .iter()
                .any(|word| text.contains(&format!("{} {word}", "unsafe")))
        })
        .map(|file| {
            file.strip_prefix(&root)
                .unwrap_or(file)
                .to_string_lossy()
                .into_owned()
        })
        .filter(|file| !UNSAFE_FILES.iter().any(|(allowed, _)| allowed == file))
        .collect();
    assert!(
        found.is_empty(),
        "unsafe code outside fio-sys, fio-buffer and fio-ring and not in UNSAFE_FILES: {found:#?}"
    );
}

#[test]
fn readme_examples_are_compiled_examples() {
    for dir in crates() {
        let readme = fs::read_to_string(dir.join("README.md"))
            .unwrap_or_else(|_| panic!("{} has no README.md", dir.display()));
        let Some(start) = readme.find("```rust\n") else {
            continue;
        };
        let body = &readme[start + "```rust\n".len()..];
        let example = &body[..body.find("```").expect("unterminated code block")];
        let file = dir.join("examples/readme.rs");
        let compiled = fs::read_to_string(&file).unwrap_or_else(|_| {
            panic!(
                "{} has a README example but no examples/readme.rs",
                dir.display()
            )
        });
        assert_eq!(
            example.trim(),
            compiled.trim(),
            "{}: README example and examples/readme.rs differ",
            dir.display()
        );
    }
}

/// fio-ring is usable on its own: its README, examples and doc examples name no other
/// workspace crate and no `libc` outside `fio_ring::libc`, so they compile when copied into a
/// project that depends on fio-ring alone.
#[test]
fn fio_ring_examples_use_only_fio_ring_and_std() {
    let dir = root().join("crates/fio-ring");
    let readme = fs::read_to_string(dir.join("README.md")).unwrap();
    // The README's code blocks only: its prose may name the layers below.
    let mut sources = vec![(
        dir.join("README.md"),
        readme
            .split("```")
            .skip(1)
            .step_by(2)
            .collect::<Vec<_>>()
            .join("\n"),
        false,
    )];
    // Examples are code throughout; in `src`, only the doc comments.
    for (sub, docs_only) in [("examples", false), ("src", true)] {
        let mut files = Vec::new();
        rust_files(&dir.join(sub), &mut files);
        sources.extend(files.into_iter().map(|f| {
            let t = fs::read_to_string(&f).unwrap();
            (f, t, docs_only)
        }));
    }
    let foreign = ["fio_sys::", "fio_buffer::", "fio_socket::", "fio_reactor::"];
    let mut found = Vec::new();
    for (path, text, docs_only) in &sources {
        for (n, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if *docs_only && !(trimmed.starts_with("///") || trimmed.starts_with("//!")) {
                continue;
            }
            // Intra-doc links (`[x](fio_buffer::X)`) are not code.
            let code = trimmed.contains("use ") || trimmed.contains("(") && !trimmed.contains("](");
            let bare_libc = line.contains("libc::")
                && !line.contains("fio_ring::libc::")
                && !line.contains("crate::libc")
                && !line.contains("[`libc::");
            if code && (foreign.iter().any(|name| line.contains(name)) || bare_libc) {
                found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "fio-ring examples must use only fio_ring and std: {found:#?}"
    );
}

#[test]
fn no_unfinished_markers() {
    let mut files = Vec::new();
    for dir in crates() {
        rust_files(&dir, &mut files);
    }
    rust_files(&root().join("xtask/src"), &mut files);
    let markers = [
        concat!("todo", "!("),
        concat!("unimplemented", "!("),
        concat!("dbg", "!("),
    ];
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for marker in markers {
            assert!(
                !text.contains(marker),
                "{} contains {marker}",
                file.display()
            );
        }
    }
}

#[test]
fn root_readme_opens_with_the_two_commands() {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let head: Vec<&str> = readme.lines().take(20).collect();
    assert!(
        head.iter().any(|l| l.trim_start().starts_with("cargo run")),
        "README must open with the command that starts the main job"
    );
    assert!(
        head.iter()
            .any(|l| l.trim_start().starts_with("cargo test")),
        "README must open with the test command"
    );
}
