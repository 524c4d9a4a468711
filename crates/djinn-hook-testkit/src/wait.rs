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

/// Waits until `look` gives `Ok`, and returns its value; fails the test after [`DEADLINE`],
/// naming `what` and showing the last `Err` (what was seen instead: a page, a log, metrics).
#[track_caller]
pub fn wait_for_ok<T, E: std::fmt::Display>(what: &str, look: impl FnMut() -> Result<T, E>) -> T {
    wait_until_ok(DEADLINE, what, look)
}

/// [`wait_for_ok`] with a deadline of the caller's (work that takes longer, such as a process
/// run to its end on each look).
#[track_caller]
pub fn wait_until_ok<T, E: std::fmt::Display>(
    deadline: Duration,
    what: &str,
    mut look: impl FnMut() -> Result<T, E>,
) -> T {
    let until = Instant::now() + deadline;
    loop {
        match look() {
            Ok(found) => return found,
            Err(seen) => assert!(
                Instant::now() < until,
                "timed out after {deadline:?} waiting for {what}; last seen:\n{seen}"
            ),
        }
        thread::sleep(LOOK_EVERY);
    }
}

/// Waits until `look` finds a value (an async look, such as a request), and returns it; fails
/// the test (naming `what`) after [`DEADLINE`]. For `bool` conditions, `cond.then_some(())`.
#[cfg(feature = "tokio")]
#[track_caller]
pub fn wait_for_async<'a, T, F>(
    what: &'a str,
    mut look: impl FnMut() -> F + 'a,
) -> impl Future<Output = T> + 'a
where
    F: Future<Output = Option<T>> + 'a,
{
    // The caller's location, taken before the future runs (`#[track_caller]` does not reach
    // into an async body).
    let caller = std::panic::Location::caller();
    async move {
        let until = Instant::now() + DEADLINE;
        loop {
            if let Some(found) = look().await {
                return found;
            }
            assert!(
                Instant::now() < until,
                "timed out after {DEADLINE:?} waiting for {what} (at {caller})"
            );
            tokio::time::sleep(LOOK_EVERY).await;
        }
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
        let mut tries = 0;
        let found = wait_for_ok("a third try", || {
            tries += 1;
            if tries == 3 {
                Ok(tries)
            } else {
                Err(format!("try {tries}"))
            }
        });
        assert_eq!(found, 3);
        let never = std::panic::catch_unwind(|| wait_until(Duration::ZERO, "never", || false));
        let message = never.unwrap_err();
        let message = message.downcast_ref::<String>().unwrap();
        assert!(message.contains("waiting for never"), "{message}");
    }
}
