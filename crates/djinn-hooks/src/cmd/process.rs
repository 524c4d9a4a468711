//! What `serve` and `worker` do as long-running processes on the store: register (so their
//! claims carry their identity, and a restarted process takes back its dead predecessor's at
//! once), and bound their stop: after SIGTERM/SIGINT the deliveries under way get
//! `--shutdown-timeout` to finish, then whatever is still claimed is handed back and the
//! process exits.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use djinn_hook_deliver::Shutdown;
use djinn_hook_store::Store;

use super::store::StoreResult as _;

/// Registers this process with the store (a take-back of a dead process's claims is logged,
/// the same line from `serve` and `worker`), taking back at once the claims of those found dead.
pub(crate) fn register(store: &Store) -> anyhow::Result<()> {
    djinn_hook_server::log::install();
    store
        .register_process(djinn_hook_server::log::liveness)
        .or_fail()?;
    Ok(())
}

/// Raises the open-file limit to its hard limit, as a long-running process's first step (a
/// socket per delivery under way and, for `serve`, per client connection, besides the store's
/// files and the idle connection pool), and says so if even that is below what `deliveries`
/// at once need: deliveries past it fail to connect and are retried. The library crates leave
/// the process's limits alone; this is the binary's decision.
pub(crate) fn raise_open_file_limit(command: &str, deliveries: usize) {
    let wanted = u64::try_from(deliveries)
        .unwrap_or(u64::MAX)
        .saturating_add(128);
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < wanted => eprintln!(
            "{command}: the open-file limit is {limit}, below the {wanted} that --concurrency \
             and --max-deliveries may need; lower --max-deliveries or raise the hard limit"
        ),
        Ok(_) => {}
        Err(err) => eprintln!("{command}: could not raise the open-file limit: {err}"),
    }
}

/// Bounds the stop: a thread that, once `stop` is set, gives the process `timeout` to finish by
/// itself (its worker finishing the deliveries under way), then hands back what the process
/// still holds ([`Store::retire_process`]: due again at once, for the next process) and ends
/// it with exit code 0. A process that finishes in time returns from `main` first, which ends
/// the thread with it.
pub(crate) fn bound_stop(store: Arc<Store>, stop: Shutdown, timeout: Duration) {
    thread::spawn(move || {
        stop.wait();
        thread::sleep(timeout);
        djinn_hook_server::log::handed_back(&store.retire_process(), Some(timeout));
        std::process::exit(0);
    });
}

/// Ends this process's registration after a clean stop, handing back anything still claimed.
pub(crate) fn retire(store: &Store) {
    djinn_hook_server::log::handed_back(&store.retire_process(), None);
}
