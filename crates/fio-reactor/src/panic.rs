//! Running user code so that a panic is logged instead of killing a reactor thread.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f`, catching and logging a panic; returns `None` if it panicked.
///
/// `AssertUnwindSafe` is sound here in the sense that matters: the reactor's own state is not
/// borrowed by user code while it runs, and the user's captures are dropped with the panic.
pub(crate) fn run_caught<R>(what: &str, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            log::error!("{what} panicked: {}", message(payload.as_ref()));
            None
        }
    }
}

/// The text of a panic payload (`panic!` with a literal or a format string), if it has one.
pub(crate) fn message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(non-string panic payload)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_none() {
        assert_eq!(run_caught("test", || 7), Some(7));
        assert_eq!(run_caught("test", || -> u8 { panic!("boom {}", 1) }), None);
    }

    #[test]
    fn payload_text_is_extracted() {
        let literal: Box<dyn Any + Send> = Box::new("literal");
        assert_eq!(message(literal.as_ref()), "literal");
        let formatted: Box<dyn Any + Send> = Box::new(String::from("formatted"));
        assert_eq!(message(formatted.as_ref()), "formatted");
        let other: Box<dyn Any + Send> = Box::new(3_u8);
        assert_eq!(message(other.as_ref()), "(non-string panic payload)");
    }
}
