//! Fuzzes the listen/connect URL parser: any bytes must give `Ok` or a typed error, never a
//! panic, and every URL that parses must survive a `Display` round trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fio_sys::fuzzing::fuzz_url(data));
