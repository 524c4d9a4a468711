//! The payload crate's errors: [`UnknownEvent`] for event names and masks,
//! [`PayloadError`] for payload bodies.

use std::fmt;

use crate::event::EventType;

/// An event name (or mask bit) that is not one of the 15 known events.
///
/// Kept as its own small type (rather than a [`PayloadError`] variant) because
/// event names and masks are parsed far from payload bodies: in webhook
/// creation, in the store, on the command line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct UnknownEvent {
    /// The name that was given, or `mask bits 0x...` for unknown mask bits.
    pub name: String,
}

impl fmt::Display for UnknownEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown event {:?}, expected one of ", self.name)?;
        for (i, event) in EventType::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(event.name())?;
        }
        Ok(())
    }
}

/// A payload body that is not a valid payload of its event.
///
/// Every message starts with the event name. The underlying `serde_json` error
/// is not kept as a source: its text *is* the message (minus the position,
/// which is kept in `line`/`column`), and chaining it would print it twice.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The body is not well-formed JSON (bad syntax, cut short, trailing data).
    #[error("{event}: invalid JSON at line {line} column {column}: {message}")]
    Syntax {
        /// The event the body was parsed as.
        event: EventType,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What was wrong, e.g. ``expected `,` or `}` ``.
        message: String,
    },
    /// Well-formed JSON whose shape or values do not match the event's payload:
    /// a missing field, a wrong type, an unknown enum value, a bad timestamp.
    #[error("{event}: {}{message}", path_prefix(.path))]
    Field {
        /// The event the body was parsed as.
        event: EventType,
        /// JSON path of the bad value, e.g. `build.tags[0]`; empty for the top level.
        path: String,
        /// What was wrong and what was expected.
        message: String,
        /// 1-based line of the error in the body.
        line: usize,
        /// 1-based column of the error in the body.
        column: usize,
    },
    /// A well-typed payload that breaks a rule of its event, e.g. `build.finished`
    /// with a status that is not final. The rules are listed on [`Payload::validate`].
    ///
    /// [`Payload::validate`]: crate::Payload::validate
    #[error("{event}: {path}: {message}")]
    Rule {
        /// The event the payload is for.
        event: EventType,
        /// JSON path of the offending field, e.g. `status`.
        path: &'static str,
        /// What was wrong and what was expected.
        message: String,
    },
}

impl PayloadError {
    /// The event whose payload was bad.
    pub fn event(&self) -> EventType {
        match self {
            PayloadError::Syntax { event, .. }
            | PayloadError::Field { event, .. }
            | PayloadError::Rule { event, .. } => *event,
        }
    }

    /// JSON path of the bad value (empty for the top level or a syntax error).
    pub fn path(&self) -> &str {
        match self {
            PayloadError::Syntax { .. } => "",
            PayloadError::Field { path, .. } => path,
            PayloadError::Rule { path, .. } => path,
        }
    }

    /// Builds the error for a failed `serde_json` read at `path`.
    pub(crate) fn from_json(event: EventType, path: String, error: &serde_json::Error) -> Self {
        let (line, column) = (error.line(), error.column());
        // serde_json's Display is "{message} at line {line} column {column}"
        // whenever it knows the position; keep the message alone.
        let text = error.to_string();
        let suffix = format!(" at line {line} column {column}");
        let message = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
        if error.is_data() {
            PayloadError::Field {
                event,
                path,
                message,
                line,
                column,
            }
        } else {
            PayloadError::Syntax {
                event,
                line,
                column,
                message,
            }
        }
    }
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}
