//! Group commit for posted events: request handlers hand their events (one, or a batch) to one
//! committer thread, which stores whatever is waiting in one `Store::accept_events` transaction
//! (one fsync for the group) and answers each handler. A handler awaits its answer without
//! holding a thread.
//!
//! With `synchronous=FULL` every commit is an fsync, and the store's writer is shared with the
//! worker's claims and completions; one transaction per event would cap intake at one fsync per
//! event. A group is all or nothing, so when it fails (say, one event names a namespace that
//! was just deleted, or reuses an idempotency key for another payload) each request's events
//! are stored again on their own and each request gets its own answer; a request's events (a
//! batch) stay all or nothing. Idempotency keys are checked by the store inside the group's
//! transaction, so two requests with one key in one group are one event and a replay of it.

use std::sync::mpsc::{self, Receiver, Sender};

use djinn_hook_store::{Accepted, Error, NewEvent, Store};
use tokio::sync::oneshot;

/// The most events committed in one transaction, unless one request brings more.
const MAX_GROUP: usize = 256;

/// One request's events waiting to be stored, and where their answer goes.
struct Job {
    events: Vec<NewEvent>,
    /// The intake request's span: the commit's span is its child.
    span: tracing::Span,
    answer: oneshot::Sender<Result<Vec<Accepted>, Error>>,
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
    /// Stores one event (in a group with whatever else is waiting) and returns its outcome: an
    /// event for an unknown namespace is `Error::NamespaceNotFound` and stores nothing, the
    /// store's one rule for every intake (see `Store::accept_event`).
    pub(crate) async fn accept(
        &self,
        event: NewEvent,
        span: tracing::Span,
    ) -> Result<Accepted, Error> {
        let mut accepted = self.accept_all(vec![event], span).await?;
        Ok(accepted.remove(0))
    }

    /// Stores a request's events all or none, in order, and returns their outcomes in order.
    pub(crate) async fn accept_all(
        &self,
        events: Vec<NewEvent>,
        span: tracing::Span,
    ) -> Result<Vec<Accepted>, Error> {
        let (answer, outcome) = oneshot::channel();
        self.jobs
            .send(Job {
                events,
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
    /// Commits groups until every [`Intake`] is gone and the queue is empty; calls `queued`
    /// after each commit that queued a delivery task (to wake the worker).
    pub(crate) fn run(self, store: &Store, queued: impl Fn()) {
        while let Ok(first) = self.jobs.recv() {
            let mut size = first.events.len();
            let mut group = vec![first];
            while size < MAX_GROUP {
                let Ok(job) = self.jobs.try_recv() else {
                    break;
                };
                size += job.events.len();
                group.push(job);
            }
            commit(store, group, &queued);
        }
    }
}

/// Whether a commit's answers queued a delivery task (a replay queues none).
fn queued_any(accepted: &[Accepted]) -> bool {
    accepted.iter().any(|a| a.matched > 0 && !a.replayed)
}

fn commit(store: &Store, group: Vec<Job>, queued: &impl Fn()) {
    let events = group.iter().map(|job| job.events.len()).sum::<usize>();
    // A commit span in each request's trace, all over the same transaction; the store's own
    // spans go under the first.
    let spans: Vec<tracing::Span> = group
        .iter()
        .map(|job| tracing::info_span!(parent: &job.span, "commit", events))
        .collect();
    let _entered = spans.first().map(tracing::Span::enter);
    if group.len() == 1 {
        // A request alone: its error is its own.
        let job = group.into_iter().next().expect("one job");
        let outcome = store.accept_events(job.events);
        if outcome.as_deref().is_ok_and(queued_any) {
            queued();
        }
        let _ = job.answer.send(outcome);
        return;
    }
    let events: Vec<NewEvent> = group
        .iter()
        .flat_map(|j| j.events.iter().cloned())
        .collect();
    match store.accept_events(events) {
        Ok(mut accepted) => {
            if queued_any(&accepted) {
                queued();
            }
            for job in group {
                let rest = accepted.split_off(job.events.len());
                let _ = job.answer.send(Ok(accepted));
                accepted = rest;
            }
        }
        Err(_) => {
            for job in group {
                let outcome = store.accept_events(job.events);
                if outcome.as_deref().is_ok_and(queued_any) {
                    queued();
                }
                let _ = job.answer.send(outcome);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use djinn_hook_payload::EventType;
    use djinn_hook_store::{NewWebhook, SecretKey};

    use super::*;

    fn store() -> Store {
        let store = Store::open_in_memory(SecretKey::from_bytes([1; 32])).unwrap();
        store.ensure_namespace("a/b").unwrap();
        store
            .create_webhook(NewWebhook::new("a/b", "https://example.com/h"))
            .unwrap();
        store
    }

    fn event(ns: &str) -> NewEvent {
        NewEvent::new(ns, EventType::Cron, b"{}".to_vec())
    }

    #[test]
    fn batches_answer_each_event_and_isolate_a_bad_one() {
        let store = store();
        let (intake, committer) = channel();
        std::thread::scope(|scope| {
            scope.spawn(|| committer.run(&store, || {}));
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

    /// A group as the committer makes it: requests of one event and of several, with one key
    /// used by two requests (one event, the second a replay) and one request that conflicts
    /// (refused alone; the others stored).
    #[test]
    fn a_group_keeps_each_request_whole_and_checks_keys_across_it() {
        let store = store();
        let day = Duration::from_secs(86_400);
        let keyed = |key: &str, payload: &[u8]| {
            NewEvent::new("a/b", EventType::Cron, payload.to_vec()).with_idempotency_key(key, day)
        };
        let mut outcomes = Vec::new();
        let group: Vec<Job> = [
            vec![keyed("k", b"{}")],
            vec![event("a/b"), keyed("k", b"{}")],
            vec![keyed("j", b"{}"), keyed("k", b"[]")],
        ]
        .into_iter()
        .map(|events| {
            let (answer, outcome) = oneshot::channel();
            outcomes.push(outcome);
            Job {
                events,
                span: tracing::Span::none(),
                answer,
            }
        })
        .collect();
        commit(&store, group, &|| {});
        let outcomes: Vec<Result<Vec<Accepted>, Error>> = outcomes
            .into_iter()
            .map(|mut o| o.try_recv().unwrap())
            .collect();
        let first = outcomes[0].as_ref().unwrap();
        let second = outcomes[1].as_ref().unwrap();
        assert_eq!(second.len(), 2);
        assert!(!first[0].replayed && second[1].replayed);
        assert_eq!(second[1].event_id, first[0].event_id);
        assert!(
            matches!(&outcomes[2], Err(Error::IdempotencyConflict { key, index: 1 }) if key == "k"),
            "{:?}",
            outcomes[2]
        );
        // The first two requests' events: two stored; "j" went with its refused request.
        assert_eq!(store.counts().unwrap().events, 2);
    }
}
