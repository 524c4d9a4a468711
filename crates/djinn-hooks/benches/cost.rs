//! What an event costs the store, counted by the database rather than timed: on PostgreSQL the
//! WAL records and bytes, WAL syncs and transactions per event; on SQLite the pages written
//! (WAL frames, and pages a checkpoint copied into the database file) and fsyncs per event.
//! Each backend is measured over two runs, on loopback only:
//!
//! - `serve`: N `build.submitted` events POSTed one per request (8 keep-alive connections) to
//!   a `serve` whose own worker delivers each to a sink that answers 204; counted from before
//!   that `serve` starts until it has stopped after the last delivery.
//! - `drain`: N events queued first (1,000 per `accept`), then `worker --until-idle` delivers
//!   them; the drain alone is counted, from before the worker starts until it has exited.
//!
//! Both runs include one process's start and stop (registering it, a few records), spread
//! over N. Setup (migrations, the webhook) happens in a `serve` started and stopped before the
//! counting starts.
//!
//! PostgreSQL: a throw-away database per run; WAL records and bytes are read from the WAL
//! itself (`pg_walinspect`'s `pg_get_wal_stats` between the run's two insert positions: exact,
//! and split into full-page images and commit records); WAL syncs and `xact_commit` from
//! `pg_stat_wal` and `pg_stat_database`, which the processes report when they exit. The WAL
//! and `pg_stat_wal` are the server's, not the database's: another client writing meanwhile
//! counts too, so the run is read from an otherwise quiet server. SQLite: `strace -f -y`
//! attached to the process, counting `pwrite64` of a page to the `-wal` file (a frame) and to
//! the database file (a checkpoint), and `fsync`/`fdatasync`; without strace nothing is
//! counted and the table says so.
//!
//! `cargo bench -p djinn-hooks --bench cost` (N = 2,000; `COST_BENCH_EVENTS` sets it);
//! `DJINN_TEST_POSTGRES_URL` names the server (without it only SQLite is measured);
//! `DJINN_BENCH_BIN` runs another build. `cargo test --benches` runs it with N = 40.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_sign::headers;
use djinn_hook_store::{NewWebhook, Store};

#[path = "support/backlog.rs"]
mod backlog;
#[path = "support/knobs.rs"]
mod knobs;
use knobs::{knob, load_average};
#[allow(dead_code, reason = "this bench reads no memory figure")]
#[path = "support/serve.rs"]
mod serve;
#[allow(dead_code, reason = "this bench counts requests, not connections")]
#[path = "support/sink.rs"]
mod sink;

use serve::Serve;

/// The namespace the events go to.
const NS: &str = "bench/cost";
/// Connections posting events to `serve`.
const CONNECTIONS: usize = 8;
/// SQLite's page size (the store keeps the default).
const PAGE: &str = "4096";

fn main() {
    // `cargo bench` passes `--bench`; anything else (`cargo test --benches`) runs a token size.
    let events = if std::env::args().any(|a| a == "--bench") {
        knob("COST_BENCH_EVENTS", 2_000)
    } else {
        40
    };
    let sink = sink::Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let key_file = serve::key_file(dir.path());
    let strace = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());

    println!();
    println!(
        "store cost per event: {events} build.submitted events, one webhook, a 204 sink on \
         loopback; load average {}",
        load_average()
    );
    println!();
    println!("SQLite (strace -f -y on the process):");
    println!();
    println!("| run | WAL frames / event | checkpointed pages / event | fsyncs / event |");
    println!("|---|---|---|---|");
    for run in [Run::Serve, Run::Drain] {
        let sub = dir.path().join(format!("sqlite-{}", run.name()));
        std::fs::create_dir(&sub).unwrap();
        let db = sub.join("cost.db");
        let db = db.to_str().unwrap();
        match strace {
            true => sqlite_run(run, &sub, db, &key_file, &sink, events).print(run, events),
            false => println!(
                "| {} | not counted: strace is not installed | | |",
                run.name()
            ),
        }
    }
    println!();
    match std::env::var("DJINN_TEST_POSTGRES_URL") {
        Ok(server) if !server.is_empty() => {
            println!("PostgreSQL (the server's WAL between the run's two insert positions):");
            println!();
            println!(
                "| run | WAL records / event | WAL bytes / event (of which full-page images) \
                 | commit records / event | xact_commit / event | WAL syncs / event |"
            );
            println!("|---|---|---|---|---|---|");
            let mut by_relation = Vec::new();
            for run in [Run::Serve, Run::Drain] {
                let scratch = djinn_hook_testkit::ScratchDatabase::create(&server);
                let counts = pg_run(run, dir.path(), &server, &scratch, &key_file, &sink, events);
                counts.print(run, events);
                by_relation.push((run, counts));
            }
            for (run, counts) in by_relation {
                counts.print_by_relation(run, events);
            }
        }
        _ => println!("PostgreSQL: not measured: DJINN_TEST_POSTGRES_URL is unset"),
    }
    println!();
}

/// The two runs measured on each backend.
#[derive(Clone, Copy)]
enum Run {
    /// `serve` accepting and delivering.
    Serve,
    /// `worker --until-idle` draining a backlog.
    Drain,
}

impl Run {
    fn name(self) -> &'static str {
        match self {
            Run::Serve => "serve, end to end",
            Run::Drain => "worker, backlog drain",
        }
    }
}

/// SQLite's counts over one run.
struct SqliteCounts {
    frames: u64,
    checkpointed: u64,
    fsyncs: u64,
}

impl SqliteCounts {
    fn print(&self, run: Run, events: usize) {
        let per = |n: u64| n as f64 / events as f64;
        println!(
            "| {} | {:.2} | {:.2} | {:.3} |",
            run.name(),
            per(self.frames),
            per(self.checkpointed),
            per(self.fsyncs)
        );
    }
}

/// One SQLite run in `dir` on `db`.
fn sqlite_run(
    run: Run,
    dir: &Path,
    db: &str,
    key_file: &Path,
    sink: &sink::Server,
    events: usize,
) -> SqliteCounts {
    let trace = dir.join("strace.txt");
    let before = sink.requests.load(Ordering::SeqCst);
    match run {
        Run::Serve => {
            set_up(dir, db, sink);
            let serve = Serve::start(dir, db, &[]);
            let strace = attach_strace(serve.pid(), &trace);
            post_events(&serve.base, events);
            wait_delivered(sink, before, events);
            detach(strace);
            assert!(
                serve.stop(Duration::from_secs(20)),
                "serve stopped on SIGTERM"
            );
        }
        Run::Drain => {
            queue(db, key_file, &sink.url(), events);
            let mut worker = worker(db, key_file, Some(&trace));
            assert!(worker.wait().unwrap().success(), "the worker failed");
        }
    }
    check_delivered(db, key_file, events);
    let trace = std::fs::read_to_string(&trace).expect("read strace's output");
    let page_write = |file: &str| {
        trace
            .lines()
            .filter(|l| l.contains("pwrite64(") && l.contains(file))
            .filter(|l| l.trim_end().ends_with(&format!("= {PAGE}")))
            .count() as u64
    };
    SqliteCounts {
        frames: page_write("cost.db-wal>"),
        checkpointed: page_write("cost.db>"),
        fsyncs: trace
            .lines()
            .filter(|l| l.contains("fsync(") || l.contains("fdatasync("))
            .count() as u64,
    }
}

/// `strace -f -y` attached to `pid` (every thread), writing the page writes and syncs to
/// `out`; returns once it is attached.
fn attach_strace(pid: u32, out: &Path) -> Child {
    let child = Command::new("strace")
        .args([
            "-f",
            "-y",
            "-qq",
            "-e",
            "trace=pwrite64,fsync,fdatasync",
            "-o",
        ])
        .arg(out)
        .args(["-p", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn strace");
    // strace writes nothing until a traced call; give it time to stop every thread.
    thread::sleep(Duration::from_millis(500));
    child
}

/// Detaches strace (SIGINT) and waits for it to write out what it has.
fn detach(mut strace: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status();
    let _ = strace.wait();
}

/// PostgreSQL's counts over one run.
struct PgCounts {
    records: i64,
    bytes: i64,
    fpi_bytes: i64,
    commits: i64,
    xact_commit: i64,
    syncs: i64,
    /// Records and bytes by relation and record type, most records first.
    by_relation: Vec<(String, i64, i64)>,
}

impl PgCounts {
    fn print(&self, run: Run, events: usize) {
        let per = |n: i64| n as f64 / events as f64;
        println!(
            "| {} | {:.2} | {:.0} ({:.0}) | {:.3} | {:.3} | {:.3} |",
            run.name(),
            per(self.records),
            per(self.bytes),
            per(self.fpi_bytes),
            per(self.commits),
            per(self.xact_commit),
            per(self.syncs)
        );
    }

    /// Where the run's records went, a line per relation and record type.
    fn print_by_relation(&self, run: Run, events: usize) {
        let per = |n: i64| n as f64 / events as f64;
        println!();
        println!(
            "{}: records / event and bytes / event by relation",
            run.name()
        );
        println!();
        println!("| relation, record type | records / event | bytes / event |");
        println!("|---|---|---|");
        for (what, records, bytes) in &self.by_relation {
            if per(*records) >= 0.05 {
                println!("| {what} | {:.2} | {:.0} |", per(*records), per(*bytes));
            }
        }
    }
}

/// The server's counters at one moment, read on a connection to `server`'s own database (so
/// that reading adds no transaction to the measured one).
struct Mark {
    lsn: String,
    syncs: i64,
    xact_commit: i64,
}

fn mark(server: &str, database: &str) -> Mark {
    let mut client = postgres::Client::connect(server, postgres::NoTls).expect("connect");
    let row = client
        .query_one(
            "SELECT pg_current_wal_insert_lsn()::text, w.wal_sync,
                (SELECT xact_commit FROM pg_stat_database WHERE datname = $1)
             FROM pg_stat_wal w",
            &[&database],
        )
        .expect("read the server's counters");
    Mark {
        lsn: row.get(0),
        syncs: row.get(1),
        xact_commit: row.get(2),
    }
}

/// One PostgreSQL run on `scratch`.
fn pg_run(
    run: Run,
    dir: &Path,
    server: &str,
    scratch: &djinn_hook_testkit::ScratchDatabase,
    key_file: &Path,
    sink: &sink::Server,
    events: usize,
) -> PgCounts {
    let db = scratch.url.as_str();
    let before_sink = sink.requests.load(Ordering::SeqCst);
    // Set up before counting: the tables, the webhook, the backlog.
    let mut inspect = postgres::Client::connect(db, postgres::NoTls).expect("connect");
    inspect
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        .expect("pg_walinspect (PostgreSQL 15's contrib)");
    match run {
        Run::Serve => set_up(dir, db, sink),
        Run::Drain => queue(db, key_file, &sink.url(), events),
    }
    // Processes that ended report their statistics as they exit; the WAL writer its own
    // within a second.
    thread::sleep(Duration::from_millis(1500));
    let before = mark(server, scratch.name());
    match run {
        Run::Serve => {
            let serve = Serve::start(dir, db, &[]);
            post_events(&serve.base, events);
            wait_delivered(sink, before_sink, events);
            assert!(
                serve.stop(Duration::from_secs(20)),
                "serve stopped on SIGTERM"
            );
        }
        Run::Drain => {
            let mut worker = worker(db, key_file, None);
            assert!(worker.wait().unwrap().success(), "the worker failed");
        }
    }
    thread::sleep(Duration::from_millis(1500));
    let after = mark(server, scratch.name());
    let stats = inspect
        .query_one(
            r#"SELECT COALESCE(sum(count), 0)::bigint,
                COALESCE(sum(record_size + fpi_size), 0)::bigint,
                COALESCE(sum(fpi_size), 0)::bigint,
                COALESCE(sum(count) FILTER (
                    WHERE "resource_manager/record_type" = 'Transaction/COMMIT'), 0)::bigint
             FROM pg_get_wal_stats($1::text::pg_lsn,
                LEAST($2::text::pg_lsn, pg_current_wal_flush_lsn()), true)"#,
            &[&before.lsn, &after.lsn],
        )
        .expect("read the run's WAL");
    // The first block a record touches names its relation (its file node, this database's).
    let by_relation = inspect
        .query(
            r#"SELECT COALESCE(c.relname, '-') || ', ' || w.resource_manager || '/' || w.record_type,
                count(*)::bigint, sum(w.record_length + w.fpi_length)::bigint
             FROM pg_get_wal_records_info($1::text::pg_lsn,
                LEAST($2::text::pg_lsn, pg_current_wal_flush_lsn())) w
             LEFT JOIN pg_class c
                ON c.relfilenode = substring(w.block_ref from 'rel \d+/\d+/(\d+)')::oid
             GROUP BY 1 ORDER BY 2 DESC"#,
            &[&before.lsn, &after.lsn],
        )
        .expect("read the run's WAL by relation")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    check_delivered(db, key_file, events);
    PgCounts {
        by_relation,
        records: stats.get(0),
        bytes: stats.get(1),
        fpi_bytes: stats.get(2),
        commits: stats.get(3),
        xact_commit: after.xact_commit - before.xact_commit,
        syncs: after.syncs - before.syncs,
    }
}

/// Starts `serve` on `db` to set it up: one webhook (with a secret: every delivery is signed) to
/// the sink; then stops it.
fn set_up(dir: &Path, db: &str, sink: &sink::Server) {
    let serve = Serve::start(dir, db, &[]);
    serve.create_webhook(
        NS,
        &format!(r#"{{"payload_url": "{}", "secret": "bench"}}"#, sink.url()),
    );
    assert!(
        serve.stop(Duration::from_secs(20)),
        "serve stopped on SIGTERM"
    );
}

/// POSTs `events` `build.submitted` events, one per request, over `CONNECTIONS` keep-alive
/// connections; each must be accepted.
fn post_events(base: &str, events: usize) {
    let body = example_payload(EventType::BuildSubmitted, DEFAULT_API_SERVER).to_body();
    let url = format!("{base}/n/{NS}/-/events");
    thread::scope(|scope| {
        for connection in 0..CONNECTIONS {
            let (body, url) = (&body, &url);
            scope.spawn(move || {
                let agent = ureq::Agent::new_with_defaults();
                for _ in (connection..events).step_by(CONNECTIONS) {
                    let answer = agent
                        .post(url)
                        .header("Content-Type", "application/json")
                        .header(headers::EVENT, "build.submitted")
                        .send(&body[..])
                        .expect("post an event");
                    assert_eq!(answer.status().as_u16(), 202, "the event accepted");
                }
            });
        }
    });
}

/// Waits (two minutes at most) until the sink has answered `events` more requests than
/// `before`.
fn wait_delivered(sink: &sink::Server, before: usize, events: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while sink.requests.load(Ordering::SeqCst) - before < events {
        assert!(Instant::now() < deadline, "every event delivered in time");
        thread::sleep(Duration::from_millis(2));
    }
}

/// Creates the webhook and queues `events` events for it in the store at `db`.
fn queue(db: &str, key_file: &Path, receiver: &str, events: usize) {
    let store = open(db, key_file);
    store.ensure_namespace(NS).unwrap();
    store
        .create_webhook(NewWebhook::new(NS, receiver))
        .expect("create the webhook");
    backlog::queue(&store, NS, EventType::BuildSubmitted, events);
}

/// Every event delivered once, nothing left pending or leased.
fn check_delivered(db: &str, key_file: &Path, events: usize) {
    let counts = open(db, key_file).counts().unwrap();
    assert_eq!(
        (counts.pending, counts.leased, counts.deliveries),
        (0, 0, events as u64),
        "every event delivered once"
    );
}

/// The store at `db` with the key `serve` or the worker uses there: beside a SQLite file,
/// `key_file` for PostgreSQL.
fn open(db: &str, key_file: &Path) -> Store {
    let key_file = db.starts_with("postgres").then_some(key_file);
    Store::open_with_key_file(Path::new(db), key_file).expect("open the store")
}

/// `worker --until-idle` on `db`, under `strace -f -y` writing to `trace` if given.
fn worker(db: &str, key_file: &Path, trace: Option<&Path>) -> Child {
    let binary = std::env::var("DJINN_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_djinn-hooks").to_owned());
    let mut command = match trace {
        Some(trace) => {
            let mut command = Command::new("strace");
            command
                .args([
                    "-f",
                    "-y",
                    "-qq",
                    "-e",
                    "trace=pwrite64,fsync,fdatasync",
                    "-o",
                ])
                .arg(trace)
                .arg(&binary);
            command
        }
        None => Command::new(&binary),
    };
    command
        .args(["worker", "--until-idle", "--allow-private-network"])
        .env("DJINN_HOOKS_DB", db)
        .env_remove("DJINN_HOOKS_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if db.starts_with("postgres") {
        command.env("DJINN_HOOKS_KEY_FILE", key_file);
    } else {
        command.env_remove("DJINN_HOOKS_KEY_FILE");
    }
    command.spawn().expect("spawn the worker")
}
