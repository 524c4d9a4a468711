//! The real worker over djinn-hook-outbox's `MemoryOutbox` (the outbox of users' tests),
//! delivering to a receiver on 127.0.0.1.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use djinn_hook_deliver::{AttemptOutcome, RetryPolicy, Worker, WorkerConfig};
use djinn_hook_outbox::{MemoryOutbox, TaskState};
use djinn_hook_sign::headers;
use uuid::Uuid;

use crate::server::{Reply, Server};
use crate::{local_deliverer, request};

/// Webhook that answers each event's first request with 500.
const FLAKY_HOOK: i64 = 2;

#[test]
fn a_worker_over_the_memory_outbox_delivers_every_task_once() {
    // The receiver fails the first request of each of the flaky webhook's events.
    let seen: Mutex<HashSet<String>> = Mutex::default();
    let server = Server::start(move |got, _| {
        let delivery = got.header(headers::DELIVERY).unwrap_or_default().to_owned();
        let flaky = got.header(headers::HOOK_ID) == Some(&FLAKY_HOOK.to_string());
        let first = seen.lock().unwrap().insert(delivery);
        Reply::status(if flaky && first { 500 } else { 200 })
    });
    let outbox = MemoryOutbox::new();
    for hook_id in [1, FLAKY_HOOK, 3] {
        for _ in 0..4 {
            let mut request = request(&server.url());
            request.hook_id = hook_id;
            outbox.push(request);
        }
    }
    let mut policy = RetryPolicy::default();
    policy.schedule = vec![Duration::ZERO, Duration::ZERO];
    policy.jitter = 0.0;
    let mut config = WorkerConfig::default();
    config.concurrency = 4;
    config.poll_interval = Duration::from_millis(20);
    let stats = Worker::new(&outbox, local_deliverer(), policy, config).run_until_idle();

    assert_eq!((stats.delivered, stats.retries_scheduled), (12, 4));
    let tasks = outbox.tasks();
    assert!(
        tasks.iter().all(|t| t.state == TaskState::Delivered),
        "{tasks:?}"
    );
    // Each event reached the receiver once, or twice where the first answer was a 500: so
    // exactly one request of each was accepted.
    let mut requests: HashMap<Uuid, usize> = HashMap::new();
    for got in server.requests() {
        let delivery = got.header(headers::DELIVERY).unwrap().parse().unwrap();
        *requests.entry(delivery).or_default() += 1;
    }
    for task in &tasks {
        let expected = if task.request.hook_id == FLAKY_HOOK {
            2
        } else {
            1
        };
        assert_eq!(requests[&task.request.event_id], expected, "{task:?}");
        assert_eq!(task.attempts, expected as u32);
    }
    assert_eq!(requests.len(), 12);

    // Every attempt is recorded, numbered per event, and the flaky webhook is healthy again.
    let attempts = outbox.attempts();
    assert_eq!(attempts.len(), server.request_count());
    for attempt in &attempts {
        let failed_first = attempt.hook_id == FLAKY_HOOK && attempt.attempt == 1;
        let (outcome, status) = if failed_first {
            (AttemptOutcome::HttpStatus, 500)
        } else {
            (AttemptOutcome::Success, 200)
        };
        assert_eq!(attempt.outcome, outcome, "{attempt:?}");
        assert_eq!(attempt.response_status, Some(status));
    }
    assert_eq!(outbox.hook(FLAKY_HOOK).unwrap().failing_since, None);
}
