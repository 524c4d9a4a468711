//! Draining a backlog with 1, 2 and 4 `worker` processes, on SQLite and on PostgreSQL, in one
//! run, on loopback only: N events are queued for one webhook whose receiver answers 200 at
//! once, then the workers run `--until-idle`; the time from their start to the last one's exit
//! gives deliveries per second.
//!
//! Not a divan benchmark (it measures processes over seconds). `cargo bench -p djinn-hooks
//! --bench drain` runs it and prints a Markdown table. Knobs (environment):
//! `DRAIN_BENCH_EVENTS` (default 20,000), `DRAIN_BENCH_CONCURRENCY` (per worker, default 8),
//! `DJINN_TEST_POSTGRES_URL` (a server on which it may create and drop databases; without it
//! only SQLite is measured, and the table says so).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use djinn_hook_payload::EventType;
use djinn_hook_store::{NewWebhook, SecretKey, Store};

#[path = "support/backlog.rs"]
mod backlog;
#[path = "support/knobs.rs"]
mod knobs;
use knobs::knob;
#[allow(dead_code, reason = "the bench needs only part of the tests' helpers")]
#[path = "../tests/it/fixtures.rs"]
mod fixtures;

const NS: &str = "bench/drain";
const KEY: [u8; 32] = [7; 32];

fn main() {
    let events = knob("DRAIN_BENCH_EVENTS", 20_000);
    let concurrency = knob("DRAIN_BENCH_CONCURRENCY", 8);
    let postgres = std::env::var("DJINN_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty());
    let (receiver, hits) = fixtures::receiver(std::time::Duration::ZERO);
    let dir = tempfile::tempdir().expect("temp dir");
    let key_file = dir.path().join("hooks.key");
    // Readable by its owner only: a key file others may read is refused.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_file)
        .expect("create the key file");
    file.write_all(&KEY).expect("write the key file");

    println!(
        "{events} events, one webhook, `worker --until-idle --concurrency {concurrency}` processes\n"
    );
    println!("| backend | worker processes | seconds | deliveries/s | vs SQLite, 1 process |");
    println!("|---|---|---|---|---|");
    let mut baseline = None;
    for processes in [1, 2, 4] {
        let db = dir.path().join(format!("drain-{processes}.db"));
        let rate = drain(
            db.to_str().unwrap(),
            &key_file,
            &receiver,
            events,
            processes,
            concurrency,
        );
        let base = *baseline.get_or_insert(rate);
        row("SQLite", processes, events, rate, base);
    }
    let base = baseline.expect("measured");
    match &postgres {
        Some(server) => {
            for processes in [1, 2, 4] {
                let scratch = fixtures::Scratch::create(server);
                let rate = drain(
                    &scratch.url,
                    &key_file,
                    &receiver,
                    events,
                    processes,
                    concurrency,
                );
                row("PostgreSQL", processes, events, rate, base);
            }
        }
        None => println!("| PostgreSQL | not measured: DJINN_TEST_POSTGRES_URL is unset | | | |"),
    }
    println!(
        "\nreceiver answered {} requests",
        hits.lock().unwrap().len()
    );
}

/// Queues `events` for one webhook in the store at `db`, runs `processes` workers until idle,
/// checks every event was delivered once, and returns deliveries per second.
fn drain(
    db: &str,
    key_file: &Path,
    receiver: &str,
    events: usize,
    processes: usize,
    concurrency: usize,
) -> f64 {
    let store = Store::open_url(db, SecretKey::from_bytes(KEY)).expect("open the store");
    store.ensure_namespace(NS).unwrap();
    store
        .create_webhook(NewWebhook::new(NS, receiver))
        .expect("create the webhook");
    backlog::queue(&store, NS, EventType::BuildFinished, events);
    let concurrency = concurrency.to_string();
    let started = Instant::now();
    let workers: Vec<_> = (0..processes)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_djinn-hooks"))
                .args(["worker", "--until-idle", "--allow-private-network"])
                .args(["--concurrency", &concurrency])
                .env("DJINN_HOOKS_DB", db)
                .env("DJINN_HOOKS_KEY_FILE", key_file)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn a worker")
        })
        .collect();
    for mut worker in workers {
        assert!(worker.wait().unwrap().success(), "a worker failed");
    }
    let seconds = started.elapsed().as_secs_f64();
    let stats = store.counts().unwrap();
    assert_eq!(
        (stats.pending, stats.leased, stats.deliveries),
        (0, 0, events as u64),
        "every event delivered once"
    );
    events as f64 / seconds
}

fn row(backend: &str, processes: usize, events: usize, rate: f64, base: f64) {
    println!(
        "| {backend} | {processes} | {:.2} | {rate:.0} | {:.2}x |",
        events as f64 / rate,
        rate / base
    );
}
