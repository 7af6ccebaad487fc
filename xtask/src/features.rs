//! What this machine really has, for the no-silent-skips policy of `cargo xtask test` and `ci`.
//!
//! A test that cannot run what it tests reports it through `fio_test::skip`, which fails the
//! test when the run requires the feature (`FIO_REQUIRE`, `FIO_REQUIRE_URING`) and otherwise
//! prints a `FIO-SKIP:` line. xtask requires every feature this probe finds, so a skip counts
//! as a failure unless the machine really lacks the feature. "Really lacks" is decided from
//! what the kernel says, without io_uring itself (xtask is std only):
//!
//! - `uring` (and `send_zc`, the same kernel): Linux 6.0 or later (the reactor's io_uring
//!   engine needs multishot receive and accept and provided-buffer rings; `SEND_ZC` is 6.0),
//!   `kernel.io_uring_disabled` 0 (or 1 for root, which has `CAP_SYS_ADMIN`), and no seccomp
//!   filter on this process: a filter (as container runtimes install) may refuse
//!   `io_uring_setup`, and only trying would tell, so io_uring is then not required;
//! - `ipv6`: `[::1]` can be bound;
//! - `seccomp`: the kernel reports a `Seccomp:` mode for this process (`CONFIG_SECCOMP`).

use std::fmt::Write as _;
use std::fs;
use std::net::TcpListener;

use crate::load::parse::{effective_uid, status_field};

/// One feature: its `FIO_REQUIRE` name, whether the machine has it, and why (not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) name: &'static str,
    pub(crate) present: bool,
    pub(crate) why: String,
}

/// The facts the io_uring verdict rests on, read from `/proc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UringFacts {
    /// (major, minor) of the running kernel.
    pub(crate) kernel: Option<(u32, u32)>,
    /// `kernel.io_uring_disabled` (0 when the file is missing: kernels before 6.6).
    pub(crate) disabled: u32,
    /// This process's seccomp mode (0 none, 1 strict, 2 filter); None without seccomp.
    pub(crate) seccomp: Option<u32>,
    pub(crate) root: bool,
}

impl UringFacts {
    fn read() -> Self {
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        Self {
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .and_then(|release| kernel_version(&release)),
            disabled: fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .unwrap_or(0),
            seccomp: status_field(&status, "Seccomp:").and_then(|mode| mode.first()?.parse().ok()),
            root: effective_uid(&status) == Some(0),
        }
    }

    /// Whether io_uring with the reactor's features is really there, and why (not).
    pub(crate) fn verdict(&self) -> (bool, String) {
        let kernel = match self.kernel {
            Some((major, minor)) => format!("kernel {major}.{minor}"),
            None => "kernel version unknown".to_owned(),
        };
        if self.kernel.is_none_or(|version| version < (6, 0)) {
            return (false, format!("{kernel}: the io_uring engine needs 6.0"));
        }
        if self.disabled == 2 || (self.disabled == 1 && !self.root) {
            return (
                false,
                format!("{kernel}, kernel.io_uring_disabled={}", self.disabled),
            );
        }
        if let Some(mode) = self.seccomp.filter(|&mode| mode != 0) {
            return (
                false,
                format!("{kernel}, under a seccomp filter (mode {mode}) that may refuse io_uring"),
            );
        }
        (
            true,
            format!(
                "{kernel}, io_uring_disabled={}, no seccomp filter",
                self.disabled
            ),
        )
    }
}

/// `(major, minor)` of a kernel release such as `6.18.44-fc-v1272`.
pub(crate) fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Probes every feature the tests may skip for.
pub(crate) fn probe() -> Vec<Found> {
    let facts = UringFacts::read();
    let (uring, why) = facts.verdict();
    let ipv6 = TcpListener::bind("[::1]:0");
    vec![
        Found {
            name: "uring",
            present: uring,
            why: why.clone(),
        },
        Found {
            name: "send_zc",
            present: uring,
            why,
        },
        Found {
            name: "ipv6",
            present: ipv6.is_ok(),
            why: match ipv6 {
                Ok(_) => "[::1] binds".to_owned(),
                Err(error) => format!("cannot bind [::1]: {error}"),
            },
        },
        Found {
            name: "seccomp",
            present: facts.seccomp.is_some(),
            why: match facts.seccomp {
                Some(mode) => format!("seccomp mode {mode}"),
                None => "no Seccomp field in /proc/self/status".to_owned(),
            },
        },
    ]
}

/// The policy's environment: `FIO_REQUIRE` (every present feature) and
/// `FIO_REQUIRE_URING=1` when io_uring is present. An `FIO_REQUIRE` already set in xtask's
/// environment wins, so a run can be made stricter or looser by hand.
pub(crate) fn policy(found: &[Found]) -> Vec<(&'static str, String)> {
    let require = std::env::var("FIO_REQUIRE").unwrap_or_else(|_| {
        found
            .iter()
            .filter(|feature| feature.present)
            .map(|feature| feature.name)
            .collect::<Vec<_>>()
            .join(",")
    });
    let uring = found
        .iter()
        .any(|feature| feature.name == "uring" && feature.present);
    let require_uring = std::env::var("FIO_REQUIRE_URING")
        .unwrap_or_else(|_| if uring { "1" } else { "0" }.to_owned());
    vec![
        ("FIO_REQUIRE", require),
        ("FIO_REQUIRE_URING", require_uring),
    ]
}

/// One line per feature, for the log.
pub(crate) fn describe(found: &[Found]) -> String {
    let mut out = String::new();
    for feature in found {
        let _ = writeln!(
            out,
            "  {:<8} {} ({})",
            feature.name,
            if feature.present {
                "present: required"
            } else {
                "MISSING: its tests may skip"
            },
            feature.why
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(kernel: (u32, u32), disabled: u32, seccomp: Option<u32>, root: bool) -> UringFacts {
        UringFacts {
            kernel: Some(kernel),
            disabled,
            seccomp,
            root,
        }
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(kernel_version("6.18.44-fc-v1272\n"), Some((6, 18)));
        assert_eq!(kernel_version("5.15.0-91-generic"), Some((5, 15)));
        assert_eq!(kernel_version("x"), None);
    }

    #[test]
    fn io_uring_is_really_missing_only_for_a_reason() {
        assert!(facts((6, 18), 0, Some(0), false).verdict().0);
        assert!(facts((6, 0), 1, Some(0), true).verdict().0);
        assert!(!facts((6, 18), 1, Some(0), false).verdict().0);
        assert!(!facts((6, 18), 2, Some(0), true).verdict().0);
        assert!(!facts((5, 19), 0, Some(0), true).verdict().0);
        let (present, why) = facts((6, 18), 0, Some(2), true).verdict();
        assert!(!present && why.contains("seccomp"), "{why}");
    }
}
