//! [`WorkListener`]: a connection of its own that `LISTEN`s for accepted work.

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config, NoTls};

use super::CHANNEL;

/// Waits for work announced on [`CHANNEL`] (events accepted, tasks redelivered
/// or retried), so an idle worker need not poll the database to notice them.
pub(crate) struct WorkListener {
    client: Client,
}

impl std::fmt::Debug for WorkListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkListener")
    }
}

impl WorkListener {
    pub(crate) fn connect(config: &Config) -> Result<WorkListener, postgres::Error> {
        let mut client = config.connect(NoTls)?;
        client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
        Ok(WorkListener { client })
    }

    /// Blocks until work is announced (then `true`, having consumed every
    /// announcement already received) or `timeout` passes (`false`).
    pub(crate) fn wait(&mut self, timeout: Duration) -> Result<bool, postgres::Error> {
        let mut notifications = self.client.notifications();
        let woken = notifications.timeout_iter(timeout).next()?.is_some();
        // Announcements of one burst are one wake-up.
        while notifications.iter().next()?.is_some() {}
        Ok(woken)
    }
}
