//! Every README's Rust example builds in a fresh project, the way a new user would copy it:
//! one package per README under `target/standalone/`, whose dependencies are the README's
//! crate and the fio crates the example names, and those must be the crate's own (normal)
//! dependencies, so the example needs nothing the crate doesn't already bring. The root
//! README's examples (if any) depend on the library crates they name.
//!
//! The packages form their own small workspace with the fio workspace's `Cargo.lock` (same
//! versions, so `cargo check --offline` finds them) and one target directory that stays warm
//! between runs; `cargo check`, not `build`, keeps it fast. fio-ring's `checksum` example
//! builds there too: fio-ring is usable on its own.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace's library crates a README example may name.
const LIBRARIES: &[&str] = &[
    "fio-sys",
    "fio-buffer",
    "fio-ring",
    "fio-socket",
    "fio-reactor",
    "fio-cluster",
    "fio-tls",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The bodies of a Markdown file's Rust code blocks (info string `rust`, `rust,no_run`, ...).
fn rust_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|line| !line.trim_start().starts_with("```"))
            .collect();
        if info.split(',').next().map(str::trim) == Some("rust") {
            blocks.push(body.join("\n") + "\n");
        }
    }
    blocks
}

/// A block as a program: as it is when it has a `main`; else rustdoc's way (hidden `# `
/// lines shown, the body inside a function returning what its last line says).
fn as_program(block: &str) -> String {
    if block.contains("fn main(") {
        return block.to_owned();
    }
    let body: Vec<&str> = block
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(shown) => shown,
            None if line == "#" => "",
            None => line,
        })
        .collect();
    format!(
        "fn main() {{\n    // Type-checked, never run.\n    let _example = || {{\n{}\n    }};\n}}\n",
        body.join("\n")
    )
}

/// The library crates `source` names (`fio_reactor::...`, `use fio_tls`).
fn named_crates(source: &str) -> Vec<&'static str> {
    LIBRARIES
        .iter()
        .copied()
        .filter(|name| {
            let path = name.replace('-', "_");
            source.contains(&format!("{path}::")) || source.contains(&format!("use {path}"))
        })
        .collect()
}

/// The `[dependencies]` names of a crate's manifest (workspace-inherited or not).
fn normal_dependencies(manifest: &str) -> Vec<String> {
    let Some(start) = manifest.find("\n[dependencies]\n") else {
        return Vec::new();
    };
    manifest[start + "\n[dependencies]\n".len()..]
        .lines()
        .take_while(|line| !line.starts_with('['))
        .filter_map(|line| line.split(['.', '=', ' ']).next())
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// One package of the standalone workspace.
struct Package {
    name: String,
    /// Library crates it depends on.
    uses: Vec<&'static str>,
    /// `src/bin/<name>.rs` contents.
    bins: Vec<(String, String)>,
}

/// The package for crate `name`'s README, if it has Rust examples.
fn crate_package(root: &Path, name: &'static str) -> Option<Package> {
    let dir = root.join("crates").join(name);
    let readme = fs::read_to_string(dir.join("README.md")).unwrap();
    let blocks = rust_blocks(&readme);
    if blocks.is_empty() {
        return None;
    }
    let own = normal_dependencies(&fs::read_to_string(dir.join("Cargo.toml")).unwrap());
    let mut uses = vec![name];
    let mut bins = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        for named in named_crates(block) {
            assert!(
                named == name || own.iter().any(|dep| dep == named),
                "{name}'s README example uses {named}, which {name} doesn't depend on: a user \
                 of {name} alone would need more"
            );
            if !uses.contains(&named) {
                uses.push(named);
            }
        }
        bins.push((format!("readme{index}"), as_program(block)));
    }
    if name == "fio-ring" {
        // Its file examples too: they use the ring's own open, stat and close, nothing else.
        for example in ["checksum", "copy"] {
            let source = fs::read_to_string(dir.join(format!("examples/{example}.rs"))).unwrap();
            bins.push((example.to_owned(), source));
        }
    }
    Some(Package {
        name: format!("readme-{name}"),
        uses,
        bins,
    })
}

/// The package for the root README's Rust examples, if it has any.
fn root_package(root: &Path) -> Option<Package> {
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = rust_blocks(&readme);
    if blocks.is_empty() {
        return None;
    }
    let mut uses = Vec::new();
    let mut bins = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        for named in named_crates(block) {
            if !uses.contains(&named) {
                uses.push(named);
            }
        }
        bins.push((format!("readme{index}"), as_program(block)));
    }
    Some(Package {
        name: "readme-fio".to_owned(),
        uses,
        bins,
    })
}

#[test]
fn readme_examples_build_in_fresh_projects() {
    let root = root();
    let dir = root.join("target/standalone");
    let mut packages: Vec<Package> = LIBRARIES
        .iter()
        .filter_map(|name| crate_package(&root, name))
        .collect();
    packages.extend(root_package(&root));
    for name in [
        "fio-sys",
        "fio-buffer",
        "fio-ring",
        "fio-socket",
        "fio-reactor",
        "fio-tls",
    ] {
        assert!(
            packages
                .iter()
                .any(|package| package.name == format!("readme-{name}")),
            "{name}'s README lost its Rust example"
        );
    }
    for package in &packages {
        let home = dir.join(&package.name);
        // Stale binaries of a removed example would still be checked.
        let _ = fs::remove_dir_all(home.join("src"));
        fs::create_dir_all(home.join("src/bin")).unwrap();
        let dependencies: String = package
            .uses
            .iter()
            .map(|name| {
                let path = root.join("crates").join(name);
                format!("{name} = {{ path = {:?} }}\n", path.display().to_string())
            })
            .collect();
        let manifest = format!(
            "[package]\nname = {:?}\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dependencies]\n{dependencies}",
            package.name
        );
        fs::write(home.join("Cargo.toml"), manifest).unwrap();
        for (bin, source) in &package.bins {
            fs::write(home.join(format!("src/bin/{bin}.rs")), source).unwrap();
        }
    }
    let members: Vec<String> = packages
        .iter()
        .map(|package| format!("{:?}", package.name))
        .collect();
    // Not a member of the fio workspace: a workspace of its own.
    fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"3\"\nmembers = [{}]\n",
            members.join(", ")
        ),
    )
    .unwrap();
    // The workspace's lock file pins the same versions, so `--offline` finds them.
    fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["check", "--offline", "--quiet", "--workspace", "--bins"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "a README example doesn't build in a fresh project (target/standalone):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn rust_blocks_and_programs() {
    let markdown =
        "text\n```sh\nls\n```\n```rust,no_run\nuse fio_sys::Url;\n# Ok::<(), ()>(())\n```\n";
    let blocks = rust_blocks(markdown);
    assert_eq!(blocks, ["use fio_sys::Url;\n# Ok::<(), ()>(())\n"]);
    assert_eq!(named_crates(&blocks[0]), ["fio-sys"]);
    let program = as_program(&blocks[0]);
    assert!(program.starts_with("fn main()") && program.contains("\nOk::<(), ()>(())"));
    assert_eq!(
        normal_dependencies(
            "[package]\n\n[dependencies]\nfio-sys.workspace = true\nlog = \"0.4\"\n\n[dev-dependencies]\nx = 1\n"
        ),
        ["fio-sys", "log"]
    );
}
