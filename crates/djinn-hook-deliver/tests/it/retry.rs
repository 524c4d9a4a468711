//! `RetryPolicy::decide`: schedule, jitter, Retry-After, 410, disabling. Pure, plus two
//! Retry-After answers from a real server.

use std::time::Duration;

use djinn_hook_deliver::{
    Attempt, AttemptOutcome, Decision, DeliveryRequest, Outcome, RetryPolicy,
};
use djinn_hook_payload::EventType;
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

use crate::local_deliverer;
use crate::request;
use crate::server::{Reply, Server};

const NOW: OffsetDateTime = datetime!(2026-11-27 12:00:00 UTC);

fn attempt(outcome: AttemptOutcome, status: Option<u16>, headers: &[(&str, &str)]) -> Attempt {
    let request = DeliveryRequest::new(
        1,
        Uuid::nil(),
        EventType::BuildStarted,
        "https://example.com/",
        Vec::new(),
    );
    let mut attempt = Attempt::new(&request, NOW);
    attempt.duration = Duration::from_millis(5);
    attempt.response_status = status;
    attempt.response_headers = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    attempt.outcome = outcome;
    attempt
}

fn status(code: u16) -> Attempt {
    let outcome = match code {
        200..=299 => AttemptOutcome::Success,
        300..=399 => AttemptOutcome::RedirectNotFollowed,
        _ => AttemptOutcome::HttpStatus,
    };
    attempt(outcome, Some(code), &[])
}

fn no_jitter() -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    policy.jitter = 0.0;
    policy
}

fn retry_at(delay: Duration) -> Decision {
    Decision::new(Outcome::RetryAt(NOW + delay))
}

fn throttled(delay: Duration) -> Decision {
    Decision::new(Outcome::Throttled(NOW + delay))
}

const FAILED: Decision = Decision::new(Outcome::Failed);

#[test]
fn default_schedule() {
    let policy = RetryPolicy::default();
    let secs: Vec<u64> = policy.schedule.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [0, 5, 300, 1800, 7200, 18000, 36000, 36000]);
    assert_eq!(policy.disable_after, Duration::from_secs(5 * 86_400));
    assert!((policy.jitter - 0.1).abs() < f64::EPSILON);
}

#[test]
fn success_is_delivered() {
    for code in [200, 201, 204, 299] {
        let decision = no_jitter().decide(&status(code), 3, Some(NOW), NOW);
        assert_eq!(decision.outcome, Outcome::Delivered);
        assert_eq!(decision.disable_hook, None);
    }
}

#[test]
fn failures_follow_the_schedule_then_fail_for_good() {
    let policy = no_jitter();
    let failed = attempt(AttemptOutcome::Timeout, None, &[]);
    for (number, step) in policy.schedule.iter().enumerate() {
        let number = number as u32 + 1;
        assert_eq!(
            policy.decide(&failed, number, Some(NOW), NOW),
            retry_at(*step),
            "after attempt {number}"
        );
    }
    assert_eq!(policy.decide(&failed, 9, Some(NOW), NOW), FAILED);
    assert_eq!(policy.decide(&failed, 50, Some(NOW), NOW), FAILED);
}

#[test]
fn every_kind_of_failure_is_retried() {
    let policy = no_jitter();
    for failed in [
        status(500),
        status(404),
        status(302),
        attempt(AttemptOutcome::ConnectRefused, None, &[]),
        attempt(AttemptOutcome::Blocked, None, &[]),
        attempt(AttemptOutcome::TlsError, None, &[]),
        attempt(AttemptOutcome::Other, None, &[]),
    ] {
        assert_eq!(
            policy.decide(&failed, 2, None, NOW),
            retry_at(Duration::from_secs(5)),
            "{failed:?}"
        );
    }
}

#[test]
fn throttling_is_retried_without_using_up_the_schedule() {
    let policy = no_jitter();
    for code in [429, 503] {
        // The schedule's step for the attempt (5 s after attempt 2), at least a second.
        assert_eq!(
            policy.decide(&status(code), 2, None, NOW),
            throttled(Duration::from_secs(5)),
            "{code}"
        );
        assert_eq!(
            policy.decide(&status(code), 1, None, NOW),
            throttled(djinn_hook_deliver::THROTTLE_MIN),
            "{code}"
        );
        // Past the schedule's end too (the attempt did not count): the longest step.
        assert_eq!(
            policy.decide(&status(code), 9, None, NOW),
            throttled(Duration::from_secs(36_000)),
            "{code}"
        );
    }
}

#[test]
fn jitter_stays_within_its_fraction() {
    let mut policy = RetryPolicy::default();
    policy.jitter = 0.2;
    let failed = status(500);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let Outcome::RetryAt(at) = policy.decide(&failed, 3, None, NOW).outcome else {
            panic!("not a retry");
        };
        let delay = (at - NOW).as_seconds_f64();
        assert!((240.0..=360.0).contains(&delay), "{delay}");
        seen.insert(delay.to_bits());
    }
    assert!(seen.len() > 100, "jitter is not random");
    // Immediate stays immediate.
    assert_eq!(
        policy.decide(&failed, 1, None, NOW),
        retry_at(Duration::ZERO)
    );
}

#[test]
fn gone_disables_and_stops() {
    let decision = no_jitter().decide(&status(410), 1, None, NOW);
    assert_eq!(decision.outcome, Outcome::Failed);
    assert_eq!(
        decision.disable_hook.as_deref(),
        Some("the receiver answered 410 gone")
    );
}

#[test]
fn failing_for_disable_after_disables() {
    let policy = no_jitter();
    let failed = status(500);
    let since = NOW - Duration::from_secs(5 * 86_400);
    let decision = policy.decide(&failed, 2, Some(since), NOW);
    assert_eq!(decision.outcome, Outcome::Failed);
    let reason = decision.disable_hook.unwrap();
    assert!(
        reason.contains("every attempt failed for 5 days"),
        "{reason}"
    );
    // One second less: still retried.
    let since = since + Duration::from_secs(1);
    assert_eq!(
        policy.decide(&failed, 2, Some(since), NOW),
        retry_at(Duration::from_secs(5))
    );
    // A success never disables, however long the hook failed before.
    let old = NOW - Duration::from_secs(30 * 86_400);
    assert_eq!(
        policy.decide(&status(200), 2, Some(old), NOW).outcome,
        Outcome::Delivered
    );
}

#[test]
fn retry_after_seconds_is_honoured_on_429_502_503_504() {
    let policy = no_jitter();
    for code in [429, 502, 503, 504] {
        let answer = attempt(
            AttemptOutcome::HttpStatus,
            Some(code),
            &[("Retry-After", "120")],
        );
        let expected = match code {
            429 | 503 => throttled(Duration::from_secs(120)),
            _ => retry_at(Duration::from_secs(120)),
        };
        assert_eq!(policy.decide(&answer, 1, None, NOW), expected, "{code}");
    }
    // Not on other statuses.
    let answer = attempt(
        AttemptOutcome::HttpStatus,
        Some(500),
        &[("retry-after", "120")],
    );
    assert_eq!(
        policy.decide(&answer, 1, None, NOW),
        retry_at(Duration::ZERO)
    );
}

#[test]
fn retry_after_http_date_is_honoured_and_capped() {
    let policy = no_jitter();
    let date = |at: OffsetDateTime| httpdate::fmt_http_date(at.into());
    let in_an_hour = date(NOW + Duration::from_secs(3600));
    let answer = attempt(
        AttemptOutcome::HttpStatus,
        Some(503),
        &[("retry-after", &in_an_hour)],
    );
    assert_eq!(
        policy.decide(&answer, 1, None, NOW),
        throttled(Duration::from_secs(3600))
    );
    // Capped at the longest step (10 h).
    let next_week = date(NOW + Duration::from_secs(7 * 86_400));
    let answer = attempt(
        AttemptOutcome::HttpStatus,
        Some(429),
        &[("Retry-After", &next_week)],
    );
    assert_eq!(
        policy.decide(&answer, 1, None, NOW),
        throttled(Duration::from_secs(36_000))
    );
    let answer = attempt(
        AttemptOutcome::HttpStatus,
        Some(429),
        &[("Retry-After", "999999")],
    );
    assert_eq!(
        policy.decide(&answer, 1, None, NOW),
        throttled(Duration::from_secs(36_000))
    );
    // A past date means now; garbage falls back to the schedule.
    let past = date(NOW - Duration::from_secs(60));
    let answer = attempt(
        AttemptOutcome::HttpStatus,
        Some(503),
        &[("Retry-After", &past)],
    );
    assert_eq!(
        policy.decide(&answer, 2, None, NOW),
        throttled(Duration::ZERO)
    );
    let answer = attempt(
        AttemptOutcome::HttpStatus,
        Some(503),
        &[("Retry-After", "soon")],
    );
    assert_eq!(
        policy.decide(&answer, 2, None, NOW),
        throttled(Duration::from_secs(5))
    );
    // On a 502, Retry-After does not extend the number of retries.
    let answer = attempt(
        AttemptOutcome::HttpStatus,
        Some(502),
        &[("Retry-After", "1")],
    );
    assert_eq!(policy.decide(&answer, 9, None, NOW), FAILED);
}

#[test]
fn retry_after_from_a_real_server() {
    let now = OffsetDateTime::now_utc();
    let in_ten_minutes = httpdate::fmt_http_date((now + Duration::from_secs(600)).into());
    let server = Server::start(move |_, n| match n {
        0 => Reply::with_header(503, "Retry-After", "90"),
        _ => Reply::with_header(429, "Retry-After", &in_ten_minutes),
    });
    let deliverer = local_deliverer();
    let policy = no_jitter();

    let first = deliverer.deliver(&request(&server.url()));
    assert_eq!(first.response_status, Some(503));
    let Outcome::Throttled(at) = policy.decide(&first, 1, None, now).outcome else {
        panic!("not throttled");
    };
    assert_eq!(at - now, Duration::from_secs(90));

    let second = deliverer.deliver(&request(&server.url()));
    assert_eq!(second.response_status, Some(429));
    let Outcome::Throttled(at) = policy.decide(&second, 2, None, now).outcome else {
        panic!("not throttled");
    };
    // HTTP dates have whole seconds.
    let delay = (at - now).as_seconds_f64();
    assert!((599.0..=600.0).contains(&delay), "{delay}");
}

#[test]
fn gone_from_a_real_server_disables() {
    let server = Server::always(Reply::status(410));
    let attempt = local_deliverer().deliver(&request(&server.url()));
    assert_eq!(attempt.outcome, AttemptOutcome::HttpStatus);
    let decision = RetryPolicy::default().decide(&attempt, 1, None, OffsetDateTime::now_utc());
    assert_eq!(decision.outcome, Outcome::Failed);
    assert!(decision.disable_hook.is_some());
}
