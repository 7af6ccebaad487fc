//! Replays the TLS record corpus (`tests/corpus/records/`, see `tests/corpus/README.md`)
//! through the hook's record path on stable Rust, with deterministic mutations of every
//! entry (bit flips, truncations, splices, repeated bytes): no input may panic.

use std::fs;
use std::path::Path;

use fio_tls::fuzzing::fuzz_records;

/// Every corpus file's bytes, sorted by name so runs are reproducible.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/records");
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .expect("the corpus directory")
        .map(|entry| {
            let path = entry.expect("an entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).expect("a corpus file"))
        })
        .collect();
    entries.sort();
    assert!(entries.len() >= 10, "the corpus is missing");
    entries
}

#[test]
fn every_corpus_entry_runs_without_panicking() {
    for (name, data) in corpus() {
        eprintln!("{name}");
        fuzz_records(&data);
    }
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

#[test]
fn mutated_corpus_entries_never_panic() {
    let corpus = corpus();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..3000 {
        let (_, base) = &corpus[round % corpus.len()];
        let mut data = base.clone();
        for _ in 0..1 + rng.below(4) {
            match rng.below(5) {
                0 if !data.is_empty() => {
                    let at = rng.below(data.len());
                    data[at] ^= 1 << rng.below(8);
                }
                1 if !data.is_empty() => data.truncate(rng.below(data.len())),
                2 => {
                    let (_, other) = &corpus[rng.below(corpus.len())];
                    if !other.is_empty() {
                        let from = rng.below(other.len());
                        let to = from + rng.below(other.len() - from);
                        let at = rng.below(data.len() + 1);
                        data.splice(at..at, other[from..to].iter().copied());
                    }
                }
                3 if !data.is_empty() => {
                    let at = rng.below(data.len());
                    data[at] = [0x00, 0xff, 0x16, 0x17, 0x15, 0x03][rng.below(6)];
                }
                _ => {
                    let at = rng.below(data.len() + 1);
                    let byte = rng.next() as u8;
                    data.splice(at..at, std::iter::repeat_n(byte, 1 + rng.below(64)));
                }
            }
        }
        fuzz_records(&data);
    }
}
