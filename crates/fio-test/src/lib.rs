//! Helpers shared by the tests and benches of the fio workspace (not published).
//!
//! Layer: a dev-dependency only; it depends on nothing in the workspace.
//!
//! [`SameRun`] is the one way fio's benches report: every contender and its baseline are timed
//! in the same process and run, and only their ratio is compared, because this machine is
//! shared and noisy and absolute numbers from different runs mean little.
//!
//! [`skip`] is the one way a test says it cannot run what it tests (a missing [`Feature`]):
//! a failure where the run's policy (`FIO_REQUIRE`, `FIO_REQUIRE_URING`) requires the feature,
//! else one `FIO-SKIP:` line that `cargo xtask ci` collects.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

mod same_run;
mod skip;

pub use same_run::{Ratio, SameRun};
pub use skip::{
    Feature, REQUIRE_URING_VAR, REQUIRE_VAR, SKIP_LOG_VAR, SKIP_PREFIX, check, is_required,
    is_required_by, skip, skip_line,
};
