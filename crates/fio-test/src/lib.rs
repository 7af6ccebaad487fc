//! Helpers shared by the tests and benches of the fio workspace (not published).
//!
//! Layer: a dev-dependency only; it depends on nothing in the workspace.
//!
//! [`SameRun`] is the one way fio's benches report: every contender and its baseline are timed
//! in the same process and run, and only their ratio is compared, because this machine is
//! shared and noisy and absolute numbers from different runs mean little.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

mod same_run;

pub use same_run::{Ratio, SameRun};
