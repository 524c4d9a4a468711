//! The payload crate's errors.

use std::fmt;

use crate::event::EventType;

/// An event name (or mask bit) that is not one of the 15 known events.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct UnknownEvent {
    /// The name that was given.
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
