//! Property tests for the URL parser: randomly built valid URLs display and parse back to
//! themselves, and randomly built host:port strings parse to what they were built from.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fio_sys::{Host, Transport, Url};

/// xorshift64*, seeded, so every run checks the same cases.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn pick(&mut self, items: &[u8]) -> u8 {
        items[self.below(items.len())]
    }
}

const NAME_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._";
const PATH_CHARS: &[u8] = b"abcxyz019 -_.:/@[]%#?";

fn host_name(rng: &mut XorShift) -> String {
    loop {
        let len = 1 + rng.below(40);
        let name: String = (0..len).map(|_| char::from(rng.pick(NAME_CHARS))).collect();
        // Digits and dots alone are IPv4 territory, not names.
        if !name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return name;
        }
    }
}

fn ip(rng: &mut XorShift) -> IpAddr {
    if rng.below(2) == 0 {
        IpAddr::V4(Ipv4Addr::from(rng.next() as u32))
    } else {
        // Zero runs exercise "::" compression.
        let mut segments = [0u16; 8];
        for segment in &mut segments {
            if rng.below(3) != 0 {
                *segment = rng.next() as u16;
            }
        }
        IpAddr::V6(Ipv6Addr::from(segments))
    }
}

fn random_url(rng: &mut XorShift) -> (String, Url) {
    let port = rng.next() as u16;
    let (host_text, host) = if rng.below(2) == 0 {
        let name = host_name(rng);
        (name.clone(), Host::Name(name))
    } else {
        let ip = ip(rng);
        let text = match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        (text, Host::Ip(ip))
    };
    let url = match rng.below(4) {
        0 => Url::tcp(&host_text, port),
        1 => Url::tls(&host_text, port),
        2 => Url::udp(&host_text, port),
        _ => {
            let len = rng.below(100);
            let path: String = std::iter::once('/')
                .chain((0..len).map(|_| char::from(rng.pick(PATH_CHARS))))
                .collect();
            let url = Url::unix(&path).unwrap();
            assert_eq!(url.unix_path().unwrap().to_str(), Some(path.as_str()));
            return (path, url);
        }
    }
    .unwrap();
    assert_eq!(url.host(), Some(&host));
    assert_eq!(url.port(), Some(port));
    (format!("{host_text}:{port}"), url)
}

#[test]
fn random_urls_round_trip_through_display() {
    let mut rng = XorShift(0x0123_4567_89AB_CDEF);
    for _ in 0..3_000 {
        let (_, url) = random_url(&mut rng);
        let shown = url.to_string();
        assert_eq!(Url::parse(&shown), Ok(url.clone()), "{shown}");
        assert_eq!(Url::parse(&shown).unwrap().to_string(), shown);
        fio_sys::fuzzing::fuzz_url(shown.as_bytes());
    }
}

#[test]
fn short_forms_mean_tcp() {
    let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
    for _ in 0..3_000 {
        let (short, url) = random_url(&mut rng);
        let parsed = Url::parse(&short).unwrap();
        if url.transport() == Transport::Unix {
            assert_eq!(parsed, url, "{short}");
        } else {
            assert_eq!(parsed.transport(), Transport::Tcp, "{short}");
            assert!(!parsed.is_tls());
            assert_eq!(
                (parsed.host(), parsed.port()),
                (url.host(), url.port()),
                "{short}"
            );
        }
    }
}
