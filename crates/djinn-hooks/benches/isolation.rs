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
//! Run: `cargo bench -p djinn-hooks --bench isolation` (N = 60,000, K = 1, 10 and 50, 3 pairs
//! each). `DJINN_BENCH_N` sets N, `DJINN_BENCH_K` the Ks (`1,10,50`), `DJINN_BENCH_PAIRS` the
//! pairs; `DJINN_BENCH_BIN=path` runs that build of `djinn-hooks` instead of this one.
//!
//! N is large enough for runs of a few seconds: meeting the faulty receivers (claiming their
//! first tasks, opening the refused ports' breakers, parking the rest) costs the worker a
//! fixed 0.1-0.3 s of CPU, which in runs under a second would be measured as a lower rate.
//! Each line also prints the worker's CPU time and when the first healthy delivery arrived.

use std::time::{Duration, Instant};

use djinn_hook_payload::EventType;
use djinn_hook_server::Receiver;
use djinn_hook_sign::Secret;
use djinn_hook_store::NewWebhook;

#[path = "support/backlog.rs"]
mod backlog;
#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/faulty.rs"]
mod faulty;
#[path = "support/knobs.rs"]
mod knobs;
use knobs::knob;
mod support;

/// The `worker` command's default.
const THREADS: usize = 8;
const DEAD_TASKS: usize = 1_000;
const SECRET: &str = "It's a Secret to Everybody";

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    // `cargo test --benches` runs a token N.
    let n = if bench {
        knob("DJINN_BENCH_N", 60_000)
    } else {
        200
    };
    let pairs = if bench {
        knob("DJINN_BENCH_PAIRS", 3)
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
        let mut cpu_ratios = Vec::new();
        let (mut alone_total, mut beside_total) = (0.0, 0.0);
        for pair in 1..=pairs {
            let alone_run = run(&receiver, &[], n);
            let beside_run = run(&receiver, &faulty[..k], n);
            let (alone, beside) = (alone_run.took, beside_run.took);
            let (alone_rate, beside_rate) = (n as f64 / alone, n as f64 / beside);
            let ratio = 100.0 * beside_rate / alone_rate;
            println!(
                "K = {k}, pair {pair}: alone {alone_rate:.0}/s ({alone:.2} s, first delivery at \
                 {:.3} s, worker CPU {:.2} s), beside them {beside_rate:.0}/s ({beside:.2} s, \
                 first at {:.3} s, CPU {:.2} s): {ratio:.0}%",
                alone_run.first, alone_run.cpu, beside_run.first, beside_run.cpu
            );
            cpu_ratios.push(alone_run.cpu / beside_run.cpu.max(0.01) * 100.0);
            ratios.push(ratio);
            alone_total += alone;
            beside_total += beside;
        }
        let (low, median, high) = spread(&mut ratios);
        let (_, cpu_median, _) = spread(&mut cpu_ratios);
        println!(
            "summary K = {k}: healthy rate beside them = {low:.0}-{high:.0}% of alone (median \
             {median:.0}%, all pairs together {:.0}%); worker CPU alone / beside: median \
             {cpu_median:.0}%",
            100.0 * alone_total / beside_total
        );
    }
}

/// The lowest, the median and the highest of `values` (sorted in place).
fn spread(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    let median = if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    };
    (values[0], median, values[values.len() - 1])
}

/// One run beside the `faulty` receivers.
fn run(receiver: &Receiver, faulty: &[String], n: usize) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (store, db, key_file) = support::fresh_store(&dir);
    let add = |ns: &str, url: &str, count: usize| {
        store.ensure_namespace(ns).unwrap();
        let mut hook = NewWebhook::new(ns, url);
        hook.secret = Some(SECRET.to_owned());
        store.create_webhook(hook).unwrap();
        backlog::queue(&store, ns, EventType::BuildFinished, count);
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
    let mut first = None;
    while got < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let received = receiver
            .next_timeout(left)
            .expect("every healthy delivery arrives");
        assert!(received.signature_valid);
        first.get_or_insert_with(|| started.elapsed());
        got += 1;
    }
    let took = started.elapsed();
    let cpu = cpu::cpu_time(&format!("/proc/{}/stat", worker.id()));
    worker.kill().unwrap();
    worker.wait().unwrap();
    Run {
        took: took.as_secs_f64(),
        first: first.unwrap_or(took).as_secs_f64(),
        cpu: cpu.as_secs_f64(),
    }
}

/// One run's times, in seconds from the worker's spawn.
#[derive(Clone, Copy)]
struct Run {
    /// To the N-th healthy delivery.
    took: f64,
    /// To the first.
    first: f64,
    /// The worker's CPU time (user + system) until then: what the faulty receivers cost it,
    /// whatever else the machine is doing.
    cpu: f64,
}
