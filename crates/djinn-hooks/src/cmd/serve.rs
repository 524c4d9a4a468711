//! `serve`: checks the arguments, opens the store, and runs `djinn_hook_server::serve` with the
//! web UI.

use std::sync::Arc;
use std::time::Duration;

use djinn_hook_deliver::WorkerConfig;
use djinn_hook_server::{Config, TOKENS_ENV, Tokens};

use super::{Global, Invalid, store};
use crate::cli::ServeArgs;

/// How often the worker looks for due tasks when none was due: the floor of an idle server's
/// delivery latency (an accepted event wakes it at once).
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Runs `serve` until SIGINT or SIGTERM, then stops within `--shutdown-timeout`
/// (`process.rs`). The arguments are checked before the store is opened, so a refused start
/// creates nothing.
pub(crate) fn run(global: &Global, args: &ServeArgs) -> anyhow::Result<()> {
    if args.concurrency == 0 {
        super::invalid!("--concurrency: must be at least 1");
    }
    if args.max_deliveries == 0 {
        super::invalid!("--max-deliveries: must be at least 1");
    }
    if args.http_threads == 0 {
        super::invalid!("--http-threads: must be at least 1");
    }
    if args.max_batch_events == 0 {
        super::invalid!("--max-batch-events: must be at least 1");
    }
    if args.idempotency_window.is_zero() {
        super::invalid!("--idempotency-window: must be longer than 0s");
    }
    let breaker = super::worker::breaker_config(&args.breakers)?;
    let env_tokens = std::env::var(TOKENS_ENV).ok();
    let tokens = Tokens::load(args.token_file.as_deref(), env_tokens.as_deref())
        .map_err(|err| Invalid(format!("{:#}", anyhow::Error::new(err))))?;
    let mut config = Config::new(&args.listen, tokens).map_err(|err| Invalid(err.to_string()))?;
    config.base_url.clone_from(&args.base_url);
    config.max_body = args.max_body;
    config.max_batch_body = args.max_batch_body;
    config.max_batch_events = args.max_batch_events;
    config.idempotency_window = args.idempotency_window;
    config.http_threads = args.http_threads;
    config.concurrency = Some(args.concurrency);
    config.accept_relayed_deliveries = args.accept_relayed_deliveries;
    config.auto_prune = args.auto_prune.schedule();
    let telemetry = super::ops::telemetry(&args.ops, "serve")?;
    let store = Arc::new(store::open(global)?);
    super::process::register(&store)?;
    super::ops::notifications(&store, &args.ops)?;
    super::process::raise_open_file_limit("serve", args.concurrency + args.max_deliveries);
    let stop = super::worker::stop_on_signal()?;
    super::process::bound_stop(Arc::clone(&store), stop.clone(), args.shutdown_timeout);
    let mut worker_config = WorkerConfig::default();
    worker_config.concurrency = args.concurrency;
    worker_config.max_deliveries = args.max_deliveries;
    worker_config.lease = args.lease;
    worker_config.poll_interval = POLL_INTERVAL;
    worker_config.breaker = breaker;
    let worker =
        super::worker::configured_worker(&store, args.network.allow_private_network, worker_config);
    config.ui = Some(super::web_ui::state(
        &store,
        &config.tokens,
        worker.waker(),
        args.network.allow_private_network,
        args.base_url.as_deref(),
    )?);
    djinn_hook_server::serve(config, Arc::clone(&store), worker, &stop)?;
    super::process::retire(&store);
    drop(telemetry);
    Ok(())
}
