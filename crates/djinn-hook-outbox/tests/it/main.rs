//! The in-memory outbox (feature `memory`) against the `Outbox` contract: leases and tokens,
//! stale completions, retries, throttling, put-offs, deferrals, releases, caps and fairness.

use std::time::Duration;

use djinn_hook_outbox::{
    Attempt, ClaimRequest, Completion, Decision, Deferral, DeliveryRequest, Destination, LimitNote,
    MemoryOutbox, Outbox, Outcome, PutOff, ReducedLimit, Release, Task, TaskState,
};
use djinn_hook_payload::EventType;
use time::OffsetDateTime;
use uuid::Uuid;

const MINUTE: Duration = Duration::from_secs(60);

fn request(hook_id: i64) -> DeliveryRequest {
    DeliveryRequest::new(
        hook_id,
        Uuid::new_v4(),
        EventType::BuildFinished,
        "http://127.0.0.1:9/hook",
        b"{}".to_vec(),
    )
}

fn claim(outbox: &MemoryOutbox, limit: usize, lease: Duration) -> Vec<Task> {
    outbox
        .claim(&ClaimRequest::uncapped(limit, lease))
        .unwrap()
        .tasks
}

fn completion(task: &Task, outcome: Outcome) -> Completion {
    Completion::new(
        task.task_id,
        task.lease,
        Attempt::new(&task.request, OffsetDateTime::now_utc()),
        Decision::new(outcome),
    )
}

fn task_ids(tasks: &[Task]) -> Vec<i64> {
    tasks.iter().map(|t| t.task_id).collect()
}

fn hook_ids(tasks: &[Task]) -> Vec<i64> {
    tasks.iter().map(|t| t.request.hook_id).collect()
}

fn state(outbox: &MemoryOutbox, task_id: i64) -> (TaskState, u32) {
    let task = outbox
        .tasks()
        .into_iter()
        .find(|t| t.task_id == task_id)
        .unwrap();
    (task.state, task.attempts)
}

fn later() -> OffsetDateTime {
    OffsetDateTime::now_utc() + MINUTE
}

#[test]
fn a_leased_task_is_not_claimed_again_until_its_lease_runs_out() {
    let outbox = MemoryOutbox::new();
    outbox.push(request(1));

    let first = claim(&outbox, 10, MINUTE);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].request.attempt, 1);
    assert!(claim(&outbox, 10, MINUTE).is_empty());

    // A lease that has already run out: the task is due again, under a fresh token, and the
    // new claim counts a second attempt.
    let outbox = MemoryOutbox::new();
    let id = outbox.push(request(1));
    let first = claim(&outbox, 10, Duration::ZERO);
    let second = claim(&outbox, 10, MINUTE);
    assert_eq!(second.len(), 1);
    assert_ne!(first[0].lease, second[0].lease);
    assert_eq!(second[0].request.attempt, 2);
    assert_eq!(id, second[0].task_id);
}

#[test]
fn a_zero_lease_claim_takes_each_task_once() {
    let outbox = MemoryOutbox::new();
    outbox.push(request(1));
    outbox.push(request(1));
    // Leases that run out at once leave the tasks due, but one claim never repeats a task.
    assert_eq!(task_ids(&claim(&outbox, 10, Duration::ZERO)), [1, 2]);
}

#[test]
fn a_stale_completion_is_recorded_but_changes_nothing() {
    let outbox = MemoryOutbox::new();
    let id = outbox.push(request(1));
    let stale = claim(&outbox, 1, Duration::ZERO).remove(0);
    let current = claim(&outbox, 1, MINUTE).remove(0);

    outbox
        .complete(&[completion(&stale, Outcome::Failed)])
        .unwrap();
    assert_eq!(state(&outbox, id), (TaskState::Pending, 2));
    assert_eq!(outbox.attempts().len(), 1);

    outbox
        .complete(&[completion(&current, Outcome::Delivered)])
        .unwrap();
    assert_eq!(state(&outbox, id), (TaskState::Delivered, 2));
    assert_eq!(outbox.attempts().len(), 2);
    // The lease is spent: completing again changes nothing more.
    outbox
        .complete(&[completion(&current, Outcome::Failed)])
        .unwrap();
    assert_eq!(state(&outbox, id).0, TaskState::Delivered);
}

#[test]
fn a_completion_applies_after_the_lease_ran_out_if_nobody_claimed_since() {
    let outbox = MemoryOutbox::new();
    let id = outbox.push(request(1));
    let task = claim(&outbox, 1, Duration::ZERO).remove(0);
    outbox
        .complete(&[completion(&task, Outcome::Delivered)])
        .unwrap();
    assert_eq!(state(&outbox, id).0, TaskState::Delivered);
    assert!(claim(&outbox, 1, MINUTE).is_empty());
}

#[test]
fn a_retry_is_due_at_its_time_and_a_failure_is_final() {
    let outbox = MemoryOutbox::new();
    let due_now = outbox.push(request(1));
    let due_later = outbox.push(request(1));
    let failed = outbox.push(request(1));
    let tasks = claim(&outbox, 3, MINUTE);
    let at = later();
    outbox
        .complete(&[
            completion(&tasks[0], Outcome::RetryAt(OffsetDateTime::now_utc())),
            completion(&tasks[1], Outcome::RetryAt(at)),
            completion(&tasks[2], Outcome::Failed),
        ])
        .unwrap();

    let shown = outbox.tasks();
    assert_eq!((shown[1].task_id, shown[1].due_at), (due_later, at));
    assert_eq!(shown[1].lease, None);
    assert_eq!(state(&outbox, failed), (TaskState::Failed, 1));
    let again = claim(&outbox, 10, MINUTE);
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].task_id, again[0].request.attempt), (due_now, 2));
}

#[test]
fn make_due_brings_a_later_retry_forward_but_leaves_leased_and_finished_tasks() {
    let outbox = MemoryOutbox::new();
    let retried = outbox.push(request(1));
    let failed = outbox.push(request(1));
    let tasks = claim(&outbox, 2, MINUTE);
    outbox
        .complete(&[
            completion(&tasks[0], Outcome::RetryAt(later())),
            completion(&tasks[1], Outcome::Failed),
        ])
        .unwrap();
    let leased = outbox.push(request(1));
    let leased_task = claim(&outbox, 1, MINUTE);
    assert_eq!(task_ids(&leased_task), [leased]);
    assert!(
        claim(&outbox, 10, MINUTE).is_empty(),
        "the retry is not due yet"
    );

    for id in [retried, failed, leased] {
        outbox.make_due(id);
    }
    let again = claim(&outbox, 10, MINUTE);
    assert_eq!(
        task_ids(&again),
        [retried],
        "only the pending, unleased one"
    );
    assert_eq!(state(&outbox, failed), (TaskState::Failed, 1));
}

#[test]
fn a_throttled_attempt_is_recorded_but_not_counted() {
    let outbox = MemoryOutbox::new();
    let id = outbox.push(request(1));
    let first = claim(&outbox, 1, MINUTE).remove(0);
    outbox
        .complete(&[completion(
            &first,
            Outcome::Throttled(OffsetDateTime::now_utc()),
        )])
        .unwrap();
    assert_eq!(state(&outbox, id), (TaskState::Pending, 0));
    assert_eq!(outbox.attempts().len(), 1);
    assert_eq!(claim(&outbox, 1, MINUTE)[0].request.attempt, 1);
}

#[test]
fn the_hook_fails_from_its_first_failed_attempt_until_a_delivery() {
    let outbox = MemoryOutbox::new();
    for _ in 0..3 {
        outbox.push(request(1));
    }
    let tasks = claim(&outbox, 3, MINUTE);
    let mut first = completion(&tasks[0], Outcome::RetryAt(later()));
    let since = first.attempt.created_at - Duration::from_secs(5);
    first.attempt.created_at = since;
    let second = completion(&tasks[1], Outcome::RetryAt(later()));
    outbox.complete(&[first, second]).unwrap();
    assert_eq!(outbox.hook(1).unwrap().failing_since, Some(since));

    // A claim hands the run's start to the retry policy.
    outbox.push(request(1));
    assert_eq!(claim(&outbox, 1, MINUTE)[0].hook_failing_since, Some(since));

    outbox
        .complete(&[completion(&tasks[2], Outcome::Delivered)])
        .unwrap();
    assert_eq!(outbox.hook(1).unwrap().failing_since, None);
}

/// Webhook 1 with a leased task and a waiting one, webhook 2 with one: the outbox, the leased
/// task, and the ids of the waiting and the other.
fn leased_waiting_and_other() -> (MemoryOutbox, Task, i64, i64) {
    let outbox = MemoryOutbox::new();
    let leased = outbox.push(request(1));
    let waiting = outbox.push(request(1));
    let other = outbox.push(request(2));
    let task = claim(&outbox, 1, MINUTE).remove(0);
    assert_eq!(task.task_id, leased);
    (outbox, task, waiting, other)
}

#[test]
fn disabling_a_hook_fails_its_pending_tasks_and_claims_none_of_them() {
    let (outbox, task, waiting, other) = leased_waiting_and_other();
    let mut gone = completion(&task, Outcome::Failed);
    gone.decision.disable_hook = Some("410 Gone".to_owned());
    outbox.complete(&[gone]).unwrap();

    assert_eq!(
        outbox.hook(1).unwrap().disabled.as_deref(),
        Some("410 Gone")
    );
    assert_eq!(state(&outbox, waiting).0, TaskState::Failed);
    assert_eq!(task_ids(&claim(&outbox, 10, MINUTE)), [other]);
}

#[test]
fn a_put_off_is_due_later_uncounted_and_shows_the_breaker_until_it_closes() {
    let outbox = MemoryOutbox::new();
    let id = outbox.push(request(1));
    let task = claim(&outbox, 1, MINUTE).remove(0);
    let destination = Destination::of(&task.request.url).unwrap();
    let until = later();
    let put_off = PutOff {
        task_id: id,
        lease: task.lease,
        until,
        destination: destination.clone(),
        reason: "5 consecutive timeouts".to_owned(),
    };
    outbox.put_off(std::slice::from_ref(&put_off)).unwrap();

    let shown = &outbox.tasks()[0];
    assert_eq!(
        (shown.attempts, shown.due_at, shown.lease),
        (0, until, None)
    );
    assert_eq!(outbox.hook(1).unwrap().breaker, Some(put_off.clone()));
    assert!(claim(&outbox, 1, MINUTE).is_empty());

    // A second put-off under the spent lease changes nothing.
    let mut stale = put_off;
    stale.until = OffsetDateTime::now_utc();
    outbox.put_off(&[stale]).unwrap();
    assert_eq!(outbox.tasks()[0].due_at, until);

    outbox.breaker_closed(&destination).unwrap();
    assert_eq!(outbox.hook(1).unwrap().breaker, None);
}

#[test]
fn a_release_makes_the_task_due_at_once_uncounted() {
    let outbox = MemoryOutbox::new();
    let id = outbox.push(request(1));
    let task = claim(&outbox, 1, MINUTE).remove(0);
    let release = Release {
        task_id: id,
        lease: task.lease,
    };
    outbox.release(&[release]).unwrap();
    assert_eq!(state(&outbox, id), (TaskState::Pending, 0));
    let again = claim(&outbox, 1, MINUTE).remove(0);
    assert_eq!(again.request.attempt, 1);

    // Releasing under the old token leaves the new claim alone.
    outbox.release(&[release]).unwrap();
    assert_eq!(outbox.tasks()[0].lease, Some(again.lease));
}

#[test]
fn a_deferral_moves_a_hooks_due_tasks_but_not_its_live_leases() {
    let (outbox, task, waiting, other) = leased_waiting_and_other();
    let until = later() + MINUTE;
    outbox.defer(&[Deferral { hook_id: 1, until }]).unwrap();

    let tasks = outbox.tasks();
    assert_eq!(
        tasks[0].due_at, task.lease_until,
        "a live lease is left alone"
    );
    assert_eq!((tasks[1].task_id, tasks[1].due_at), (waiting, until));
    assert_eq!(tasks[1].attempts, 0);
    assert_eq!(task_ids(&claim(&outbox, 10, MINUTE)), [other]);
}

#[test]
fn a_claim_shares_round_robin_and_continues_after_the_hook_it_served_last() {
    let outbox = MemoryOutbox::new();
    for hook in [1, 1, 1, 2, 2, 3] {
        outbox.push(request(hook));
    }
    // Fewer than the webhooks: one each from the first ones.
    assert_eq!(hook_ids(&claim(&outbox, 2, MINUTE)), [1, 2]);
    // The next claim starts after webhook 2; spare room goes to those with more due.
    assert_eq!(hook_ids(&claim(&outbox, 4, MINUTE)), [3, 1, 2, 1]);
}

#[test]
fn a_hook_at_its_cap_gets_nothing_and_the_claim_says_so() {
    let outbox = MemoryOutbox::new();
    for hook in [1, 1, 1, 2] {
        outbox.push(request(hook));
    }
    outbox.set_max_in_flight(2, Some(5));
    let mut request = ClaimRequest::uncapped(10, MINUTE);
    request.max_in_flight = 1;
    request.leases_per_slot = 2;
    let first = outbox.claim(&request).unwrap();
    assert_eq!(hook_ids(&first.tasks), [1, 1, 2]);
    assert!(first.held_back, "webhook 1 has a third task due");
    assert_eq!(first.tasks[2].max_in_flight, Some(5));

    let second = outbox.claim(&request).unwrap();
    assert!(second.tasks.is_empty());
    assert!(second.held_back);

    // A completion frees a lease: the held-back task is claimed.
    outbox
        .complete(&[completion(&first.tasks[0], Outcome::Delivered)])
        .unwrap();
    let third = outbox.claim(&request).unwrap();
    assert_eq!(third.tasks.len(), 1);
    assert!(!third.held_back);
}

#[test]
fn limits_changed_shows_the_reduced_limit_until_it_is_back() {
    let outbox = MemoryOutbox::new();
    outbox.push(request(1));
    let reduced = ReducedLimit {
        limit: 2,
        reason: "timeouts".to_owned(),
        paused_until: None,
    };
    let note = |reduced| LimitNote {
        hook_id: 1,
        reduced,
    };
    outbox
        .limits_changed(&[note(Some(reduced.clone()))])
        .unwrap();
    assert_eq!(outbox.hook(1).unwrap().reduced_limit, Some(reduced));
    outbox.limits_changed(&[note(None)]).unwrap();
    assert_eq!(outbox.hook(1).unwrap().reduced_limit, None);
}

/// The shared breakers' rules, as the store's conformance suite checks them on both backends:
/// the first opening stands, one taker gets the probe (until its `until`), an opening after a
/// probe replaces the breaker, a closing removes it.
#[test]
fn a_shared_breaker_gives_its_probe_to_one_taker() {
    use djinn_hook_outbox::{BreakerOpening, ProbeTurn};

    let outbox = MemoryOutbox::new();
    let dest = Destination::of("http://dead.example.com:8080/").unwrap();
    let now = OffsetDateTime::now_utc();
    let opening = |failures: u32, until: OffsetDateTime, after_probe: bool| BreakerOpening {
        destination: dest.clone(),
        failures,
        reason: format!("{failures} consecutive timeouts"),
        open_for: Duration::from_secs(30),
        until,
        after_probe,
    };
    assert_eq!(
        outbox.take_probe(&dest, now + MINUTE).unwrap(),
        ProbeTurn::Closed
    );

    // Opened until a minute from now, then again by another process: the first stands.
    outbox
        .breaker_opened(&[opening(5, now + MINUTE, false)])
        .unwrap();
    outbox.breaker_opened(&[opening(6, now, false)]).unwrap();
    let open = outbox.open_breakers().unwrap();
    assert_eq!((open.len(), open[0].failures), (1, 5));
    assert!(matches!(
        outbox.take_probe(&dest, now + MINUTE).unwrap(),
        ProbeTurn::Held(held) if held.until == now + MINUTE
    ));

    // Its period over (an opening after a probe replaces it): one taker gets the probe.
    let over = OffsetDateTime::now_utc();
    outbox.breaker_opened(&[opening(6, over, true)]).unwrap();
    let probe_until = OffsetDateTime::now_utc() + MINUTE;
    assert_eq!(
        outbox.take_probe(&dest, probe_until).unwrap(),
        ProbeTurn::Granted
    );
    assert!(matches!(
        outbox.take_probe(&dest, probe_until).unwrap(),
        ProbeTurn::Held(held) if held.probe_until == Some(probe_until)
    ));
    // A probe whose `until` passed is free again.
    outbox.breaker_opened(&[opening(7, over, true)]).unwrap();
    assert_eq!(
        outbox.take_probe(&dest, OffsetDateTime::now_utc()).unwrap(),
        ProbeTurn::Granted
    );
    assert_eq!(
        outbox
            .take_probe(&dest, OffsetDateTime::now_utc() + MINUTE)
            .unwrap(),
        ProbeTurn::Granted
    );

    outbox.breaker_closed(&dest).unwrap();
    assert_eq!(outbox.open_breakers().unwrap(), []);
    assert_eq!(
        outbox.take_probe(&dest, now + MINUTE).unwrap(),
        ProbeTurn::Closed
    );
}
