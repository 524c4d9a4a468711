//! The 15 webhook event types and the integer bit mask a webhook stores its events in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::UnknownEvent;

/// One kind of event a CI server emits and a webhook can subscribe to.
///
/// The discriminant is the bit position the original Djinn CI assigns the event
/// in a webhook's stored mask (`1 << discriminant`); those values are a
/// compatibility contract and must never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EventType {
    /// A build was submitted.
    BuildSubmitted = 0,
    /// A build started running.
    BuildStarted = 1,
    /// A build reached a final status.
    BuildFinished = 2,
    /// Tags were added to a build after submission.
    BuildTagged = 3,
    /// A user was invited to a namespace.
    InviteSent = 4,
    /// An invite was accepted.
    InviteAccepted = 5,
    /// An invite was rejected.
    InviteRejected = 6,
    /// A namespace was created, updated or deleted.
    Namespaces = 7,
    /// A cron job was created, updated or deleted.
    Cron = 8,
    /// An image was created, updated or deleted.
    Images = 9,
    /// An object was created, updated or deleted.
    Objects = 10,
    /// A variable was created, updated or deleted.
    Variables = 11,
    /// An SSH key was created, updated or deleted.
    SshKeys = 12,
    /// A build was pinned.
    BuildPinned = 13,
    /// A build was unpinned.
    BuildUnpinned = 14,
    /// Something happened to djinn-hooks itself (a webhook disabled, say): sent only to the
    /// operator's notification webhook. Not a CI event: not in [`EventType::ALL`], never in a
    /// webhook's mask, refused at the intake.
    Notification = 32,
}

impl EventType {
    /// Every event type, in canonical (bit) order.
    pub const ALL: [EventType; 15] = [
        EventType::BuildSubmitted,
        EventType::BuildStarted,
        EventType::BuildFinished,
        EventType::BuildTagged,
        EventType::InviteSent,
        EventType::InviteAccepted,
        EventType::InviteRejected,
        EventType::Namespaces,
        EventType::Cron,
        EventType::Images,
        EventType::Objects,
        EventType::Variables,
        EventType::SshKeys,
        EventType::BuildPinned,
        EventType::BuildUnpinned,
    ];

    /// The wire name, as sent in `X-Djinn-CI-Event` (e.g. `build.submitted`).
    pub const fn name(self) -> &'static str {
        match self {
            EventType::BuildSubmitted => "build.submitted",
            EventType::BuildStarted => "build.started",
            EventType::BuildFinished => "build.finished",
            EventType::BuildTagged => "build.tagged",
            EventType::InviteSent => "invite.sent",
            EventType::InviteAccepted => "invite.accepted",
            EventType::InviteRejected => "invite.rejected",
            EventType::Namespaces => "namespaces",
            EventType::Cron => "cron",
            EventType::Images => "images",
            EventType::Objects => "objects",
            EventType::Variables => "variables",
            EventType::SshKeys => "ssh_keys",
            EventType::BuildPinned => "build.pinned",
            EventType::BuildUnpinned => "build.unpinned",
            EventType::Notification => "notification",
        }
    }

    /// What the event means, one or two sentences for docs.
    pub const fn description(self) -> &'static str {
        match self {
            EventType::BuildSubmitted => {
                "A build was submitted to the namespace. The payload is the build, `queued`."
            }
            EventType::BuildStarted => {
                "A build began running. The payload is the build, with `started_at` set."
            }
            EventType::BuildFinished => {
                "A build ended, whatever the outcome: `passed`, `passed_with_failures`, \
                 `failed`, `killed` or `timed_out`. The payload is the build, with \
                 `finished_at` set."
            }
            EventType::BuildTagged => {
                "Tags were added to a build after it was submitted (tags given at \
                 submission do not fire this event)."
            }
            EventType::InviteSent => "A user was invited to collaborate in the namespace.",
            EventType::InviteAccepted => "An invite to the namespace was accepted.",
            EventType::InviteRejected => "An invite to the namespace was rejected.",
            EventType::Namespaces => {
                "A namespace was created, updated or deleted. Creation is only sent \
                 for child namespaces."
            }
            EventType::Cron => "A cron job was created, updated or deleted.",
            EventType::Images => "An image was created, updated or deleted.",
            EventType::Objects => "An object was created, updated or deleted.",
            EventType::Variables => "A variable was created, updated or deleted.",
            EventType::SshKeys => "An SSH key was created, updated or deleted.",
            EventType::BuildPinned => {
                "A build was pinned. The payload is the build, with `pinned` true."
            }
            EventType::BuildUnpinned => {
                "A build was unpinned. The payload is the build, with `pinned` false."
            }
            EventType::Notification => {
                "Something happened to djinn-hooks itself; sent only to the operator's \
                 notification webhook."
            }
        }
    }

    /// The bit this event occupies in an [`EventSet`] mask (`1 << n`, as the original).
    pub const fn bit(self) -> u64 {
        1 << (self as u8)
    }

    /// The event whose bit is `1 << position` (the stored form of an event's type), the
    /// notification's included.
    pub fn from_position(position: u32) -> Option<EventType> {
        EventType::ALL
            .into_iter()
            .chain([EventType::Notification])
            .find(|event| event.bit().trailing_zeros() == position)
    }

    /// Looks a CI event up by its wire name (not `notification`, which no CI server sends).
    pub fn from_name(name: &str) -> Result<EventType, UnknownEvent> {
        EventType::ALL
            .into_iter()
            .find(|event| event.name() == name)
            .ok_or_else(|| UnknownEvent {
                name: name.to_owned(),
            })
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EventType {
    type Err = UnknownEvent;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        EventType::from_name(name)
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        EventType::from_name(&name).map_err(serde::de::Error::custom)
    }
}

/// The set of events a webhook fires on, stored as the original's integer bit mask.
///
/// Unlike the original, [`EventSet::all`] includes `invite.rejected`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventSet(u64);

impl EventSet {
    /// The mask with every known event's bit set.
    const ALL_BITS: u64 = (1 << EventType::ALL.len()) - 1;

    /// The set of no events.
    pub const fn empty() -> EventSet {
        EventSet(0)
    }

    /// The set of all 15 events.
    pub const fn all() -> EventSet {
        EventSet(Self::ALL_BITS)
    }

    /// Reads a stored mask. Bits that name no known event are an error, so a
    /// corrupt or future mask is never silently narrowed.
    pub fn from_mask(mask: u64) -> Result<EventSet, UnknownEvent> {
        let unknown = mask & !Self::ALL_BITS;
        if unknown != 0 {
            return Err(UnknownEvent {
                name: format!("mask bits {unknown:#x}"),
            });
        }
        Ok(EventSet(mask))
    }

    /// The integer mask to store (bit values as in the original).
    pub const fn mask(self) -> u64 {
        self.0
    }

    /// Builds a set from wire names. An empty list means all events, as in the
    /// original's create endpoint; an unknown name is an error naming it.
    pub fn from_names<I, S>(names: I) -> Result<EventSet, UnknownEvent>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = EventSet::empty();
        let mut any = false;
        for name in names {
            any = true;
            set.insert(EventType::from_name(name.as_ref().trim())?);
        }
        Ok(if any { set } else { EventSet::all() })
    }

    /// Adds an event to the set.
    pub fn insert(&mut self, event: EventType) {
        self.0 |= event.bit();
    }

    /// Whether the set includes `event`.
    pub const fn contains(self, event: EventType) -> bool {
        self.0 & event.bit() != 0
    }

    /// Whether no event is in the set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The events in the set, in canonical (bit) order.
    pub fn iter(self) -> impl Iterator<Item = EventType> {
        EventType::ALL
            .into_iter()
            .filter(move |e| self.contains(*e))
    }

    /// The wire names of the events in the set, in canonical (bit) order.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(EventType::name).collect()
    }
}

impl fmt::Debug for EventSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(EventType::name))
            .finish()
    }
}

impl FromIterator<EventType> for EventSet {
    fn from_iter<I: IntoIterator<Item = EventType>>(iter: I) -> Self {
        let mut set = EventSet::empty();
        for event in iter {
            set.insert(event);
        }
        set
    }
}

/// Serialised as the list of wire names, as in the original's webhook entity.
impl Serialize for EventSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(EventType::name))
    }
}

impl<'de> Deserialize<'de> for EventSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        EventSet::from_names(names).map_err(serde::de::Error::custom)
    }
}
