//! Process liveness: a registered process's claims carry it; a live one keeps them, a dead
//! one's come back at once; a retired one hands them back; a released task is due at once
//! without its claim counted; a completion after a take-back is recorded, as stale.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_outbox::{ClaimRequest, Release};
use djinn_hook_payload::EventType;
use djinn_hook_store::{LivenessEvent, TakenBack};

use crate::support::{Backend, LEASE, all_delivered, now};

/// A `register_process` callback that keeps the take-backs it is told of (and fails the test
/// on a failed look).
fn recorder() -> (
    Arc<Mutex<Vec<TakenBack>>>,
    impl Fn(LivenessEvent<'_>) + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&seen);
    let report = move |event: LivenessEvent<'_>| match event {
        LivenessEvent::TakenBack(t) => keep.lock().unwrap().push(t.clone()),
        LivenessEvent::LookFailed(err) => panic!("a look failed: {err}"),
        _ => {}
    };
    (seen, report)
}

pub(crate) fn a_live_process_keeps_its_claims_a_dead_ones_come_back_at_once(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/hook");
    db.emit_all("alice/ci", &[EventType::BuildStarted; 5]);
    let holder = db.reopen();
    let holder_id = holder.register_process(|_| {}).unwrap();
    assert_eq!(holder.register_process(|_| {}).unwrap(), holder_id, "once");
    let held = holder.claim_due(now(), 3, LEASE).unwrap();
    assert_eq!(held.len(), 3);

    let (seen, report) = recorder();
    let other = db.reopen();
    let other_id = other.register_process(report).unwrap();
    assert_ne!(other_id, holder_id);
    // Alive: only the two never claimed are due.
    assert!(other.take_back_from_dead().unwrap().is_empty());
    assert_eq!(other.claim_due(now(), 10, LEASE).unwrap().len(), 2);
    assert!(other.claim_due(now(), 10, LEASE).unwrap().is_empty());

    // The holder dies (its claims now a dead process's): the claims come back at once.
    let dead = db.hand_claims_to_a_dead_process(holder_id);
    let taken = other.take_back_from_dead().unwrap();
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(taken[0].process.id.as_i64(), dead);
    assert_eq!(
        (taken[0].process.pid, taken[0].process.host.as_str()),
        (1, "gone")
    );
    assert_eq!(taken[0].tasks, 3);
    assert_eq!(*seen.lock().unwrap(), taken, "reported");
    assert_eq!(other.claims_taken_back(), 3);
    // Due at once, each claim still counted (an attempt may have reached the receiver).
    let again = other.claim_due(now(), 10, LEASE).unwrap();
    let mut ids: Vec<i64> = again.iter().map(|t| t.task_id).collect();
    ids.sort_unstable();
    let mut held_ids: Vec<i64> = held.iter().map(|t| t.task_id).collect();
    held_ids.sort_unstable();
    assert_eq!(ids, held_ids);
    assert!(again.iter().all(|t| t.request.attempt == 2));
    // Forgotten: not taken back twice.
    assert!(other.take_back_from_dead().unwrap().is_empty());

    // The holder, alive after all (as a process cut off from the database would be), completes
    // late: recorded, counted stale, and the new claim is not undone.
    let late = holder.complete(&all_delivered(&held, now())).unwrap();
    assert!(
        late.iter()
            .all(|c| c.delivery_id.is_some() && !c.lease_held)
    );
    assert_eq!(holder.stale_completions(), 3);
    // Still leased to the other process: the two it claimed first, the three it took back.
    let counts = db.store.counts().unwrap();
    assert_eq!((counts.leased, counts.deliveries), (5, 3));
}

pub(crate) fn a_claim_looks_for_dead_processes_by_itself(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/hook");
    db.emit_all("alice/ci", &[EventType::BuildStarted; 4]);
    let running = db.reopen();
    let (seen, report) = recorder();
    running.register_process(report).unwrap();
    let holder = db.reopen();
    let holder_id = holder.register_process(|_| {}).unwrap();
    assert_eq!(holder.claim_due(now(), 4, LEASE).unwrap().len(), 4);
    db.hand_claims_to_a_dead_process(holder_id);
    // A claim of a process that was running all along looks (once a second at most), takes
    // the claims back and gets them.
    let deadline = Instant::now() + Duration::from_secs(10);
    let got = loop {
        let got = running.claim_due(now(), 10, LEASE).unwrap();
        if !got.is_empty() || Instant::now() > deadline {
            break got;
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(got.len(), 4);
    assert_eq!(seen.lock().unwrap()[0].tasks, 4);
}

pub(crate) fn a_restarted_process_takes_back_as_it_registers(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/hook");
    db.emit_all("alice/ci", &[EventType::BuildStarted; 4]);
    let holder = db.reopen();
    let holder_id = holder.register_process(|_| {}).unwrap();
    assert_eq!(holder.claim_due(now(), 4, LEASE).unwrap().len(), 4);
    db.hand_claims_to_a_dead_process(holder_id);
    let (seen, report) = recorder();
    let restarted = db.reopen();
    restarted.register_process(report).unwrap();
    assert_eq!(seen.lock().unwrap()[0].tasks, 4);
    assert_eq!(restarted.claim_due(now(), 10, LEASE).unwrap().len(), 4);
}

pub(crate) fn retiring_hands_back_every_claim_and_releasing_uncounts_it(backend: &Backend) {
    let db = backend.db();
    let hook = db.hook("alice/ci", "https://example.com/hook");
    db.emit_all("alice/ci", &[EventType::BuildStarted; 4]);
    let process = db.reopen();
    process.register_process(|_| {}).unwrap();
    let claim = ClaimRequest::uncapped(4, LEASE);
    let tasks = process.claim(now(), &claim).unwrap().tasks;
    assert_eq!(tasks.len(), 4);
    // Two never attempted: released, due at once, their claims not counted.
    let release: Vec<Release> = tasks[..2]
        .iter()
        .map(|t| Release {
            task_id: t.task_id,
            lease: t.lease,
        })
        .collect();
    assert_eq!(process.release(&release).unwrap(), 2);
    assert_eq!(
        process.release(&release).unwrap(),
        0,
        "their leases are gone"
    );
    // A test delivery is this process's claim too.
    let test = process
        .queue_test(hook.id, EventType::BuildStarted, b"{}".to_vec(), LEASE)
        .unwrap();
    // The other two under way, and the test: retiring hands them back, still counted.
    assert_eq!(process.retire_process().unwrap(), 3);
    assert_eq!(process.process_id(), None);
    assert_eq!(process.retire_process().unwrap(), 0);
    let other = db.reopen();
    let (seen, report) = recorder();
    other.register_process(report).unwrap();
    assert!(
        seen.lock().unwrap().is_empty(),
        "a retired process is not found dead"
    );
    let again = other.claim_due(now(), 10, LEASE).unwrap();
    let attempts = |id: i64| {
        again
            .iter()
            .find(|t| t.task_id == id)
            .map(|t| t.request.attempt)
    };
    for t in &tasks[..2] {
        assert_eq!(
            attempts(t.task_id),
            Some(1),
            "released: the claim not counted"
        );
    }
    for t in &tasks[2..] {
        assert_eq!(
            attempts(t.task_id),
            Some(2),
            "handed back under way: counted"
        );
    }
    assert_eq!(attempts(test.task_id), Some(2), "the test delivery too");
}

/// A look that fails (here a process's lock file that cannot be opened) is reported, and the
/// claim goes on without it: the lease stays the outer bound.
#[test]
fn a_failed_look_is_reported_and_the_claim_goes_on() {
    let db = crate::support::db();
    db.hook("alice/ci", "https://example.com/hook");
    db.emit_all("alice/ci", &[EventType::BuildStarted; 2]);
    let failures = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&failures);
    let running = db.reopen();
    let me = running
        .register_process(move |event| {
            if let LivenessEvent::LookFailed(err) = event {
                keep.lock().unwrap().push(err.to_string());
            }
        })
        .unwrap();
    // Another process whose lock file is a symbolic link to itself: it cannot be opened.
    let other = db.hand_claims_to_a_dead_process(me);
    let file = db.dir().join(format!("hooks.db.procs/{other:016x}.lock"));
    std::os::unix::fs::symlink(&file, &file).unwrap();
    let mut claimed = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while failures.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no look failed");
        claimed += running.claim_due(now(), 10, LEASE).unwrap().len();
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(claimed, 2, "the claims went on");
    let failed = failures.lock().unwrap()[0].clone();
    assert!(
        failed.contains("cannot check process lock file"),
        "{failed}"
    );
    // Looked at directly, the failure is an error.
    assert!(running.take_back_from_dead().is_err());
}
