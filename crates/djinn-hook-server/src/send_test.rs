//! Test deliveries (`hook test`, the web UI's test button): [`send_test`], [`StoreActions`],
//! the UI's delivery side over a store, and `TestSlots`, which bounds how many run at once in
//! a server ([`TestLimits`]) and runs each on a thread of its own.
//!
//! A test delivery blocks for as long as its receiver takes (up to the webhook's timeout, 120 s
//! at most). On the runtime's blocking pool it would hold a thread that every store call of the
//! API and the UI also needs, so a few tests to a slow receiver could stall both; and nothing
//! bounded how many a write token could start. So a server runs each on its own thread, at
//! most [`TestLimits::per_webhook`] to one webhook and [`TestLimits::total`] in all; one more
//! is refused at once (429 naming the limit) rather than queued: a queued test would wait for
//! the slow ones, then past the request's deadline, and its result would reach nobody. When the
//! request ends first (its 408, or the browser gone), the delivery finishes on its thread and
//! is recorded like any other; its slot is freed then.

#[cfg(feature = "ui")]
use std::collections::HashMap;
#[cfg(feature = "ui")]
use std::fmt;
#[cfg(feature = "ui")]
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[cfg(feature = "ui")]
use djinn_hook_deliver::WorkerWaker;
use djinn_hook_deliver::{Completion, Deliverer};
use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_store::{Delivery, DeliveryFilter, Page, Store};

/// How long a test delivery's task is leased: as a worker's claim, far longer than one
/// delivery's timeout.
const TEST_LEASE: Duration = Duration::from_secs(300);

/// What [`send_test`] did: the committed attempt and its record.
#[derive(Debug)]
pub struct SentTest {
    /// The attempt and its outcome (`Delivered` or `Failed`: a test is never retried).
    pub completion: Completion,
    /// The attempt as the delivery log recorded it; `None` only if the webhook was deleted
    /// meanwhile, taking its log with it.
    pub delivery: Option<Delivery>,
}

/// Delivers `event`'s example payload to webhook `hook_id` now, whatever its state or events
/// (the caller asked for this webhook), and records it in the delivery log like any attempt,
/// marked as a test ([`Delivery::test`]). Blocks for the delivery. An unknown webhook is
/// `Error::WebhookNotFound`, and nothing is sent.
pub fn send_test(
    store: &Store,
    deliverer: &Deliverer,
    hook_id: i64,
    event: EventType,
) -> djinn_hook_store::Result<SentTest> {
    let body = example_payload(event, DEFAULT_API_SERVER).to_body();
    let task = store.queue_test(hook_id, event, body, TEST_LEASE)?;
    let event_id = task.request.event_id;
    let completion = deliverer.deliver_once(task);
    store.complete_one(&completion)?;
    let delivery = store
        .deliveries(DeliveryFilter::event(event_id), Page::new(1))?
        .items
        .into_iter()
        .next();
    Ok(SentTest {
        completion,
        delivery,
    })
}

#[cfg(feature = "ui")]
/// The UI's [`Actions`](crate::ui::Actions) over a store: test deliveries with [`send_test`],
/// and a redelivery waking the worker (if one runs in this process).
pub struct StoreActions {
    store: Arc<Store>,
    deliverer: Deliverer,
    waker: Option<WorkerWaker>,
}

#[cfg(feature = "ui")]
impl StoreActions {
    /// Test deliveries to `store` with `deliverer`; `waker` wakes the worker after a
    /// redelivery (`None`: a worker elsewhere finds it at its next poll).
    pub fn new(store: Arc<Store>, deliverer: Deliverer, waker: Option<WorkerWaker>) -> Self {
        StoreActions {
            store,
            deliverer,
            waker,
        }
    }
}

#[cfg(feature = "ui")]
impl fmt::Debug for StoreActions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreActions")
            .field("deliverer", &self.deliverer)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "ui")]
impl StoreActions {
    /// [`send_test`] to webhook `hook_id`: the recorded delivery's id (`None` if the webhook
    /// was deleted meanwhile). The UI's test button (its `Actions`).
    pub(crate) fn send(
        &self,
        hook_id: i64,
        event: EventType,
    ) -> djinn_hook_store::Result<Option<i64>> {
        send_test(&self.store, &self.deliverer, hook_id, event)
            .map(|sent| sent.delivery.map(|d| d.id))
    }

    /// Wakes the worker, if there is one: a task was queued.
    pub(crate) fn wake(&self) {
        if let Some(waker) = &self.waker {
            waker.wake();
        }
    }
}

#[cfg(feature = "ui")]
/// How many test deliveries a server runs at once. [`TestLimits::default`] gives the defaults
/// documented on each field; change one by setting it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TestLimits {
    /// To one webhook: a second click while a test to a slow receiver runs is fine, a burst is
    /// not. Default 2.
    pub per_webhook: usize,
    /// In all: each holds a thread of its own until its receiver answers. Default 8.
    pub total: usize,
}

#[cfg(feature = "ui")]
impl Default for TestLimits {
    fn default() -> TestLimits {
        TestLimits {
            per_webhook: 2,
            total: 8,
        }
    }
}

#[cfg(feature = "ui")]
/// Why a test delivery was not started: a limit of [`TestLimits`] is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TestRefused {
    /// As many tests to this webhook as [`TestLimits::per_webhook`] are running.
    #[error(
        "{limit} test deliveries to this webhook are already running (at most {limit} at a \
         time); try again once one has finished"
    )]
    Webhook {
        /// The limit.
        limit: usize,
    },
    /// As many tests as [`TestLimits::total`] are running.
    #[error(
        "{limit} test deliveries are already running on this server (at most {limit} at a \
         time); try again once one has finished"
    )]
    Total {
        /// The limit.
        limit: usize,
    },
}

#[cfg(feature = "ui")]
/// Runs test deliveries within [`TestLimits`], each on a thread of its own. Cheap to clone
/// (the clones share the counts).
#[derive(Clone, Debug)]
pub(crate) struct TestSlots {
    limits: TestLimits,
    running: Arc<Mutex<Running>>,
}

#[cfg(feature = "ui")]
/// The tests running now: in all and by webhook.
#[derive(Debug, Default)]
struct Running {
    total: usize,
    by_hook: HashMap<i64, usize>,
}

#[cfg(feature = "ui")]
/// One running test's place in [`Running`], given back when dropped (the test's thread ended,
/// or it could not start).
struct Slot {
    running: Arc<Mutex<Running>>,
    hook_id: i64,
}

#[cfg(feature = "ui")]
impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = lock(&self.running);
        running.total -= 1;
        if let Some(count) = running.by_hook.get_mut(&self.hook_id) {
            *count -= 1;
            if *count == 0 {
                running.by_hook.remove(&self.hook_id);
            }
        }
    }
}

#[cfg(feature = "ui")]
/// The counts, even if a thread panicked while holding them (they are updated in one step).
fn lock(running: &Mutex<Running>) -> std::sync::MutexGuard<'_, Running> {
    running
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(feature = "ui")]
impl TestSlots {
    /// Slots for tests within `limits`.
    pub(crate) fn new(limits: TestLimits) -> TestSlots {
        TestSlots {
            limits,
            running: Arc::default(),
        }
    }

    /// Runs `send` (a test delivery to webhook `hook_id`) on a thread of its own, if a slot is
    /// free, and waits for its result. If this future is dropped first, the thread goes on to
    /// the end (the attempt is recorded) and frees its slot then. `Ok(None)`: the thread
    /// could not be started (logged), or `send` panicked (reported by the panic hook); the
    /// slot is freed either way.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        hook_id: i64,
        send: impl FnOnce() -> T + Send + 'static,
    ) -> Result<Option<T>, TestRefused> {
        let slot = self.take(hook_id)?;
        let (done, result) = tokio::sync::oneshot::channel();
        let started = std::thread::Builder::new()
            .name("djinn-test-delivery".into())
            .spawn(move || {
                // Locals in this order: the slot is freed before the waiting request hears of
                // the end, on a panic too (locals drop in reverse order), so a test started
                // after this one's answer finds its slot free.
                let done = done;
                let slot = slot;
                let sent = send();
                drop(slot);
                // The request may be gone; the attempt is recorded either way.
                let _ = done.send(sent);
            });
        if let Err(err) = started {
            tracing::error!(msg = "cannot start a test delivery thread", error = %err);
            return Ok(None);
        }
        Ok(result.await.ok())
    }

    /// A slot for a test to `hook_id`, or which limit is reached.
    fn take(&self, hook_id: i64) -> Result<Slot, TestRefused> {
        let mut running = lock(&self.running);
        let to_hook = running.by_hook.get(&hook_id).copied().unwrap_or(0);
        if to_hook >= self.limits.per_webhook {
            return Err(TestRefused::Webhook {
                limit: self.limits.per_webhook,
            });
        }
        if running.total >= self.limits.total {
            return Err(TestRefused::Total {
                limit: self.limits.total,
            });
        }
        running.total += 1;
        *running.by_hook.entry(hook_id).or_default() += 1;
        Ok(Slot {
            running: Arc::clone(&self.running),
            hook_id,
        })
    }
}

#[cfg(feature = "ui")]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_per_webhook_and_in_all_and_given_back() {
        let slots = TestSlots::new(TestLimits {
            per_webhook: 2,
            total: 3,
        });
        let a1 = slots.take(1).unwrap();
        let _a2 = slots.take(1).unwrap();
        assert_eq!(slots.take(1).err(), Some(TestRefused::Webhook { limit: 2 }));
        let _b1 = slots.take(2).unwrap();
        assert_eq!(slots.take(3).err(), Some(TestRefused::Total { limit: 3 }));
        drop(a1);
        let _c1 = slots.take(3).unwrap();
        assert_eq!(
            TestRefused::Webhook { limit: 2 }.to_string(),
            "2 test deliveries to this webhook are already running (at most 2 at a time); \
             try again once one has finished"
        );
    }

    #[tokio::test]
    async fn a_test_that_panics_gives_its_slot_back() {
        let slots = TestSlots::new(TestLimits {
            per_webhook: 1,
            total: 1,
        });
        let ran = slots.run(1, || panic!("a broken test delivery")).await;
        assert_eq!(ran.map(|r: Option<()>| r.is_none()), Ok(true));
        assert_eq!(
            slots.run(1, || 7).await,
            Ok(Some(7)),
            "the slot is free again"
        );
    }
}
