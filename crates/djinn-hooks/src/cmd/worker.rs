//! `worker`: deliver due tasks with retries, until idle or until SIGINT/SIGTERM.

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use djinn_hook_deliver::{
    Completion, DecisionOutcome, DeliverConfig, Deliverer, RetryPolicy, Stats, Worker,
    WorkerConfig, WorkerEvent,
};
use djinn_hook_store::AutoPrune;
use djinn_hooks::StoreOutbox;

use super::output;
use super::{Global, store};
use crate::cli::WorkerArgs;

/// Runs `worker`.
pub(crate) fn run(global: &Global, args: &WorkerArgs) -> anyhow::Result<()> {
    if args.concurrency == 0 {
        super::invalid!("--concurrency: must be at least 1");
    }
    if args.max_in_flight_per_hook == Some(0) {
        super::invalid!("--max-in-flight-per-hook: must be at least 1");
    }
    let store = store::open(global)?;
    let stop = if args.until_idle {
        None
    } else {
        Some(stop_on_signal()?)
    };
    let terminal = std::io::stderr().is_terminal();
    let mut progress = Progress::default();
    let worker = configured_worker(
        &store,
        args.network.allow_private_network,
        WorkerConfig {
            concurrency: args.concurrency,
            lease: args.lease,
            max_in_flight_per_hook: args.max_in_flight_per_hook,
            poll_interval: if args.until_idle {
                UNTIL_IDLE_POLL
            } else {
                WorkerConfig::default().poll_interval
            },
            ..WorkerConfig::default()
        },
    )
    .with_observer(|event| progress.observe(&event, terminal));
    if stop.is_some() {
        eprintln!(
            "worker: delivering with {} threads; Ctrl-C (or SIGTERM) finishes in-flight deliveries and stops",
            args.concurrency
        );
    }
    let stats = match &stop {
        None => worker.run_until_idle(),
        Some(signal) => std::thread::scope(|scope| {
            if let Some(auto) = args.auto_prune.schedule() {
                let store = &store;
                scope.spawn(move || {
                    auto.run(store, signal, |outcome| report_prune(&outcome, &auto));
                });
            }
            super::wake::while_listening(&store, worker.waker(), signal, || worker.run(signal))
        })?,
    };
    drop(worker);
    if terminal {
        eprintln!();
    }
    report(global, &stats)
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
    store: &'o djinn_hook_store::Store,
    concurrency: usize,
    allow_private_network: bool,
    poll_interval: Duration,
) -> Worker<'o, StoreOutbox<&'o djinn_hook_store::Store>> {
    configured_worker(
        store,
        allow_private_network,
        WorkerConfig {
            concurrency,
            poll_interval,
            ..WorkerConfig::default()
        },
    )
}

/// A worker over the store with `config` and the default retry schedule.
pub(crate) fn configured_worker<'o>(
    store: &'o djinn_hook_store::Store,
    allow_private_network: bool,
    config: WorkerConfig,
) -> Worker<'o, StoreOutbox<&'o djinn_hook_store::Store>> {
    let deliverer = Deliverer::new(DeliverConfig {
        allow_private_network,
        max_idle_connections_per_host: config.concurrency.max(1),
        max_idle_connections: config.concurrency.max(64),
        ..DeliverConfig::default()
    });
    Worker::new(
        StoreOutbox::new(store),
        deliverer,
        RetryPolicy::default(),
        config,
    )
}

/// Prints what a run did: a line, or `--json` counters.
fn report(global: &Global, stats: &Stats) -> anyhow::Result<()> {
    if global.json {
        return output::print_json(&serde_json::json!({
            "attempts": stats.attempts,
            "delivered": stats.delivered,
            "retries_scheduled": stats.retries_scheduled,
            "failed": stats.failed,
            "hooks_disabled": stats.hooks_disabled,
            "abandoned": stats.abandoned,
            "put_off": stats.put_off,
            "breakers_opened": stats.breakers_opened,
        }));
    }
    eprintln!(
        "worker: {} attempts: {} delivered, {} to retry, {} failed for good{}",
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

/// Counts for the progress line, and the per-attempt log lines.
#[derive(Debug, Default)]
struct Progress {
    delivered: u64,
    retrying: u64,
    failed: u64,
    /// Log lines of the batch being reported, written together once it is committed (one
    /// `write` per batch instead of two per attempt).
    lines: String,
}

impl Progress {
    fn observe(&mut self, event: &WorkerEvent<'_>, terminal: bool) {
        if !matches!(event, WorkerEvent::Completed(_)) {
            self.flush();
        }
        match event {
            WorkerEvent::Completed(done) => {
                match done.decision.outcome {
                    DecisionOutcome::Delivered => self.delivered += 1,
                    DecisionOutcome::RetryAt(_) => self.retrying += 1,
                    DecisionOutcome::Failed => self.failed += 1,
                }
                if terminal {
                    eprint!(
                        "\r\x1b[Kdelivered {}  retrying {}  failed {}  (last: {} to hook {}: {})",
                        self.delivered,
                        self.retrying,
                        self.failed,
                        done.attempt.event,
                        done.attempt.hook_id,
                        status(done),
                    );
                    let _ = std::io::stderr().flush();
                } else {
                    write_log_line(&mut self.lines, done);
                    self.lines.push('\n');
                }
            }
            WorkerEvent::ClaimFailed(error) => {
                eprintln!("worker: claiming tasks failed: {}", output::chain(error));
            }
            WorkerEvent::CompleteFailed {
                error,
                batch,
                retry_in,
            } => eprintln!(
                "worker: recording {batch} attempts failed ({}); retrying in {}",
                output::chain(error),
                output::duration(*retry_in)
            ),
            WorkerEvent::Abandoned(batch) => eprintln!(
                "worker: gave up recording {} attempts; their tasks will be claimed again when their leases run out",
                batch.len()
            ),
            WorkerEvent::BreakerOpened {
                destination,
                reason,
                open_for,
            } => eprintln!(
                "worker: breaker open for {destination} ({reason}): its deliveries are put off for {}, then one probe goes out",
                output::duration(*open_for)
            ),
            WorkerEvent::BreakerClosed { destination } => {
                eprintln!("worker: breaker closed for {destination}: its deliveries resume");
            }
            WorkerEvent::PutOffFailed { error, tasks } => eprintln!(
                "worker: putting off {tasks} tasks failed ({}); they come back when their leases run out",
                output::chain(error)
            ),
            _ => {}
        }
    }

    /// Writes the buffered log lines, if any, in one call.
    fn flush(&mut self) {
        if !self.lines.is_empty() {
            let _ = std::io::stderr().write_all(self.lines.as_bytes());
            self.lines.clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Appends one plain line per attempt to `out` (without a newline): event, hook, status,
/// duration, outcome. Never a secret.
fn write_log_line(out: &mut String, done: &Completion) {
    let attempt = &done.attempt;
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "event={} id={} hook={} attempt={} status=",
        attempt.event, attempt.event_id, attempt.hook_id, attempt.attempt,
    );
    let _ = match attempt.response_status {
        Some(code) => write!(out, "{code}"),
        None => write!(out, "{}", attempt.outcome),
    };
    let _ = write!(
        out,
        " duration={} outcome=",
        output::duration(attempt.duration)
    );
    let _ = match done.decision.outcome {
        DecisionOutcome::Delivered => write!(out, "delivered"),
        DecisionOutcome::RetryAt(at) => write!(out, "retry at {}", output::time(at)),
        DecisionOutcome::Failed => write!(out, "failed for good"),
    };
    if let Some(reason) = &done.decision.disable_hook {
        let _ = write!(out, " disabled_hook={reason:?}");
    }
    if let Some(error) = &attempt.error {
        let _ = write!(out, " error={error:?}");
    }
}

/// The response status, or the kind of failure when none came.
fn status(done: &Completion) -> String {
    match done.attempt.response_status {
        Some(code) => code.to_string(),
        None => done.attempt.outcome.to_string(),
    }
}

/// A flag that SIGINT or SIGTERM sets. The handler is installed once per process.
pub(crate) fn stop_on_signal() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))?;
    Ok(stop)
}
