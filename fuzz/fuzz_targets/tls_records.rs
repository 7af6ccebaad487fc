//! Fuzzes fio-tls's record path: any bytes from the peer, arriving in any pieces, must end
//! in plaintext, an alert or a close, never a panic. Seeds: `crates/fio-tls/tests/corpus/records`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fio_tls::fuzzing::fuzz_records(data));
