//! Fuzz entry points: plain functions a `cargo fuzz` target (or a test) feeds arbitrary bytes.
//!
//! Each one panics only when it finds a bug: parsing itself must never panic, and what parses
//! must survive the round trip through `Display`.

use crate::url::Url;

/// Parses `data` (as lossy UTF-8) as a listen/connect URL; on success, checks that the
/// displayed form parses back to an equal URL and displays identically.
///
/// # Panics
/// When the round trip fails, which is a parser bug. A panic inside [`Url::parse`] itself is
/// a bug too.
///
/// # Examples
/// ```
/// fio_sys::fuzzing::fuzz_url(b"tcp://[::1]:80");
/// fio_sys::fuzzing::fuzz_url(b"\xff\x00garbage");
/// ```
pub fn fuzz_url(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(url) = Url::parse(&text) else {
        return;
    };
    let shown = url.to_string();
    let reparsed = Url::parse(&shown);
    assert_eq!(
        reparsed.as_ref(),
        Ok(&url),
        "{text:?} displays as {shown:?}, which does not parse back to the same URL"
    );
    if let Ok(reparsed) = reparsed {
        assert_eq!(
            reparsed.to_string(),
            shown,
            "display of {text:?} is not canonical"
        );
    }
}
