//! Per-receiver isolation under load: a healthy webhook's delivery rate beside K faulty
//! receivers with 1,000 older tasks queued each, against the same run without them. Goal
//! (issues 13 and 22): at least 90% for every K.
//!
//! The faulty receivers, in turn: one that accepts connections and never answers, one that
//! answers a byte a second, a port that refuses connections, one that answers correctly after
//! 3 s. Each run: a fresh database, the webhooks, the faulty receivers' events accepted first
//! (so they are older), then N events for the healthy webhook; then the built `djinn-hooks
//! worker --concurrency 8 --allow-private-network` (the defaults otherwise), timed from spawn
//! until the healthy receiver (`djinn_hook_server::Receiver`, verifying every signature) has
//! all N, then killed. Runs alternate without and with the faulty receivers, so both see the
//! same machine.
//!
//! Run: `cargo bench -p djinn-hooks --bench isolation` (N = 10,000, K = 1, 10 and 50, 2 pairs
//! each). `DJINN_BENCH_N` sets N, `DJINN_BENCH_K` the Ks (`1,10,50`), `DJINN_BENCH_PAIRS` the
//! pairs; `DJINN_BENCH_BIN=path` runs that build of `djinn-hooks` instead of this one.

use std::time::{Duration, Instant};

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_server::Receiver;
use djinn_hook_sign::Secret;
use djinn_hook_store::{NewEvent, NewWebhook};

#[path = "support/faulty.rs"]
mod faulty;
mod support;

/// The `worker` command's default.
const THREADS: usize = 8;
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
        env("DJINN_BENCH_PAIRS", 2)
    } else {
        1
    };
    let ks: Vec<usize> = if bench {
        std::env::var("DJINN_BENCH_K")
            .unwrap_or_else(|_| "1,10,50".to_owned())
            .split(',')
            .filter_map(|k| k.trim().parse().ok())
            .collect()
    } else {
        vec![4]
    };
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let receiver = Receiver::start("127.0.0.1:0", Secret::from(SECRET)).unwrap();
    let most = ks.iter().copied().max().unwrap_or(0);
    let faulty: Vec<String> = (0..most).map(faulty::receiver).collect();

    for k in ks {
        println!(
            "isolation: N = {n} healthy deliveries beside K = {k} faulty receivers with {DEAD_TASKS} tasks each, {THREADS} threads"
        );
        let mut ratios = Vec::new();
        let (mut alone_total, mut beside_total) = (0.0, 0.0);
        for pair in 1..=pairs {
            let alone = run(&receiver, &[], n);
            let beside = run(&receiver, &faulty[..k], n);
            let (alone_rate, beside_rate) = (n as f64 / alone, n as f64 / beside);
            let ratio = 100.0 * beside_rate / alone_rate;
            println!(
                "K = {k}, pair {pair}: alone {alone_rate:.0}/s ({alone:.2} s), beside them \
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
            "summary K = {k}: healthy rate beside them = {:.0}-{:.0}% of alone (median {median:.0}%, \
             all pairs together {:.0}%)",
            ratios[0],
            ratios[ratios.len() - 1],
            100.0 * alone_total / beside_total
        );
    }
}

/// One run beside the `faulty` receivers; the seconds from the worker's spawn to the N-th
/// healthy delivery.
fn run(receiver: &Receiver, faulty: &[String], n: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (store, db, key_file) = support::fresh_store(&dir);
    let body = example_payload(EventType::BuildFinished, DEFAULT_API_SERVER).to_body();
    let add = |ns: &str, url: &str, count: usize| {
        store.ensure_namespace(ns).unwrap();
        let mut hook = NewWebhook::new(ns, url);
        hook.secret = Some(SECRET.to_owned());
        store.create_webhook(hook).unwrap();
        let events: Vec<NewEvent> = (0..count)
            .map(|_| NewEvent::new(ns, EventType::BuildFinished, body.clone()))
            .collect();
        for batch in events.chunks(1_000) {
            store.accept_events(batch.to_vec()).unwrap();
        }
    };
    for (i, url) in faulty.iter().enumerate() {
        add(&format!("faulty/ns{i}"), url, DEAD_TASKS);
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
