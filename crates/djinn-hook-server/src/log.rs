//! Structured log lines on stderr, one per request and one per delivery, in logfmt
//! (`key=value`, values quoted when they hold spaces or quotes). Never a secret, a token, an
//! `Authorization` header, a payload URL (it may carry credentials) or a body.

use std::fmt::Write as _;
use std::time::Duration;

use djinn_hook_deliver::{Completion, DecisionOutcome};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A log line being built: `time=… level=… msg=…` then fields.
pub(super) struct Line(String);

impl Line {
    /// A line with the time, level and message.
    pub(super) fn new(level: &str, msg: &str) -> Line {
        let now = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        let mut line = Line(String::with_capacity(160));
        line.field("time", &now)
            .field("level", level)
            .field("msg", msg);
        line
    }

    /// Adds `key=value`, quoting the value when it needs it.
    pub(super) fn field(&mut self, key: &str, value: &str) -> &mut Line {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        self.0.push_str(key);
        self.0.push('=');
        let plain = !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\');
        if plain {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, "{value:?}");
        }
        self
    }

    /// Adds `key=value` for anything `Display`.
    pub(super) fn display(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Line {
        self.field(key, &value.to_string())
    }

    /// Adds a duration in milliseconds, three decimals.
    pub(super) fn millis(&mut self, key: &str, d: Duration) -> &mut Line {
        self.field(key, &format!("{:.3}", d.as_secs_f64() * 1000.0))
    }

    /// Writes the line to stderr.
    pub(super) fn emit(&self) {
        eprintln!("{}", self.0);
    }

    /// The text (for tests).
    #[cfg(test)]
    pub(super) fn text(&self) -> &str {
        &self.0
    }
}

/// The line for one committed delivery attempt.
pub(super) fn delivery(done: &Completion) -> Line {
    let attempt = &done.attempt;
    let mut line = Line::new("info", "delivery");
    line.field("event", attempt.event.name())
        .display("event_id", attempt.event_id)
        .display("hook", attempt.hook_id)
        .display("attempt", attempt.attempt)
        .field(
            "redelivery",
            if attempt.redelivery { "true" } else { "false" },
        )
        .field(
            "status",
            &attempt
                .response_status
                .map_or_else(|| "none".to_owned(), |s| s.to_string()),
        )
        .field("result", attempt.outcome.as_str())
        .millis("duration_ms", attempt.duration);
    match done.decision.outcome {
        DecisionOutcome::Delivered => line.field("outcome", "delivered"),
        DecisionOutcome::RetryAt(at) => line
            .field("outcome", "retry")
            .field("retry_at", &at.format(&Rfc3339).unwrap_or_default()),
        DecisionOutcome::Failed => line.field("outcome", "failed"),
    };
    if let Some(reason) = &done.decision.disable_hook {
        line.field("disabled_hook", reason);
    }
    if let Some(error) = &attempt.error {
        line.field("error", error);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_when_needed() {
        let mut line = Line::new("info", "request");
        line.field("path", "/n/a b/c/-/webhooks")
            .field("method", "GET")
            .field("empty", "")
            .field("quote", "a\"b");
        let text = line.text();
        assert!(text.starts_with("time="), "{text}");
        assert!(
            text.ends_with(
                r#"level=info msg=request path="/n/a b/c/-/webhooks" method=GET empty="" quote="a\"b""#
            ),
            "{text}"
        );
    }
}
