//! One thread that runs the worker's calls into its [`Outbox`](crate::Outbox), whichever
//! delivery thread makes them (the caller waits, as if it had made the call itself).
//!
//! Why: what a claim allocates (each task's request body) lives until its attempt is committed,
//! and the allocator (glibc's, one arena per thread) keeps memory freed in an arena for that
//! arena. With every delivery thread claiming in turn, each arena comes to hold a claim's worth
//! of bodies, and the worker's peak memory grows with the length of the run. Claims and commits
//! made on one thread keep that memory in one arena; the hand-off costs two wake-ups per batch,
//! not per delivery.

use std::sync::mpsc;
use std::thread::{self, Scope};

/// A call for the store thread.
type Job<'env> = Box<dyn FnOnce() + Send + 'env>;

/// The handle through which delivery threads hand calls to the store thread.
#[derive(Debug)]
pub(crate) struct StoreThread<'env> {
    jobs: mpsc::Sender<Job<'env>>,
}

impl<'env> StoreThread<'env> {
    /// Starts the store thread in `scope`; it ends when this handle is dropped.
    pub(crate) fn start<'scope>(scope: &'scope Scope<'scope, 'env>) -> StoreThread<'env> {
        let (jobs, calls) = mpsc::channel::<Job<'env>>();
        // Named, so that it can be told apart in `top -H`, `perf` and the like.
        thread::Builder::new()
            .name("djinn-store".to_owned())
            .spawn_scoped(scope, move || {
                for job in calls {
                    job();
                }
            })
            .expect("spawning the store thread");
        StoreThread { jobs }
    }

    /// Runs `call` on the store thread and returns its result. A panic in `call` ends the
    /// store thread and is re-raised by the worker's scope; the caller panics too.
    pub(crate) fn call<T: Send + 'env>(&self, call: impl FnOnce() -> T + Send + 'env) -> T {
        let (result, received) = mpsc::sync_channel(1);
        let job: Job<'env> = Box::new(move || {
            let _ = result.send(call());
        });
        self.jobs
            .send(job)
            .expect("the store thread runs while delivery threads do");
        received
            .recv()
            .expect("the store thread panicked during an outbox call")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_run_on_one_other_thread_and_return_their_results() {
        let caller = thread::current().id();
        let ids = thread::scope(|scope| {
            let store = StoreThread::start(scope);
            let first = store.call(|| thread::current().id());
            let second = store.call(|| thread::current().id());
            assert_eq!(store.call(|| 6 * 7), 42);
            (first, second)
        });
        assert_eq!(ids.0, ids.1);
        assert_ne!(ids.0, caller);
    }
}
