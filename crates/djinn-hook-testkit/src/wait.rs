//! Waiting for a condition with a deadline.

use std::thread;
use std::time::{Duration, Instant};

/// How long [`wait_for`] waits: long enough for a loaded machine, short enough that a hung
/// test fails rather than stalls the suite.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// How often the condition is looked at.
const LOOK_EVERY: Duration = Duration::from_millis(5);

/// Waits until `done` holds, failing the test (naming `what`) after [`DEADLINE`].
#[track_caller]
pub fn wait_for(what: &str, done: impl FnMut() -> bool) {
    wait_until(DEADLINE, what, done);
}

/// Waits until `done` holds, failing the test (naming `what`) after `deadline`.
#[track_caller]
pub fn wait_until(deadline: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !done() {
        assert!(
            Instant::now() < until,
            "timed out after {deadline:?} waiting for {what}"
        );
        thread::sleep(LOOK_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_that_holds_returns_and_one_that_never_does_fails() {
        let mut looks = 0;
        wait_until(Duration::from_secs(5), "three looks", || {
            looks += 1;
            looks == 3
        });
        assert_eq!(looks, 3);
        let never = std::panic::catch_unwind(|| wait_until(Duration::ZERO, "never", || false));
        let message = never.unwrap_err();
        let message = message.downcast_ref::<String>().unwrap();
        assert!(message.contains("waiting for never"), "{message}");
    }
}
