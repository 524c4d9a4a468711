//! Waking a long-running `worker` when another process accepts work (PostgreSQL's NOTIFY).

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use djinn_hook_deliver::WorkerWaker;
use djinn_hook_store::{Store, WorkListener};

/// How often the listening thread looks at the stop flag while nothing is announced.
const CHECK_STOP: Duration = Duration::from_millis(250);

/// Runs `run` while a thread wakes the worker (`waker`) each time the store
/// announces new work, so an idle worker starts delivering an event accepted
/// by another process at once rather than at its next poll. On a store that
/// cannot announce work across processes (SQLite) this is just `run()`.
pub(crate) fn while_listening<T>(
    store: &Store,
    waker: WorkerWaker,
    stop: &AtomicBool,
    run: impl FnOnce() -> T,
) -> anyhow::Result<T> {
    let Some(listener) = store.work_listener()? else {
        return Ok(run());
    };
    let done = AtomicBool::new(false);
    Ok(thread::scope(|scope| {
        scope.spawn(|| listen(store, listener, &waker, stop, &done));
        let result = run();
        done.store(true, Ordering::SeqCst);
        result
    }))
}

fn listen(
    store: &Store,
    mut listener: WorkListener,
    waker: &WorkerWaker,
    stop: &AtomicBool,
    done: &AtomicBool,
) {
    let stopping = || stop.load(Ordering::SeqCst) || done.load(Ordering::SeqCst);
    while !stopping() {
        match listener.wait(CHECK_STOP) {
            Ok(true) => waker.wake(),
            Ok(false) => {}
            Err(e) => {
                // The worker still polls; reconnect, and wake it in case
                // something was announced while the connection was down.
                eprintln!("worker: listening for new events failed: {e}; reconnecting");
                thread::sleep(CHECK_STOP);
                if let Ok(Some(fresh)) = store.work_listener() {
                    listener = fresh;
                    waker.wake();
                }
            }
        }
    }
}
