//! [`Shutdown`]: one signal to stop, shared by the worker, the server, the store's background
//! loops and the binary's signal handler, that wakes whoever waits on it at once.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A stop signal: set once with [`stop`](Self::stop), never unset; cheap to clone (the clones
/// share it).
///
/// Whoever waits on it is woken the moment it is set, with no polling interval: a blocking
/// thread ([`wait`](Self::wait), [`wait_timeout`](Self::wait_timeout)), an async task
/// ([`stopped`](Self::stopped)), or anything that registered a [`Waker`]
/// ([`on_stop`](Self::on_stop), for a loop that waits on something else, such as a worker's
/// own condition variable).
///
/// ```
/// use std::time::Duration;
/// use djinn_hook_outbox::Shutdown;
///
/// let shutdown = Shutdown::new();
/// let waiting = std::thread::spawn({
///     let shutdown = shutdown.clone();
///     move || shutdown.wait_timeout(Duration::from_secs(60))
/// });
/// shutdown.stop();
/// assert!(waiting.join().unwrap(), "woken at once, not after a minute");
/// assert!(shutdown.is_stopped());
/// ```
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    /// Signalled when the stop is set.
    stopped: Condvar,
}

#[derive(Default)]
struct State {
    stopped: bool,
    /// The wakers registered by [`Shutdown::on_stop`] and pending [`Stopped`] futures.
    wakers: HashMap<u64, Waker>,
    next_key: u64,
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl Shutdown {
    /// A signal not set yet.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Sets the signal and wakes every waiter (again: setting it twice does no harm).
    pub fn stop(&self) {
        let wakers: Vec<Waker> = {
            let mut state = self.lock();
            state.stopped = true;
            state.wakers.drain().map(|(_, waker)| waker).collect()
        };
        self.inner.stopped.notify_all();
        // Outside the lock: a waker may take locks of its own, or look at this signal.
        for waker in wakers {
            waker.wake();
        }
    }

    /// Whether the signal is set.
    pub fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    /// Blocks until the signal is set.
    pub fn wait(&self) {
        let mut state = self.lock();
        while !state.stopped {
            state = self
                .inner
                .stopped
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Blocks until the signal is set (then `true`) or `timeout` has passed (`false`): a sleep
    /// that a stop cuts short.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.lock();
        while !state.stopped {
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return false;
            }
            state = self
                .inner
                .stopped
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// A future that completes once the signal is set (at once if it is), for any async
    /// runtime; it holds a clone of the signal, so it may outlive this handle.
    pub fn stopped(&self) -> Stopped {
        Stopped {
            shutdown: self.clone(),
            key: None,
        }
    }

    /// Wakes `waker` once the signal is set (at once if it is), unless the returned guard was
    /// dropped first: for a loop that waits on something of its own, which the waker wakes.
    #[must_use = "dropping the guard unregisters the waker"]
    pub fn on_stop(&self, waker: Waker) -> OnStop {
        let key = {
            let mut state = self.lock();
            if state.stopped {
                None
            } else {
                Some(state.register(waker.clone()))
            }
        };
        if key.is_none() {
            waker.wake();
        }
        OnStop {
            shutdown: self.clone(),
            key,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn unregister(&self, key: u64) {
        self.lock().wakers.remove(&key);
    }
}

impl State {
    fn register(&mut self, waker: Waker) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        self.wakers.insert(key, waker);
        key
    }
}

/// The future of [`Shutdown::stopped`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Stopped {
    shutdown: Shutdown,
    /// Its waker's key while it is registered.
    key: Option<u64>,
}

impl Future for Stopped {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut state = this.shutdown.lock();
        if state.stopped {
            this.key = None;
            return Poll::Ready(());
        }
        match this.key.and_then(|key| state.wakers.get_mut(&key)) {
            Some(waker) => waker.clone_from(cx.waker()),
            None => this.key = Some(state.register(cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.shutdown.unregister(key);
        }
    }
}

/// Keeps a waker registered with [`Shutdown::on_stop`]; dropping it unregisters the waker.
#[derive(Debug)]
pub struct OnStop {
    shutdown: Shutdown,
    key: Option<u64>,
}

impl Drop for OnStop {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.shutdown.unregister(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wake_count::Count;

    fn count(count: &Arc<Count>) -> usize {
        count.get()
    }

    #[test]
    fn a_registered_waker_is_woken_once_by_the_stop() {
        let shutdown = Shutdown::new();
        let woken = Arc::new(Count::default());
        let _guard = shutdown.on_stop(Waker::from(Arc::clone(&woken)));
        assert_eq!(count(&woken), 0);
        shutdown.stop();
        shutdown.stop();
        assert_eq!(count(&woken), 1);
    }

    #[test]
    fn a_dropped_guard_unregisters_and_a_late_registration_is_woken_at_once() {
        let shutdown = Shutdown::new();
        let woken = Arc::new(Count::default());
        drop(shutdown.on_stop(Waker::from(Arc::clone(&woken))));
        assert!(shutdown.lock().wakers.is_empty());
        shutdown.stop();
        assert_eq!(count(&woken), 0);
        let _late = shutdown.on_stop(Waker::from(Arc::clone(&woken)));
        assert_eq!(count(&woken), 1);
    }

    #[test]
    fn wait_timeout_times_out_without_a_stop() {
        let shutdown = Shutdown::new();
        assert!(!shutdown.wait_timeout(Duration::ZERO));
        assert!(!shutdown.wait_timeout(Duration::from_millis(1)));
        shutdown.stop();
        assert!(shutdown.wait_timeout(Duration::MAX));
        shutdown.wait();
    }

    #[test]
    fn the_future_is_pending_until_the_stop_and_unregisters_when_dropped() {
        let shutdown = Shutdown::new();
        let woken = Arc::new(Count::default());
        let waker = Waker::from(Arc::clone(&woken));
        let mut cx = Context::from_waker(&waker);
        let mut stopped = std::pin::pin!(shutdown.stopped());
        assert!(stopped.as_mut().poll(&mut cx).is_pending());
        assert!(
            stopped.as_mut().poll(&mut cx).is_pending(),
            "polled again: one waker"
        );
        assert_eq!(shutdown.lock().wakers.len(), 1);
        shutdown.stop();
        assert_eq!(count(&woken), 1);
        assert!(stopped.as_mut().poll(&mut cx).is_ready());

        let other = Shutdown::new();
        let mut pending = Box::pin(other.stopped());
        assert!(pending.as_mut().poll(&mut cx).is_pending());
        drop(pending);
        assert!(other.lock().wakers.is_empty());
    }
}
