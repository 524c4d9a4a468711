//! [`WorkListener`]: a connection of its own that `LISTEN`s for accepted work, and the
//! [`Interrupt`] that cuts its wait short from another thread.

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config, NoTls};

use super::CHANNEL;

/// How long [`Interrupt::interrupt`] waits to connect: it runs on the thread that stops.
const INTERRUPT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits for work announced on [`CHANNEL`] (events accepted, tasks redelivered
/// or retried), so an idle worker need not poll the database to notice them.
pub(crate) struct WorkListener {
    client: Client,
    /// Announcements here end a wait without being work (see [`Interrupt`]).
    own_channel: String,
    config: Config,
}

impl std::fmt::Debug for WorkListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkListener")
    }
}

impl WorkListener {
    pub(crate) fn connect(config: &Config) -> Result<WorkListener, postgres::Error> {
        let mut client = config.connect(NoTls)?;
        // A name no other listener has (lower-case, so it needs no quoting).
        let own_channel = format!("djinn_hooks_wake_{}", uuid::Uuid::new_v4().simple());
        client.batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {own_channel}"))?;
        Ok(WorkListener {
            client,
            own_channel,
            config: config.clone(),
        })
    }

    /// Blocks until work is announced (then `true`, having consumed every
    /// announcement already received), `timeout` passes or the wait is interrupted (`false`).
    pub(crate) fn wait(&mut self, timeout: Duration) -> Result<bool, postgres::Error> {
        let mut notifications = self.client.notifications();
        let Some(first) = notifications.timeout_iter(timeout).next()? else {
            return Ok(false);
        };
        let mut work = first.channel() == CHANNEL;
        // Announcements of one burst are one wake-up.
        while let Some(next) = notifications.iter().next()? {
            work |= next.channel() == CHANNEL;
        }
        Ok(work)
    }

    /// What ends this listener's wait from another thread.
    pub(crate) fn interrupt(&self) -> Interrupt {
        let mut config = self.config.clone();
        config.connect_timeout(INTERRUPT_CONNECT_TIMEOUT);
        Interrupt {
            config,
            channel: self.own_channel.clone(),
        }
    }
}

/// Ends a [`WorkListener`]'s wait: the listener's connection is busy waiting, so the
/// interruption is announced to it, on a channel of its own, over a connection of this
/// handle's.
pub(crate) struct Interrupt {
    config: Config,
    channel: String,
}

impl Interrupt {
    /// Announces the interruption (connecting for it).
    pub(crate) fn interrupt(&self) -> Result<(), postgres::Error> {
        let mut client = self.config.connect(NoTls)?;
        client.execute("SELECT pg_notify($1, '')", &[&self.channel])?;
        Ok(())
    }
}
