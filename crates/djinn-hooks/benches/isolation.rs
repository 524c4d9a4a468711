//! Per-receiver isolation under load: a healthy webhook's delivery rate while a dead receiver
//! (it accepts connections and never answers) has 1,000 older tasks queued, against the same
//! run without the dead receiver. Goal (issue 13): at least 90%.
//!
//! Each run: a fresh database, the webhooks, the dead receiver's 1,000 events accepted first
//! (so they are older), then N events for the healthy webhook; then the built `djinn-hooks
//! worker --concurrency 16 --allow-private-network` (its defaults otherwise: 15 s timeout,
//! half the threads per webhook, breaker after 5 failures), timed from spawn until the healthy
//! receiver (`djinn_hook_server::Receiver`, verifying every signature) has all N, then killed. Runs
//! alternate without and with the dead receiver, so both see the same machine.
//!
//! Run: `cargo bench -p djinn-hooks --bench isolation` (N = 10,000, 3 pairs).
//! `DJINN_BENCH_N` sets N, `DJINN_BENCH_PAIRS` the pairs; `DJINN_BENCH_BIN=path` runs that build
//! of `djinn-hooks` instead of this one.

use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_server::Receiver;
use djinn_hook_sign::Secret;
use djinn_hook_store::{NewEvent, NewWebhook};

mod support;

const THREADS: usize = 16;
const DEAD_TASKS: usize = 1_000;
const SECRET: &str = "It's a Secret to Everybody";

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    // `cargo test --benches` runs a token N.
    let n = if bench {
        env("DJINN_BENCH_N", 10_000)
    } else {
        200
    };
    let pairs = if bench {
        env("DJINN_BENCH_PAIRS", 3)
    } else {
        1
    };
    println!("isolation: N = {n} healthy deliveries, {DEAD_TASKS} dead tasks, {THREADS} threads");

    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/hook", dead.local_addr().unwrap());
    // Holds every connection open, never answering (ends with the process).
    thread::spawn(move || {
        let held: Vec<_> = dead.incoming().collect();
        drop(held);
    });
    let receiver = Receiver::start("127.0.0.1:0", Secret::from(SECRET)).unwrap();

    let mut ratios = Vec::new();
    let (mut alone_total, mut beside_total) = (0.0, 0.0);
    for pair in 1..=pairs {
        let alone = run(&receiver, None, n);
        let beside = run(&receiver, Some(&dead_url), n);
        let (alone_rate, beside_rate) = (n as f64 / alone, n as f64 / beside);
        let ratio = 100.0 * beside_rate / alone_rate;
        println!(
            "pair {pair}: alone {alone_rate:.0}/s ({alone:.2} s), beside a dead receiver \
             {beside_rate:.0}/s ({beside:.2} s): {ratio:.0}%"
        );
        ratios.push(ratio);
        alone_total += alone;
        beside_total += beside;
    }
    ratios.sort_by(f64::total_cmp);
    let mid = ratios.len() / 2;
    let median = if ratios.len() % 2 == 0 {
        (ratios[mid - 1] + ratios[mid]) / 2.0
    } else {
        ratios[mid]
    };
    println!(
        "summary: healthy rate beside a dead receiver = {:.0}-{:.0}% of alone (median {median:.0}%, \
         all pairs together {:.0}%)",
        ratios[0],
        ratios[ratios.len() - 1],
        100.0 * alone_total / beside_total
    );
}

/// One run; the seconds from the worker's spawn to the N-th healthy delivery.
fn run(receiver: &Receiver, dead_url: Option<&str>, n: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (store, db, key_file) = support::fresh_store(&dir);
    let body = example_payload(EventType::BuildFinished, DEFAULT_API_SERVER).to_body();
    let add = |ns: &str, url: &str, count: usize| {
        store.ensure_namespace(ns).unwrap();
        let mut hook = NewWebhook::new(ns, url);
        hook.secret = Some(SECRET.to_owned());
        store.create_webhook(hook).unwrap();
        let events: Vec<NewEvent> = (0..count)
            .map(|_| NewEvent {
                namespace: ns.to_owned(),
                event: EventType::BuildFinished,
                payload: body.clone(),
            })
            .collect();
        for batch in events.chunks(1_000) {
            store.accept_events(batch.to_vec()).unwrap();
        }
    };
    if let Some(url) = dead_url {
        add("dead/ns", url, DEAD_TASKS);
    }
    add("ok/ns", &receiver.url(), n);
    drop(store);
    // Whatever an earlier run left behind (none expected).
    receiver.drain();

    let started = Instant::now();
    let mut worker = support::spawn_worker(&db, &key_file, THREADS, &[]);
    let deadline = started + Duration::from_secs(300);
    let mut got = 0;
    while got < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let received = receiver
            .next_timeout(left)
            .expect("every healthy delivery arrives");
        assert!(received.signature_valid);
        got += 1;
    }
    let took = started.elapsed().as_secs_f64();
    worker.kill().unwrap();
    worker.wait().unwrap();
    took
}
