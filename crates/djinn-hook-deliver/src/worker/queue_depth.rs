//! How many claimed tasks the worker keeps queued: about [`QUEUE_TIME`] of deliveries at the
//! rate it is delivering, within 2 to 16 tasks per thread.
//!
//! This is the queue-depth rule; the worker's docs refer here. The thread that finds the queue
//! at or below the low-water mark refills it to the high-water mark (twice that) with one claim.
//!
//! Why it adapts: a claim and a commit share the store's one writer, and a commit waits for its
//! fsync, so a claim can wait milliseconds. A queue that lasts less than that starves the
//! delivery threads, which then wait for claims instead of delivering. A queue sized for a
//! fast rate is far too long when receivers are slow, though: a stop drains the
//! queue, a new event waits behind it, and a task must not outwait its lease in it. Sizing the
//! queue in time rather than in tasks gives both.

use std::time::{Duration, Instant};

/// How long the queue should last at the measured delivery rate.
pub(crate) const QUEUE_TIME: Duration = Duration::from_millis(20);

/// The delivery rate is measured over windows at least this long.
const RATE_WINDOW: Duration = Duration::from_millis(100);

/// Fewest and most tasks queued per delivery thread at the low-water mark.
const MIN_PER_THREAD: usize = 2;
const MAX_PER_THREAD: usize = 16;

/// The worker's queue bounds, from the rate at which its deliveries are committed.
#[derive(Debug)]
pub(crate) struct QueueDepth {
    concurrency: usize,
    window_start: Option<Instant>,
    window_count: usize,
    per_second: f64,
}

impl QueueDepth {
    /// Bounds for `concurrency` threads, at the minimum until a rate has been measured.
    pub(crate) fn new(concurrency: usize) -> QueueDepth {
        QueueDepth {
            concurrency: concurrency.max(1),
            window_start: None,
            window_count: 0,
            per_second: 0.0,
        }
    }

    /// Notes `deliveries` committed at `now`.
    pub(crate) fn record(&mut self, deliveries: usize, now: Instant) {
        let start = *self.window_start.get_or_insert(now);
        self.window_count += deliveries;
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= RATE_WINDOW {
            self.per_second = self.window_count as f64 / elapsed.as_secs_f64();
            self.window_start = Some(now);
            self.window_count = 0;
        }
    }

    /// Claim when the queue holds this many tasks or fewer: [`QUEUE_TIME`] of deliveries at the
    /// last measured rate, at least 2 and at most 16 per thread.
    pub(crate) fn low_water(&self) -> usize {
        let for_queue_time = (self.per_second * QUEUE_TIME.as_secs_f64()) as usize;
        for_queue_time.clamp(
            MIN_PER_THREAD * self.concurrency,
            MAX_PER_THREAD * self.concurrency,
        )
    }

    /// A claim fills the queue up to this many tasks.
    pub(crate) fn high_water(&self) -> usize {
        2 * self.low_water()
    }

    /// Most tasks claimed and not yet committed (queued, being delivered, or waiting for a
    /// commit): room for the completions that pile up while a commit waits for its fsync.
    pub(crate) fn max_in_flight(&self) -> usize {
        4 * self.low_water()
    }
}

/// One thread's bounds (the worker sets its own at the start of each run).
impl Default for QueueDepth {
    fn default() -> QueueDepth {
        QueueDepth::new(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_two_tasks_per_thread() {
        let depth = QueueDepth::new(16);
        assert_eq!(depth.low_water(), 32);
        assert_eq!(depth.high_water(), 64);
        assert_eq!(depth.max_in_flight(), 128);
    }

    #[test]
    fn follows_the_rate_within_its_bounds() {
        let start = Instant::now();
        let mut depth = QueueDepth::new(4);
        // 1,000 per second: 20 ms of it is 20 tasks, between 8 and 64.
        depth.record(50, start);
        depth.record(50, start + Duration::from_millis(100));
        assert_eq!(depth.low_water(), 20);
        // 100,000 per second: capped at 16 per thread.
        depth.record(10_000, start + Duration::from_millis(200));
        assert_eq!(depth.low_water(), 64);
        // 10 per second: at least 2 per thread.
        depth.record(1, start + Duration::from_millis(300));
        assert_eq!(depth.low_water(), 8);
    }

    #[test]
    fn a_window_shorter_than_its_minimum_keeps_the_last_rate() {
        let start = Instant::now();
        let mut depth = QueueDepth::new(1);
        depth.record(100, start);
        depth.record(1, start + Duration::from_millis(10));
        assert_eq!(depth.low_water(), 2);
    }
}
