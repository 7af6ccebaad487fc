//! No silent skips: the one way a test says it cannot run what it tests.
//!
//! A test that finds a feature missing calls [`skip`] (or [`check`]) with the feature and the
//! reason, then returns. What happens depends on the run's policy:
//!
//! - when the feature is required, [`skip`] panics with the reason, so the test fails;
//! - otherwise it writes one machine-readable line, `FIO-SKIP: <test> : <feature>: <reason>`,
//!   to the process's standard error (past the test harness's capture, so it shows even for a
//!   passing test) and, when `FIO_SKIP_LOG` names a file, appends it there too.
//!
//! The policy comes from the environment: `FIO_REQUIRE` lists the required features by name,
//! separated by commas (`uring,send_zc,ipv6`, or `all`), and `FIO_REQUIRE_URING=1` requires
//! io_uring on its own (the name the engine conformance suite uses). `cargo xtask test` and
//! `cargo xtask ci` probe the machine and require every feature it really has; a plain
//! `cargo test` requires nothing.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write as _;

/// The environment variable listing the required features.
pub const REQUIRE_VAR: &str = "FIO_REQUIRE";

/// The environment variable that requires io_uring on its own (`1`).
pub const REQUIRE_URING_VAR: &str = "FIO_REQUIRE_URING";

/// The environment variable naming a file every skip line is appended to.
pub const SKIP_LOG_VAR: &str = "FIO_SKIP_LOG";

/// The prefix of every skip line.
pub const SKIP_PREFIX: &str = "FIO-SKIP:";

/// A feature some machines lack, which a test may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Feature {
    /// io_uring with what the reactor needs (Linux 6.0: multishot accept and receive,
    /// provided-buffer rings) and the operations fio-ring tests.
    Uring,
    /// Zero-copy sends on io_uring (`IORING_OP_SEND_ZC`, Linux 6.0).
    SendZc,
    /// IPv6 on loopback (`[::1]` can be bound).
    Ipv6,
    /// seccomp filters (`PR_SET_SECCOMP`).
    Seccomp,
}

impl Feature {
    /// Every feature, in the order `FIO_REQUIRE=all` lists them.
    pub const ALL: [Self; 4] = [Self::Uring, Self::SendZc, Self::Ipv6, Self::Seccomp];

    /// The feature's name in `FIO_REQUIRE`: `uring`, `send_zc`, `ipv6` or `seccomp`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Uring => "uring",
            Self::SendZc => "send_zc",
            Self::Ipv6 => "ipv6",
            Self::Seccomp => "seccomp",
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether `feature` is required by a policy of `require` (`FIO_REQUIRE`'s value) and
/// `require_uring` (`FIO_REQUIRE_URING`'s value).
///
/// # Examples
///
/// ```
/// use fio_test::{Feature, is_required_by};
///
/// assert!(is_required_by(Feature::SendZc, Some("uring, send_zc"), None));
/// assert!(is_required_by(Feature::Ipv6, Some("all"), None));
/// assert!(is_required_by(Feature::Uring, None, Some("1")));
/// assert!(!is_required_by(Feature::Uring, Some(""), Some("0")));
/// ```
pub fn is_required_by(
    feature: Feature,
    require: Option<&str>,
    require_uring: Option<&str>,
) -> bool {
    if feature == Feature::Uring && require_uring.is_some_and(|value| value.trim() == "1") {
        return true;
    }
    require.is_some_and(|list| {
        list.split(',')
            .map(str::trim)
            .any(|name| name == "all" || name == feature.name())
    })
}

/// Whether this run's policy (the environment) requires `feature`.
pub fn is_required(feature: Feature) -> bool {
    let require = std::env::var(REQUIRE_VAR).ok();
    let require_uring = std::env::var(REQUIRE_URING_VAR).ok();
    is_required_by(feature, require.as_deref(), require_uring.as_deref())
}

/// The skip line for `test`: `FIO-SKIP: <test> : <feature>: <reason>` (one line).
///
/// # Examples
///
/// ```
/// use fio_test::{Feature, skip_line};
///
/// assert_eq!(
///     skip_line("ops::send_zc", Feature::SendZc, "kernel 5.15\nis old"),
///     "FIO-SKIP: ops::send_zc : send_zc: kernel 5.15 is old"
/// );
/// ```
pub fn skip_line(test: &str, feature: Feature, reason: &str) -> String {
    let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("{SKIP_PREFIX} {test} : {feature}: {reason}")
}

/// The running test's name: the test harness names each test's thread after it.
fn current_test() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => "(unnamed test)".to_owned(),
    }
}

/// Reports that the running test cannot test what it tests because `feature` is missing:
/// panics when the policy requires the feature, else writes the skip line (see the module
/// doc). The caller returns right after.
///
/// # Panics
///
/// When [`is_required`] holds for `feature`: the machine was found to have it, so its absence
/// here is a failure, not a skip.
///
/// # Examples
///
/// ```
/// // Without a policy the skip is reported, not failed.
/// if std::env::var_os("FIO_REQUIRE").is_none() && std::env::var_os("FIO_REQUIRE_URING").is_none() {
///     fio_test::skip(fio_test::Feature::Ipv6, "cannot bind [::1]: address not available");
/// }
/// ```
pub fn skip(feature: Feature, reason: &str) {
    let test = current_test();
    if is_required(feature) {
        panic!(
            "{test}: {feature} is required here ({REQUIRE_VAR}/{REQUIRE_URING_VAR}: the machine \
             was found to have it), but {reason}"
        );
    }
    let line = skip_line(&test, feature, reason);
    // Straight to the descriptor: the harness captures `println!`/`eprintln!`, not this.
    let _ = writeln!(std::io::stderr(), "{line}");
    let log = std::env::var_os(SKIP_LOG_VAR)
        .and_then(|path| OpenOptions::new().create(true).append(true).open(path).ok());
    if let Some(mut file) = log {
        let _ = writeln!(file, "{line}");
    }
}

/// `true` when `available`; otherwise [`skip`]s with `feature` and the reason `why()` gives,
/// and returns `false` (so the test returns).
///
/// # Panics
///
/// As [`skip`], when the feature is missing but required.
///
/// # Examples
///
/// ```
/// if !fio_test::check(fio_test::Feature::Uring, true, || "never asked".to_owned()) {
///     return;
/// }
/// ```
pub fn check(feature: Feature, available: bool, why: impl FnOnce() -> String) -> bool {
    if !available {
        skip(feature, &why());
    }
    available
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lists_and_the_uring_switch() {
        for feature in Feature::ALL {
            assert!(is_required_by(feature, Some(feature.name()), None));
            assert!(is_required_by(feature, Some("x, all"), None));
            assert!(!is_required_by(feature, None, None));
        }
        assert!(!is_required_by(Feature::SendZc, Some("uring"), Some("1")));
        assert!(is_required_by(Feature::Uring, Some("ipv6"), Some(" 1 ")));
        assert!(!is_required_by(Feature::Ipv6, Some("ipv6x,uring"), None));
    }

    #[test]
    fn skip_lines_are_one_line() {
        let line = skip_line("t", Feature::Uring, "a\n  b\tc ");
        assert_eq!(line, "FIO-SKIP: t : uring: a b c");
    }
}
