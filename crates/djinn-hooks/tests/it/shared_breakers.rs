//! Circuit breakers shared across processes: several `worker` (and `serve`) processes on one
//! database send a dead receiver as many probes per open period as one process does (one),
//! rather than one each.
//!
//! The dead receiver is a black hole on 127.0.0.1 that accepts connections, counts them and
//! never answers, behind [`HOOKS`] webhooks (so that every process claims some of its tasks);
//! their timeout is 200 ms, the breakers open at the first timeout and stay open [`OPEN_FOR`]
//! between probes (`--breaker-*` flags). Every connection after the first burst (the
//! processes' first attempts, before any breaker opened) is a probe. Processes that each kept
//! their own breaker would each probe once their period ended, within a poll interval (1 s) of
//! one another; one probe per period leaves at least a period between two probes. The test
//! waits for [`PROBES`] of them (a bounded wait) and asserts each came at least half a period
//! after the one before: slowness only spreads them further apart. PostgreSQL needs
//! `DJINN_TEST_POSTGRES_URL`.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_payload::EventType;
use djinn_hook_store::{NewEvent, NewWebhook, Store};

use crate::Env;
use crate::crash::wait_until;
use crate::fixtures::postgres_server;

const NS: &str = "alice/ci";
/// The breakers' open period (`--breaker-open-for` and `--breaker-max-open-for`): well over
/// twice the workers' poll interval.
const OPEN_FOR: Duration = Duration::from_secs(3);
const OPEN_FOR_FLAG: &str = "3s";
/// Probes observed per run.
const PROBES: usize = 4;
/// Webhooks on the one dead destination, and events for each.
const HOOKS: usize = 12;
const EVENTS: usize = 25;
/// Delivery threads per process (each webhook's cap is then 1).
const CONCURRENCY: usize = 2;

#[test]
fn two_workers_on_postgres_probe_a_dead_host_as_one_does() {
    let Some(server) = postgres_server() else {
        return;
    };
    for workers in [1, 2] {
        let env = Env::on_postgres(&server);
        let probes = probe_gaps(&env, &vec![Kind::Worker; workers]);
        assert_one_probe_per_period(&probes, &format!("{workers} worker(s) on PostgreSQL"));
    }
}

#[test]
fn serve_and_a_worker_on_one_sqlite_file_share_breakers() {
    let env = Env::new();
    let probes = probe_gaps(&env, &[Kind::Serve, Kind::Worker]);
    assert_one_probe_per_period(&probes, "serve and a worker on SQLite");
}

#[derive(Clone, Copy)]
enum Kind {
    Worker,
    Serve,
}

/// The times of the connections after the first burst, once [`PROBES`] of them came.
fn probe_gaps(env: &Env, kinds: &[Kind]) -> Vec<Instant> {
    let hole = BlackHole::start();
    let key_file = env.path("hooks.key");
    let database = env.database();
    let on_postgres = database.starts_with("postgres");
    let store =
        Store::open_with_key_file(Path::new(&database), on_postgres.then_some(&*key_file)).unwrap();
    store.ensure_namespace(NS).unwrap();
    for hook in 0..HOOKS {
        let mut new = NewWebhook::new(NS, format!("{}/{hook}", hole.url));
        new.events = vec!["build.finished".to_owned()];
        new.limits.timeout = Some(Duration::from_millis(200));
        store.create_webhook(new).unwrap();
    }
    let concurrency = CONCURRENCY.to_string();
    let breakers = [
        "--allow-private-network",
        "--concurrency",
        &concurrency,
        "--breaker-failures",
        "1",
        "--breaker-open-for",
        OPEN_FOR_FLAG,
        "--breaker-max-open-for",
        OPEN_FOR_FLAG,
    ];
    let mut processes: Vec<Child> = kinds
        .iter()
        .map(|kind| {
            let mut args: Vec<&str> = match kind {
                Kind::Worker => vec!["worker"],
                Kind::Serve => vec!["serve", "--listen", "127.0.0.1:0"],
            };
            args.extend(breakers);
            let ready = match kind {
                Kind::Worker => "worker: delivering with",
                Kind::Serve => "msg=listening",
            };
            spawn_ready(env, &args, ready)
        })
        .collect();

    // Every process is claiming: the events come in one batch, as a CI server's would.
    let events = (0..EVENTS)
        .map(|_| {
            NewEvent::new(
                NS,
                EventType::BuildFinished,
                br#"{"event":"build.finished"}"#.to_vec(),
            )
        })
        .collect();
    store.accept_events(events).unwrap();

    let burst_end = |arrivals: &[Instant]| arrivals.first().map(|&first| first + OPEN_FOR / 2);
    let probes = |arrivals: &[Instant]| -> Vec<Instant> {
        let Some(end) = burst_end(arrivals) else {
            return Vec::new();
        };
        arrivals.iter().copied().filter(|&at| at > end).collect()
    };
    wait_until(
        Duration::from_secs(60),
        &format!("{PROBES} probes of the dead host"),
        || probes(&hole.arrivals()).len() >= PROBES,
    );
    let arrivals = hole.arrivals();
    for process in &mut processes {
        let _ = process.kill();
        let _ = process.wait();
    }
    hole.stop();
    let first = arrivals[0];
    let burst = arrivals.iter().filter(|&&at| at <= first + OPEN_FOR / 2);
    assert!(
        burst.count() <= kinds.len() * HOOKS,
        "at most a first attempt per process and webhook before the breakers opened: {:?}",
        offsets(first, &arrivals)
    );
    probes(&arrivals)
}

#[track_caller]
fn assert_one_probe_per_period(probes: &[Instant], what: &str) {
    let close: Vec<Duration> = probes
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .filter(|gap| *gap < OPEN_FOR / 2)
        .collect();
    assert!(
        close.is_empty(),
        "{what}: more than one probe in an open period (gaps {close:?} between probes)"
    );
}

fn offsets(first: Instant, arrivals: &[Instant]) -> Vec<Duration> {
    arrivals.iter().map(|&at| at - first).collect()
}

/// Spawns the binary with `args` and waits (20 s at most) for a line of its stderr containing
/// `ready`; the rest of its stderr is read and dropped.
fn spawn_ready(env: &Env, args: &[&str], ready: &'static str) -> Child {
    let mut child = env
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains(ready) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{args:?} did not start"));
    child
}

/// A receiver that accepts connections, notes when, and never answers.
struct BlackHole {
    url: String,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
}

impl BlackHole {
    fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (arrivals, stop) = (Arc::clone(&arrivals), Arc::clone(&stop));
            thread::spawn(move || {
                // Held open, unanswered, until the test ends.
                let mut held: Vec<TcpStream> = Vec::new();
                while !stop.load(Ordering::Acquire) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            arrivals.lock().unwrap().push(Instant::now());
                            held.push(stream);
                        }
                        Err(_) => thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        BlackHole {
            url,
            arrivals,
            stop,
            thread,
        }
    }

    fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.thread.join().unwrap();
    }
}
