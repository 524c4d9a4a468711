//! `worker`: deliver due tasks with retries, until idle or until SIGINT/SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use djinn_hook_deliver::{
    BreakerConfig, Completion, DeliverConfig, Outcome, Shutdown, Stats, Worker, WorkerConfig,
    WorkerEvent,
};
use djinn_hook_store::{AutoPrune, Store};

use super::output;
use super::{Global, store};
use crate::cli::{BreakerArgs, WorkerArgs};

/// Runs `worker`.
pub(crate) fn run(global: &Global, args: &WorkerArgs) -> anyhow::Result<()> {
    if args.concurrency == 0 {
        super::invalid!("--concurrency: must be at least 1");
    }
    if args.max_deliveries == 0 {
        super::invalid!("--max-deliveries: must be at least 1");
    }
    if args.max_in_flight_per_hook == Some(0) {
        super::invalid!("--max-in-flight-per-hook: must be at least 1");
    }
    let breaker = breaker_config(&args.breakers)?;
    let telemetry = super::ops::telemetry(&args.ops, "worker")?;
    let store = Arc::new(store::open(global)?);
    super::process::register(&store)?;
    super::ops::notifications(&store, &args.ops)?;
    super::process::raise_open_file_limit("worker", args.concurrency + args.max_deliveries);
    let stop = if args.until_idle {
        None
    } else {
        let stop = stop_on_signal()?;
        super::process::bound_stop(Arc::clone(&store), stop.clone(), args.shutdown_timeout);
        Some(stop)
    };
    let terminal = super::progress::shown();
    let mut progress = Progress::new(&store, args.until_idle);
    let mut config = WorkerConfig::default();
    config.concurrency = args.concurrency;
    config.max_deliveries = args.max_deliveries;
    config.lease = args.lease;
    config.max_in_flight_per_hook = args.max_in_flight_per_hook;
    config.breaker = breaker;
    if args.until_idle {
        config.poll_interval = UNTIL_IDLE_POLL;
    }
    let worker = configured_worker(&store, args.network.allow_private_network, config)
        .with_observer(|event| progress.observe(&event, terminal));
    if stop.is_some() {
        eprintln!(
            "worker: delivering with {} threads; Ctrl-C (or SIGTERM) hands back the queue, gives the deliveries under way {} to finish, and stops",
            args.concurrency,
            humantime::format_duration(args.shutdown_timeout)
        );
    }
    let stats = match &stop {
        None => worker.run_until_idle(),
        Some(signal) => std::thread::scope(|scope| {
            if let Some(auto) = args.auto_prune.schedule() {
                let store = &*store;
                scope.spawn(move || {
                    auto.run(store, signal, |outcome| report_prune(&outcome, &auto));
                });
            }
            // On PostgreSQL, an event accepted by another process wakes the worker at once.
            let waker = worker.waker();
            let store = &*store;
            scope.spawn(move || {
                store.wake_on_new_work(
                    signal,
                    || waker.wake(),
                    |err| eprintln!("worker: listening for new events failed: {err}; reconnecting"),
                );
            });
            worker.run(signal)
        }),
    };
    drop(worker);
    progress.bar.finish_and_clear();
    super::process::retire(&store);
    drop(telemetry);
    report(
        global,
        &stats,
        (store.claims_taken_back(), store.stale_completions()),
    )
}

/// A log line for an automatic prune (a long-running `worker`; `serve` logs its own).
fn report_prune(outcome: &djinn_hook_store::Result<djinn_hook_store::Pruned>, auto: &AutoPrune) {
    match outcome {
        Ok(pruned) => eprintln!(
            "worker: pruned {} deliveries and {} events older than {}",
            pruned.deliveries,
            pruned.events,
            humantime::format_duration(auto.older_than)
        ),
        Err(err) => eprintln!("worker: pruning failed (tried again later): {err}"),
    }
}

/// How often `worker --until-idle` and the demo look for due tasks. Such a worker
/// only waits for its own in-flight deliveries, and a short poll bounds how long
/// it can miss the moment they are all committed (the default 1 s suits a
/// long-running worker, where it is the delay before a new event is noticed).
pub(crate) const UNTIL_IDLE_POLL: Duration = Duration::from_millis(20);

/// A worker over the store at concurrency `n` with the default retry schedule,
/// looking for due tasks every `poll_interval` when none was due (`worker`,
/// `demo` and `serve`).
pub(crate) fn worker<'o>(
    store: &'o Store,
    concurrency: usize,
    allow_private_network: bool,
    poll_interval: Duration,
) -> Worker<'o, &'o Store> {
    let mut config = WorkerConfig::default();
    config.concurrency = concurrency;
    config.poll_interval = poll_interval;
    configured_worker(store, allow_private_network, config)
}

/// The circuit breakers' settings from the command line.
pub(crate) fn breaker_config(args: &BreakerArgs) -> anyhow::Result<BreakerConfig> {
    let open_for = args.breaker_open_for;
    let max_open_for = args.breaker_max_open_for;
    if open_for.is_zero() {
        super::invalid!("--breaker-open-for: must be more than 0s");
    }
    if max_open_for < open_for {
        super::invalid!(
            "--breaker-max-open-for: must be at least --breaker-open-for ({}), got {}",
            humantime::format_duration(open_for),
            humantime::format_duration(max_open_for)
        );
    }
    let mut config = BreakerConfig::default();
    config.failures = args.breaker_failures;
    config.open_for = open_for;
    config.max_open_for = max_open_for;
    Ok(config)
}

/// A worker over the store with `config` and the default retry schedule.
pub(crate) fn configured_worker<'o>(
    store: &'o Store,
    allow_private_network: bool,
    config: WorkerConfig,
) -> Worker<'o, &'o Store> {
    let mut deliver = DeliverConfig::default();
    deliver.allow_private_network = allow_private_network;
    Worker::with_config(store, config, deliver)
}

/// Prints what a run did: a line, or `--json` counters (with the store's `(claims taken back,
/// stale completions)`).
fn report(global: &Global, stats: &Stats, store_counts: (u64, u64)) -> anyhow::Result<()> {
    if global.json {
        return output::print_json(&serde_json::json!({
            "attempts": stats.attempts,
            "delivered": stats.delivered,
            "retries_scheduled": stats.retries_scheduled,
            "throttled": stats.throttled,
            "failed": stats.failed,
            "hooks_disabled": stats.hooks_disabled,
            "abandoned": stats.abandoned,
            "put_off": stats.put_off,
            "released": stats.released,
            "claims_taken_back": store_counts.0,
            "stale_completions": store_counts.1,
            "breakers_opened": stats.breakers_opened,
        }));
    }
    eprintln!(
        "worker: {} attempts: {} delivered, {} retry, {} failed{}",
        stats.attempts,
        stats.delivered,
        stats.retries_scheduled,
        stats.failed,
        if stats.hooks_disabled > 0 {
            format!(", {} webhooks disabled", stats.hooks_disabled)
        } else {
            String::new()
        }
    );
    Ok(())
}

/// Counts for the progress bar on a terminal (`--until-idle`: out of the backlog found at
/// start; a spinner otherwise); elsewhere, log lines (the same as `serve`'s).
#[derive(Debug)]
struct Progress {
    bar: indicatif::ProgressBar,
    delivered: u64,
    retrying: u64,
    failed: u64,
}

impl Progress {
    fn new(store: &Store, until_idle: bool) -> Progress {
        let bar = if !super::progress::shown() {
            indicatif::ProgressBar::hidden()
        } else if until_idle {
            let backlog = store.counts().map_or(0, |counts| counts.pending);
            super::progress::bar(backlog, "delivering")
        } else {
            super::progress::spinner("delivering")
        };
        Progress {
            bar,
            delivered: 0,
            retrying: 0,
            failed: 0,
        }
    }

    fn observe(&mut self, event: &WorkerEvent<'_>, terminal: bool) {
        let WorkerEvent::Completed(done) = event else {
            // Above the bar, which is drawn again below it.
            self.bar
                .suspend(|| djinn_hook_server::log::worker_event(event));
            return;
        };
        match done.decision.outcome {
            Outcome::Delivered => self.delivered += 1,
            Outcome::RetryAt(_) | Outcome::Throttled(_) => self.retrying += 1,
            Outcome::Failed => self.failed += 1,
        }
        if terminal {
            // The log line gives way to the progress bar, the trace does not.
            djinn_hook_server::log::attempt_span(done);
            // A retry stays in the backlog: only a finished task moves the bar.
            if !matches!(
                done.decision.outcome,
                Outcome::RetryAt(_) | Outcome::Throttled(_)
            ) {
                self.bar.inc(1);
                if self
                    .bar
                    .length()
                    .is_some_and(|len| self.bar.position() > len)
                {
                    self.bar.set_length(self.bar.position());
                }
            }
            self.bar.set_message(format!(
                "delivered {}  retry {}  failed {}  (last: {} to hook {}: {})",
                self.delivered,
                self.retrying,
                self.failed,
                done.attempt.event,
                done.attempt.hook_id,
                status(done),
            ));
        } else {
            djinn_hook_server::log::worker_event(event);
        }
    }
}

/// The response status, or the attempt's result when no response came.
fn status(done: &Completion) -> String {
    match done.attempt.response_status {
        Some(code) => code.to_string(),
        None => done.attempt.outcome.to_string(),
    }
}

/// The stop that SIGINT or SIGTERM sets, waking every part that waits on it (the worker,
/// `serve`, auto-prune, the PostgreSQL listener, the stop watch). The handler is installed once
/// per process.
pub(crate) fn stop_on_signal() -> anyhow::Result<Shutdown> {
    let stop = Shutdown::new();
    let signal = stop.clone();
    ctrlc::set_handler(move || signal.stop())?;
    Ok(stop)
}
