//! [`UuidMap`]: tables of connections (the engine's and the connection layer's), keyed by
//! [`Uuid`] and hashed cheaply.
//!
//! Every call names its connection by uuid, so a request costs the reactor several
//! lookups (read, write, the receive queue's state, the hand-over of its events). With the
//! standard library's SipHash each lookup cost about 140 instructions, a tenth of the engine's
//! own work per request; one multiply does it here.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::uuid::Uuid;

/// A map keyed by connection: looked up several times per request, so it hashes with
/// [`UuidHasher`] rather than the default SipHash.
pub(crate) type UuidMap<V> = HashMap<Uuid, V, BuildHasherDefault<UuidHasher>>;

/// Hashes a [`Uuid`] with one folded 64x64-bit multiply. Uuids are made by the reactor, never
/// chosen by a peer, so the keyed (flood-resistant) SipHash buys nothing here; the fold
/// spreads every input bit over both halves of the hash, which the table needs (it indexes
/// with the low bits and tags with the high ones) since a uuid's low half is a generation
/// that many connections share.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct UuidHasher(u64);

impl UuidHasher {
    /// An odd constant with well-mixed bits (the golden ratio's, as in Fibonacci hashing).
    const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

    fn mix(&mut self, value: u64) {
        let product = u128::from(self.0 ^ value) * u128::from(Self::MULTIPLIER);
        // Truncation is the point: the low and high halves of the product are folded.
        #[allow(clippy::cast_possible_truncation)]
        let (low, high) = (product as u64, (product >> 64) as u64);
        self.0 = low ^ high;
    }
}

impl Hasher for UuidHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not reached by `Uuid`, whose `Hash` writes one `u64`; kept correct for any key.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.mix(value);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn a_map_finds_what_it_holds() {
        let mut map = UuidMap::default();
        for fd in 0..1000 {
            map.insert(Uuid::from_parts(fd, 1), fd);
        }
        for fd in 0..1000 {
            assert_eq!(map.get(&Uuid::from_parts(fd, 1)), Some(&fd));
            assert_eq!(map.get(&Uuid::from_parts(fd, 2)), None);
        }
    }

    #[test]
    fn uuids_that_share_a_generation_spread_over_low_and_high_bits() {
        // The table picks a bucket with the low bits and a tag with the top seven: both must
        // differ between descriptors even when every generation is the same.
        let hasher = BuildHasherDefault::<UuidHasher>::default();
        let hashes: Vec<u64> = (0..4096)
            .map(|fd| hasher.hash_one(Uuid::from_parts(fd, 1)))
            .collect();
        let buckets: HashSet<u64> = hashes.iter().map(|hash| hash & 0xfff).collect();
        let tags: HashSet<u64> = hashes.iter().map(|hash| hash >> 57).collect();
        assert!(buckets.len() > 2048, "{} of 4096 buckets", buckets.len());
        assert_eq!(tags.len(), 128);
    }

    #[test]
    fn bytes_hash_like_words() {
        let mut words = UuidHasher::default();
        words.write_u64(0x0102_0304_0506_0708);
        let mut bytes = UuidHasher::default();
        bytes.write(&0x0102_0304_0506_0708_u64.to_le_bytes());
        assert_eq!(words.finish(), bytes.finish());
    }
}
