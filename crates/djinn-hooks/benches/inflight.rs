//! Memory and file descriptors with many deliveries waiting on receivers that never answer
//! (issue 22): N events for one webhook whose receiver accepts every connection and never
//! answers, and the built `djinn-hooks worker --max-deliveries N --max-in-flight-per-hook N`
//! (its defaults otherwise: 8 working threads, 15 s per attempt). The bench samples the
//! worker's resident memory, threads and open files every 50 ms until N connections are held
//! (or a minute passes), then kills it. Goal: peak RSS under 200 MiB at N = 10,000.
//!
//! Run: `cargo bench -p djinn-hooks --bench inflight` (N = 10,000); `DJINN_BENCH_N` sets N.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_store::{NewEvent, NewWebhook};

mod support;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n: usize = if bench {
        std::env::var("DJINN_BENCH_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000)
    } else {
        // `cargo test --benches` runs a token N.
        50
    };
    // The black hole's end of every connection is in this process too.
    let _ = rlimit::increase_nofile_limit(u64::MAX);

    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", hole.local_addr().unwrap());
    let held = Arc::new(AtomicUsize::new(0));
    thread::spawn({
        let held = Arc::clone(&held);
        move || {
            let mut streams = Vec::new();
            for stream in hole.incoming().flatten() {
                streams.push(stream);
                held.store(streams.len(), Ordering::SeqCst);
            }
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let (store, db, key_file) = support::fresh_store(&dir);
    store.ensure_namespace("hole/ns").unwrap();
    store
        .create_webhook(NewWebhook::new("hole/ns", url))
        .unwrap();
    let body = example_payload(EventType::BuildFinished, DEFAULT_API_SERVER).to_body();
    let events: Vec<NewEvent> = (0..n)
        .map(|_| NewEvent::new("hole/ns", EventType::BuildFinished, body.clone()))
        .collect();
    for batch in events.chunks(1_000) {
        store.accept_events(batch.to_vec()).unwrap();
    }
    drop(store);

    let n_arg = n.to_string();
    let started = Instant::now();
    let mut worker = support::spawn_worker(
        &db,
        &key_file,
        8,
        &[
            "--max-deliveries",
            &n_arg,
            "--max-in-flight-per-hook",
            &n_arg,
        ],
    );
    let pid = worker.id();
    let (mut peak_rss, mut peak_threads, mut peak_fds) = (0u64, 0u64, 0usize);
    let mut all_held = None;
    while started.elapsed() < Duration::from_secs(60) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        peak_rss = peak_rss.max(field("VmHWM:"));
        peak_threads = peak_threads.max(field("Threads:"));
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
        peak_fds = peak_fds.max(fds);
        if held.load(Ordering::SeqCst) >= n && all_held.is_none() {
            all_held = Some(started.elapsed());
        }
        // A little past the moment all are held, for the figures to settle.
        if all_held.is_some_and(|at| started.elapsed() > at + Duration::from_millis(500)) {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    worker.kill().unwrap();
    worker.wait().unwrap();
    let held = held.load(Ordering::SeqCst);
    println!(
        "inflight: {held} of {n} deliveries held by the black hole {}; worker peak RSS {:.1} MiB, \
         {peak_threads} threads, {peak_fds} open files",
        all_held.map_or_else(
            || "(not all within a minute)".to_owned(),
            |at| format!("after {:.2} s", at.as_secs_f64())
        ),
        peak_rss as f64 / 1024.0,
    );
}
