//! What happens after an attempt: [`RetryPolicy::decide`] gives a [`Decision`].

use std::time::{Duration, SystemTime};

use time::OffsetDateTime;

use djinn_hook_outbox::{Attempt, Decision, Outcome};

/// The shortest wait before a throttled attempt's retry when the receiver gave no
/// `Retry-After`.
pub const THROTTLE_MIN: std::time::Duration = std::time::Duration::from_secs(1);

/// When to retry, and when to give up on a webhook.
///
/// # Schedule
///
/// The first attempt (number 1) is made when the event is accepted. After a failed attempt
/// number `n`, retry `n` is due `schedule[n - 1]` later (± `jitter`); after attempt
/// `schedule.len() + 1` fails, the task has failed for good. The default schedule
/// (0 s, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) thus makes 9 attempts in all, the first retry
/// immediately, spread over about 28 hours.
///
/// # The receiver's say
///
/// - 2xx: delivered.
/// - 410 Gone: failed for good, and the webhook is disabled.
/// - 429 Too Many Requests and 503 Service Unavailable: throttling
///   ([`Outcome::Throttled`]): retried after `Retry-After` (delay in seconds, or an HTTP date;
///   no jitter), else after the step the schedule has for this attempt (at least
///   [`THROTTLE_MIN`]), capped at the schedule's longest step; the attempt does not count as
///   one of the scheduled retries, so throttling never uses the schedule up. (The worker also
///   pauses the whole webhook: see `Worker`.)
/// - 502, 504 with `Retry-After`: the next retry is due after that delay (no jitter), capped at
///   the schedule's longest step; it still counts as one of the scheduled retries.
/// - anything else (other statuses, redirects, timeouts, network errors, SSRF refusals):
///   retried per the schedule.
///
/// # Disabling
///
/// A webhook whose attempts have all failed since `hook_failing_since` (the start of its current
/// run of failures, kept by the store) for at least `disable_after` is disabled, and the task
/// fails for good. Re-enabling it is an explicit act of the user.
///
/// [`RetryPolicy::default`] gives the defaults documented on each field; change one by setting
/// it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// `schedule[i]` is the delay before retry `i + 1`, counted from the end of the failed
    /// attempt. Default 0 s, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (eight retries over
    /// about 28 hours).
    pub schedule: Vec<Duration>,
    /// Each scheduled delay is multiplied by a random factor in `[1 - jitter, 1 + jitter]`
    /// (clamped to `0..=1`). Default 0.1.
    pub jitter: f64,
    /// How long a webhook may fail continuously before it is disabled. Default 5 days.
    pub disable_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        const MIN: u64 = 60;
        const HOUR: u64 = 60 * MIN;
        RetryPolicy {
            schedule: [
                0,
                5,
                5 * MIN,
                30 * MIN,
                2 * HOUR,
                5 * HOUR,
                10 * HOUR,
                10 * HOUR,
            ]
            .map(Duration::from_secs)
            .to_vec(),
            jitter: 0.1,
            disable_after: Duration::from_secs(5 * 24 * HOUR),
        }
    }
}

impl RetryPolicy {
    /// Decides after attempt number `attempt_number` (1 = first) of a task. Pure apart from the
    /// jitter: `now` is the current time, `hook_failing_since` the start of the webhook's
    /// current run of failed attempts (`None` when its last attempt succeeded or it has none).
    pub fn decide(
        &self,
        attempt: &Attempt,
        attempt_number: u32,
        hook_failing_since: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Decision {
        if attempt.is_success() {
            return Decision::new(Outcome::Delivered);
        }
        let failed = |reason: Option<String>| {
            let mut decision = Decision::new(Outcome::Failed);
            decision.disable_hook = reason;
            decision
        };
        if attempt.response_status == Some(410) {
            return failed(Some("the receiver answered 410 gone".to_owned()));
        }
        let since = hook_failing_since.unwrap_or(now);
        if now - since >= self.disable_after {
            return failed(Some(format!(
                "every attempt failed for {} (since {since})",
                humanize(self.disable_after)
            )));
        }
        let index = attempt_number.saturating_sub(1) as usize;
        if matches!(attempt.response_status, Some(429 | 503)) {
            let step = self
                .schedule
                .get(index)
                .map_or_else(|| self.longest_step(), |&step| self.jittered(step));
            let delay = self
                .retry_after(attempt, now)
                .unwrap_or(step.max(THROTTLE_MIN))
                .min(self.longest_step().max(THROTTLE_MIN));
            return Decision::new(Outcome::Throttled(now + delay));
        }
        let Some(&step) = self.schedule.get(index) else {
            return failed(None);
        };
        let delay = match self.retry_after(attempt, now) {
            Some(asked) => asked.min(self.longest_step()),
            None => self.jittered(step),
        };
        Decision::new(Outcome::RetryAt(now + delay))
    }

    fn longest_step(&self) -> Duration {
        self.schedule.iter().copied().max().unwrap_or_default()
    }

    fn jittered(&self, step: Duration) -> Duration {
        let jitter = self.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 || step.is_zero() {
            return step;
        }
        let factor = 1.0 + jitter * (2.0 * fastrand::f64() - 1.0);
        step.mul_f64(factor)
    }

    /// The receiver's `Retry-After`, on the statuses where it is honoured.
    fn retry_after(&self, attempt: &Attempt, now: OffsetDateTime) -> Option<Duration> {
        if !matches!(attempt.response_status, Some(429 | 502 | 503 | 504)) {
            return None;
        }
        parse_retry_after(attempt.response_header("retry-after")?, now)
    }
}

/// Parses a `Retry-After` value: delay seconds, or an HTTP date (a past date means now).
pub(crate) fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::from(now))
            .unwrap_or(Duration::ZERO),
    )
}

fn humanize(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{} hours", s / 3_600),
        s => format!("{s} seconds"),
    }
}

/// `Retry-After` comes from the receiver: never a panic, and what a receiver may send reads
/// back as meant. Cases: proptest's default (256); `PROPTEST_CASES=100000` runs more.
#[cfg(test)]
mod props {
    use std::time::{Duration, SystemTime};

    use proptest::prelude::*;
    use time::OffsetDateTime;

    use super::parse_retry_after;

    fn now() -> impl Strategy<Value = OffsetDateTime> {
        (0i64..8_000_000_000).prop_map(|s| OffsetDateTime::from_unix_timestamp(s).unwrap())
    }

    proptest! {
        #[test]
        fn never_panics(
            value in prop_oneof![
                ".{0,40}",
                "[ ]?[0-9]{0,30}[ ]?",
                "(Mon|Sun|Xyz), [0-9]{1,2} (Jan|Dec|Foo) [0-9]{1,6} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT",
            ],
            now in now(),
        ) {
            let _ = parse_retry_after(&value, now);
        }

        #[test]
        fn delay_seconds_read_back(seconds in any::<u64>(), now in now(), pad in "[ \t]{0,2}") {
            prop_assert_eq!(
                parse_retry_after(&format!("{pad}{seconds}{pad}"), now),
                Some(Duration::from_secs(seconds))
            );
        }

        #[test]
        fn http_dates_read_back(now in now(), ahead in -100_000i64..10_000_000) {
            let at = now + time::Duration::seconds(ahead);
            let value = httpdate::fmt_http_date(SystemTime::from(at));
            let expect = Duration::from_secs(ahead.max(0).unsigned_abs());
            prop_assert_eq!(parse_retry_after(&value, now), Some(expect));
        }

        #[test]
        fn anything_else_is_no_delay(value in "[a-zA-Z,:;/ -]{1,30}", now in now()) {
            prop_assert_eq!(parse_retry_after(&value, now), None);
        }
    }
}
