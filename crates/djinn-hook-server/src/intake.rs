//! Group commit for posted events: request handlers hand their event to one committer thread,
//! which stores whatever is waiting in one `Store::accept_events` transaction (one fsync for
//! the batch) and answers each handler. A handler awaits its answer without holding a thread.
//!
//! With `synchronous=FULL` every commit is an fsync, and the store's writer is shared with the
//! worker's claims and completions; one transaction per event would cap intake at one fsync per
//! event. A batch is all or nothing, so when it fails (say, one event names a namespace that
//! was just deleted) its events are retried one by one and each gets its own answer.

use std::sync::mpsc::{self, Receiver, Sender};

use djinn_hook_store::{Accepted, Error, NewEvent, Store};
use tokio::sync::oneshot;

/// The most events committed in one transaction.
const MAX_BATCH: usize = 256;

/// One event waiting to be stored, and where its answer goes.
struct Job {
    event: NewEvent,
    /// The intake request's span: the commit's span is its child.
    span: tracing::Span,
    answer: oneshot::Sender<Result<Accepted, Error>>,
}

/// The handlers' side: hands events to the committer.
#[derive(Clone, Debug)]
pub(crate) struct Intake {
    jobs: Sender<Job>,
}

/// The committer's side; [`Committer::run`] returns once every [`Intake`] is dropped.
pub(crate) struct Committer {
    jobs: Receiver<Job>,
}

/// A connected intake and committer.
pub(crate) fn channel() -> (Intake, Committer) {
    let (tx, rx) = mpsc::channel();
    (Intake { jobs: tx }, Committer { jobs: rx })
}

impl Intake {
    /// Stores one event (in a batch with whatever else is waiting) and returns its outcome: an
    /// event for an unknown namespace is `Error::NamespaceNotFound` and stores nothing, the
    /// store's one rule for every intake (see `Store::accept_event`).
    pub(crate) async fn accept(
        &self,
        event: NewEvent,
        span: tracing::Span,
    ) -> Result<Accepted, Error> {
        let (answer, outcome) = oneshot::channel();
        self.jobs
            .send(Job {
                event,
                span,
                answer,
            })
            .expect("the committer runs as long as an Intake exists");
        outcome
            .await
            .expect("the committer answers every job it takes")
    }
}

impl Committer {
    /// Commits batches until every [`Intake`] is gone and the queue is empty; calls `queued`
    /// after each commit that queued a delivery task (to wake the worker).
    pub(crate) fn run(self, store: &Store, queued: impl Fn()) {
        while let Ok(first) = self.jobs.recv() {
            let mut batch = vec![first];
            batch.extend(self.jobs.try_iter().take(MAX_BATCH - 1));
            commit(store, batch, &queued);
        }
    }
}

fn commit(store: &Store, batch: Vec<Job>, queued: &impl Fn()) {
    let events: Vec<NewEvent> = batch.iter().map(|job| job.event.clone()).collect();
    // A commit span in each request's trace, all over the same transaction; the store's own
    // spans go under the first.
    let spans: Vec<tracing::Span> = batch
        .iter()
        .map(|job| tracing::info_span!(parent: &job.span, "commit", events = batch.len()))
        .collect();
    let _entered = spans.first().map(tracing::Span::enter);
    match store.accept_events(events) {
        Ok(accepted) => {
            if accepted.iter().any(|a| a.matched > 0) {
                queued();
            }
            for (job, accepted) in batch.into_iter().zip(accepted) {
                let _ = job.answer.send(Ok(accepted));
            }
        }
        Err(_) if batch.len() > 1 => {
            for job in batch {
                let outcome = store.accept_event(job.event);
                if outcome.as_ref().is_ok_and(|a| a.matched > 0) {
                    queued();
                }
                let _ = job.answer.send(outcome);
            }
        }
        Err(err) => {
            // A batch of one: the error is its own.
            if let Some(job) = batch.into_iter().next() {
                let _ = job.answer.send(Err(err));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use djinn_hook_payload::EventType;
    use djinn_hook_store::{NewWebhook, SecretKey};

    use super::*;

    #[test]
    fn batches_answer_each_event_and_isolate_a_bad_one() {
        let store = Store::open_in_memory(SecretKey::from_bytes([1; 32])).unwrap();
        store.ensure_namespace("a/b").unwrap();
        store
            .create_webhook(NewWebhook::new("a/b", "https://example.com/h"))
            .unwrap();
        let (intake, committer) = channel();
        std::thread::scope(|scope| {
            scope.spawn(|| committer.run(&store, || {}));
            let event = |ns: &str| NewEvent::new(ns, EventType::Cron, b"{}".to_vec());
            let outcomes: Vec<_> = std::thread::scope(|inner| {
                let handles: Vec<_> = ["a/b", "no/such", "a/b", "a/b"]
                    .into_iter()
                    .map(|ns| {
                        let intake = &intake;
                        inner.spawn(move || {
                            tokio::runtime::Builder::new_current_thread()
                                .build()
                                .unwrap()
                                .block_on(intake.accept(event(ns), tracing::Span::none()))
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            drop(intake);
            let matched: Vec<_> = outcomes
                .iter()
                .map(|o| o.as_ref().map(|a| a.matched).map_err(ToString::to_string))
                .collect();
            assert_eq!(
                matched,
                [
                    Ok(1),
                    Err("namespace \"no/such\" not found".to_owned()),
                    Ok(1),
                    Ok(1)
                ]
            );
        });
        assert_eq!(store.counts().unwrap().events, 3);
    }
}
