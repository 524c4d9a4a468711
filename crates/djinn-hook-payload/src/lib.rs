//! Djinn CI webhook event types, payload schema and example payloads.
//!
//! [`EventType`] names the 15 events; [`EventSet`] is a webhook's set of
//! events, stored as the original Djinn CI's integer bit mask.
//!
//! ```
//! use djinn_hook_payload::{EventSet, EventType};
//!
//! let set = EventSet::from_names(["build.submitted", "cron"]).unwrap();
//! assert_eq!(set.mask(), 0b1_0000_0001);
//! assert!(set.contains(EventType::Cron));
//! ```
#![warn(missing_docs)]

mod error;
mod event;

pub use error::UnknownEvent;
pub use event::{EventSet, EventType};
