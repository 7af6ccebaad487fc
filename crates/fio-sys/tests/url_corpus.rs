//! Replays the URL corpus (`tests/corpus/url/`, described in `tests/corpus/README.md`) and
//! feeds deterministic mutations of it to the fuzz entry point.

use std::fs;
use std::path::{Path, PathBuf};

use fio_sys::Url;
use fio_sys::fuzzing::fuzz_url;

fn corpus_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/url")
        .join(kind)
}

/// Every corpus file as (file name, bytes), sorted by name so runs are reproducible.
fn entries(kind: &str) -> Vec<(String, Vec<u8>)> {
    let mut entries: Vec<_> = fs::read_dir(corpus_dir(kind))
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            (name, fs::read(entry.path()).unwrap())
        })
        .collect();
    entries.sort();
    assert!(entries.len() >= 10, "corpus {kind} is missing");
    entries
}

#[test]
fn good_urls_parse_and_round_trip() {
    for (name, bytes) in entries("good") {
        let text = String::from_utf8(bytes).unwrap();
        let url = Url::parse(&text).unwrap_or_else(|error| panic!("good/{name}: {error}"));
        let shown = url.to_string();
        assert_eq!(
            Url::parse(&shown).as_ref(),
            Ok(&url),
            "good/{name} shown as {shown}"
        );
        fuzz_url(text.as_bytes());
    }
}

#[test]
fn bad_urls_fail_with_the_expected_variant() {
    for (name, bytes) in entries("bad") {
        let expected = name.split('_').next().unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let error = Url::parse(&text).expect_err(&format!("bad/{name} parsed"));
        let variant = format!("{error:?}");
        let variant = variant.split([' ', '{', '(']).next().unwrap();
        assert_eq!(variant, expected, "bad/{name}: {error}");
        assert!(!error.to_string().is_empty());
    }
}

/// xorshift64*: a tiny deterministic generator, so every run mutates the same way.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// Bytes that matter to the grammar, so mutations reach the parser's edges quickly.
const INTERESTING: &[u8] = b":/[]@.%?#09az-_ \0\xff\xc3\xa9Tt";

fn mutate(rng: &mut XorShift, input: &mut Vec<u8>, donor: &[u8]) {
    match rng.below(7) {
        0 if !input.is_empty() => {
            let at = rng.below(input.len());
            input[at] = INTERESTING[rng.below(INTERESTING.len())];
        }
        1 => {
            let at = rng.below(input.len() + 1);
            input.insert(at, INTERESTING[rng.below(INTERESTING.len())]);
        }
        2 if !input.is_empty() => {
            let at = rng.below(input.len());
            input.remove(at);
        }
        3 => input.truncate(rng.below(input.len() + 1)),
        4 if !donor.is_empty() => {
            // Splice a piece of another corpus entry in.
            let start = rng.below(donor.len());
            let end = start + rng.below(donor.len() - start + 1);
            let at = rng.below(input.len() + 1);
            input.splice(at..at, donor[start..end].iter().copied());
        }
        5 if !input.is_empty() => {
            let at = rng.below(input.len());
            input[at] = (rng.next() & 0xff) as u8;
        }
        _ => {
            let at = rng.below(input.len() + 1);
            let digits = (rng.next() % 100_000).to_string();
            input.splice(at..at, digits.bytes());
        }
    }
}

#[test]
fn mutated_corpus_never_panics_and_round_trips() {
    let seeds: Vec<Vec<u8>> = entries("good")
        .into_iter()
        .chain(entries("bad"))
        .map(|(_, bytes)| bytes)
        .collect();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut parsed = 0;
    for _ in 0..5_000 {
        let mut input = seeds[rng.below(seeds.len())].clone();
        let donor = &seeds[rng.below(seeds.len())];
        for _ in 0..=rng.below(4) {
            mutate(&mut rng, &mut input, donor);
        }
        fuzz_url(&input);
        parsed += usize::from(Url::parse(&String::from_utf8_lossy(&input)).is_ok());
    }
    // Both outcomes must be exercised, or the mutations are not reaching the grammar.
    assert!(
        (500..4_500).contains(&parsed),
        "{parsed} of 5000 mutations parsed"
    );
}
