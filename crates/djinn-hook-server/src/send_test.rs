//! Test deliveries (`hook test`, the web UI's test button): [`send_test`], and [`StoreActions`],
//! the UI's delivery side over a store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use djinn_hook_deliver::{Completion, Deliverer, WorkerWaker};
use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_store::{Delivery, DeliveryFilter, Page, Store};

use crate::ui::Actions;

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

/// The UI's [`Actions`] over a store: test deliveries with [`send_test`], and a redelivery
/// waking the worker (if one runs in this process).
pub struct StoreActions {
    store: Arc<Store>,
    deliverer: Deliverer,
    waker: Option<WorkerWaker>,
}

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

impl fmt::Debug for StoreActions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreActions")
            .field("deliverer", &self.deliverer)
            .finish_non_exhaustive()
    }
}

impl Actions for StoreActions {
    fn send_test(&self, hook_id: i64, event: EventType) -> Result<Option<i64>, String> {
        send_test(&self.store, &self.deliverer, hook_id, event)
            .map(|sent| sent.delivery.map(|d| d.id))
            .map_err(|err| err.to_string())
    }

    fn queued(&self) {
        if let Some(waker) = &self.waker {
            waker.wake();
        }
    }
}
