//! Test deliveries (`hook test`): one event to one webhook now, recorded like any attempt and marked as a test.

use std::borrow::Borrow;
use std::time::Duration;

use djinn_hook_deliver::{
    Attempt, Completion, Decision, DecisionOutcome, Deliverer, Outbox as _, OutboxError,
};
use djinn_hook_payload::EventType;
use djinn_hook_store::{Delivery, DeliveryFilter, Page, Store};

use crate::StoreOutbox;
use crate::outbox::request;

/// How long a test delivery's task is leased: as a worker's claim (5 min), far
/// longer than one delivery's timeout.
const LEASE: Duration = Duration::from_secs(300);

/// What [`StoreOutbox::deliver_test`] did.
#[derive(Debug)]
pub struct TestDelivery {
    /// The attempt as made (never shows the secret).
    pub attempt: Attempt,
    /// The attempt as the delivery log recorded it; `None` only if the webhook
    /// was deleted while it was delivered (its log went with it).
    pub delivery: Option<Delivery>,
}

impl TestDelivery {
    /// Whether the receiver answered 2xx.
    pub fn delivered(&self) -> bool {
        self.attempt.is_success()
    }
}

impl<S: Borrow<Store> + Send + Sync> StoreOutbox<S> {
    /// Delivers `body` as `event` to webhook `hook_id` now, whatever its state
    /// or events (the caller asked for this webhook), and records the attempt
    /// in the delivery log like any other, marked as a test
    /// ([`Delivery::test`]).
    ///
    /// The event and its one task are stored and leased by
    /// [`Store::queue_test`] (the secret leaves the store only inside the
    /// claimed task), delivered once with `deliverer`, and completed as
    /// delivered or failed: a test is never retried, and never disables the
    /// webhook. An unknown webhook is an error wrapping
    /// `djinn_hook_store::Error::WebhookNotFound`, and nothing is sent.
    pub fn deliver_test(
        &self,
        deliverer: &Deliverer,
        hook_id: i64,
        event: EventType,
        body: Vec<u8>,
    ) -> Result<TestDelivery, OutboxError> {
        let claimed = self
            .store()
            .queue_test(hook_id, event, body, LEASE)
            .map_err(OutboxError::new)?;
        let (task_id, lease, event_id) = (claimed.task_id, claimed.lease, claimed.event_id);
        let attempt = deliverer.deliver(&request(claimed));
        let outcome = if attempt.is_success() {
            DecisionOutcome::Delivered
        } else {
            DecisionOutcome::Failed
        };
        let done = Completion {
            task_id,
            lease: lease.to_string(),
            attempt,
            decision: Decision {
                outcome,
                disable_hook: None,
            },
        };
        self.complete(std::slice::from_ref(&done))?;
        let delivery = self
            .store()
            .deliveries(DeliveryFilter::event(event_id), Page::new(1))
            .map_err(OutboxError::new)?
            .items
            .into_iter()
            .next();
        Ok(TestDelivery {
            attempt: done.attempt,
            delivery,
        })
    }
}
