//! Djinn CI webhook event types, payload schema and example payloads: the one
//! source of truth for what a webhook delivery carries.
//!
//! - [`EventType`] names the 15 events; [`EventSet`] is a webhook's set of
//!   events, stored as the original Djinn CI's integer bit mask.
//! - [`Payload`] is the typed body of one event, over the entities [`Build`],
//!   [`Namespace`], [`User`], [`Cron`], [`Image`], [`Object`], [`Variable`],
//!   [`Key`] and the payload structs ([`BuildTagged`], [`InviteSent`],
//!   [`NamespaceChange`], ...). [`Payload::parse`] reads a body,
//!   [`Payload::to_body`] gives the exact bytes that are sent and signed.
//! - [`example_payload`] gives a consistent example for every event;
//!   [`EventType::payload_schema`] and [`ObjectSchema`] describe every field, for
//!   the generated `docs/events.md`.
//!
//! ```
//! use djinn_hook_payload::{EventSet, EventType, Payload};
//!
//! let set = EventSet::from_names(["build.submitted", "cron"]).unwrap();
//! assert_eq!(set.mask(), 0b1_0000_0001);
//!
//! let err = Payload::parse(EventType::BuildFinished, br#"{"id": "four"}"#).unwrap_err();
//! assert_eq!(err.to_string(), r#"build.finished: id: invalid type: string "four", expected i64"#);
//! ```
//!
//! # Wire format
//!
//! Keys are written in the order the original's encoders list them,
//! compact, every key always present: nullable ones as `null`.
//! Timestamps are RFC 3339 in UTC (`2021-10-06T18:14:33Z`, fractional seconds
//! only when non-zero), read and written by the `time` crate; an offset other
//! than UTC is accepted on input and kept.
//!
//! # Unknown fields are accepted and kept
//!
//! The original adds fields over time. Every entity and payload struct has an
//! `extra` map ([`Extra`]) that collects the keys this version does not know,
//! with their JSON values, and writes them back after the known keys (sorted by
//! key). So a receiver never breaks on a new upstream field, and a sender
//! relaying a CI server's event never drops one: parse then [`Payload::to_body`]
//! keeps every key and value (the same JSON, though not necessarily the same
//! bytes: whitespace, key order and number spelling are normalised). Nothing
//! checks that `extra` avoids the known keys; a payload built by hand must not
//! put a known key there.
//!
//! # Older payloads
//!
//! The original's 2021 example payloads lack some keys that its code now sends
//! (`pinned`, `masked`, a namespace's `parent` and `build`, ...). Those keys
//! read as their defaults when missing: `false`, `null`, `0` for `number`, `""`
//! for a URL, and are then written like any other key. Every other key is
//! required; a missing nullable key reads as `null`.
//!
//! # Checks beyond the types
//!
//! [`Payload::parse`] also applies the few rules of [`Payload::validate`] (for
//! example, `build.finished` must carry a final status).
#![warn(missing_docs)]

/// The crate README's example, compiled and run as a doctest so it cannot drift.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
struct ReadmeDoctests;

mod entity;
mod error;
mod event;
mod examples;
mod notification;
mod payload;
mod schema;
mod userinfo;
mod wire;

pub use entity::{
    Build, BuildStatus, Cron, Download, Driver, Extra, Image, Key, Namespace, Object, Schedule,
    Tag, Trigger, TriggerType, User, Variable, Visibility,
};
pub use error::{PayloadError, UnknownEvent};
pub use event::{EventSet, EventType};
pub use examples::{DEFAULT_API_SERVER, example_api_build, example_payload};
pub use notification::Notification;
pub use payload::{
    Action, BuildTagged, CronChange, ImageChange, InviteAnswered, InviteSent, KeyChange,
    NamespaceChange, ObjectChange, Payload, VariableChange,
};
pub use schema::{FieldSchema, FieldType, ObjectSchema};
pub use userinfo::{redact_userinfo, scrub_userinfo};
