//! Spawning `serve` and reading its log: shared by the `serve` tests and the `serve` bench
//! (which includes this file with `#[path]`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A spawned `serve`.
pub(crate) struct Spawned {
    /// The process.
    pub(crate) child: Child,
    /// The thread reading its log; it ends when the process closes stderr.
    pub(crate) reader: JoinHandle<()>,
    /// The address it listens on, from its `msg=listening` log line; `None` if it printed
    /// none within 20 s.
    pub(crate) addr: Option<String>,
}

/// Spawns `command` (a `serve`) with stdin and stdout null, reads its log lines from stderr
/// on a thread, handing each to `keep`, and waits for its address.
pub(crate) fn spawn(
    command: &mut Command,
    mut keep: impl FnMut(String) + Send + 'static,
) -> Spawned {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().unwrap();
    let (addr_tx, addr_rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let addr = line.contains("msg=listening").then(|| {
                line.split_whitespace()
                    .find_map(|field| field.strip_prefix("addr="))
                    .map(str::to_owned)
            });
            // Kept before the address is handed over, so the caller finds the line in the logs.
            keep(line);
            if let Some(addr) = addr {
                let _ = addr_tx.send(addr);
            }
        }
    });
    let addr = addr_rx.recv_timeout(Duration::from_secs(20)).ok().flatten();
    Spawned {
        child,
        reader,
        addr,
    }
}
